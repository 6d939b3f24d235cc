/// Offsets of the SMMUv3 Non-secure programming interface in the two 64 KiB register pages
/// (SMMUv3 §6.2.1 "Registers in Page 0", §6.2.2 "Registers in Page 1").
///
/// Widths follow the §6.2.1 table: 64-bit registers are STRTAB_BASE, CMDQ_BASE, EVENTQ_BASE,
/// PRIQ_BASE and the three `*_IRQ_CFG0`; everything else is 32-bit. The Secure (0x8000…), VATOS,
/// GATOS, MPAM, DPT and ECMDQ registers are not modelled (their IDR bits are 0) and read as zero.
public enum SMMURegisterOffset {
    public static let idr0: UInt64 = 0x0000
    public static let idr1: UInt64 = 0x0004
    public static let idr2: UInt64 = 0x0008
    public static let idr3: UInt64 = 0x000C
    public static let idr4: UInt64 = 0x0010
    public static let idr5: UInt64 = 0x0014
    public static let iidr: UInt64 = 0x0018
    public static let aidr: UInt64 = 0x001C
    public static let cr0: UInt64 = 0x0020
    public static let cr0ack: UInt64 = 0x0024
    public static let cr1: UInt64 = 0x0028
    public static let cr2: UInt64 = 0x002C
    public static let statusr: UInt64 = 0x0040
    public static let gbpa: UInt64 = 0x0044
    public static let agbpa: UInt64 = 0x0048
    public static let irqCtrl: UInt64 = 0x0050
    public static let irqCtrlAck: UInt64 = 0x0054
    public static let gerror: UInt64 = 0x0060
    public static let gerrorn: UInt64 = 0x0064
    public static let gerrorIRQCfg0: UInt64 = 0x0068
    public static let gerrorIRQCfg1: UInt64 = 0x0070
    public static let gerrorIRQCfg2: UInt64 = 0x0074
    public static let strtabBase: UInt64 = 0x0080
    public static let strtabBaseCfg: UInt64 = 0x0088
    public static let cmdqBase: UInt64 = 0x0090
    public static let cmdqProd: UInt64 = 0x0098
    public static let cmdqCons: UInt64 = 0x009C
    public static let eventqBase: UInt64 = 0x00A0
    /// Page-0 alias of EVENTQ_PROD. §6.2.1 lets an implementation alias 0xA8/0xAC to the page-1
    /// registers or make them RAZ/WI; this model aliases them (as QEMU does), so a driver with
    /// Linux's `ARM_SMMU_OPT_PAGE0_REGS_ONLY` quirk (Cavium ThunderX2) also works.
    public static let eventqProdPage0Alias: UInt64 = 0x00A8
    public static let eventqConsPage0Alias: UInt64 = 0x00AC
    public static let eventqIRQCfg0: UInt64 = 0x00B0
    public static let eventqIRQCfg1: UInt64 = 0x00B8
    public static let eventqIRQCfg2: UInt64 = 0x00BC
    public static let priqBase: UInt64 = 0x00C0
    public static let priqProdPage0Alias: UInt64 = 0x00C8
    public static let priqConsPage0Alias: UInt64 = 0x00CC
    public static let priqIRQCfg0: UInt64 = 0x00D0
    public static let priqIRQCfg1: UInt64 = 0x00D8
    public static let priqIRQCfg2: UInt64 = 0x00DC
    /// CoreSight-style identification block (§6.2.1 "ID_REGS", 0xFD0–0xFFC, IMPLEMENTATION
    /// DEFINED contents): PIDR4–7, PIDR0–3, CIDR0–3.
    public static let pidr4: UInt64 = 0x0FD0
    public static let pidr0: UInt64 = 0x0FE0
    public static let pidr1: UInt64 = 0x0FE4
    public static let pidr2: UInt64 = 0x0FE8
    public static let pidr3: UInt64 = 0x0FEC
    public static let cidr0: UInt64 = 0x0FF0
    public static let cidr1: UInt64 = 0x0FF4
    public static let cidr2: UInt64 = 0x0FF8
    public static let cidr3: UInt64 = 0x0FFC
    /// Page 1 (§6.2.2): the producer/consumer indices software polls.
    public static let eventqProd: UInt64 = 0x1_00A8
    public static let eventqCons: UInt64 = 0x1_00AC
    public static let priqProd: UInt64 = 0x1_00C8
    public static let priqCons: UInt64 = 0x1_00CC

    /// Whether `offset` starts a 64-bit register (§6.2.1 "64-bit, RW"), which may be accessed
    /// as one aligned 64-bit access or as two 32-bit halves (§6.2).
    public static func isSixtyFourBit(_ offset: UInt64) -> Bool {
        switch offset {
        case gerrorIRQCfg0, strtabBase, cmdqBase, eventqBase, eventqIRQCfg0, priqBase, priqIRQCfg0: true
        default: false
        }
    }
}

/// SMMU_CR0 / SMMU_CR0ACK fields (§6.3.9, §6.3.10).
public struct SMMUControl0: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// SMMUEN[0]: translate (1) or bypass/abort per GBPA (0).
    public static let smmuEnable = SMMUControl0(rawValue: 1 << 0)
    /// PRIQEN[1]: RES0 here (IDR0.PRI = 0).
    public static let priQueueEnable = SMMUControl0(rawValue: 1 << 1)
    /// EVENTQEN[2].
    public static let eventQueueEnable = SMMUControl0(rawValue: 1 << 2)
    /// CMDQEN[3].
    public static let commandQueueEnable = SMMUControl0(rawValue: 1 << 3)
    /// ATSCHK[4]: RES0 here (IDR0.ATS = 0).
    public static let atsCheck = SMMUControl0(rawValue: 1 << 4)

    /// The bits this model stores: SMMUEN, EVENTQEN, CMDQEN. PRIQEN, ATSCHK and VMW[8:6] are
    /// RES0 because IDR0.PRI, IDR0.ATS and IDR0.VMW are 0 (§6.3.9 "Otherwise, Reserved, RES0").
    public static let implemented: SMMUControl0 = [.smmuEnable, .eventQueueEnable, .commandQueueEnable]
}

/// SMMU_CR1 (§6.3.11): the shareability and cacheability of the SMMU's own accesses to the
/// stream/CD tables (TABLE_SH[11:10], TABLE_OC[9:8], TABLE_IC[7:6]) and to the queues
/// (QUEUE_SH[5:4], QUEUE_OC[3:2], QUEUE_IC[1:0]). The model stores them; it has no caches.
public struct SMMUControl1: Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// *_SH: 0b00 Non-shareable, 0b10 Outer, 0b11 Inner Shareable.
    public enum Shareability: UInt32, Hashable, Sendable { case nonShareable = 0b00, outer = 0b10, inner = 0b11 }
    /// *_OC / *_IC: 0b00 Non-cacheable, 0b01 Write-Back, 0b10 Write-Through.
    public enum Cacheability: UInt32, Hashable, Sendable { case nonCacheable = 0b00, writeBack = 0b01, writeThrough = 0b10 }

    public init(table: (Shareability, outer: Cacheability, inner: Cacheability),
                queue: (Shareability, outer: Cacheability, inner: Cacheability)) {
        rawValue = table.0.rawValue << 10 | table.outer.rawValue << 8 | table.inner.rawValue << 6
            | queue.0.rawValue << 4 | queue.outer.rawValue << 2 | queue.inner.rawValue
    }

    /// Inner Shareable, Write-Back for tables and queues: Linux `arm_smmu_device_reset`'s
    /// CR1 for a coherent SMMU (CR1_SH_ISH, CR1_CACHE_WB).
    public static let coherentWriteBack = SMMUControl1(table: (.inner, outer: .writeBack, inner: .writeBack),
                                                       queue: (.inner, outer: .writeBack, inner: .writeBack))
}

/// SMMU_IRQ_CTRL / SMMU_IRQ_CTRLACK fields (§6.3.17, §6.3.18).
public struct SMMUInterruptControl: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// GERROR_IRQEN[0].
    public static let globalError = SMMUInterruptControl(rawValue: 1 << 0)
    /// PRIQ_IRQEN[1]: RES0 here (IDR0.PRI = 0).
    public static let priQueue = SMMUInterruptControl(rawValue: 1 << 1)
    /// EVENTQ_IRQEN[2].
    public static let eventQueue = SMMUInterruptControl(rawValue: 1 << 2)

    /// Stored bits: PRIQ_IRQEN is RES0 without PRI (§6.3.18 "Fields in this register are RAZ
    /// if their corresponding SMMU_IRQ_CTRL field is reserved").
    public static let implemented: SMMUInterruptControl = [.globalError, .eventQueue]
}

/// SMMU_GERROR / SMMU_GERRORN bits (§6.3.19, §7.5). An error is active while the GERROR bit
/// differs from the GERRORN bit.
public struct SMMUGlobalErrors: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// CMDQ_ERR[0]: CMDQ_CONS.ERR holds the reason; commands are not consumed while active.
    public static let commandQueue = SMMUGlobalErrors(rawValue: 1 << 0)
    /// EVENTQ_ABT_ERR[2]: an event-queue write aborted; delivery stops while active (§7.5).
    public static let eventQueueAbort = SMMUGlobalErrors(rawValue: 1 << 2)
    /// PRIQ_ABT_ERR[3] (never raised: no PRI).
    public static let priQueueAbort = SMMUGlobalErrors(rawValue: 1 << 3)
    /// MSI_CMDQ_ABT_ERR[4]: a CMD_SYNC MSI write aborted.
    public static let commandSyncMSIAbort = SMMUGlobalErrors(rawValue: 1 << 4)
    /// MSI_EVENTQ_ABT_ERR[5]: an event-queue MSI write aborted.
    public static let eventQueueMSIAbort = SMMUGlobalErrors(rawValue: 1 << 5)
    /// MSI_PRIQ_ABT_ERR[6] (never raised: no PRI).
    public static let priQueueMSIAbort = SMMUGlobalErrors(rawValue: 1 << 6)
    /// MSI_GERROR_ABT_ERR[7]: a GERROR MSI write aborted. Its activation does not itself raise a
    /// GERROR interrupt (§7.5.1).
    public static let globalErrorMSIAbort = SMMUGlobalErrors(rawValue: 1 << 7)
    /// SFM_ERR[8] (never raised: no RAS/service failure mode).
    public static let serviceFailureMode = SMMUGlobalErrors(rawValue: 1 << 8)

    /// The bits GERRORN stores and GERROR can toggle in this model: bits [8:0] except the
    /// reserved bit 1 and the PRI bits (RES0 when IDR0.PRI = 0); MSI bits only with IDR0.MSI.
    public static func implemented(msi: Bool) -> SMMUGlobalErrors {
        var bits: SMMUGlobalErrors = [.commandQueue, .eventQueueAbort, .serviceFailureMode]
        if msi { bits.formUnion([.commandSyncMSIAbort, .eventQueueMSIAbort, .globalErrorMSIAbort]) }
        return bits
    }
}

/// SMMU_CMDQ_CONS.ERR codes (§7.1, Table "Command queue error").
public enum CommandErrorCode: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case none = 0x00
    /// CERROR_ILL: reserved opcode, or a valid opcode with illegal parameters.
    case illegal = 0x01
    /// CERROR_ABT: external abort on the command fetch.
    case abort = 0x02
    /// CERROR_ATC_INV_SYNC: a CMD_SYNC could not complete an ATC invalidation (no ATS here).
    case atcInvalidationSync = 0x03

    public var description: String {
        switch self {
        case .none: "CERROR_NONE"
        case .illegal: "CERROR_ILL"
        case .abort: "CERROR_ABT"
        case .atcInvalidationSync: "CERROR_ATC_INV_SYNC"
        }
    }
}

/// Field positions of the queue and table registers, shared by the register file and the
/// tests (§6.3.24–6.3.31, page-1 PROD/CONS).
public enum SMMURegisterField {
    /// *_BASE.LOG2SIZE[4:0] for the command and event queues (§6.3.26, §6.3.29).
    public static func queueLog2Size(_ base: UInt64) -> Int { Int(base.bits(4, 0)) }
    /// *_BASE.ADDR[55:5]: the queue base, bits below 5 zero (§6.3.26).
    public static func queueAddress(_ base: UInt64) -> UInt64 { base.keepingBits(55, 5) }
    /// STRTAB_BASE.ADDR[55:6] (§6.3.24).
    public static func streamTableAddress(_ base: UInt64) -> UInt64 { base.keepingBits(55, 6) }
    /// STRTAB_BASE_CFG.LOG2SIZE[5:0], SPLIT[10:6], FMT[17:16] (§6.3.25).
    public static func streamTableLog2Size(_ cfg: UInt32) -> Int { Int(cfg.bits(5, 0)) }
    public static func streamTableSplit(_ cfg: UInt32) -> Int { Int(cfg.bits(10, 6)) }
    public static func streamTableFormat(_ cfg: UInt32) -> UInt32 { cfg.bits(17, 16) }
    /// CMDQ_CONS.ERR[30:24] (§6.3.28).
    public static func commandError(_ cons: UInt32) -> UInt8 { UInt8(truncatingIfNeeded: cons.bits(30, 24)) }
    /// EVENTQ_PROD.OVFLG[31] / EVENTQ_CONS.OVACKFLG[31] (page 1, §7.4).
    public static let overflowBit = 31
    /// GBPA.UPDATE[31] and GBPA.ABORT[20] (§6.3.14).
    public static let gbpaUpdateBit = 31
    public static let gbpaAbortBit = 20
    /// STRTAB_BASE.RA / CMDQ_BASE.RA / EVENTQ_BASE.WA[62]: read- (write-) allocate hint
    /// (§6.3.24, §6.3.26, §6.3.29).
    public static let allocateHint: UInt64 = 1 << 62
    /// *_IRQ_CFG0.ADDR[55:2] (§6.3.21).
    public static func msiAddress(_ cfg0: UInt64) -> UInt64 { cfg0.keepingBits(55, 2) }
}
