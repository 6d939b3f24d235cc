import Bus

/// The writable state of the SMMUv3 Non-secure register file (§6.3), as software last left it
/// and the SMMU last updated it. The ID registers are not here: they are constants computed
/// from `SMMUConfiguration` (§6.2 "All SMMU ID registers … hold constant values after reset").
///
/// Reset values: the spec leaves most fields UNKNOWN at reset (QUEUES_PRESET = TABLES_PRESET =
/// 0); this model resets every register to 0, except GBPA (below). CR0, CR0ACK, IRQ_CTRL,
/// IRQ_CTRLACK, GERROR and GERRORN reset to 0 as architected (§6.3.9–10, §6.3.17–20).
public struct SMMURegisterState: Hashable, Sendable {
    /// GBPA reset value: SHCFG = 0b01 ("use incoming"), ABORT = 0, UPDATE = 0 (§6.3.14: every
    /// field but UPDATE resets to an IMPLEMENTATION DEFINED value; this is QEMU's
    /// `SMMU_GBPA_RESET_VAL`). With ABORT = 0 a disabled SMMU lets traffic bypass, the
    /// default-allow policy; Linux's `disable_bypass` sets ABORT when it wants default-deny.
    public static let gbpaReset: UInt32 = 0x0000_1000

    public var cr0: UInt32 = 0
    public var cr0ack: UInt32 = 0
    public var cr1: UInt32 = 0
    public var cr2: UInt32 = 0
    public var gbpa: UInt32 = SMMURegisterState.gbpaReset
    public var agbpa: UInt32 = 0
    public var irqCtrl: UInt32 = 0
    public var irqCtrlAck: UInt32 = 0
    public var gerror: UInt32 = 0
    public var gerrorn: UInt32 = 0
    public var gerrorIRQCfg0: UInt64 = 0
    public var gerrorIRQCfg1: UInt32 = 0
    public var gerrorIRQCfg2: UInt32 = 0
    public var strtabBase: UInt64 = 0
    public var strtabBaseCfg: UInt32 = 0
    public var cmdqBase: UInt64 = 0
    public var cmdqProd: UInt32 = 0
    public var cmdqCons: UInt32 = 0
    public var eventqBase: UInt64 = 0
    public var eventqProd: UInt32 = 0
    public var eventqCons: UInt32 = 0
    public var eventqIRQCfg0: UInt64 = 0
    public var eventqIRQCfg1: UInt32 = 0
    public var eventqIRQCfg2: UInt32 = 0
    /// The PRI queue registers are plain storage: PRI is not modelled (IDR0.PRI = 0,
    /// IDR1.PRIQS = 0), so nothing ever reads or writes the queue they describe.
    public var priqBase: UInt64 = 0
    public var priqProd: UInt32 = 0
    public var priqCons: UInt32 = 0
    public var priqIRQCfg0: UInt64 = 0
    public var priqIRQCfg1: UInt32 = 0
    public var priqIRQCfg2: UInt32 = 0

    public init() {}

    /// CR0 as a typed set.
    public var control: SMMUControl0 { SMMUControl0(rawValue: cr0) }
    public var interruptControl: SMMUInterruptControl { SMMUInterruptControl(rawValue: irqCtrl) }

    /// Errors currently active: GERROR bits that differ from GERRORN (§7.5).
    public var activeErrors: SMMUGlobalErrors { SMMUGlobalErrors(rawValue: gerror ^ gerrorn) }

    /// CMDQ_CONS.ERR as a code; nil for a value §7.1 does not define (software may write ERR
    /// while CMDQEN = 0). Meaningful only while CMDQ_ERR is active (§6.3.28).
    public var commandError: CommandErrorCode? {
        CommandErrorCode(rawValue: SMMURegisterField.commandError(cmdqCons))
    }
}

/// Counts of pulses on the SMMU's wired interrupt outputs, one per source (§3.18; Linux
/// "eventq", "priq", "cmdq-sync", "gerror" lines; QEMU's four SPIs). Wired outputs are edges
/// with no pending state, so a count is everything a platform can observe.
public struct SMMUWiredInterrupts: Hashable, Sendable {
    public var eventQueue = 0
    public var priQueue = 0
    public var commandSync = 0
    public var globalError = 0
    public init() {}
}

/// Counts of the MSIs the SMMU sent (and that completed on the bus), per source.
public struct SMMUMessageInterrupts: Hashable, Sendable {
    public var eventQueue = 0
    public var commandSync = 0
    public var globalError = 0
    public init() {}
}
