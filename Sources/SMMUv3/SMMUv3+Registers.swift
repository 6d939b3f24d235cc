import Bus

/// MMIO access to the register file (§6.2, §6.3).
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
extension SMMUv3 {
    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
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

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        switch size {
        case 4 where offset & 3 == 0:
            write32(offset, UInt32(truncatingIfNeeded: value))
        case 8 where offset & 7 == 0:
            if SMMURegisterOffset.isSixtyFourBit(offset) {
                write64(offset, value)
            } else {
                write32(offset, UInt32(truncatingIfNeeded: value))
                write32(offset &+ 4, UInt32(truncatingIfNeeded: value >> 32))
            }
        default:
            break
        }
    }

    // MARK: - Reads

    /// The 64-bit registers, whole.
    func read64(_ offset: UInt64) -> UInt64 {
        typealias R = SMMURegisterOffset
        switch offset {
        case R.gerrorIRQCfg0: return configuration.msi ? registers.gerrorIRQCfg0 : 0
        case R.strtabBase: return registers.strtabBase
        case R.cmdqBase: return registers.cmdqBase
        case R.eventqBase: return registers.eventqBase
        case R.eventqIRQCfg0: return configuration.msi ? registers.eventqIRQCfg0 : 0
        case R.priqBase: return registers.priqBase
        case R.priqIRQCfg0: return registers.priqIRQCfg0
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
        case R.cr0: return registers.cr0
        case R.cr0ack: return registers.cr0ack
        case R.cr1: return registers.cr1
        case R.cr2: return registers.cr2
        case R.statusr: return 0   // DORMANT = 0: the model never sleeps
        case R.gbpa: return registers.gbpa
        case R.agbpa: return registers.agbpa
        case R.irqCtrl: return registers.irqCtrl
        case R.irqCtrlAck: return registers.irqCtrlAck
        case R.gerror: return registers.gerror
        case R.gerrorn: return registers.gerrorn
        case R.gerrorIRQCfg1: return msi ? registers.gerrorIRQCfg1 : 0
        case R.gerrorIRQCfg2: return msi ? registers.gerrorIRQCfg2 : 0
        case R.strtabBaseCfg: return registers.strtabBaseCfg
        case R.cmdqProd: return registers.cmdqProd
        case R.cmdqCons: return registers.cmdqCons
        case R.eventqProd, R.eventqProdPage0Alias: return registers.eventqProd
        case R.eventqCons, R.eventqConsPage0Alias: return registers.eventqCons
        case R.eventqIRQCfg1: return msi ? registers.eventqIRQCfg1 : 0
        case R.eventqIRQCfg2: return msi ? registers.eventqIRQCfg2 : 0
        case R.priqProd, R.priqProdPage0Alias: return registers.priqProd
        case R.priqCons, R.priqConsPage0Alias: return registers.priqCons
        case R.priqIRQCfg1: return registers.priqIRQCfg1
        case R.priqIRQCfg2: return registers.priqIRQCfg2
        case R.pidr0, R.pidr1, R.pidr2, R.pidr3, R.pidr4, R.cidr0, R.cidr1, R.cidr2, R.cidr3:
            return identificationRegister(offset)
        default: return 0
        }
    }

    /// SMMU_AIDR (§6.3.8), as the configuration advertises it (`SMMUConfiguration.aidr`).
    public var aidr: UInt32 { configuration.aidr }

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
    func write32(_ offset: UInt64, _ value: UInt32) {
        typealias R = SMMURegisterOffset
        if SMMURegisterOffset.isSixtyFourBit(offset) {
            write64(offset, (read64Stored(offset) & ~0xFFFF_FFFF) | UInt64(value))
            return
        }
        if offset >= 4, SMMURegisterOffset.isSixtyFourBit(offset &- 4) {
            write64(offset &- 4, (read64Stored(offset &- 4) & 0xFFFF_FFFF) | (UInt64(value) << 32))
            return
        }
        let c = registers.control
        let msi = configuration.msi
        let irqs = registers.interruptControl
        switch offset {
        case R.cr0:
            writeCR0(value)
        case R.cr1:
            // TABLE_*[11:6] guarded by SMMUEN; QUEUE_*[5:0] by CMDQEN/EVENTQEN/PRIQEN (§6.3.11).
            var cr1 = registers.cr1
            if !c.contains(.smmuEnable) { cr1 = cr1.settingBits(11, 6, to: value.bits(11, 6)) }
            if c.isDisjoint(with: [.commandQueueEnable, .eventQueueEnable]) { cr1 = cr1.settingBits(5, 0, to: value.bits(5, 0)) }
            registers.cr1 = cr1
        case R.cr2:
            // RO while SMMUEN = 1 (§6.3.12). RECINVSID[1]; E2H[0] only with IDR0.HYP; PTM[2]
            // and REC_CFG_ATS[3] are RES0 (IDR0.BTM = IDR0.ATSRECERR = 0).
            guard !c.contains(.smmuEnable) else { return }
            let mask: UInt32 = configuration.hyp ? 0b11 : 0b10
            registers.cr2 = value & mask
            translator.recordInvalidStreamIDs = value.bit(1)
        case R.gbpa:
            // §6.3.14.1: only a write with UPDATE = 1 takes effect (v3.2: a write without it is
            // IGNORED). The update completes immediately, so UPDATE reads back 0. Stored fields:
            // ABORT[20], INSTCFG[19:18], PRIVCFG[17:16], SHCFG[13:12], ALLOCCFG[11:8], MTCFG[4],
            // MemAttr[3:0].
            guard value.bit(SMMURegisterField.gbpaUpdateBit) else { return }
            registers.gbpa = value & 0x001F_3F1F
        case R.agbpa:
            registers.agbpa = value   // IMPLEMENTATION DEFINED attributes, stored only
        case R.irqCtrl:
            let enables = value & SMMUInterruptControl.implemented.rawValue
            registers.irqCtrl = enables
            registers.irqCtrlAck = enables
        case R.gerrorn:
            writeGERRORN(value)
        case R.gerrorIRQCfg1:
            if msi && !irqs.contains(.globalError) { registers.gerrorIRQCfg1 = value }
        case R.gerrorIRQCfg2:
            if msi && !irqs.contains(.globalError) { registers.gerrorIRQCfg2 = value & 0x3F }
        case R.strtabBaseCfg:
            // Guarded by SMMUEN (§6.3.25): LOG2SIZE[5:0], SPLIT[10:6], FMT[17:16].
            guard !c.contains(.smmuEnable) else { return }
            registers.strtabBaseCfg = value & 0x0003_07FF
            updateTranslatorStreamTable()
        case R.cmdqProd:
            // WR[19:0]; bits above the wrap flag are stored but ignored (§6.3.27).
            registers.cmdqProd = value & 0x000F_FFFF
            consumeCommands()
        case R.cmdqCons:
            // Guarded by CMDQEN (§6.3.28). ERR[30:24] takes the written value (permitted when
            // CMDQEN = 0); RD bits above the wrap flag are RAZ.
            guard !c.contains(.commandQueueEnable) else { return }
            let geometry = commandQueueGeometry
            registers.cmdqCons = (value & 0x7F00_0000) | (value & geometry.pointerMask)
        case R.eventqProd, R.eventqProdPage0Alias:
            // Guarded by EVENTQEN (§6.3.29 "common for all EVENTQ_{BASE, PROD}"): OVFLG[31], WR[19:0].
            guard !c.contains(.eventQueueEnable) else { return }
            registers.eventqProd = value & 0x800F_FFFF
        case R.eventqCons, R.eventqConsPage0Alias:
            // Software's consumer index, always writable: OVACKFLG[31], RD[19:0].
            registers.eventqCons = value & 0x800F_FFFF
        case R.eventqIRQCfg1:
            if msi && !irqs.contains(.eventQueue) { registers.eventqIRQCfg1 = value }
        case R.eventqIRQCfg2:
            if msi && !irqs.contains(.eventQueue) { registers.eventqIRQCfg2 = value & 0x3F }
        case R.priqProd, R.priqProdPage0Alias:
            registers.priqProd = value
        case R.priqCons, R.priqConsPage0Alias:
            registers.priqCons = value
        case R.priqIRQCfg1:
            registers.priqIRQCfg1 = value
        case R.priqIRQCfg2:
            registers.priqIRQCfg2 = value
        default:
            break   // RO (IDRs, CR0ACK, IRQ_CTRLACK, GERROR, STATUSR, ID_REGS) or RES0
        }
    }

    /// A whole 64-bit register write, with its guard and field mask. Addresses above IDR5.OAS
    /// are RES0 and not stored (§6.3.24 "An implementation is not required to store these bits").
    func write64(_ offset: UInt64, _ value: UInt64) {
        typealias R = SMMURegisterOffset
        let c = registers.control
        let irqs = registers.interruptControl
        let oas = outputAddressMask
        switch offset {
        case R.gerrorIRQCfg0:
            // ADDR[55:2] (§6.3.21); present only with IDR0.MSI; guarded by GERROR_IRQEN.
            if configuration.msi && !irqs.contains(.globalError) {
                registers.gerrorIRQCfg0 = value.keepingBits(55, 2) & oas
            }
        case R.strtabBase:
            // RA[62], ADDR[55:6]; guarded by SMMUEN (§6.3.24).
            guard !c.contains(.smmuEnable) else { return }
            registers.strtabBase = (value & (1 << 62)) | (value.keepingBits(55, 6) & oas)
            updateTranslatorStreamTable()
        case R.cmdqBase:
            // RA[62], ADDR[55:5], LOG2SIZE[4:0]; guarded by CMDQEN (§6.3.26).
            guard !c.contains(.commandQueueEnable) else { return }
            registers.cmdqBase = (value & (1 << 62)) | (value.keepingBits(55, 5) & oas) | value.bits(4, 0)
        case R.eventqBase:
            // WA[62], ADDR[55:5], LOG2SIZE[4:0]; guarded by EVENTQEN (§6.3.29).
            guard !c.contains(.eventQueueEnable) else { return }
            registers.eventqBase = (value & (1 << 62)) | (value.keepingBits(55, 5) & oas) | value.bits(4, 0)
        case R.eventqIRQCfg0:
            if configuration.msi && !irqs.contains(.eventQueue) {
                registers.eventqIRQCfg0 = value.keepingBits(55, 2) & oas
            }
        case R.priqBase:
            registers.priqBase = value
        case R.priqIRQCfg0:
            registers.priqIRQCfg0 = value
        default:
            break
        }
    }

    /// The stored value of a 64-bit register (for merging a 32-bit half write).
    func read64Stored(_ offset: UInt64) -> UInt64 {
        typealias R = SMMURegisterOffset
        switch offset {
        case R.gerrorIRQCfg0: return registers.gerrorIRQCfg0
        case R.eventqIRQCfg0: return registers.eventqIRQCfg0
        default: return read64(offset)
        }
    }

    /// CR0 (§6.3.9). Only SMMUEN, EVENTQEN and CMDQEN are implemented; the update completes
    /// during the write, so CR0ACK equals CR0 afterwards. Enabling the command queue starts
    /// consumption (§6.3.9.3 "the SMMU begins processing commands if … non-empty").
    func writeCR0(_ value: UInt32) {
        let new = value & SMMUControl0.implemented.rawValue
        let old = SMMUControl0(rawValue: registers.cr0)
        registers.cr0 = new
        registers.cr0ack = new
        let now = SMMUControl0(rawValue: new)
        if now.contains(.commandQueueEnable) && !old.contains(.commandQueueEnable) {
            consumeCommands()
        }
    }

    /// GERRORN (§6.3.20): software acknowledges an error by making its bit equal to GERROR's.
    /// Acknowledging CMDQ_ERR restarts command consumption (§7.1, §6.3.28 "The SMMU resumes
    /// processing commands after the CMDQ_ERR error is acknowledged").
    func writeGERRORN(_ value: UInt32) {
        let wasActive = registers.activeErrors
        registers.gerrorn = value & SMMUGlobalErrors.implemented(msi: configuration.msi).rawValue
        if wasActive.contains(.commandQueue) && !registers.activeErrors.contains(.commandQueue) {
            consumeCommands()
        }
    }
}
