import Bus
import GIC

/// KVM's in-kernel GICv2 (KVM_DEV_TYPE_ARM_VGIC_V2) and its IRQCHIP routes: what a
/// `gic-version=2` guest gets (QEMU hw/intc/arm_gic_kvm.c `kvm_arm_gic_realize`). There is no
/// vITS and no MSI injection (`kvm_set_msi` is -ENODEV without `vgic_has_its`); a passthrough
/// vector reaches the guest through an irqfd on a GSI whose KVM_IRQ_ROUTING_IRQCHIP route names
/// an SPI (Linux arch/arm64/kvm/vgic/vgic-irqfd.c `vgic_irqfd_set_irq`).
extension KVMVGIC {
    /// The vGICv2's ID values: GIC architecture 2, `spiCount` SPIs (QEMU virt asks for 256
    /// through KVM_DEV_ARM_VGIC_GRP_NR_IRQS = 288), no LPIs.
    public static func configurationV2(vcpuCount: Int, spiCount: Int = 256) -> GICConfiguration {
        GICConfiguration(version: 2, cpuCount: vcpuCount, spiCount: spiCount)
    }
}

extension KVMVirtualMachine {
    /// `VGIC_V2_MAX_CPUS` (include/kvm/arm_vgic.h): a vGICv2 serves at most 8 vCPUs.
    public static let vgicV2MaxCPUs = 8

    /// KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V2) with KVM_VGIC_V2_ADDR_TYPE_DIST /
    /// KVM_VGIC_V2_ADDR_TYPE_CPU, KVM_DEV_ARM_VGIC_GRP_NR_IRQS = 32 + `spiCount`, then
    /// KVM_DEV_ARM_VGIC_CTRL_INIT, whose `vgic_init` installs the default routing
    /// (`kvm_vgic_setup_default_irq_routing`: GSI i → IRQCHIP 0 pin i for every SPI).
    ///
    /// Errors: EEXIST when the VM already has an irqchip (`kvm_vgic_create`); E2BIG for more than
    /// `VGIC_V2_MAX_CPUS` vCPUs (`kvm_vgic_create`); ENXIO with no vCPU; EINVAL for a base not 4
    /// KiB aligned (`vgic_check_iorange` with SZ_4K for the v2 regions); EEXIST when a frame
    /// overlaps something on the guest bus (as `createVGIC`). The distributor is 4 KiB
    /// (`KVM_VGIC_V2_DIST_SIZE`), the CPU interface 8 KiB (`KVM_VGIC_V2_CPU_SIZE`).
    ///
    /// The guest reaches the CPU interface as memory-mapped GICC (KVM maps the hardware's GICV
    /// there; here the GIC model's `GICv2CPUInterface` frame on the guest bus).
    @discardableResult
    public func createVGICv2(distributor: PhysicalAddress, cpuInterface: PhysicalAddress, spiCount: Int = 256) throws(Errno) -> KVMVGIC {
        guard vgic == nil else { throw .EEXIST }
        guard !vcpus.isEmpty else { throw .ENXIO }
        guard vcpus.count <= Self.vgicV2MaxCPUs else { throw .E2BIG }
        guard spiCount > 0, spiCount <= 988 else { throw .EINVAL }
        for base in [distributor, cpuInterface] where base.rawValue & 0xFFF != 0 { throw .EINVAL }
        let frames: [(UInt64, UInt64)] = [(distributor.rawValue, KVMConstants.vgicV2DistributorSize),
                                          (cpuInterface.rawValue, KVMConstants.vgicV2CPUSize)]
        for (index, (base, size)) in frames.enumerated() {
            let (end, overflow) = base.addingReportingOverflow(size - 1)
            guard !overflow, end < SystemBus.physicalAddressLimit else { throw .EINVAL }
            for region in guestBus.regions where region.base.rawValue <= end && base <= region.last { throw .EEXIST }
            let (otherBase, otherSize) = frames[1 - index]
            if otherBase <= end && base <= otherBase &+ (otherSize - 1) { throw .EEXIST }
        }
        let frame: GICv2CPUInterface
        let gic = GICv3(configuration: KVMVGIC.configurationV2(vcpuCount: vcpus.count, spiCount: spiCount),
                        affinities: vcpus.map(\.affinity))
        do {
            try gic.attachDistributor(to: guestBus, base: distributor)
            frame = try gic.addGICv2CPUInterface(base: cpuInterface)
        } catch {
            throw .EEXIST
        }
        let created = KVMVGIC(gic: gic, its: nil, itsLists: nil, guestBus: guestBus, vcpuCount: vcpus.count,
                              distributorBase: distributor, redistributorBase: nil, itsBase: nil)
        created.cpuInterfaceBase = cpuInterface
        created.cpuInterfaceFrame = frame
        vgic = created
        irqchipRoutes = Dictionary(uniqueKeysWithValues: (0..<UInt32(spiCount)).map { ($0, $0) })
        kernel.log.log("kvm", "VM \(id): vGICv2 GICD \(distributor) GICC \(cpuInterface), \(spiCount) SPIs")
        return created
    }

    /// KVM_SET_GSI_ROUTING's KVM_IRQ_ROUTING_IRQCHIP entries (`kvm_set_routing_entry`): GSI →
    /// pin. EINVAL for a pin ≥ KVM_IRQCHIP_NUM_PINS, a GSI ≥ KVM_MAX_IRQ_ROUTES, or a GSI that
    /// also has an MSI route (`setup_routing_entry`: one non-irqchip entry per GSI, and none
    /// beside an irqchip one).
    ///
    /// Model difference, documented: KVM keeps one table for both kinds and QEMU commits both
    /// every time (its list always holds the 256 IRQCHIP routes `kvm_arm_gic_realize` added); the
    /// model keeps the IRQCHIP half apart and `setGSIRouting` replaces only the MSI half — the
    /// same resulting table, since QEMU never changes its IRQCHIP routes after realize.
    public func setIRQChipRoutes(_ routes: [UInt32: UInt32]) throws(Errno) {
        for (gsi, pin) in routes {
            guard gsi < KVMConstants.maxIRQRoutes, pin < KVMConstants.irqchipPins, self.routes[gsi] == nil else { throw .EINVAL }
        }
        irqchipRoutes = routes
    }

    /// The IRQCHIP route of `gsi`: its pin.
    public func irqchipPin(gsi: UInt32) -> UInt32? { irqchipRoutes[gsi] }

    /// `vgic_irqfd_set_irq` for an irqfd on an IRQCHIP route (irqfd_inject: level 1 then 0):
    /// SPI pin + 32, EINVAL unless `vgic_valid_spi`; `kvm_vgic_inject_irq` drives the SPI's line,
    /// which latches an edge-triggered SPI's pending state (a level-sensitive one would only be
    /// pending while the line is high: the GICv2m guest configures its MSI SPIs edge-rising).
    func injectSPI(pin: UInt32, source: KVMInjectionRecord.Source) {
        let intid = pin &+ 32
        guard let gic = vgic?.gic, Int(pin) < gic.configuration.spiCount else {
            counters.noITS &+= 1
            record(.init(source: source, msi: nil, outcome: .failed(.EINVAL)))
            return
        }
        gic.distributor.setLevel(intid: intid, asserted: true)
        gic.distributor.setLevel(intid: intid, asserted: false)
        let targets = gic.distributor.targetByte(intid: intid)
        let cpu: Int = (0..<8).first(where: { targets & (1 << UInt8($0)) != 0 }) ?? 0
        counters.delivered &+= 1
        record(.init(source: source, msi: nil, outcome: .delivered(intid: intid, vcpu: cpu)))
    }

    /// KVM_IRQ_LINE with KVM_ARM_IRQ_TYPE_SPI, level 1 then 0: QEMU's `qemu_irq_pulse` on a GIC
    /// input (`kvm_arm_gicv2_set_irq`), which is what its GICv2m frame does for an MSI_SETSPI_NS
    /// write (`gicv2m_set_irq`). `kvm_vm_ioctl_irq_line` → `kvm_vgic_inject_irq`: ENXIO without
    /// a vGIC, EINVAL for an INTID that is not one of its SPIs.
    public func pulseSPI(intid: UInt32) throws(Errno) {
        guard let gic = vgic?.gic else { throw .ENXIO }
        guard intid >= 32, Int(intid) - 32 < gic.configuration.spiCount else { throw .EINVAL }
        gic.distributor.setLevel(intid: intid, asserted: true)
        gic.distributor.setLevel(intid: intid, asserted: false)
    }
}
