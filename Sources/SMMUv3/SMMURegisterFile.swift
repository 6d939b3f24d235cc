import Bus

/// What a register write asks of the SMMU that owns the register file: the register file itself
/// only stores (with the guards and field masks of §6.3); the owner reacts.
public struct SMMURegisterWriteEffects: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// STRTAB_BASE or STRTAB_BASE_CFG took a new value (§6.3.24–25).
    public static let streamTable = SMMURegisterWriteEffects(rawValue: 1 << 0)
    /// Command consumption may start or resume: CMDQ_PROD written, CMDQEN set, or CMDQ_ERR
    /// acknowledged in GERRORN (§6.3.9.3, §6.3.28, §7.1).
    public static let commandQueue = SMMURegisterWriteEffects(rawValue: 1 << 1)
    /// CR0.SMMUEN changed: every stream's effective configuration changes (§6.3.9.6).
    public static let translationEnable = SMMURegisterWriteEffects(rawValue: 1 << 2)
    /// CR2 took a new value (RECINVSID, E2H; §6.3.12).
    public static let control2 = SMMURegisterWriteEffects(rawValue: 1 << 3)
}

/// The SMMUv3 Non-secure register file (§6.2, §6.3) as a programming interface shared by every
/// front end that presents one: the physical `SMMUv3` and a VMM's virtual SMMU, as QEMU's
/// accelerated vSMMU (`hw/arm/smmuv3-accel.c`) reuses the emulated SMMU's `smmu_readl`/
/// `smmu_writel` register file. It holds `SMMURegisterState`, answers MMIO reads and writes with
/// the ID registers of its `SMMUConfiguration`, and reports what a write asks of its owner
/// (`SMMURegisterWriteEffects`). The queue consumer/producer (`consumeCommands`, `produceEvent`)
/// and global-error activation live here too; memory is reached only through closures, so a
/// virtual SMMU runs them over guest memory.
///
/// Access sizes (§6.2): aligned 32-bit accesses to 32-bit registers and to either half of a
/// 64-bit register, and aligned 64-bit accesses to 64-bit registers, are supported. The
/// CONSTRAINED UNPREDICTABLE cases are resolved as follows:
/// - an aligned 64-bit access to two adjacent 32-bit registers behaves as two 32-bit accesses,
///   the lower address first;
/// - any other size or an unaligned access is RAZ/WI.
/// Undefined locations in page 0 are RES0 (RAZ/WI); undefined locations in page 1 are RES0 too
/// (the spec also allows aliasing page 0; this model does not). The page-0 offsets of the
/// page-1 registers (0xA8/0xAC, 0xC8/0xCC) alias them (§6.2.1 "Optional alias").
///
/// A reference type on purpose: executing a command may write this register file again (a
/// CMD_SYNC MSI aimed at CMDQ_PROD), which must see and change the same state.
public final class SMMURegisterFile {
    public let configuration: SMMUConfiguration
    /// SMMU_IIDR (§6.3.7): ProductID[31:20], Variant[19:16], Revision[15:12], Implementer[11:0].
    public let iidr: UInt32
    /// The registers as software last left them and the SMMU last updated them.
    public internal(set) var state: SMMURegisterState
    /// Re-entrancy guard for command consumption (see `consumeCommands`).
    var consumingCommands = false

    public init(configuration: SMMUConfiguration, iidr: UInt32 = 0, state: SMMURegisterState = SMMURegisterState()) {
        self.configuration = configuration
        self.iidr = iidr
        self.state = state
    }

    /// SMMU_AIDR (§6.3.8), as the configuration advertises it.
    public var aidr: UInt32 { configuration.aidr }

    /// The physical-address mask of SMMU-originated accesses: IDR5.OAS bits (§3.4.3).
    public var outputAddressMask: UInt64 { .lowMask(configuration.outputAddressSize.bits) }

    // MARK: - MMIO

    public func read(offset: UInt64, size: Int) -> UInt64 {
        switch size {
        case 4 where offset & 3 == 0:
            return UInt64(read32(offset))
        case 8 where offset & 7 == 0:
            if SMMURegisterOffset.isSixtyFourBit(offset) { return read64(offset) }
            return UInt64(read32(offset)) | (UInt64(read32(offset &+ 4)) << 32)
        default:
            return 0
        }
    }

    @discardableResult
    public func write(offset: UInt64, size: Int, value: UInt64) -> SMMURegisterWriteEffects {
        switch size {
        case 4 where offset & 3 == 0:
            return write32(offset, UInt32(truncatingIfNeeded: value))
        case 8 where offset & 7 == 0:
            if SMMURegisterOffset.isSixtyFourBit(offset) {
                return write64(offset, value)
            }
            return write32(offset, UInt32(truncatingIfNeeded: value))
                .union(write32(offset &+ 4, UInt32(truncatingIfNeeded: value >> 32)))
        default:
            return []
        }
    }

    // MARK: - Reads

    /// The 64-bit registers, whole.
    func read64(_ offset: UInt64) -> UInt64 {
        typealias R = SMMURegisterOffset
        switch offset {
        case R.gerrorIRQCfg0: return configuration.msi ? state.gerrorIRQCfg0 : 0
        case R.strtabBase: return state.strtabBase
        case R.cmdqBase: return state.cmdqBase
        case R.eventqBase: return state.eventqBase
        case R.eventqIRQCfg0: return configuration.msi ? state.eventqIRQCfg0 : 0
        case R.priqBase: return state.priqBase
        case R.priqIRQCfg0: return state.priqIRQCfg0
        default: return 0
        }
    }

    /// One aligned 32-bit register or 32-bit half.
    func read32(_ offset: UInt64) -> UInt32 {
        typealias R = SMMURegisterOffset
        if SMMURegisterOffset.isSixtyFourBit(offset) {
            return UInt32(truncatingIfNeeded: read64(offset))
        }
        if offset >= 4, SMMURegisterOffset.isSixtyFourBit(offset &- 4) {
            return UInt32(truncatingIfNeeded: read64(offset &- 4) >> 32)
        }
        let msi = configuration.msi
        switch offset {
        case R.idr0: return configuration.idr0
        case R.idr1: return configuration.idr1
        case R.idr2: return configuration.idr2
        case R.idr3: return configuration.idr3
        case R.idr4: return configuration.idr4
        case R.idr5: return configuration.idr5
        case R.iidr: return iidr
        case R.aidr: return aidr
        case R.cr0: return state.cr0
        case R.cr0ack: return state.cr0ack
        case R.cr1: return state.cr1
        case R.cr2: return state.cr2
        case R.statusr: return 0   // DORMANT = 0: the model never sleeps
        case R.gbpa: return state.gbpa
        case R.agbpa: return state.agbpa
        case R.irqCtrl: return state.irqCtrl
        case R.irqCtrlAck: return state.irqCtrlAck
        case R.gerror: return state.gerror
        case R.gerrorn: return state.gerrorn
        case R.gerrorIRQCfg1: return msi ? state.gerrorIRQCfg1 : 0
        case R.gerrorIRQCfg2: return msi ? state.gerrorIRQCfg2 : 0
        case R.strtabBaseCfg: return state.strtabBaseCfg
        case R.cmdqProd: return state.cmdqProd
        case R.cmdqCons:
            // RD bits above the wrap flag of the current size are RAZ (§6.3.28), also after
            // a CMDQ_BASE write shrank the queue.
            return (state.cmdqCons & 0x7F00_0000) | (state.cmdqCons & commandQueueGeometry.pointerMask)
        case R.eventqProd, R.eventqProdPage0Alias: return state.eventqProd
        case R.eventqCons, R.eventqConsPage0Alias: return state.eventqCons
        case R.eventqIRQCfg1: return msi ? state.eventqIRQCfg1 : 0
        case R.eventqIRQCfg2: return msi ? state.eventqIRQCfg2 : 0
        case R.priqProd, R.priqProdPage0Alias: return state.priqProd
        case R.priqCons, R.priqConsPage0Alias: return state.priqCons
        case R.priqIRQCfg1: return state.priqIRQCfg1
        case R.priqIRQCfg2: return state.priqIRQCfg2
        case R.pidr0, R.pidr1, R.pidr2, R.pidr3, R.pidr4, R.cidr0, R.cidr1, R.cidr2, R.cidr3:
            return identificationRegister(offset)
        default: return 0
        }
    }

    /// The ID_REGS block (0xFD0–0xFFC), IMPLEMENTATION DEFINED (§6.2.1). The model uses the
    /// CoreSight/PrimeCell layout Arm's SMMUs use, derived from IIDR: PIDR0 = PART[7:0],
    /// PIDR1 = PART[11:8] | DES_0 (JEP106 id [3:0]) << 4, PIDR2 = DES_1 (JEP106 id [6:4]) |
    /// JEDEC (1) << 3 | REVISION (Variant) << 4, PIDR3 = REVAND (Revision) << 4, PIDR4 = DES_2
    /// (JEP106 continuation); CIDR0–3 = 0x0D, 0xF0, 0x05, 0xB1. The exact SMMU layout is **not
    /// verified** against a primary source (the spec leaves it IMPLEMENTATION DEFINED).
    func identificationRegister(_ offset: UInt64) -> UInt32 {
        typealias R = SMMURegisterOffset
        let part = iidr.bits(31, 20)
        let implementer = iidr.bits(11, 0)
        switch offset {
        case R.pidr0: return part & 0xFF
        case R.pidr1: return part.bits(11, 8) | (implementer.bits(3, 0) << 4)
        case R.pidr2: return implementer.bits(6, 4) | (1 << 3) | (iidr.bits(19, 16) << 4)
        case R.pidr3: return iidr.bits(15, 12) << 4
        case R.pidr4: return implementer.bits(11, 8)
        case R.cidr0: return 0x0D
        case R.cidr1: return 0xF0
        case R.cidr2: return 0x05
        case R.cidr3: return 0xB1
        default: return 0
        }
    }

    // MARK: - Writes

    /// A 32-bit write. A half of a 64-bit register is merged into the whole and written as one.
    func write32(_ offset: UInt64, _ value: UInt32) -> SMMURegisterWriteEffects {
        typealias R = SMMURegisterOffset
        if SMMURegisterOffset.isSixtyFourBit(offset) {
            return write64(offset, (read64Stored(offset) & ~0xFFFF_FFFF) | UInt64(value))
        }
        if offset >= 4, SMMURegisterOffset.isSixtyFourBit(offset &- 4) {
            return write64(offset &- 4, (read64Stored(offset &- 4) & 0xFFFF_FFFF) | (UInt64(value) << 32))
        }
        let c = state.control
        let msi = configuration.msi
        let irqs = state.interruptControl
        switch offset {
        case R.cr0:
            return writeCR0(value)
        case R.cr1:
            // TABLE_*[11:6] guarded by SMMUEN; QUEUE_*[5:0] by CMDQEN/EVENTQEN/PRIQEN (§6.3.11).
            var cr1 = state.cr1
            if !c.contains(.smmuEnable) { cr1 = cr1.settingBits(11, 6, to: value.bits(11, 6)) }
            if c.isDisjoint(with: [.commandQueueEnable, .eventQueueEnable]) { cr1 = cr1.settingBits(5, 0, to: value.bits(5, 0)) }
            state.cr1 = cr1
        case R.cr2:
            // RO while SMMUEN = 1 (§6.3.12). RECINVSID[1]; E2H[0] only with IDR0.HYP; PTM[2]
            // and REC_CFG_ATS[3] are RES0 (IDR0.BTM = IDR0.ATSRECERR = 0).
            guard !c.contains(.smmuEnable) else { return [] }
            let mask: UInt32 = configuration.hyp ? 0b11 : 0b10
            state.cr2 = value & mask
            return .control2
        case R.gbpa:
            // §6.3.14.1: only a write with UPDATE = 1 takes effect (v3.2: a write without it is
            // IGNORED). The update completes immediately, so UPDATE reads back 0. Stored fields:
            // ABORT[20], INSTCFG[19:18], PRIVCFG[17:16], SHCFG[13:12], ALLOCCFG[11:8], MTCFG[4],
            // MemAttr[3:0].
            guard value.bit(SMMURegisterField.gbpaUpdateBit) else { return [] }
            state.gbpa = value & 0x001F_3F1F
        case R.agbpa:
            state.agbpa = value   // IMPLEMENTATION DEFINED attributes, stored only
        case R.irqCtrl:
            let enables = value & SMMUInterruptControl.implemented.rawValue
            state.irqCtrl = enables
            state.irqCtrlAck = enables
        case R.gerrorn:
            return writeGERRORN(value)
        case R.gerrorIRQCfg1:
            if msi && !irqs.contains(.globalError) { state.gerrorIRQCfg1 = value }
        case R.gerrorIRQCfg2:
            if msi && !irqs.contains(.globalError) { state.gerrorIRQCfg2 = value & 0x3F }
        case R.strtabBaseCfg:
            // Guarded by SMMUEN (§6.3.25): LOG2SIZE[5:0], SPLIT[10:6], FMT[17:16].
            guard !c.contains(.smmuEnable) else { return [] }
            state.strtabBaseCfg = value & 0x0003_07FF
            return .streamTable
        case R.cmdqProd:
            // WR[19:0]; bits above the wrap flag are stored but ignored (§6.3.27).
            state.cmdqProd = value & 0x000F_FFFF
            return .commandQueue
        case R.cmdqCons:
            // Guarded by CMDQEN (§6.3.28). ERR[30:24] takes the written value (permitted when
            // CMDQEN = 0); RD bits above the wrap flag are RAZ.
            guard !c.contains(.commandQueueEnable) else { return [] }
            state.cmdqCons = (value & 0x7F00_0000) | (value & commandQueueGeometry.pointerMask)
        case R.eventqProd, R.eventqProdPage0Alias:
            // Guarded by EVENTQEN (§6.3.29 "common for all EVENTQ_{BASE, PROD}"): OVFLG[31], WR[19:0].
            guard !c.contains(.eventQueueEnable) else { return [] }
            state.eventqProd = value & 0x800F_FFFF
        case R.eventqCons, R.eventqConsPage0Alias:
            // Software's consumer index, always writable: OVACKFLG[31], RD[19:0].
            state.eventqCons = value & 0x800F_FFFF
        case R.eventqIRQCfg1:
            if msi && !irqs.contains(.eventQueue) { state.eventqIRQCfg1 = value }
        case R.eventqIRQCfg2:
            if msi && !irqs.contains(.eventQueue) { state.eventqIRQCfg2 = value & 0x3F }
        case R.priqProd, R.priqProdPage0Alias:
            state.priqProd = value
        case R.priqCons, R.priqConsPage0Alias:
            state.priqCons = value
        case R.priqIRQCfg1:
            state.priqIRQCfg1 = value
        case R.priqIRQCfg2:
            state.priqIRQCfg2 = value
        default:
            break   // RO (IDRs, CR0ACK, IRQ_CTRLACK, GERROR, STATUSR, ID_REGS) or RES0
        }
        return []
    }

    /// A whole 64-bit register write, with its guard and field mask. Addresses above IDR5.OAS
    /// are RES0 and not stored (§6.3.24 "An implementation is not required to store these bits").
    func write64(_ offset: UInt64, _ value: UInt64) -> SMMURegisterWriteEffects {
        typealias R = SMMURegisterOffset
        let c = state.control
        let irqs = state.interruptControl
        let oas = outputAddressMask
        switch offset {
        case R.gerrorIRQCfg0:
            // ADDR[55:2] (§6.3.21); present only with IDR0.MSI; guarded by GERROR_IRQEN.
            if configuration.msi && !irqs.contains(.globalError) {
                state.gerrorIRQCfg0 = value.keepingBits(55, 2) & oas
            }
        case R.strtabBase:
            // RA[62], ADDR[55:6]; guarded by SMMUEN (§6.3.24).
            guard !c.contains(.smmuEnable) else { return [] }
            state.strtabBase = (value & SMMURegisterField.allocateHint) | (value.keepingBits(55, 6) & oas)
            return .streamTable
        case R.cmdqBase:
            // RA[62], ADDR[55:5], LOG2SIZE[4:0]; guarded by CMDQEN (§6.3.26).
            guard !c.contains(.commandQueueEnable) else { return [] }
            state.cmdqBase = (value & SMMURegisterField.allocateHint) | (value.keepingBits(55, 5) & oas) | value.bits(4, 0)
        case R.eventqBase:
            // WA[62], ADDR[55:5], LOG2SIZE[4:0]; guarded by EVENTQEN (§6.3.29).
            guard !c.contains(.eventQueueEnable) else { return [] }
            state.eventqBase = (value & SMMURegisterField.allocateHint) | (value.keepingBits(55, 5) & oas) | value.bits(4, 0)
        case R.eventqIRQCfg0:
            if configuration.msi && !irqs.contains(.eventQueue) {
                state.eventqIRQCfg0 = value.keepingBits(55, 2) & oas
            }
        case R.priqBase:
            state.priqBase = value
        case R.priqIRQCfg0:
            state.priqIRQCfg0 = value
        default:
            break
        }
        return []
    }

    /// The stored value of a 64-bit register (for merging a 32-bit half write).
    func read64Stored(_ offset: UInt64) -> UInt64 {
        typealias R = SMMURegisterOffset
        switch offset {
        case R.gerrorIRQCfg0: return state.gerrorIRQCfg0
        case R.eventqIRQCfg0: return state.eventqIRQCfg0
        default: return read64(offset)
        }
    }

    /// CR0 (§6.3.9). Only SMMUEN, EVENTQEN and CMDQEN are implemented; the update completes
    /// during the write, so CR0ACK equals CR0 afterwards. Enabling the command queue starts
    /// consumption (§6.3.9.3 "the SMMU begins processing commands if … non-empty").
    func writeCR0(_ value: UInt32) -> SMMURegisterWriteEffects {
        let new = value & SMMUControl0.implemented.rawValue
        let old = SMMUControl0(rawValue: state.cr0ack)
        state.cr0 = new
        state.cr0ack = new
        let now = SMMUControl0(rawValue: new)
        var effects: SMMURegisterWriteEffects = []
        if now.contains(.commandQueueEnable) && !old.contains(.commandQueueEnable) { effects.insert(.commandQueue) }
        if now.contains(.smmuEnable) != old.contains(.smmuEnable) { effects.insert(.translationEnable) }
        return effects
    }

    /// GERRORN (§6.3.20): software acknowledges an error by making its bit equal to GERROR's.
    /// Acknowledging CMDQ_ERR restarts command consumption (§7.1, §6.3.28 "The SMMU resumes
    /// processing commands after the CMDQ_ERR error is acknowledged").
    func writeGERRORN(_ value: UInt32) -> SMMURegisterWriteEffects {
        let wasActive = state.activeErrors
        state.gerrorn = value & SMMUGlobalErrors.implemented(msi: configuration.msi).rawValue
        if wasActive.contains(.commandQueue) && !state.activeErrors.contains(.commandQueue) {
            return .commandQueue
        }
        return []
    }

    // MARK: - Global errors

    /// Activates a global error (§7.5): GERROR[x] toggles unless the error is already active or
    /// not implemented. Returns whether it was activated now (the owner then signals the GERROR
    /// interrupt, except for MSI_GERROR_ABT_ERR, §7.5.1).
    @discardableResult
    public func activateGlobalError(_ error: SMMUGlobalErrors) -> Bool {
        guard SMMUGlobalErrors.implemented(msi: configuration.msi).isSuperset(of: error),
              state.activeErrors.isDisjoint(with: error) else { return false }
        state.gerror ^= error.rawValue
        return true
    }
}
