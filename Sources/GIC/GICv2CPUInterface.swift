import Bus

/// The memory-mapped GICv2 CPU interface (GICC), GICv2 architecture specification (IHI 0048B)
/// §4.4: what a GICv2 kernel reads and writes where a GICv3 one uses ICC_* system registers.
/// One 8 KiB frame serves every CPU; each CPU's access is banked by who issues it
/// (`Requester.cpu(n)`), as on hardware each processor sees its own interface at the same
/// address. A requester that is not a CPU reads 0 and its writes are ignored.
///
/// Registers (offsets from GICC base):
/// - GICC_CTLR (0x0000): Enable (bit 0) and EOImode (bit 9; the Non-secure EOImodeNS in a GIC
///   with one Security state). With Enable clear, GICC_IAR reads 1023 (§4.4.1).
/// - GICC_PMR (0x0004): the priority mask (§4.4.2).
/// - GICC_IAR (0x000C): acknowledge; INTID in [9:0], CPUID [12:10] = 0 for an SPI (§4.4.4).
/// - GICC_EOIR (0x0010): priority drop, and deactivation when EOImode = 0 (§4.4.5).
/// - GICC_IIDR (0x00FC): 0x0202143B, Arm GIC-400's reset value (CoreLink GIC-400 TRM, the
///   CPU interface register summary: ProductID 0x020, Architecture version 2, Implementer
///   0x43B, Arm); boards' published register dumps read the same.
/// - GICC_DIR (0x1000): deactivation when EOImode = 1 (§4.4.15).
/// Acknowledge and end of interrupt run the same CPU-interface logic as the GICv3 path
/// (`GICv3.acknowledge(cpu:)`), whose SPI selection follows GICD_ITARGETSR on a version-2 GIC.
public final class GICv2CPUInterface: MMIODevice {
    public enum Offset {
        public static let ctlr: UInt64 = 0x0000
        public static let pmr: UInt64 = 0x0004
        public static let iar: UInt64 = 0x000C
        public static let eoir: UInt64 = 0x0010
        public static let iidr: UInt64 = 0x00FC
        public static let dir: UInt64 = 0x1000
    }

    /// The frame's size (GICC_DIR at 0x1000 needs the second 4 KiB page).
    public static let frameSize: UInt64 = 0x2000
    public static let iidr: UInt32 = 0x0202_143B

    unowned(safe) let gic: GICv3
    /// GICC_CTLR per CPU interface.
    public private(set) var control: [UInt32]
    public var mmioName: String { "gicc" }

    init(gic: GICv3) {
        self.gic = gic
        control = Array(repeating: 0, count: gic.cpuInterfaces.count)
    }

    private func cpu(_ requester: Requester) -> Int? {
        guard case .cpu(let n) = requester, n >= 0, n < control.count else { return nil }
        return n
    }

    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        guard size == 4, offset & 3 == 0, let cpu = cpu(requester) else { return 0 }
        switch offset {
        case Offset.ctlr: return UInt64(control[cpu])
        case Offset.pmr: return UInt64(gic.cpuInterfaces[cpu].priorityMask)
        case Offset.iar:
            guard control[cpu] & 1 != 0 else { return UInt64(INTID.spurious.rawValue) }
            return UInt64(gic.acknowledge(cpu: cpu) & 0x3FF)
        case Offset.iidr: return UInt64(GICv2CPUInterface.iidr)
        default: return 0
        }
    }

    /// Puts each CPU interface's GICC_CTLR back (a hypervisor's restore of a saved vGICv2, KVM's
    /// KVM_DEV_ARM_VGIC_GRP_CPU_REGS): Enable and EOImode, as a write of the same value would.
    public func restoreControl(_ values: [UInt32]) {
        for (cpu, value) in values.enumerated() where cpu < control.count {
            control[cpu] = value & (1 | 1 << 9)
            gic.setEOIMode(cpu: cpu, value & (1 << 9) != 0)
        }
    }

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        guard size == 4, offset & 3 == 0, let cpu = cpu(requester) else { return }
        let v = UInt32(truncatingIfNeeded: value)
        switch offset {
        case Offset.ctlr:
            control[cpu] = v & (1 | 1 << 9)
            gic.setEOIMode(cpu: cpu, v & (1 << 9) != 0)
        case Offset.pmr: gic.setPriorityMask(cpu: cpu, UInt8(truncatingIfNeeded: v))
        case Offset.eoir: gic.endOfInterrupt(cpu: cpu, intid: v & 0x3FF)
        case Offset.dir: gic.deactivate(cpu: cpu, intid: v & 0x3FF)
        default: break
        }
    }
}

extension GICv3 {
    /// Maps a GICv2's memory-mapped CPU interface (GICC) at `base` on the attached bus.
    @discardableResult
    public func addGICv2CPUInterface(base: PhysicalAddress) throws(BusError) -> GICv2CPUInterface {
        guard let bus else { throw .deviceError(base, "GIC not attached to a bus") }
        let frame = GICv2CPUInterface(gic: self)
        try bus.addDevice(frame, base: base, size: GICv2CPUInterface.frameSize, name: "gicc")
        return frame
    }

    /// Creates a GICv2m MSI frame at `base` whose SPIs are `baseSPI` ..< `baseSPI` + `spiCount`
    /// (what its MSI_TYPER reports) and maps its 4 KiB on the attached bus.
    @discardableResult
    public func addV2mFrame(base: PhysicalAddress, baseSPI: UInt32, spiCount: UInt32,
                            iidr: UInt32 = GICv2mMSIFrame.qemuIIDR) throws(BusError) -> GICv2mMSIFrame {
        guard let bus else { throw .deviceError(base, "GIC not attached to a bus") }
        let frame = GICv2mMSIFrame(number: v2mFrames.count, distributor: distributor, baseSPI: baseSPI, spiCount: spiCount, iidr: iidr)
        try bus.addDevice(frame, base: base, size: GICv2mMSIFrame.frameSize, name: "v2m\(v2mFrames.count)")
        frame.base = base
        frame.trace = trace
        v2mFrames.append(frame)
        return frame
    }

    /// Maps only the distributor (a GICv2, which has no redistributors).
    public func attachDistributor(to bus: SystemBus, base: PhysicalAddress) throws(BusError) {
        try attach(to: bus, distributorBase: base, redistributorRegions: [], stride: nil)
    }
}

extension GICv2CPUInterface {
    /// Takes `other`'s control registers (a forked world's copy).
    func copyState(of other: GICv2CPUInterface) {
        control = other.control
    }
}
