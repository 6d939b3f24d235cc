import Bus
import SMMUv3

/// `struct arm_smmu_strtab_cfg` and `arm_smmu_init_strtab`: the stream table in kernel pages.
///
/// - Linear (`arm_smmu_init_strtab_linear`) when the SMMU lacks 2-level support or
///   SIDSIZE ≤ STRTAB_SPLIT (8): 2^SIDSIZE STEs, every one initialised to abort
///   (`arm_smmu_init_initial_stes` with the default `disable_bypass`).
/// - 2-level (`arm_smmu_init_strtab_2lvl`): L1 entries for every SID up to 2^SIDSIZE − 1,
///   capped at STRTAB_MAX_L1_ENTRIES (2^17); each L2 table of 2^STRTAB_SPLIT = 256 STEs
///   (16 KiB) is allocated when a master first uses a SID in it (`arm_smmu_init_l2_strtab`),
///   filled with abort STEs, then published by an L1 descriptor with Span = SPLIT + 1.
public final class ArmSMMUv3StreamTable {
    public static let split = 8
    public static let maxL1Entries = 1 << 17

    public let twoLevel: Bool
    /// The linear table or the L1 table.
    public let base: PhysicalAddress
    /// Linear: STEs; 2-level: L1 descriptors.
    public let entries: Int
    public let streamIDBits: Int
    /// L2 tables by L1 index.
    public private(set) var level2: [Int: PhysicalAddress] = [:]
    unowned(safe) let driver: ArmSMMUv3Driver

    init(driver: ArmSMMUv3Driver) throws(Errno) {
        self.driver = driver
        let features = driver.features
        streamIDBits = min(max(features.streamIDBits, 0), 32)
        twoLevel = features.twoLevelStreamTable
        if twoLevel {
            let lastL1 = Int((UInt64(1) << UInt64(streamIDBits)) &- 1) >> Self.split
            entries = min(lastL1 + 1, Self.maxL1Entries)
            if entries <= lastL1 {
                driver.log("2-level strtab only covers \(entries << Self.split)/\(UInt64(1) << UInt64(streamIDBits)) SIDs")
            }
            base = try driver.kernel.pages.allocate(bytes: UInt64(entries) * 8, alignment: 64)
        } else {
            entries = 1 << min(streamIDBits, 20)
            base = try driver.kernel.pages.allocate(bytes: UInt64(entries) * 64, alignment: 64)
            try Self.initialiseAbort(driver: driver, at: base, count: entries)
        }
    }

    /// A forked world's copy of `other` for `driver`: the same layout and L2 tables (their
    /// entries are in the fork's copy of RAM).
    init(copying other: ArmSMMUv3StreamTable, driver: ArmSMMUv3Driver) {
        self.driver = driver
        twoLevel = other.twoLevel
        base = other.base
        entries = other.entries
        streamIDBits = other.streamIDBits
        level2 = other.level2
    }

    /// `arm_smmu_init_initial_stes`: abort STEs (V=1, Config=abort).
    static func initialiseAbort(driver: ArmSMMUv3Driver, at base: PhysicalAddress, count: Int) throws(Errno) {
        let abort = ArmSMMUv3Entries.abortSTE()
        for i in 0..<count {
            try driver.writeQword(PhysicalAddress(base.rawValue &+ UInt64(i) &* 64), abort.dw0)
        }
    }

    /// STRTAB_BASE: RA (bit 62) | ADDR[51:6].
    public var baseRegister: UInt64 { (1 << 62) | base.rawValue.keepingBits(51, 6) }

    /// STRTAB_BASE_CFG: FMT[17:16] (0 linear, 1 2-level), SPLIT[10:6], LOG2SIZE[5:0]
    /// (`arm_smmu_write_strtab`: linear LOG2SIZE = sid_bits; 2-level LOG2SIZE =
    /// ilog2(L1 entries) + SPLIT).
    public var baseConfigRegister: UInt32 {
        if twoLevel {
            let log2 = (Int.bitWidth - 1 - entries.leadingZeroBitCount) + Self.split
            return (1 << 16) | (UInt32(Self.split) << 6) | UInt32(log2 & 0x3F)
        }
        return UInt32(streamIDBits & 0x3F)
    }

    /// `arm_smmu_sid_in_range`.
    func contains(_ sid: UInt32) -> Bool {
        if twoLevel { return Int(sid >> UInt32(Self.split)) < entries }
        return UInt64(sid) < UInt64(entries)
    }

    /// `arm_smmu_init_l2_strtab` for the L2 table holding `sid`, if not there yet.
    func ensureLevel2(for sid: UInt32) throws(Errno) {
        guard twoLevel else { return }
        let l1 = Int(sid >> UInt32(Self.split))
        guard l1 < entries else { throw .ERANGE }
        guard level2[l1] == nil else { return }
        let count = 1 << Self.split
        let table = try driver.kernel.pages.allocate(bytes: UInt64(count) * 64, alignment: UInt64(count) * 64)
        try Self.initialiseAbort(driver: driver, at: table, count: count)
        level2[l1] = table
        // `arm_smmu_write_strtab_l1_desc`: Span = STRTAB_SPLIT + 1, L2Ptr.
        let descriptor = LevelOneStreamTableDescriptor(span: Self.split + 1, l2Ptr: table.rawValue)
        try driver.writeQword(PhysicalAddress(base.rawValue &+ UInt64(l1) &* 8), descriptor.rawValue)
    }

    /// `arm_smmu_get_step_for_sid`: the STE's address, or nil if its L2 table is absent.
    public func steAddress(for sid: UInt32) -> PhysicalAddress? {
        if twoLevel {
            guard let table = level2[Int(sid >> UInt32(Self.split))] else { return nil }
            return PhysicalAddress(table.rawValue &+ UInt64(sid & 0xFF) &* 64)
        }
        guard UInt64(sid) < UInt64(entries) else { return nil }
        return PhysicalAddress(base.rawValue &+ UInt64(sid) &* 64)
    }
}

extension ArmSMMUv3Driver {
    func writeQword(_ address: PhysicalAddress, _ value: UInt64) throws(Errno) {
        do { try kernel.bus.write(address, size: 8, value: value, requester: .cpu(0)) } catch { throw .EIO }
    }

    func readQword(_ address: PhysicalAddress) throws(Errno) -> UInt64 {
        do { return try kernel.bus.read(address, size: 8, requester: .cpu(0)) } catch { throw .EIO }
    }

    func readEntry(_ address: PhysicalAddress) throws(Errno) -> [UInt64] {
        var words: [UInt64] = []
        words.reserveCapacity(8)
        for i in 0..<8 { words.append(try readQword(PhysicalAddress(address.rawValue &+ UInt64(i) * 8))) }
        return words
    }

    /// The STE for `sid` as it is in memory now (for tests and reports).
    public func streamTableEntry(for sid: StreamID) throws(Errno) -> StreamTableEntry? {
        guard let address = streamTable?.steAddress(for: sid.rawValue) else { return nil }
        return StreamTableEntry(words: try readEntry(address))
    }
}
