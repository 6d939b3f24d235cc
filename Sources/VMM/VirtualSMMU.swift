import Bus
import SMMUv3

/// What an accelerated vSMMU does with the guest's commands: the VMM's iommufd side (QEMU
/// `hw/arm/smmuv3-accel.c`). Everything but CMD_SYNC is handed over in queue order; CMD_SYNC is
/// completed by the register file itself once every earlier command has been handled.
public protocol VirtualSMMUBackend: AnyObject {
    /// Executes one guest command. Returns `.none` when consumed, or the CMDQ_CONS.ERR code that
    /// stops the queue (§7.1: CERROR_ILL for a command the vSMMU cannot honour).
    func execute(_ command: Command, from vsmmu: VirtualSMMU) -> CommandErrorCode
}

/// The guest-visible SMMUv3 of an accelerated vSMMU (QEMU `arm-smmuv3` with `accel=on`): the
/// MMIO device the VMM puts at the guest's SMMU address (0x0905_0000).
///
/// As QEMU's accelerated vSMMU reuses the emulated SMMU's register file, `smmu_find_ste` and
/// command consumer, this front end has no register, queue or stream-table arithmetic of its
/// own: it runs the hardware model's shared programming interface over guest memory —
/// `SMMURegisterFile` (registers, ID registers of `identification`, guards and field masks),
/// its `consumeCommands` and `produceEvent` (queue geometry, wrap arithmetic, entry
/// addressing, CERROR handling) and `StreamTableWalker` (STE fetch). Guest-memory accesses go
/// through the guest bus (the guest's IPA space) as `.hardware`.
///
/// The guest owns its stream table, context descriptors and queues in guest memory; the vSMMU
/// never translates anything itself (the host SMMU does, nested), it only:
/// - advertises the ID registers of QEMU's emulated SMMUv3 with the accel overrides
///   (`AcceleratedSMMUv3Properties.identification`: not the host's, which QEMU 11.0 only
///   checks),
/// - acknowledges CR0/IRQ_CTRL/GBPA updates at once,
/// - consumes the guest's commands: CMD_SYNC completes here, everything else goes to the
///   backend (iommufd), and a command the backend refuses stops the queue with its error;
/// - fetches the guest's STEs for the backend (`guestStreamTableEntry`, as
///   `smmuv3_accel_install_ste` calls `smmu_find_ste`);
/// - appends event records to the guest's event queue (`record(_:)`, the vEVENTQ path).
///
/// Where the shared code is more faithful than this front end's former private copy, the
/// vSMMU now behaves as the physical SMMU model does:
/// - GBPA resets to 0x1000 (SHCFG = 0b01, QEMU's `SMMU_GBPA_RESET_VAL`), not 0; ABORT is 0
///   either way.
/// - Guarded registers ignore writes while their guard is set (STRTAB_* and CR2 while
///   SMMUEN = 1, CMDQ_BASE/CONS while CMDQEN = 1, EVENTQ_BASE/PROD while EVENTQEN = 1); CR1's
///   fields follow their guards; CR2.E2H is RES0 (IDR0.HYP = 0).
/// - With IDR0.MSI = 0 (QEMU's vSMMU) the *_IRQ_CFG* registers are RES0 and a CMD_SYNC with
///   CS = SIG_IRQ writes no MSI (§4.7.3); GERRORN stores no MSI error bits.
/// - Other access sizes and unaligned accesses are RAZ/WI (§6.2 CONSTRAINED UNPREDICTABLE),
///   not a bus error; CMDQ_PROD keeps WR[19:0] (§6.3.27) and CMDQ_CONS keeps ERR on a write.
/// - Commands illegal on the advertised identity (`Command.illegality`: stage 2, EL2, ATS
///   without IDR0.ATS, Secure-only, Reserved range encodings) stop the queue with CERROR_ILL
///   before reaching the backend; CMDQ_ERR acknowledged in GERRORN resumes consumption (§7.1).
/// - Queue bases are aligned to the queue size (§6.3.26); a full event queue toggles OVFLG
///   only when no overflow is pending, and EVENTQ_ABT_ERR stops delivery (§7.4, §7.5).
/// - The STE fetch normalises SPLIT, rejects Span > 11, L1STD/STE addresses beyond the OAS,
///   aligns STRTAB_BASE and L2Ptr, and caps LOG2SIZE at SIDSIZE (`StreamTableWalker`).
public final class VirtualSMMU: MMIODevice {
    public let mmioName: String
    unowned(safe) let guestBus: SystemBus
    public weak var backend: (any VirtualSMMUBackend)?
    /// Called when CR0.SMMUEN changes: the effective configuration of every stream changes
    /// (STEs when enabled, GBPA when not), so an accelerated VMM re-installs its vSTEs.
    public var onTranslationEnableChange: ((VirtualSMMU) -> Void)?
    public let identification: SMMUConfiguration
    /// The register file, shared code with the physical SMMU.
    public let registerFile: SMMURegisterFile

    /// Every command consumed, in order (CMD_SYNC included), for reports and tests.
    public private(set) var consumedCommands: [Command] = []
    /// Event records written into the guest's event queue, and those lost (discarded, full
    /// queue or aborted write).
    public private(set) var recordedEvents = 0
    public private(set) var droppedEvents = 0

    public init(name: String = "vsmmu", guestBus: SystemBus, identification: SMMUConfiguration) {
        self.mmioName = name
        self.guestBus = guestBus
        self.identification = identification
        // IIDR is 0: QEMU never sets `s->iidr`.
        self.registerFile = SMMURegisterFile(configuration: identification, iidr: 0)
    }

    /// The vSMMU as `original` left it, on the forked world's guest bus with the copied
    /// register file (`VirtualSMMU+Clone.swift`). The backend and the SMMUEN callback are the
    /// VMM's to install.
    init(copying original: VirtualSMMU, guestBus: SystemBus, registerFile: SMMURegisterFile) {
        mmioName = original.mmioName
        self.guestBus = guestBus
        identification = original.identification
        self.registerFile = registerFile
        consumedCommands = original.consumedCommands
        recordedEvents = original.recordedEvents
        droppedEvents = original.droppedEvents
    }

    /// The registers' state.
    public var registers: SMMURegisterState { registerFile.state }

    // MARK: MMIO

    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        registerFile.read(offset: offset, size: size)
    }

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        let effects = registerFile.write(offset: offset, size: size, value: value)
        if effects.contains(.commandQueue) { processCommandQueue() }
        if effects.contains(.translationEnable) { onTranslationEnableChange?(self) }
    }

    // MARK: Command queue

    /// A 64-bit read of guest memory by the vSMMU.
    func readGuest(_ address: UInt64) throws(BusError) -> UInt64 {
        try guestBus.read(PhysicalAddress(address), size: 8, requester: .hardware)
    }

    /// QEMU `smmuv3_cmdq_consume` with accel: the shared consumer reads, decodes and checks
    /// each command; CMD_SYNC completes here (every earlier command has been handled, and with
    /// IDR0.MSI = 0 there is no MSI to write), every other command goes to the backend. A
    /// refused command stops the queue with its code, CONS on it (§7.1).
    func processCommandQueue() {
        registerFile.consumeCommands(read: readGuest) { entry in
            let command = entry.command
            if case .sync(let sync) = command {
                if let msi = registerFile.commandSyncMSI(sync) {
                    try? guestBus.write(PhysicalAddress(msi.address), size: 4, value: UInt64(msi.data), requester: .hardware)
                }
                consumedCommands.append(command)
                return nil
            }
            switch backend?.execute(command, from: self) ?? .none {
            case .none:
                consumedCommands.append(command)
                return nil
            case .abort:
                return .fetchAbort(PhysicalAddress(entry.slot))
            case .illegal, .atcInvalidationSync:
                return .illegal(opcode: command.opcode.rawValue, reason: "refused by the host (iommufd)")
            }
        }
    }

    // MARK: Guest stream table

    /// SMMUEN as acknowledged.
    public var translationEnabled: Bool { SMMUControl0(rawValue: registers.cr0ack).contains(.smmuEnable) }
    /// GBPA.ABORT: with SMMUEN = 0, incoming transactions abort (1) or bypass (0) (§6.3.14).
    public var bypassAborts: Bool { registers.gbpa.bit(SMMURegisterField.gbpaAbortBit) }

    /// Why a guest STE could not be fetched: the walk's error, whose `eventType` is the event
    /// the hardware would record (§7.3 C_BAD_STREAMID, F_STE_FETCH).
    public typealias FetchError = StreamTableWalkError

    /// The guest's STE for `sid`, read from the guest stream table by the shared
    /// `StreamTableWalker` over guest memory (QEMU `smmu_find_ste`). The STE is returned as
    /// found, not validated (QEMU's accel path installs it without `decode_ste`).
    public func guestStreamTableEntry(_ sid: StreamID) throws(FetchError) -> StreamTableEntry {
        try StreamTableWalker(registers: registers, configuration: identification).fetch(sid, read: readGuest).entry
    }

    // MARK: Event queue

    /// Writes one event record into the guest's event queue (`SMMURegisterFile.produceEvent`,
    /// §7.4, QEMU `smmuv3_propagate_event`). Returns whether it was written; otherwise it is
    /// counted as dropped (EVENTQEN off, full queue — OVFLG toggled when no overflow is
    /// pending — or an aborted write, which activates EVENTQ_ABT_ERR).
    @discardableResult
    public func record(_ event: EventRecord) -> Bool {
        let outcome = registerFile.produceEvent(event) { (address, word) throws(BusError) in
            try guestBus.write(PhysicalAddress(address), size: 8, value: word, requester: .hardware)
        }
        if outcome.isWritten { recordedEvents += 1 } else { droppedEvents += 1 }
        return outcome.isWritten
    }
}
