import Bus

/// The implementation choices an Arm SMMU reports in SMMU_IDR0-2 and IDR7 (IHI 0062D §10.6.2-10.6.4).
/// Defaults are an Arm MMU-500 as NXP and Qualcomm integrate it: stage 1 and stage 2, stream
/// matching, 48-bit addresses, 4 KiB translation granule (MMU-500 TRM §3.3 "ID registers").
/// `mmu401` and `smmuV1` give SMMU architecture version 1 parts (IHI 0062D covers both versions;
/// its "SMMUv1" notes say what version 2 added: SMMU_CBA2Rn, SMMU_CBn_TCR2, the AArch64
/// translation formats, 16-bit VMIDs, IDR2.UBS/PTFS).
public struct SMMUv2Configuration: Hashable, Sendable {
    /// The SMMU architecture version, 1 or 2. Version 1 has no SMMU_CBA2Rn or SMMU_CBn_TCR2
    /// (RAZ/WI here), so every context bank uses the AArch32 (VMSAv7) formats; IDR2 holds only
    /// IAS and OAS.
    public var architectureVersion: Int = 2
    /// The AArch32 long-descriptor (VMSAv7 LPAE) format: IDR0.PTFS[25] clear. Version 1 always
    /// has it; the MMU-500 default here does not advertise it (PTFS = 0b10), so a version 2 bank
    /// with CBA2R.VA64 clear is an invalid context, as before.
    public var aarch32LongDescriptor: Bool = false
    /// IDR0.NUMSMRG: stream mapping register groups (SMRn/S2CRn pairs), 1…128.
    public var streamMappingGroups: Int = 64
    /// IDR1.NUMCB: translation context banks, 1…128.
    public var contextBanks: Int = 64
    /// IDR1.NUMS2CB: the first NUMS2CB banks support stage 2 only.
    public var stage2OnlyContextBanks: Int = 0
    /// IDR0.S1TS / S2TS: stage 1 / stage 2 translation supported. NTS follows both.
    public var stage1: Bool = true
    public var stage2: Bool = true
    /// IDR0.SMS: stream matching (false: stream indexing, the StreamID indexes S2CR directly).
    public var streamMatching: Bool = true
    /// IDR0.NUMSIDB: StreamID bits (MMU-500: 15).
    public var streamIDBits: Int = 15
    /// IDR2.IAS / OAS / UBS encodings: 0 = 32, 1 = 36, 2 = 40, 3 = 42, 4 = 44, 5 = 48 bits.
    public var inputAddressSize: Int = 5
    public var outputAddressSize: Int = 5
    /// IDR1.PAGESIZE: the register page size, 4 KiB or 64 KiB; IDR1.NUMPAGENDXB gives the
    /// number of pages in the global space (2^(NUMPAGENDXB+1)); the context banks follow it.
    public var pageShift: Int = 12
    public var numPageIndexBits: Int = 4
    /// IDR7.MAJOR / MINOR: the implementation revision (MMU-500 r2p4).
    public var revision: (major: Int, minor: Int) = (2, 4)
    /// TLB entries before the oldest is evicted (a model size, not architected).
    public var tlbEntries: Int = 64

    public init() {}

    public static func == (a: Self, b: Self) -> Bool {
        a.streamMappingGroups == b.streamMappingGroups && a.contextBanks == b.contextBanks
            && a.stage2OnlyContextBanks == b.stage2OnlyContextBanks && a.stage1 == b.stage1 && a.stage2 == b.stage2
            && a.streamMatching == b.streamMatching && a.streamIDBits == b.streamIDBits
            && a.inputAddressSize == b.inputAddressSize && a.outputAddressSize == b.outputAddressSize
            && a.pageShift == b.pageShift && a.numPageIndexBits == b.numPageIndexBits
            && a.revision == b.revision && a.tlbEntries == b.tlbEntries
            && a.architectureVersion == b.architectureVersion && a.aarch32LongDescriptor == b.aarch32LongDescriptor
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(streamMappingGroups); hasher.combine(contextBanks); hasher.combine(pageShift)
        hasher.combine(numPageIndexBits); hasher.combine(stage1); hasher.combine(stage2)
        hasher.combine(architectureVersion)
    }

    /// An Arm CoreLink MMU-401 as the Juno r1/r2 PCIe SMMU reports itself to Linux (boot log of
    /// a Juno r2, arm-smmu `arm_smmu_device_cfg_probe`: "SMMUv1 with: stage 2 translation,
    /// coherent table walk, stream matching with 32 register groups, 4 context banks (4 stage-2
    /// only), Supported page sizes: 0x60211000, Stage-2: 40-bit IPA -> 40-bit PA"): SMMU
    /// architecture version 1, stage 2 only, 32 SMRs, 4 stage-2 context banks, 40-bit IAS and
    /// OAS, 4 KiB register pages in a 64 KiB window (NUMPAGENDXB = 2: no "address space size
    /// differs" warning in that log). IDR0.PTFS[24] (no AArch32 short-descriptor) is set, since
    /// the page sizes Linux printed lack the short-descriptor 1M/16M. NUMSIDB (15) and IDR7 (r0p0)
    /// are the model's choices: the log does not show them.
    public static var mmu401: SMMUv2Configuration {
        var c = SMMUv2Configuration()
        c.architectureVersion = 1
        c.aarch32LongDescriptor = true
        c.stage1 = false
        c.stage2 = true
        c.streamMappingGroups = 32
        c.contextBanks = 4
        c.stage2OnlyContextBanks = 4
        c.inputAddressSize = 2
        c.outputAddressSize = 2
        c.pageShift = 12
        c.numPageIndexBits = 2
        c.revision = (0, 0)
        return c
    }

    /// A generic SMMU architecture version 1 part (`arm,smmu-v1`, `arm,mmu-400`) fitted to a
    /// `reg` window as `fitting(windowSize:)` does: stage 1 and stage 2, AArch32 long-descriptor
    /// formats only, 40-bit IAS/OAS (the VMSAv7 LPAE limits), 8 context banks at most with none
    /// restricted to stage 2. The ID values are the model's choice of what the architecture
    /// permits, not a particular part's.
    public static func smmuV1(windowSize size: UInt64) -> SMMUv2Configuration {
        var c = fitting(windowSize: size)
        c.architectureVersion = 1
        c.aarch32LongDescriptor = true
        c.streamMappingGroups = 32
        c.contextBanks = min(c.contextBanks, 8)
        c.inputAddressSize = 2
        c.outputAddressSize = 2
        c.revision = (0, 0)
        return c
    }

    /// The layout that fills a `reg` window of `size` bytes, as MMU-500 integrations size it:
    /// global space and context bank space are 2^(NUMPAGENDXB+1) pages each (§10.1 "SMMU address
    /// map"), so `size` = 2 × NUMPAGE × PAGESIZE. 4 KiB pages when that fits NUMPAGENDXB's three
    /// bits, else 64 KiB pages (NXP's 8 MiB window is 64 pages of 64 KiB per half). Context banks
    /// are capped by the pages available.
    public static func fitting(windowSize size: UInt64) -> SMMUv2Configuration {
        var configuration = SMMUv2Configuration()
        for shift in [12, 16] {
            let pages = size >> UInt64(shift + 1)
            guard pages >= 2, pages & (pages - 1) == 0, pages <= 256 else { continue }
            configuration.pageShift = shift
            configuration.numPageIndexBits = pages.trailingZeroBitCount - 1
            configuration.contextBanks = min(configuration.contextBanks, Int(pages))
            return configuration
        }
        return configuration
    }

    /// Bytes of one register page.
    public var pageSize: UInt64 { UInt64(1) << UInt64(pageShift) }
    /// NUMPAGE: pages in the global address space; context bank n is page NUMPAGE + n.
    public var globalPages: UInt64 { UInt64(1) << UInt64(numPageIndexBits + 1) }
    /// The whole register window: global space plus context bank space.
    public var mmioSize: UInt64 { 2 &* globalPages &* pageSize }

    /// Address bits for an IAS/OAS/UBS encoding (§10.6.4); nil for a reserved value.
    public static func addressBits(_ field: Int) -> Int? {
        switch field {
        case 0: 32
        case 1: 36
        case 2: 40
        case 3: 42
        case 4: 44
        case 5: 48
        default: nil
        }
    }

    /// SMMU_IDR0 (§10.6.2): S1TS[30], S2TS[29], NTS[28], SMS[27], ATOSNS[26] (no ATOS here, so
    /// set on version 2; version 1 has no such bit), PTFS[25:24] (0b10: no AArch32 format, the
    /// MMU-500 default; 0b01: AArch32 long-descriptor but no short-descriptor format, which the
    /// model never implements),
    /// NUMIRPT[23:16] = the context interrupts (one per bank), CTTW[14] (coherent walks),
    /// NUMSIDB[12:9], NUMSMRG[7:0].
    public var idr0: UInt32 {
        var value: UInt32 = 0
        if stage1 { value |= 1 << 30 }
        if stage2 { value |= 1 << 29 }
        if stage1 && stage2 { value |= 1 << 28 }
        if streamMatching { value |= 1 << 27 }
        if architectureVersion >= 2 { value |= 1 << 26 }
        value |= (aarch32LongDescriptor ? 0b01 : 0b10) << 24
        value |= UInt32(clamping: min(contextBanks, 255)) << 16
        value |= 1 << 14
        value |= UInt32(clamping: min(max(streamIDBits, 0), 15)) << 9
        value |= UInt32(clamping: min(max(streamMappingGroups, 0), 255))
        return value
    }

    /// SMMU_IDR1 (§10.6.3): PAGESIZE[31], NUMPAGENDXB[30:28], NUMS2CB[23:16], NUMCB[7:0].
    public var idr1: UInt32 {
        var value: UInt32 = pageShift == 16 ? 1 << 31 : 0
        value |= UInt32(clamping: min(max(numPageIndexBits, 0), 7)) << 28
        value |= UInt32(clamping: min(max(stage2OnlyContextBanks, 0), 255)) << 16
        value |= UInt32(clamping: min(max(contextBanks, 0), 255))
        return value
    }

    /// SMMU_IDR2 (§10.6.4): VMID16S[15], PTFSv8_4kB[12], UBS[11:8], OAS[7:4], IAS[3:0]. Only
    /// the 4 KiB granule is advertised (the walker implements 4 KiB). Version 1 has OAS and IAS
    /// only (bits [31:8] reserved).
    public var idr2: UInt32 {
        if architectureVersion < 2 {
            return UInt32(clamping: min(max(outputAddressSize, 0), 15)) << 4 | UInt32(clamping: min(max(inputAddressSize, 0), 15))
        }
        var value: UInt32 = 1 << 15 | 1 << 12
        value |= UInt32(clamping: min(max(inputAddressSize, 0), 15)) << 8
        value |= UInt32(clamping: min(max(outputAddressSize, 0), 15)) << 4
        value |= UInt32(clamping: min(max(inputAddressSize, 0), 15))
        return value
    }

    /// SMMU_IDR7 (§10.6.4 "IMPLEMENTATION DEFINED"; MMU-500 TRM: MAJOR[7:4], MINOR[3:0]).
    public var idr7: UInt32 {
        UInt32(clamping: min(max(revision.major, 0), 15)) << 4 | UInt32(clamping: min(max(revision.minor, 0), 15))
    }
}
