import Bus

/// The GICv2 CPU interface as a GICv2 kernel (irq-gic.c) reaches it: memory-mapped GICC
/// registers, each CPU's access banked by the CPU issuing it (GICv2 architecture specification,
/// IHI 0048B §4.4). It stands behind the same `CPUInterfaceRegisters` calls the IRQ core makes
/// on a GICv3 (`gic_handle_irq`'s acknowledge/EOI, `gic_cpu_init`'s PMR and control):
/// ICC_IAR1_EL1 → GICC_IAR (0x0C), ICC_EOIR1_EL1 → GICC_EOIR (0x10), ICC_DIR_EL1 → GICC_DIR
/// (0x1000), ICC_PMR_EL1 → GICC_PMR (0x04), and ICC_CTLR_EL1.EOImode → GICC_CTLR with Enable
/// (bit 0) and EOImodeNS (bit 9), what `gic_cpu_if_up` writes.
public final class GICv2CPUInterfaceRegisters: CPUInterfaceRegisters {
    let bus: SystemBus
    let base: PhysicalAddress
    public let cpuCount: Int

    public init(bus: SystemBus, base: PhysicalAddress, cpuCount: Int) {
        self.bus = bus
        self.base = base
        self.cpuCount = max(1, cpuCount)
    }

    private func read(_ offset: UInt64, cpu: Int) -> UInt32 {
        guard let address = base.adding(offset), let value = try? bus.read(address, size: 4, requester: .cpu(cpu)) else { return 1023 }
        return UInt32(truncatingIfNeeded: value)
    }

    private func write(_ offset: UInt64, cpu: Int, _ value: UInt32) {
        guard let address = base.adding(offset) else { return }
        try? bus.write(address, size: 4, value: UInt64(value), requester: .cpu(cpu))
    }

    public func readIAR1(cpu: Int) -> UInt32 { read(0x0C, cpu: cpu) & 0x3FF }
    public func writeEOIR1(cpu: Int, _ intid: UInt32) { write(0x10, cpu: cpu, intid) }
    public func writePMR(cpu: Int, _ value: UInt8) { write(0x04, cpu: cpu, UInt32(value)) }
    public func writeDIR(cpu: Int, _ intid: UInt32) { write(0x1000, cpu: cpu, intid) }
    public func writeCTLR(cpu: Int, _ value: UInt64) {
        write(0x00, cpu: cpu, 1 | (value & Self.eoiModeDrop != 0 ? 1 << 9 : 0))
    }
}

/// A forked world's GICv2 CPU interface: the same GICC base and CPU count, on the copied bus.
extension GICv2CPUInterfaceRegisters: WorldCloneable {
    public func clone(into map: inout CloneMap) -> GICv2CPUInterfaceRegisters {
        GICv2CPUInterfaceRegisters(bus: map.clone(bus), base: base, cpuCount: cpuCount)
    }
}
