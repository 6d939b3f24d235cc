import Bus

/// The implementation choices an SMMU advertises in IDR0–IDR5 (SMMUv3 §6.3.1–6.3.6).
///
/// The translator reads these to decide what is ILLEGAL in an STE or CD (an STE that enables a
/// stage the SMMU lacks is `C_BAD_STE`, §5.2), which granules and sizes a walk accepts, and the
/// output-address limit; the register file serialises them into the ID registers.
/// The defaults are the model's own generic SMMU (both stages, 16-bit IDs, 48-bit OAS, 20-bit
/// SubstreamIDs, a terminate-only stall model, MSI and 2-level tables), not any particular
/// implementation's; `qemu(stage:)` and `qemuVirt` give exactly what QEMU's emulated SMMUv3
/// advertises.
public struct SMMUConfiguration: Hashable, Sendable {
    public var stage1: Bool = true                 // IDR0.S1P
    public var stage2: Bool = true                 // IDR0.S2P
    public var aarch64Tables: Bool = true          // IDR0.TTF = 0b10 (AArch64 only)
    public var twoLevelStreamTable: Bool = true    // IDR0.ST_LEVEL = 0b01
    public var twoLevelCDTable: Bool = true        // IDR0.CD2L
    public var asid16: Bool = true                 // IDR0.ASID16
    public var vmid16: Bool = true                 // IDR0.VMID16
    public var msi: Bool = true                    // IDR0.MSI
    public var hyp: Bool = false                   // IDR0.HYP
    public var stallModel: StallModel = .terminateOnly  // IDR0.STALL_MODEL (QEMU: 1)
    public var terminateModel: Bool = false        // IDR0.TERM_MODEL (false: CD.A honoured)
    public var httu: HTTU = .none                  // IDR0.HTTU
    /// IDR0.COHACC: table and queue accesses are IO-coherent (Linux then uses MSIPOLL CMD_SYNC).
    public var coherentAccess: Bool = true
    /// IDR0.ATS: PCIe ATS is advertised. The device model keeps no ATCs, so with it CMD_ATC_INV
    /// is legal and has nothing to invalidate; without it CMD_ATC_INV is ILLEGAL (§4.5.1).
    public var ats: Bool = false
    public var streamIDBits: Int = 16              // IDR1.SIDSIZE
    public var substreamIDBits: Int = 20           // IDR1.SSIDSIZE
    public var commandQueueMaxLog2: Int = 19       // IDR1.CMDQS
    public var eventQueueMaxLog2: Int = 19         // IDR1.EVENTQS
    public var smallTranslationTables: Bool = false // IDR3.STT
    public var rangeInvalidation: Bool = true      // IDR3.RIL
    /// IDR3.HAD: CD.HAD0/HAD1 (hierarchical attribute disable) are supported.
    public var hierarchicalAttributeDisable: Bool = false
    /// IDR3.XNX: STE.S2XN can distinguish EL0 and EL1 execute-never (a stage-2 feature).
    public var executeNeverControl: Bool = false
    /// IDR3.BBML: the break-before-make level supported (0: none, 1: BBML1, 2: BBML2).
    public var breakBeforeMakeLevel: UInt32 = 0
    public var outputAddressSize: OutputAddressSize = .bits48 // IDR5.OAS
    public var granule4K = true, granule16K = true, granule64K = true // IDR5.GRAN4K/16K/64K
    /// SMMU_AIDR.ArchMinorRev as advertised. nil: derived from the features (v3.2 with RIL,
    /// which is mandatory from v3.2, else v3.1); an implementation may advertise otherwise
    /// (QEMU says v3.1 with RIL).
    public var architectureMinorRevision: UInt32? = nil

    public init() {}

    public static let `default` = SMMUConfiguration()

    /// Whether IDR5 advertises `granule` (a CD.TG0 or STE.S2TG naming an unadvertised granule is
    /// ILLEGAL, §5.2 / §5.4).
    public func supports(_ granule: Granule) -> Bool {
        switch granule {
        case .size4K: granule4K
        case .size16K: granule16K
        case .size64K: granule64K
        }
    }

    /// IDR1.SIDSIZE clamped to the architected 0…32 (§6.3.2), so a bad configuration cannot
    /// make the stream-table arithmetic shift out of range.
    public var effectiveStreamIDBits: Int { min(max(streamIDBits, 0), 32) }
    /// IDR1.SSIDSIZE clamped to 0…20 (§6.3.2).
    public var effectiveSubstreamIDBits: Int { min(max(substreamIDBits, 0), 20) }

    /// IDR0 (§6.3.1). TTENDIAN is 0b10 (little-endian tables only): the model only walks
    /// little-endian tables, so a CD.ENDI/STE.S2ENDI of 1 is ILLEGAL here. BTM=0 (no broadcast
    /// TLB maintenance), PRI/ATOS/VATOS/SEV/VMW = 0.
    public var idr0: UInt32 {
        var v: UInt32 = 0
        v = v.settingBit(0, to: stage2)
        v = v.settingBit(1, to: stage1)
        v = v.settingBits(3, 2, to: aarch64Tables ? 0b10 : 0b01)
        v = v.settingBit(4, to: coherentAccess)
        v = v.settingBits(7, 6, to: httu.rawValue)
        v = v.settingBit(9, to: hyp)
        v = v.settingBit(10, to: ats)
        v = v.settingBit(12, to: asid16)
        v = v.settingBit(13, to: msi)
        v = v.settingBit(18, to: vmid16)
        v = v.settingBit(19, to: twoLevelCDTable)
        v = v.settingBits(22, 21, to: 0b10)
        v = v.settingBits(25, 24, to: stallModel.rawValue)
        v = v.settingBit(26, to: terminateModel)
        v = v.settingBits(28, 27, to: twoLevelStreamTable ? 0b01 : 0b00)
        return v
    }

    /// IDR1 (§6.3.2): SIDSIZE[5:0], SSIDSIZE[10:6], PRIQS[15:11] (0: no PRI), EVENTQS[20:16],
    /// CMDQS[25:21]. Queue sizes are clamped to their architected maxima (19).
    public var idr1: UInt32 {
        var v: UInt32 = 0
        v = v.settingBits(5, 0, to: UInt32(effectiveStreamIDBits))
        v = v.settingBits(10, 6, to: UInt32(effectiveSubstreamIDBits))
        v = v.settingBits(20, 16, to: UInt32(min(max(eventQueueMaxLog2, 0), 19)))
        v = v.settingBits(25, 21, to: UInt32(min(max(commandQueueMaxLog2, 0), 19)))
        return v
    }

    /// IDR2 (§6.3.3): BA_VATOS; VATOS is not implemented, so 0.
    public var idr2: UInt32 { 0 }

    /// IDR3 (§6.3.4): HAD[2], XNX[4], STT[9], RIL[10], BBML[12:11] (clamped to 2); other
    /// features absent.
    public var idr3: UInt32 {
        var v: UInt32 = 0
        v = v.settingBit(2, to: hierarchicalAttributeDisable)
        v = v.settingBit(4, to: executeNeverControl)
        v = v.settingBit(9, to: smallTranslationTables)
        v = v.settingBit(10, to: rangeInvalidation)
        v = v.settingBits(12, 11, to: min(breakBeforeMakeLevel, 2))
        return v
    }

    /// IDR4 (§6.3.5) is IMPLEMENTATION DEFINED; this model returns 0.
    public var idr4: UInt32 { 0 }

    /// SMMU_AIDR (§6.3.8): ArchMajorRev[7:4] = 0 (SMMUv3), ArchMinorRev[3:0] as
    /// `architectureMinorRevision`, else 2 (v3.2) when range invalidation is advertised (RIL is
    /// mandatory from v3.2, §4.4.1.1) and 1 (v3.1) otherwise.
    public var aidr: UInt32 {
        if let minor = architectureMinorRevision { return min(minor, 0xF) }
        return rangeInvalidation ? 0x02 : 0x01
    }

    /// IDR5 (§6.3.6): OAS[2:0], GRAN4K[4], GRAN16K[5], GRAN64K[6], VAX[11:10] = 0 (48-bit VA),
    /// STALL_MAX[31:16] = 0 (no stalls).
    public var idr5: UInt32 {
        var v: UInt32 = 0
        v = v.settingBits(2, 0, to: outputAddressSize.rawValue)
        v = v.settingBit(4, to: granule4K)
        v = v.settingBit(5, to: granule16K)
        v = v.settingBit(6, to: granule64K)
        return v
    }
}

/// IDR0.STALL_MODEL (§6.3.1).
public enum StallModel: UInt32, Sendable {
    case stallAndTerminate = 0, terminateOnly = 1, stallForced = 2
}

/// IDR0.HTTU (§6.3.1): hardware update of the access flag and dirty state.
public enum HTTU: UInt32, Sendable {
    case none = 0, accessFlag = 1, accessAndDirty = 2
}

/// IDR5.OAS / CD.IPS / STE.S2PS encoding: 0:32 1:36 2:40 3:42 4:44 5:48 6:52 bits (§6.3.6,
/// §5.2 STE.S2PS, §5.4 CD.IPS).
public enum OutputAddressSize: UInt32, Sendable, CaseIterable {
    case bits32 = 0, bits36, bits40, bits42, bits44, bits48, bits52

    /// The address width in bits.
    public var bits: Int {
        switch self {
        case .bits32: 32
        case .bits36: 36
        case .bits40: 40
        case .bits42: 42
        case .bits44: 44
        case .bits48: 48
        case .bits52: 52
        }
    }

    /// Decodes a 3-bit CD.IPS / STE.S2PS field. Values above 6 (0b111 is 56 bits from v3.4,
    /// reserved before) are treated as the largest size this enum holds; callers clamp to OAS
    /// anyway ("effective = min(field, IDR5.OAS)", §5.2 STE.S2PS, §5.4 CD.IPS).
    public init(field: UInt64) {
        self = OutputAddressSize(rawValue: UInt32(truncatingIfNeeded: min(field, 6))) ?? .bits52
    }
}
