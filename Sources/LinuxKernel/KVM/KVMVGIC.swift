import Bus
import GIC

/// KVM's in-kernel GICv3 (KVM_DEV_TYPE_ARM_VGIC_V3) and ITS (KVM_DEV_TYPE_ARM_VGIC_ITS),
/// modelled by instantiating the GIC hardware module on the VM's guest bus with the ID values
/// KVM's emulation reports, so the guest drives it through the same MMIO, command queue and
/// tables as a physical GIC.
///
/// The vITS keeps its translations where KVM's vgic-its keeps them: in kernel lists
/// (`KVMITSLists`: `its->device_list`, each device's `itt_head`, `its->collection_list`) built
/// while it executes the commands it reads from the guest's command queue
/// (`vgic_its_process_commands` reads guest memory). The guest's GITS_BASER tables and ITTs in
/// guest RAM hold KVM's ABI rev 0 entries only after KVM_DEV_ARM_ITS_SAVE_TABLES
/// (`saveITSTables`), and KVM_DEV_ARM_ITS_RESTORE_TABLES (`restoreITSTables`) rebuilds the lists
/// from them (+SaveRestore).
public final class KVMVGIC {
    /// The emulated distributor, redistributors and CPU interfaces.
    public let gic: GICv3
    /// The emulated ITS, when one was created.
    public let its: ITS?
    public let distributorBase: PhysicalAddress
    /// The redistributor region (vGICv3; nil for a vGICv2, which has none).
    public let redistributorBase: PhysicalAddress?
    public let itsBase: PhysicalAddress?
    /// The memory-mapped CPU interface (vGICv2, `KVMVGICv2.swift`; nil for a vGICv3).
    public internal(set) var cpuInterfaceBase: PhysicalAddress?
    /// The vGICv2's memory-mapped CPU interface frame (its GICC_CTLR is migrated state).
    public internal(set) var cpuInterfaceFrame: GICv2CPUInterface?
    /// The vITS's device, ITT and collection lists (nil without a vITS).
    public let itsLists: KVMITSLists?
    /// The VM's guest bus (held: a vGIC handle outlives nothing it needs).
    let guestBus: SystemBus
    /// vCPU IDs (`kvm_get_vcpu_by_id` succeeds for 0 ..< vcpuCount).
    public let vcpuCount: Int

    init(gic: GICv3, its: ITS?, itsLists: KVMITSLists?, guestBus: SystemBus, vcpuCount: Int,
         distributorBase: PhysicalAddress, redistributorBase: PhysicalAddress?, itsBase: PhysicalAddress?) {
        self.gic = gic
        self.its = its
        self.itsLists = itsLists
        self.guestBus = guestBus
        self.vcpuCount = vcpuCount
        self.distributorBase = distributorBase
        self.redistributorBase = redistributorBase
        self.itsBase = itsBase
    }

    /// The ID values of KVM's vGICv3 + vITS (arch/arm64/kvm/vgic/vgic-its.c, vgic-mmio-v3.c,
    /// checked in the source):
    /// - `vgic_mmio_read_its_typer`: Physical=1; Devbits = VITS_TYPER_DEVBITS (16) − 1; IDbits =
    ///   VITS_TYPER_IDBITS (16) − 1; ITT_entry_size = `abi->ite_esz` (8, ABI rev 0) − 1; PTA = 0
    ///   ("We use linear CPU numbers for redistributor addressing"); HCC, CIL, CIDbits, SEIS,
    ///   Virtual all 0 — CIL=0 means 16-bit ICIDs.
    /// - GICD_TYPER.IDbits = INTERRUPT_ID_BITS_ITS (16) − 1 when the VM has an ITS
    ///   (`vgic_mmio_read_v3_misc`), so LPIs are 8192 ..< 65536.
    /// - Command errors: `vgic_its_handle_command` failures are ignored and CREADR moves on
    ///   (`vgic_its_process_commands`), i.e. skip-and-continue.
    /// - GIC architecture version 3 (no GICv4 vLPI emulation is exposed to the guest).
    /// - SPIs: 256, what QEMU's virt asks for through KVM_DEV_ARM_VGIC_GRP_NR_IRQS (288 − 32).
    public static func configuration(vcpuCount: Int) -> GICConfiguration {
        GICConfiguration(version: 3, cpuCount: vcpuCount, deviceIDBits: 16, eventIDBits: 16, lpiIDBits: 16,
                         collectionIDBits: 16, collectionIDLimit: false, ittEntrySize: 8,
                         physicalTargetAddresses: false, hardwareCollections: 0, spiCount: 256,
                         commandErrorPolicy: .skipAndContinue)
    }
}

extension KVMVirtualMachine {
    /// KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3) with KVM_VGIC_V3_ADDR_TYPE_DIST /
    /// KVM_VGIC_V3_ADDR_TYPE_REDIST, then, if `its` is given, KVM_CREATE_DEVICE
    /// (KVM_DEV_TYPE_ARM_VGIC_ITS) with KVM_VGIC_ITS_ADDR_TYPE, and KVM_DEV_ARM_VGIC_CTRL_INIT.
    ///
    /// Errors: EEXIST when the VM already has an in-kernel irqchip (`kvm_vgic_create`); EINVAL
    /// for a base not 64 KiB aligned (`vgic_check_iorange`); ENXIO with no vCPU (the model sizes
    /// the redistributor region from the vCPUs at this point, as `vgic_init` does); EEXIST when a
    /// frame overlaps a memory slot or another frame on the guest bus (KVM reports overlapping
    /// vGIC regions with EINVAL from `vgic_v3_check_base` and lets an MMIO region shadow RAM; the
    /// model's bus refuses overlaps outright).
    ///
    /// Redistributors: one 128 KiB frame pair per vCPU, contiguous from `redistributors` (a
    /// single KVM_VGIC_V3_ADDR_TYPE_REDIST region); vCPU n's GICR_TYPER affinity is its MPIDR.
    @discardableResult
    public func createVGIC(distributor: PhysicalAddress, redistributors: PhysicalAddress, its: PhysicalAddress?) throws(Errno) -> KVMVGIC {
        guard vgic == nil else { throw .EEXIST }
        guard !vcpus.isEmpty else { throw .ENXIO }
        let alignment: UInt64 = 0x1_0000
        for base in [distributor, redistributors] + (its.map { [$0] } ?? []) where base.rawValue & (alignment - 1) != 0 {
            throw .EINVAL
        }
        let configuration = KVMVGIC.configuration(vcpuCount: vcpus.count)
        let gic = GICv3(configuration: configuration, affinities: vcpus.map(\.affinity))
        // Check every frame against the guest bus before placing any.
        var frames: [(UInt64, UInt64)] = [(distributor.rawValue, KVMConstants.vgicV3DistributorSize),
                                          (redistributors.rawValue, KVMConstants.vgicV3RedistributorSize &* UInt64(vcpus.count))]
        if let its { frames.append((its.rawValue, KVMConstants.vgicV3ITSSize)) }
        for (index, (base, size)) in frames.enumerated() {
            let (end, overflow) = base.addingReportingOverflow(size - 1)
            guard !overflow, end < SystemBus.physicalAddressLimit else { throw .EINVAL }
            for region in guestBus.regions where region.base.rawValue <= end && base <= region.last { throw .EEXIST }
            for (other, (otherBase, otherSize)) in frames.enumerated() where other != index
                && otherBase <= end && base <= otherBase &+ (otherSize - 1) {
                throw .EEXIST
            }
        }
        let vits: ITS?
        let lists = its.map { _ in KVMITSLists(guestBus: guestBus) }
        do {
            try gic.attach(to: guestBus, distributorBase: distributor,
                           redistributorRegions: [(redistributors, KVMConstants.vgicV3RedistributorSize &* UInt64(vcpus.count))],
                           stride: nil)
            vits = try its.map { (base) throws(BusError) -> ITS in try gic.addITS(base: base, entryStorage: lists) }
        } catch {
            throw .EEXIST
        }
        let created = KVMVGIC(gic: gic, its: vits, itsLists: lists, guestBus: guestBus, vcpuCount: vcpus.count,
                              distributorBase: distributor, redistributorBase: redistributors, itsBase: its)
        vgic = created
        kernel.log.log("kvm", "VM \(id): vGICv3 GICD \(distributor) GICR \(redistributors) × \(vcpus.count)"
                       + (its.map { ", vITS \($0)" } ?? ""))
        try vgicV4Init()
        return created
    }
}

/// The guest's view of its GIC system registers (ICC_IAR1_EL1, ICC_EOIR1_EL1, ICC_PMR_EL1 per
/// vCPU). In KVM the guest reads them from the hardware's virtual CPU interface, fed by list
/// registers KVM fills from the vGIC's pending state (`vgic_flush_lr_state`); here they are
/// served by the emulated GIC's CPU interfaces directly. Before the vGIC exists every IAR read
/// is spurious (1023).
public final class KVMVCPUInterface: CPUInterfaceRegisters {
    unowned(safe) let vm: KVMVirtualMachine

    init(vm: KVMVirtualMachine) { self.vm = vm }

    public var cpuCount: Int { vm.vcpus.count }

    /// vLPIs acknowledged from a vPE's virtual pending table, indexed by vCPU: their EOI is the
    /// virtual CPU interface's, not the emulated distributor's. An array indexed by vCPU rather
    /// than a Dictionary keyed by it: every guest EOI looks here, and a Dictionary's keyed
    /// `modify` (`directlyAcknowledged[cpu]?.remove`) is a coroutine whose frames were
    /// heap-allocated on each call, three mallocs per steady-state MSI.
    var directlyAcknowledged: [Set<UInt32>] = []

    /// ICC_IAR1_EL1 as the guest reads it: what the emulated vGIC signals (KVM's list
    /// registers), else, with GICv4.1 direct injection, the vLPI the GIC's virtual CPU interface
    /// presents from the resident vPE's pending table (`KVMVGICv4.swift`).
    public func readIAR1(cpu: Int) -> UInt32 {
        guard let gic = vm.vgic?.gic else { return INTID.spurious.rawValue }
        let intid = gic.acknowledge(cpu: cpu)
        guard intid >= 1020 && intid <= 1023, let vlpi = vm.acknowledgeDirectVLPI(vcpu: cpu) else { return intid }
        guard cpu >= 0 else { return vlpi }
        if directlyAcknowledged.count <= cpu {
            directlyAcknowledged.append(contentsOf: repeatElement([], count: cpu &+ 1 &- directlyAcknowledged.count))
        }
        directlyAcknowledged[cpu].insert(vlpi)
        return vlpi
    }

    public func writeEOIR1(cpu: Int, _ intid: UInt32) {
        if directlyAcknowledged.indices.contains(cpu), directlyAcknowledged[cpu].remove(intid) != nil { return }
        vm.vgic?.gic.endOfInterrupt(cpu: cpu, intid: intid)
    }

    public func writePMR(cpu: Int, _ value: UInt8) {
        vm.vgic?.gic.setPriorityMask(cpu: cpu, value)
    }

    public func writeDIR(cpu: Int, _ intid: UInt32) {
        vm.vgic?.gic.deactivate(cpu: cpu, intid: intid)
    }

    public func writeCTLR(cpu: Int, _ value: UInt64) {
        vm.vgic?.gic.setEOIMode(cpu: cpu, value & KVMVCPUInterface.eoiModeDrop != 0)
    }
}
