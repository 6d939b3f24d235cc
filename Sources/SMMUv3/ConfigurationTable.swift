/// The configuration cache's storage: an open-addressed table (linear probing, at most half
/// full) on a packed 64-bit key — the StreamID for STEs, `StreamID << 32 | CD index` for CDs —
/// in place of a Dictionary, whose hashing of the key was a large part of every translation
/// that hit the TLB.
///
/// Slots are one buffer of optionals owned by this object (initialized in `init`/`grow`,
/// deinitialized in `deinit`), so lookups go through no Array uniqueness or exclusivity check.
/// Every index is `hash & mask`, in range whatever the key (StreamIDs come from devices).
/// Removal rebuilds the table (linear probing has no tombstones); removals are CFGI_* commands,
/// never the translation path.
final class ConfigurationTable<Value> {
    private var keys: UnsafeMutablePointer<UInt64>
    private var values: UnsafeMutablePointer<Value?>
    private var mask: Int
    private(set) var count = 0

    init() {
        mask = 7
        keys = .allocate(capacity: 8)
        keys.initialize(repeating: 0, count: 8)
        values = .allocate(capacity: 8)
        values.initialize(repeating: nil, count: 8)
    }

    deinit {
        values.deinitialize(count: mask + 1)
        values.deallocate()
        keys.deallocate()
    }

    /// Stored keys are `key + 1`, so 0 marks an empty slot (a key of `UInt64.max` is never used:
    /// StreamIDs and CD indices are 32 bits each).
    @inline(__always)
    private static func home(_ stored: UInt64, mask: Int) -> Int {
        var h = stored &* 0x9E37_79B9_7F4A_7C15
        h ^= h &>> 32
        return Int(truncatingIfNeeded: h) & mask
    }

    @inline(__always)
    subscript(key: UInt64) -> Value? {
        let stored = key &+ 1
        var i = Self.home(stored, mask: mask)
        while true {
            let k = keys[i]
            if k == stored { return values[i] }
            if k == 0 { return nil }
            i = (i &+ 1) & mask
        }
    }

    /// Inserts or replaces the value for `key`.
    func set(_ value: Value, for key: UInt64) {
        let stored = key &+ 1
        var i = Self.home(stored, mask: mask)
        while keys[i] != 0 {
            if keys[i] == stored { values[i] = value; return }
            i = (i &+ 1) & mask
        }
        if (count + 1) * 2 > mask + 1 {
            grow()
            set(value, for: key)
            return
        }
        keys[i] = stored
        values[i] = value
        count += 1
    }

    private func grow() {
        rebuild(slotCount: (mask + 1) * 2) { _ in true }
    }

    /// Keeps the entries whose key satisfies `keep`, in a table of `slotCount` slots.
    private func rebuild(slotCount: Int, keep: (UInt64) -> Bool) {
        let oldKeys = keys, oldValues = values, oldCount = mask + 1
        keys = .allocate(capacity: slotCount)
        keys.initialize(repeating: 0, count: slotCount)
        values = .allocate(capacity: slotCount)
        values.initialize(repeating: nil, count: slotCount)
        mask = slotCount - 1
        count = 0
        for i in 0..<oldCount where oldKeys[i] != 0 && keep(oldKeys[i] &- 1) {
            if let value = oldValues[i] { set(value, for: oldKeys[i] &- 1) }
        }
        oldValues.deinitialize(count: oldCount)
        oldValues.deallocate()
        oldKeys.deallocate()
    }

    /// Makes this table hold exactly what `other` holds, slot for slot (for a forked world).
    func copyContents(of other: ConfigurationTable<Value>) {
        values.deinitialize(count: mask + 1)
        values.deallocate()
        keys.deallocate()
        let slotCount = other.mask + 1
        keys = .allocate(capacity: slotCount)
        keys.initialize(from: other.keys, count: slotCount)
        values = .allocate(capacity: slotCount)
        values.initialize(from: other.values, count: slotCount)
        mask = other.mask
        count = other.count
    }

    /// Removes every entry whose key satisfies `predicate`.
    func removeAll(where predicate: (UInt64) -> Bool) {
        var any = false
        for i in 0...mask where keys[i] != 0 && predicate(keys[i] &- 1) { any = true; break }
        guard any else { return }
        rebuild(slotCount: mask + 1) { !predicate($0) }
    }

    func removeAll() {
        guard count > 0 else { return }
        for i in 0...mask { keys[i] = 0; values[i] = nil }
        count = 0
    }
}
