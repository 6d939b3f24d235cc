/// A set-associative cache of 64-bit keys to 64-bit values, the shape of GIC-600's ITS caches
/// (Arm CoreLink GIC-600 TRM, docs/hardware.md §ITS caches: three 2-way set-associative caches, DeviceID → ITT base, DeviceID+EventID →
/// collection/INTID, collection → target).
///
/// Replacement is least-recently-used within a set, driven by a use counter, so behaviour is a
/// pure function of the access sequence. Only valid table entries are cached; an entry leaves
/// only through an invalidation the ITS performs for a command (MAPD, MAPC, MAPTI, MAPI, MOVI,
/// DISCARD) or a table-register change, so software that edits ITS tables behind the ITS's back
/// keeps seeing the old entry, as on hardware.
public struct ITSCache: Sendable {
    /// Hit/miss/fill/invalidation counters.
    public struct Statistics: Hashable, Sendable {
        public var hits = 0
        public var misses = 0
        public var fills = 0
        public var invalidations = 0
        public init() {}
    }

    public let sets: Int
    public let ways: Int
    @usableFromInline var keys: ContiguousArray<UInt64>
    @usableFromInline var values: ContiguousArray<UInt64>
    @usableFromInline var lastUse: ContiguousArray<UInt64>  // 0 = empty slot
    @usableFromInline var clock: UInt64 = 0
    public var statistics = Statistics()

    /// `sets` must be a power of two (GICConfiguration.normalized ensures it).
    public init(sets: Int, ways: Int) {
        self.sets = max(sets, 1)
        self.ways = max(ways, 1)
        let n = self.sets * self.ways
        keys = ContiguousArray(repeating: 0, count: n)
        values = ContiguousArray(repeating: 0, count: n)
        lastUse = ContiguousArray(repeating: 0, count: n)
    }

    public init(_ geometry: GICConfiguration.CacheGeometry) {
        self.init(sets: geometry.sets, ways: geometry.ways)
    }

    @inlinable @inline(__always)
    func firstSlot(_ key: UInt64) -> Int {
        // Fold the key so DeviceID (high half) and EventID (low half) both pick the set.
        var h = key ^ (key &>> 32)
        h = h ^ (h &>> 11) ^ (h &>> 23)
        return Int(truncatingIfNeeded: h & UInt64(sets &- 1)) &* ways
    }

    /// The cached value for `key`, counting a hit or a miss.
    @inlinable
    public mutating func lookup(_ key: UInt64) -> UInt64? {
        let base = firstSlot(key)
        for slot in base..<(base &+ ways) where lastUse[slot] != 0 && keys[slot] == key {
            clock &+= 1
            lastUse[slot] = clock
            statistics.hits &+= 1
            return values[slot]
        }
        statistics.misses &+= 1
        return nil
    }

    /// Caches `value` for `key`, replacing the least recently used way of its set.
    @inlinable
    public mutating func fill(_ key: UInt64, _ value: UInt64) {
        let base = firstSlot(key)
        var victim = base
        for slot in base..<(base &+ ways) {
            if lastUse[slot] != 0 && keys[slot] == key { victim = slot; break }
            if lastUse[slot] < lastUse[victim] { victim = slot }
        }
        clock &+= 1
        keys[victim] = key
        values[victim] = value
        lastUse[victim] = clock
        statistics.fills &+= 1
    }

    /// Drops `key` if cached.
    public mutating func invalidate(_ key: UInt64) {
        let base = firstSlot(key)
        for slot in base..<(base &+ ways) where lastUse[slot] != 0 && keys[slot] == key {
            lastUse[slot] = 0
            statistics.invalidations &+= 1
        }
    }

    /// Drops every entry whose key matches (command path only: scans the whole cache).
    public mutating func invalidate(where matches: (UInt64) -> Bool) {
        for slot in 0..<keys.count where lastUse[slot] != 0 && matches(keys[slot]) {
            lastUse[slot] = 0
            statistics.invalidations &+= 1
        }
    }

    public mutating func invalidateAll() {
        for slot in 0..<keys.count where lastUse[slot] != 0 {
            lastUse[slot] = 0
            statistics.invalidations &+= 1
        }
    }

    /// Number of valid entries.
    public var count: Int { lastUse.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } }
}
