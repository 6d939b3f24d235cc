import Bus
import GIC

/// The vGICv3 and vITS register state a VMM carries across a migration: what QEMU's
/// `kvm_arm_gicv3_get` reads through KVM_DEV_ARM_VGIC_GRP_DIST_REGS / REDIST_REGS / CPU_SYSREGS
/// (hw/intc/arm_gicv3_kvm.c) and `kvm_arm_its_pre_save` through KVM_DEV_ARM_VGIC_GRP_ITS_REGS
/// (hw/intc/arm_gicv3_its_kvm.c). The ITS tables and LPI pending bits travel in guest RAM, not
/// here (KVM_DEV_ARM_ITS_SAVE_TABLES, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES).
///
/// Model scope: of the distributor, GICD_CTLR and the SPI registers QEMU restores (IGROUPR,
/// ISENABLER, IPRIORITYR, ICFGR, IROUTER) as stored words; SPIs are not signalled by the model,
/// so their pending/active/level state is not carried. Of each redistributor, GICR_PROPBASER,
/// GICR_PENDBASER, GICR_CTLR, GICR_WAKER and the SGI_base words QEMU restores (IGROUPR0,
/// ISENABLER0, ICFGR1, ISPENDR0, ISACTIVER0, IPRIORITYR0–7). Of each CPU interface, ICC_PMR_EL1
/// and the active priorities (ICC_AP1R<n>_EL1).
public struct KVMVGICState: Hashable, Sendable {
    public struct Redistributor: Hashable, Sendable {
        public var propbaser: UInt64
        public var pendbaser: UInt64
        public var ctlr: UInt64
        public var waker: UInt64
        /// SGI_base offset → 32-bit value.
        public var sgiWords: [UInt64: UInt64]
    }

    /// GITS_* as `kvm_arm_its_pre_save` reads them.
    public struct ITSRegisters: Hashable, Sendable {
        public var ctlr: UInt64
        public var iidr: UInt64
        public var cbaser: UInt64
        public var creadr: UInt64
        public var cwriter: UInt64
        public var baser: [UInt64]
    }

    public var distributorWords: [UInt64: UInt64]
    public var redistributors: [Redistributor]
    public var cpuInterfaces: [CPUInterface.SavedState]
    public var its: ITSRegisters?
    /// A vGICv2's GICC_CTLR per vCPU (QEMU `kvm_arm_gic_get`: `cpu_ctlr` through
    /// KVM_DEV_ARM_VGIC_GRP_CPU_REGS); empty for a vGICv3.
    public var gicv2CPUControl: [UInt32] = []
}

extension KVMVGIC {
    /// SGI_base registers `kvm_arm_gicv3_put` restores, in its order (offsets from RD_base).
    static let sgiRegisterOffsets: [UInt64] = [0x1_0080, 0x1_0100, 0x1_0C04, 0x1_0200, 0x1_0300]
        + (0..<8).map { 0x1_0400 + UInt64($0) * 4 }

    /// GICD offsets of the SPI registers carried (SPIs 32 ..< 32 + SPIs): IGROUPR, ISENABLER
    /// (one bit each), IPRIORITYR (one byte), ICFGR (two bits), IROUTER (eight bytes).
    var distributorOffsets: [UInt64] {
        let spis = UInt64(gic.configuration.spiCount)
        let bitWords = (0..<(spis / 32)).flatMap { w in [0x0084 + w * 4, 0x0104 + w * 4] }
        let priorities = (0..<(spis / 4)).map { 0x0420 + $0 * 4 }
        let configs = (0..<(spis / 16)).map { 0x0C08 + $0 * 4 }
        let routers = (0..<(spis * 2)).map { 0x6100 + $0 * 4 }
        // A GICv2 routes SPIs with GICD_ITARGETSR (one byte each, from 0x820), which
        // `kvm_arm_gic_get` saves (`kvm_dist_get_target`); it has no IROUTER.
        if gic.configuration.version == 2 { return [0x0000] + bitWords + priorities + configs + (0..<(spis / 4)).map { 0x0820 + $0 * 4 } }
        return [0x0000] + bitWords + priorities + configs + routers
    }

    /// The register state (QEMU `kvm_arm_gicv3_get`, then `kvm_arm_its_pre_save`).
    public func saveState() -> KVMVGICState {
        func read(_ device: any MMIODevice, _ offset: UInt64, _ size: Int) -> UInt64 {
            (try? device.mmioRead(offset: offset, size: size, requester: .hardware)) ?? 0
        }
        var distributor: [UInt64: UInt64] = [:]
        for offset in distributorOffsets { distributor[offset] = read(gic.distributor, offset, 4) }
        let redistributors = gic.redistributors.map { rd in
            KVMVGICState.Redistributor(
                propbaser: read(rd, Redistributor.Offset.propbaser, 8), pendbaser: read(rd, Redistributor.Offset.pendbaser, 8),
                ctlr: read(rd, Redistributor.Offset.ctlr, 4), waker: read(rd, Redistributor.Offset.waker, 4),
                sgiWords: Dictionary(uniqueKeysWithValues: Self.sgiRegisterOffsets.map { ($0, read(rd, $0, 4)) }))
        }
        var itsRegisters: KVMVGICState.ITSRegisters?
        if let its {
            itsRegisters = .init(ctlr: read(its, ITS.Offset.ctlr, 4), iidr: read(its, ITS.Offset.iidr, 4),
                                 cbaser: read(its, ITS.Offset.cbaser, 8), creadr: read(its, ITS.Offset.creadr, 8),
                                 cwriter: read(its, ITS.Offset.cwriter, 8),
                                 baser: (0..<8).map { read(its, ITS.Offset.baser + UInt64($0) * 8, 8) })
        }
        return KVMVGICState(distributorWords: distributor, redistributors: redistributors,
                            cpuInterfaces: gic.cpuInterfaces.map(\.savedState), its: itsRegisters,
                            gicv2CPUControl: cpuInterfaceFrame?.control ?? [])
    }

    /// QEMU `kvm_arm_gicv3_put`, the "restore all redistributors" step of the ITS Restore
    /// Sequence: GICD_CTLR; every redistributor's GICR_PROPBASER and GICR_PENDBASER before any
    /// GICR_CTLR ("Restore base addresses before LPIs are potentially enabled by GICR_CTLR
    /// write"); then per redistributor GICR_CTLR (EnableLPIs=1 loads the configuration and
    /// pending tables), GICR_WAKER and the SGI_base words (ICENABLER0 = ~0 before ISENABLER0);
    /// then the SPI registers; then the CPU interfaces. Done as register writes on the frames,
    /// which for these registers is what KVM's uaccess does.
    public func restoreGICv3(_ state: KVMVGICState) {
        func write(_ device: any MMIODevice, _ offset: UInt64, _ size: Int, _ value: UInt64) {
            try? device.mmioWrite(offset: offset, size: size, value: value, requester: .hardware)
        }
        write(gic.distributor, 0, 4, state.distributorWords[0] ?? 0)
        for (rd, saved) in zip(gic.redistributors, state.redistributors) {
            write(rd, Redistributor.Offset.propbaser, 8, saved.propbaser)
            write(rd, Redistributor.Offset.pendbaser, 8, saved.pendbaser)
        }
        for (rd, saved) in zip(gic.redistributors, state.redistributors) {
            write(rd, Redistributor.Offset.ctlr, 4, saved.ctlr)
            write(rd, Redistributor.Offset.waker, 4, saved.waker)
            for offset in Self.sgiRegisterOffsets {
                if offset == 0x1_0100 || offset == 0x1_0200 || offset == 0x1_0300 { write(rd, offset + 0x80, 4, 0xFFFF_FFFF) }
                write(rd, offset, 4, saved.sgiWords[offset] ?? 0)
            }
        }
        for offset in distributorOffsets.sorted() where offset != 0 {
            write(gic.distributor, offset, 4, state.distributorWords[offset] ?? 0)
        }
        for (interface, saved) in zip(gic.cpuInterfaces, state.cpuInterfaces) { interface.restore(saved) }
        cpuInterfaceFrame?.restoreControl(state.gicv2CPUControl)
    }

    // MARK: KVM_DEV_ARM_VGIC_GRP_ITS_REGS

    /// The ITS registers userspace may access (`its_registers` in vgic-its.c): GITS_CTLR, IIDR,
    /// TYPER, CBASER, CWRITER, CREADR, BASER0–7, and the ID registers from GITS_PIDR4.
    static func isITSRegister(_ offset: UInt64) -> Bool {
        switch offset {
        case ITS.Offset.ctlr, ITS.Offset.iidr, ITS.Offset.typer, ITS.Offset.cbaser, ITS.Offset.cwriter, ITS.Offset.creadr: true
        case ITS.Offset.baser..<(ITS.Offset.baser + 0x40): true
        case 0xFFD0..<0x1_0000: true
        default: false
        }
    }

    /// `vgic_its_attr_regs_access` alignment: 32-bit registers (below GITS_TYPER, and the ID
    /// registers from GITS_PIDR4) 4-byte aligned, the 64-bit ones 8-byte aligned, else -EINVAL;
    /// an offset naming no register is -ENXIO.
    func checkITSRegister(_ offset: UInt64) throws(Errno) -> (ITS, Int) {
        guard let its else { throw .ENXIO }
        let narrow = offset < ITS.Offset.typer || offset >= 0xFFD0
        guard offset & (narrow ? 3 : 7) == 0 else { throw .EINVAL }
        guard Self.isITSRegister(offset) else { throw .ENXIO }
        return (its, narrow ? 4 : 8)
    }

    /// KVM_GET_DEVICE_ATTR(KVM_DEV_ARM_VGIC_GRP_ITS_REGS): the register as the guest reads it.
    public func itsRegister(_ offset: UInt64) throws(Errno) -> UInt64 {
        let (its, size) = try checkITSRegister(offset)
        return (try? its.mmioRead(offset: offset, size: size, requester: .hardware)) ?? 0
    }

    /// KVM_SET_DEVICE_ATTR(KVM_DEV_ARM_VGIC_GRP_ITS_REGS): a guest write, except GITS_CREADR
    /// (`vgic_mmio_uaccess_write_its_creadr`: -EBUSY while the ITS is enabled, -EINVAL for an
    /// offset beyond the command queue; a guest cannot write it) and GITS_IIDR
    /// (`vgic_mmio_uaccess_write_its_iidr`: the Revision field [15:12] selects the table ABI,
    /// -EINVAL unless it is 0, the only one, NR_ITS_ABIS = 1); writes to other read-only
    /// registers are ignored.
    public func setITSRegister(_ offset: UInt64, _ value: UInt64) throws(Errno) {
        let (its, size) = try checkITSRegister(offset)
        switch offset {
        case ITS.Offset.creadr:
            guard !its.enabled else { throw .EBUSY }
            guard its.restoreCommandReadOffset(value) else { throw .EINVAL }
        case ITS.Offset.iidr:
            guard value.bits(15, 12) == 0 else { throw .EINVAL }
        default:
            try? its.mmioWrite(offset: offset, size: size, value: value, requester: .hardware)
        }
    }

    /// QEMU `kvm_arm_its_post_load`, step d) of the ITS Restore Sequence: GITS_IIDR first (the
    /// ABI revision), GITS_CBASER before GITS_CREADR (a CBASER write resets CREADR), GITS_CWRITER,
    /// GITS_BASER0–7, KVM_DEV_ARM_ITS_RESTORE_TABLES, and GITS_CTLR last (it may enable the ITS).
    /// QEMU passes `&error_abort`, so any errno ends the destination; here it is thrown.
    public func restoreITS(_ registers: KVMVGICState.ITSRegisters) throws(Errno) {
        try setITSRegister(ITS.Offset.iidr, registers.iidr)
        try setITSRegister(ITS.Offset.cbaser, registers.cbaser)
        try setITSRegister(ITS.Offset.creadr, registers.creadr)
        try setITSRegister(ITS.Offset.cwriter, registers.cwriter)
        for (index, value) in registers.baser.enumerated() {
            try setITSRegister(ITS.Offset.baser + UInt64(index) * 8, value)
        }
        try restoreITSTables()
        try setITSRegister(ITS.Offset.ctlr, registers.ctlr)
    }
}

extension KVMVirtualMachine {
    /// Model of the destination VM's fresh interrupt controller. An incoming QEMU creates a new
    /// VM; the model keeps this `KVMVirtualMachine` as the destination's (same memory slots over
    /// the same host pages — on one host the RAM copy leaves the destination's RAM byte for byte
    /// the source's — and the same vCPUs: step a) of the ITS Restore Sequence), so what a
    /// migration renews is the vGIC: the source's goes with the source VM (`kvm_vgic_destroy`)
    /// and its frames leave the guest bus; `createVGIC` then makes the destination's.
    public func destroyVGIC() {
        guard let vgic else { return }
        guestBus.removeDevice(vgic.gic.distributor)
        for rd in vgic.gic.redistributors { guestBus.removeDevice(rd) }
        if let its = vgic.its { guestBus.removeDevice(its) }
        if let frame = vgic.cpuInterfaceFrame { guestBus.removeDevice(frame) }
        for frame in vgic.gic.v2mFrames { guestBus.removeDevice(frame) }
        irqchipRoutes = [:]
        self.vgic = nil
        kernel.log.log("kvm", "VM \(id): vGIC destroyed")
    }
}
