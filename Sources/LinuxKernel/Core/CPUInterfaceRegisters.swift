import GIC

/// The GIC CPU interface as the kernel reaches it: system registers (ICC_IAR1_EL1,
/// ICC_EOIR1_EL1, ICC_DIR_EL1, ICC_PMR_EL1, ICC_CTLR_EL1), not MMIO. On the host they are the physical GIC's; for a guest,
/// KVM's virtual CPU interface provides them.
public protocol CPUInterfaceRegisters: AnyObject {
    var cpuCount: Int { get }
    /// MRS ICC_IAR1_EL1: acknowledge the highest-priority pending interrupt (1023 if none).
    func readIAR1(cpu: Int) -> UInt32
    /// MSR ICC_EOIR1_EL1.
    func writeEOIR1(cpu: Int, _ intid: UInt32)
    /// MSR ICC_PMR_EL1.
    func writePMR(cpu: Int, _ value: UInt8)
    /// MSR ICC_DIR_EL1: deactivate `intid` (meaningful with EOImode = 1).
    func writeDIR(cpu: Int, _ intid: UInt32)
    /// MSR ICC_CTLR_EL1 (only EOImode, bit 1, is modelled).
    func writeCTLR(cpu: Int, _ value: UInt64)
}

extension CPUInterfaceRegisters {
    /// ICC_CTLR_EL1.EOImode (bit 1): `ICC_CTLR_EL1_EOImode_drop` in arm-gic-v3.h.
    public static var eoiModeDrop: UInt64 { 1 << 1 }
}

extension GICv3: CPUInterfaceRegisters {
    public var cpuCount: Int { cpuInterfaces.count }
    public func readIAR1(cpu: Int) -> UInt32 { acknowledge(cpu: cpu) }
    public func writeEOIR1(cpu: Int, _ intid: UInt32) { endOfInterrupt(cpu: cpu, intid: intid) }
    public func writePMR(cpu: Int, _ value: UInt8) { setPriorityMask(cpu: cpu, value) }
    public func writeDIR(cpu: Int, _ intid: UInt32) { deactivate(cpu: cpu, intid: intid) }
    public func writeCTLR(cpu: Int, _ value: UInt64) { setEOIMode(cpu: cpu, value & GICv3.eoiModeDrop != 0) }
}
