import Bus

/// What happened to one incoming device transaction at the SMMU.
public enum SMMUResponse: Hashable, Sendable {
    /// Translated (or bypassed: then `output` equals the input address).
    case translated(TranslationResult)
    /// Terminated: a fault (recorded or not, per `fault.record` and the event queue), or an
    /// abort without a fault (GBPA.ABORT, STE.Config = abort). `abort` false means RAZ/WI
    /// (CD.A = 0, §5.5).
    case terminated(SMMUFault?, abort: Bool)
}

/// An SMMUv3 (IHI 0070) as a memory-mapped device: the Non-secure register file (pages 0 and 1,
/// §6), the command queue consumer (§4), the event queue producer (§7.2–7.4), global errors
/// (§7.5) and interrupts (§3.18), around the translator that walks the tables.
///
/// Modelling choices the architecture leaves open (each documented where it is implemented):
/// - **Synchronous updates.** A CR0 or IRQ_CTRL write takes effect during the write, so CR0ACK
///   and IRQ_CTRLACK equal the written (implemented) bits when software next reads them, and a
///   GBPA write with UPDATE = 1 completes at once (UPDATE reads 0).
/// - **Synchronous consumption.** Writing CMDQ_PROD with CMDQEN = 1 and no CMDQ_ERR active
///   consumes every command up to PROD before the write returns; so do setting CMDQEN and
///   acknowledging CMDQ_ERR in GERRORN (§7.1: "Software is not required to write CMDQ_PROD to
///   re-trigger command processing").
/// - **v3.2 register rules.** Writes to Guarded registers while their guard is set are IGNORED
///   (STRTAB_* and CR2 while SMMUEN = 1, CMDQ_BASE/CONS while CMDQEN = 1, EVENTQ_BASE/PROD while
///   EVENTQEN = 1, *_IRQ_CFG* while the IRQ is enabled, CR1 TABLE_*/QUEUE_* fields), and a GBPA
///   write without UPDATE = 1 is IGNORED (§6.3.14.1). AIDR reports v3.2 when IDR3.RIL = 1.
/// - **Terminate-only.** Nothing stalls, so STAG/Stall in event records are 0.
/// - Not modelled: PRI (its registers are plain storage), ATS, Secure/Realm interfaces, VATOS,
///   MPAM, DPT, ECMDQ, RAS, PMCG.
public final class SMMUv3: MMIODevice {
    public static let mmioSize: UInt64 = 0x2_0000

    /// The DeviceID an SMMU MSI carries when no other is configured: one above the 16-bit
    /// requester-ID space, so it collides with no PCI function on a platform whose StreamIDs and
    /// DeviceIDs are RIDs (IORT gives the SMMU node its own ID mapping; SMMUv3 §3.18, docs/hardware.md §SMMUv3 interrupts).
    public static let defaultMSIDeviceID = DeviceID(0x1_0000)

    public let mmioName = "smmuv3"
    public let configuration: SMMUConfiguration
    public let translator: SMMUTranslator
    /// Not owned, for the reason given on `SMMUTranslator.bus`.
    public unowned(safe) let bus: SystemBus
    /// The DeviceID sent as sideband with the SMMU's own MSIs (event queue, GERROR, CMD_SYNC):
    /// the ITS needs one to look up the SMMU's interrupt translation table.
    public var msiDeviceID: DeviceID
    /// SMMU_IIDR (§6.3.7): ProductID[31:20], Variant[19:16], Revision[15:12],
    /// Implementer[11:0] (JEP106). 0 by default, so Linux applies no implementation errata.
    public let iidr: UInt32

    /// The register file (shared with virtual SMMU front ends: `SMMURegisterFile`).
    public let registerFile: SMMURegisterFile
    /// The registers' state.
    public internal(set) var registers: SMMURegisterState {
        get { registerFile.state }
        set { registerFile.state = newValue }
    }
    /// Pulses on each wired interrupt output.
    public internal(set) var wiredInterrupts = SMMUWiredInterrupts()
    /// MSIs sent that the bus accepted.
    public internal(set) var messageInterrupts = SMMUMessageInterrupts()

    public init(configuration: SMMUConfiguration = .default, bus: SystemBus,
                msiDeviceID: DeviceID = SMMUv3.defaultMSIDeviceID, iidr: UInt32 = 0) {
        self.configuration = configuration
        self.bus = bus
        self.msiDeviceID = msiDeviceID
        self.iidr = iidr
        self.translator = SMMUTranslator(configuration: configuration, bus: bus)
        self.registerFile = SMMURegisterFile(configuration: configuration, iidr: iidr)
        translator.recordInvalidStreamIDs = false
        updateTranslatorStreamTable()
    }

    /// SMMUEN as the SMMU currently applies it.
    public var isEnabled: Bool { SMMUControl0(rawValue: registers.cr0ack).contains(.smmuEnable) }

    /// Processes one incoming transaction (§3.1):
    /// - SMMUEN = 0: GBPA.ABORT = 1 terminates it with an abort; otherwise it bypasses, output =
    ///   input (§6.3.9.6 SMMUEN, §6.3.14 GBPA). GBPA's attribute overrides do not change the
    ///   address and the model carries no memory attributes.
    /// - SMMUEN = 1: the translator decides. A fault is written to the event queue when
    ///   `fault.record` (CD.R / STE.S2R / configuration errors) and the queue is writable, then
    ///   the transaction is terminated per `fault.abort`. STE.Config = abort terminates silently.
    ///
    /// Allocates nothing unless an event is written or a trace is attached.
    public func handle(_ transaction: DeviceTransaction) -> SMMUResponse {
        guard isEnabled else {
            if registers.gbpa.bit(SMMURegisterField.gbpaAbortBit) {
                translator.journal?.append(.smmuAborted(input: transaction.address.rawValue))
                return .terminated(nil, abort: true)
            }
            translator.journal?.append(.smmuTranslated(input: transaction.address.rawValue, intermediate: nil,
                                                       output: transaction.address.rawValue, stage1: false, stage2: false))
            return .translated(TranslationResult(output: PhysicalAddress(transaction.address.rawValue),
                                                 pageSize: Granule.size4K.size, readable: true,
                                                 writable: true, fromTLB: false))
        }
        switch translator.translate(transaction) {
        case .translated(let result):
            return .translated(result)
        case .abortedWithoutEvent:
            return .terminated(nil, abort: true)
        case .fault(let fault):
            if fault.record {
                recordEvent(fault)
            }
            return .terminated(fault, abort: fault.abort)
        }
    }

    /// The physical-address mask of SMMU-originated accesses: IDR5.OAS bits (§3.4.3).
    var outputAddressMask: UInt64 { registerFile.outputAddressMask }

    /// Pushes STRTAB_BASE / STRTAB_BASE_CFG into the translator, decoded by
    /// `StreamTableConfiguration(strtabBase:strtabBaseCfg:on:)` (§6.3.24–25).
    func updateTranslatorStreamTable() {
        translator.streamTable = StreamTableConfiguration(strtabBase: registers.strtabBase,
                                                          strtabBaseCfg: registers.strtabBaseCfg,
                                                          on: configuration)
    }
}
