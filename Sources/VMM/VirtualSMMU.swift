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

/// The guest-visible SMMUv3 register file of an accelerated vSMMU (QEMU `arm-smmuv3` with
/// `accel=on`): the MMIO device the VMM puts at the guest's SMMU address (0x0905_0000).
///
/// The guest owns its stream table, context descriptors and queues in guest memory; the vSMMU
/// never translates anything itself (the host SMMU does, nested), it only:
/// - advertises the ID registers of QEMU's emulated SMMUv3 with the accel overrides
///   (`AcceleratedSMMUv3Properties.identification`: not the host's, which QEMU 11.0 only
///   checks),
/// - acknowledges CR0/IRQ_CTRL/GBPA updates at once,
/// - on a CMDQ_PROD write, reads the guest's commands from guest memory between CONS and PROD
///   (§3.5 queue indices with the wrap bit above LOG2SIZE), decodes them with `Command.decode`,
///   hands them to the backend and completes CMD_SYNC (CS=SIG_IRQ: the 32-bit MSIData written to
///   MSIAddress, §4.7.3 — the guest's MSI-poll completion);
/// - appends event records to the guest's event queue (`record(_:)`, the vEVENTQ path).
///
/// Guest-memory accesses go through the guest bus as `.hardware` (the vSMMU is the one reading).
public final class VirtualSMMU: MMIODevice {
    public let mmioName: String
    unowned(safe) let guestBus: SystemBus
    public weak var backend: (any VirtualSMMUBackend)?
    /// Called when CR0.SMMUEN changes: the effective configuration of every stream changes
    /// (STEs when enabled, GBPA when not), so an accelerated VMM re-installs its vSTEs.
    public var onTranslationEnableChange: ((VirtualSMMU) -> Void)?
    public let identification: SMMUConfiguration

    // Register state (§6.3).
    public private(set) var cr0: UInt32 = 0
    public private(set) var cr0ack: UInt32 = 0
    public private(set) var cr1: UInt32 = 0
    public private(set) var cr2: UInt32 = 0
    /// GBPA reset value: ABORT = 0 (bypass while SMMUEN = 0), as QEMU's `smmuv3_reset`; the
    /// architecture leaves the reset value IMPLEMENTATION DEFINED (§6.3.14).
    public private(set) var gbpa: UInt32 = 0
    public private(set) var irqCtrl: UInt32 = 0
    public private(set) var gerror: UInt32 = 0
    public private(set) var gerrorn: UInt32 = 0
    public private(set) var strtabBase: UInt64 = 0
    public private(set) var strtabBaseCfg: UInt32 = 0
    public private(set) var cmdqBase: UInt64 = 0
    public private(set) var cmdqProd: UInt32 = 0
    public private(set) var cmdqCons: UInt32 = 0
    public private(set) var eventqBase: UInt64 = 0
    public private(set) var eventqProd: UInt32 = 0
    public private(set) var eventqCons: UInt32 = 0
    var irqCfg: [UInt64: UInt64] = [:]

    /// Every command consumed, in order (CMD_SYNC included), for reports and tests.
    public private(set) var consumedCommands: [Command] = []
    /// Event records written into the guest's event queue, and those lost to a full queue.
    public private(set) var recordedEvents = 0
    public private(set) var droppedEvents = 0

    public init(name: String = "vsmmu", guestBus: SystemBus, identification: SMMUConfiguration) {
        self.mmioName = name
        self.guestBus = guestBus
        self.identification = identification
    }

    // MARK: MMIO

    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        typealias R = SMMURegisterOffset
        // A 64-bit register read as a whole or by halves (§6.2); 32-bit registers are 32-bit.
        let base = offset & ~7
        if R.isSixtyFourBit(base) {
            guard let whole = register64(base) else { return 0 }
            if size == 8, offset == base { return whole }
            if size == 4 { return offset == base ? whole & 0xFFFF_FFFF : whole >> 32 }
            throw .badAccess(PhysicalAddress(offset), size: size)
        }
        guard size == 4, offset & 3 == 0 else { throw .badAccess(PhysicalAddress(offset), size: size) }
        return UInt64(register32(offset))
    }

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        typealias R = SMMURegisterOffset
        let base = offset & ~7
        if R.isSixtyFourBit(base) {
            let old = register64(base) ?? 0
            let new: UInt64
            if size == 8, offset == base { new = value }
            else if size == 4, offset == base { new = (old & ~0xFFFF_FFFF) | (value & 0xFFFF_FFFF) }
            else if size == 4 { new = (old & 0xFFFF_FFFF) | (value << 32) }
            else { throw .badAccess(PhysicalAddress(offset), size: size) }
            setRegister64(base, new)
            return
        }
        guard size == 4, offset & 3 == 0 else { throw .badAccess(PhysicalAddress(offset), size: size) }
        setRegister32(offset, UInt32(truncatingIfNeeded: value))
    }

    func register64(_ offset: UInt64) -> UInt64? {
        typealias R = SMMURegisterOffset
        switch offset {
        case R.strtabBase: return strtabBase
        case R.cmdqBase: return cmdqBase
        case R.eventqBase: return eventqBase
        case R.gerrorIRQCfg0, R.eventqIRQCfg0, R.priqIRQCfg0: return irqCfg[offset] ?? 0
        case R.priqBase: return 0
        default: return nil
        }
    }

    func setRegister64(_ offset: UInt64, _ value: UInt64) {
        typealias R = SMMURegisterOffset
        switch offset {
        // STRTAB_BASE: RA[62], ADDR[55:6] (§6.3.24).
        case R.strtabBase: strtabBase = value & (UInt64(1) << 62 | UInt64.lowMask(56) & ~0x3F)
        // *Q_BASE: RA[62], ADDR[55:5], LOG2SIZE[4:0] (§6.3.26).
        case R.cmdqBase: cmdqBase = value & (UInt64(1) << 62 | UInt64.lowMask(56) & ~0x1F | 0x1F)
        case R.eventqBase: eventqBase = value & (UInt64(1) << 62 | UInt64.lowMask(56) & ~0x1F | 0x1F)
        // *_IRQ_CFG0: ADDR[55:2] (§6.3.21).
        case R.gerrorIRQCfg0, R.eventqIRQCfg0: irqCfg[offset] = value.keepingBits(55, 2)
        default: break
        }
    }

    func register32(_ offset: UInt64) -> UInt32 {
        typealias R = SMMURegisterOffset
        let id = identification
        switch offset {
        case R.idr0: return id.idr0
        case R.idr1: return id.idr1
        case R.idr2: return id.idr2
        case R.idr3: return id.idr3
        case R.idr4: return id.idr4
        case R.idr5: return id.idr5
        // IIDR is 0 (the default case: QEMU never sets `s->iidr`); AIDR as identified (QEMU:
        // SMMUv3.1, ArchMinorRev 1).
        case R.aidr: return id.aidr
        case R.cr0: return cr0
        case R.cr0ack: return cr0ack
        case R.cr1: return cr1
        case R.cr2: return cr2
        case R.gbpa: return gbpa
        case R.irqCtrl, R.irqCtrlAck: return irqCtrl
        case R.gerror: return gerror
        case R.gerrorn: return gerrorn
        case R.strtabBaseCfg: return strtabBaseCfg
        // Index fields are as wide as the current LOG2SIZE (+1 wrap bit): a guest that shrinks
        // the queue after writing an index sees only the bits that still exist (§6.3.27/28).
        case R.cmdqProd: return cmdqProd & queueIndexMask(cmdqBase, max: identification.commandQueueMaxLog2)
        case R.cmdqCons: return cmdqCons & (queueIndexMask(cmdqBase, max: identification.commandQueueMaxLog2) | 0x7F << 24)
        case R.eventqProd, R.eventqProdPage0Alias: return eventqProd
        case R.eventqCons, R.eventqConsPage0Alias: return eventqCons
        case R.gerrorIRQCfg1, R.gerrorIRQCfg2, R.eventqIRQCfg1, R.eventqIRQCfg2:
            return UInt32(truncatingIfNeeded: irqCfg[offset] ?? 0)
        default: return 0   // RAZ/WI: unimplemented or Secure registers
        }
    }

    func setRegister32(_ offset: UInt64, _ value: UInt32) {
        typealias R = SMMURegisterOffset
        switch offset {
        case R.cr0:
            // SMMUEN, EVENTQEN, CMDQEN stored (no PRI/ATS/VMW); acknowledged at once (§6.3.10).
            let wasEnabled = cr0 & 1 != 0
            cr0 = value & SMMUControl0.implemented.rawValue
            cr0ack = cr0
            if cr0 & SMMUControl0.commandQueueEnable.rawValue != 0 { processCommandQueue() }
            if wasEnabled != (cr0 & 1 != 0) { onTranslationEnableChange?(self) }
        case R.cr1: cr1 = value & 0xFFF
        case R.cr2: cr2 = value & 0x7
        case R.gbpa:
            // UPDATE[31] set: the other fields take effect and UPDATE clears (§6.3.14); a
            // write without UPDATE is ignored.
            if value & (1 << 31) != 0 { gbpa = value & ~(1 << 31) }
        case R.irqCtrl: irqCtrl = value & SMMUInterruptControl.implemented.rawValue
        case R.gerrorn: gerrorn = value & SMMUGlobalErrors.implemented(msi: true).rawValue
        case R.strtabBaseCfg: strtabBaseCfg = value & (0x3 << 16 | 0x1F << 6 | 0x3F)
        case R.cmdqProd:
            cmdqProd = value & queueIndexMask(cmdqBase, max: identification.commandQueueMaxLog2)
            processCommandQueue()
        case R.cmdqCons: cmdqCons = value & queueIndexMask(cmdqBase, max: identification.commandQueueMaxLog2)
        case R.eventqProd, R.eventqProdPage0Alias:
            eventqProd = value & (queueIndexMask(eventqBase, max: identification.eventQueueMaxLog2) | 1 << 31)
        case R.eventqCons, R.eventqConsPage0Alias:
            eventqCons = value & (queueIndexMask(eventqBase, max: identification.eventQueueMaxLog2) | 1 << 31)
        case R.gerrorIRQCfg1, R.gerrorIRQCfg2, R.eventqIRQCfg1, R.eventqIRQCfg2:
            irqCfg[offset] = UInt64(value)
        default: break
        }
    }

    /// Queue geometry: LOG2SIZE capped at the advertised maximum (§6.3.26: a larger value
    /// behaves as the maximum), index bits [log2-1:0] plus the wrap bit [log2].
    func queueLog2(_ base: UInt64, max: Int) -> Int { Swift.min(SMMURegisterField.queueLog2Size(base), max) }
    func queueIndexMask(_ base: UInt64, max: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: (UInt64(1) << UInt64(queueLog2(base, max: max) + 1)) &- 1)
    }

    // MARK: Command queue

    var commandErrorActive: Bool { (gerror ^ gerrorn) & SMMUGlobalErrors.commandQueue.rawValue != 0 }
    var processing = false

    /// Consumes commands while CMDQEN is acknowledged and no CMDQ_ERR is active (§7.1: the queue
    /// stops at the faulting command, CONS pointing at it).
    func processCommandQueue() {
        guard !processing, cr0ack & SMMUControl0.commandQueueEnable.rawValue != 0, !commandErrorActive else { return }
        processing = true
        defer { processing = false }
        let log2 = queueLog2(cmdqBase, max: identification.commandQueueMaxLog2)
        let entries = UInt32(1) << UInt32(log2)
        let indexMask = (entries << 1) &- 1
        var cons = cmdqCons & indexMask
        let base = SMMURegisterField.queueAddress(cmdqBase)
        while cons != cmdqProd & indexMask {
            let slot = base &+ UInt64(cons & (entries &- 1)) &* 16
            let error = executeSlot(at: slot)
            if error != .none {
                cmdqCons = (cons & indexMask) | UInt32(error.rawValue) << 24
                gerror ^= SMMUGlobalErrors.commandQueue.rawValue
                return
            }
            cons = (cons &+ 1) & indexMask
            cmdqCons = cons
        }
    }

    func executeSlot(at slot: UInt64) -> CommandErrorCode {
        let w0: UInt64, w1: UInt64
        do {
            w0 = try guestBus.read(PhysicalAddress(slot), size: 8, requester: .hardware)
            w1 = try guestBus.read(PhysicalAddress(slot | 8), size: 8, requester: .hardware)
        } catch { return .abort }
        switch Command.decode(w0, w1) {
        case .failure: return .illegal
        case .success(let command):
            if case .sync(let sync) = command {
                if sync.completionSignal == .interrupt {
                    // The MSI write of a CMD_SYNC: MSIData (32 bits) to MSIAddress (§4.7.3).
                    try? guestBus.write(PhysicalAddress(sync.msiAddress), size: 4, value: UInt64(sync.msiData), requester: .hardware)
                }
                consumedCommands.append(command)
                return .none
            }
            let error = backend?.execute(command, from: self) ?? .none
            if error == .none { consumedCommands.append(command) }
            return error
        }
    }

    // MARK: Guest stream table

    /// SMMUEN as acknowledged.
    public var translationEnabled: Bool { cr0ack & SMMUControl0.smmuEnable.rawValue != 0 }
    /// GBPA.ABORT: with SMMUEN = 0, incoming transactions abort (1) or bypass (0) (§6.3.14).
    public var bypassAborts: Bool { gbpa.bit(20) }

    /// Why a guest STE could not be fetched (the events the hardware would record: §7.3
    /// C_BAD_STREAMID, F_STE_FETCH).
    public enum FetchError: Error, Hashable, Sendable {
        case streamIDOutOfRange(StreamID)
        case invalidL1Descriptor(StreamID)
        case fetchAbort(UInt64)
    }

    /// The guest's STE for `sid`, read from the guest stream table (§3.3: linear, or 2-level
    /// with L1STD.L2Ptr[55:6] and Span[4:0], 2^(Span-1) STEs per L2 table).
    public func guestStreamTableEntry(_ sid: StreamID) throws(FetchError) -> StreamTableEntry {
        let cfg = strtabBaseCfg
        let log2 = SMMURegisterField.streamTableLog2Size(cfg)
        let id = UInt64(sid.rawValue)
        guard log2 < 64, id >> UInt64(log2) == 0 else { throw .streamIDOutOfRange(sid) }
        let base = SMMURegisterField.streamTableAddress(strtabBase)
        let steAddress: UInt64
        if SMMURegisterField.streamTableFormat(cfg) == 1 {
            let split = UInt64(SMMURegisterField.streamTableSplit(cfg))
            let l1 = base &+ (id >> split) &* 8
            let desc: UInt64
            do { desc = try guestBus.read(PhysicalAddress(l1), size: 8, requester: .hardware) } catch { throw .fetchAbort(l1) }
            let span = desc.bits(4, 0)
            let index = id & ((UInt64(1) << split) &- 1)
            guard span != 0, span <= split &+ 1, index >> (span &- 1) == 0 else { throw .invalidL1Descriptor(sid) }
            steAddress = desc.keepingBits(55, 6) &+ index &* 64
        } else {
            steAddress = base &+ id &* 64
        }
        do {
            let words = try guestBus.readWords(PhysicalAddress(steAddress), count: 8)
            return StreamTableEntry(words: words)
        } catch { throw .fetchAbort(steAddress) }
    }

    // MARK: Event queue

    /// Writes one event record into the guest's event queue (§7.4). Dropped (counted) while
    /// EVENTQEN is off or the queue is full; a full queue sets EVENTQ_PROD.OVFLG by toggling it
    /// (§7.4.1: overflow is signalled when OVFLG differs from CONS.OVACKFLG).
    @discardableResult
    public func record(_ event: EventRecord) -> Bool {
        guard cr0ack & SMMUControl0.eventQueueEnable.rawValue != 0 else { droppedEvents += 1; return false }
        let log2 = queueLog2(eventqBase, max: identification.eventQueueMaxLog2)
        let entries = UInt32(1) << UInt32(log2)
        let indexMask = (entries << 1) &- 1
        let prod = eventqProd & indexMask, cons = eventqCons & indexMask
        let full = (prod & (entries &- 1)) == (cons & (entries &- 1)) && prod != cons
        if full {
            eventqProd ^= 1 << 31
            droppedEvents += 1
            return false
        }
        let slot = SMMURegisterField.queueAddress(eventqBase) &+ UInt64(prod & (entries &- 1)) &* 32
        do { try guestBus.writeWords(PhysicalAddress(slot), event.words) } catch {
            gerror ^= SMMUGlobalErrors.eventQueueAbort.rawValue
            droppedEvents += 1
            return false
        }
        eventqProd = (eventqProd & (1 << 31)) | ((prod &+ 1) & indexMask)
        recordedEvents += 1
        return true
    }
}
