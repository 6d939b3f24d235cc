import Bus

/// What kind of translation a TLB entry caches (SMMUv3 §3.17; docs/hardware.md §TLB and invalidation). The kind is
/// part of the tag, so an S2-only entry for IPA X never answers a stage-1 lookup of VA X.
public enum TLBEntryKind: UInt8, Hashable, Sendable, CaseIterable {
    /// NS-EL1 stage 1 only (Config=0b101): VMID (STE.S2VMID when S2P=1) + ASID or global.
    case stage1 = 0
    /// Stage 2 only (Config=0b110, or S1DSS=bypass): VMID, keyed by IPA.
    case stage2 = 1
    /// Combined stage 1 + 2 (Config=0b111): VMID + ASID or global, keyed by VA.
    case nested = 2
    /// EL2 StreamWorld stage 1: no VMID, no ASID.
    case el2 = 3
}

/// The tag of one TLB entry.
public struct TLBKey: Hashable, Sendable {
    /// Input address >> `pageShift`.
    public var pageNumber: UInt64
    public var pageShift: UInt8
    public var kind: TLBEntryKind
    public var vmid: UInt16
    /// ASID, or `TLBKey.global` for nG=0 and for kinds without an ASID.
    public var asid: UInt32

    public static let global: UInt32 = 0x1_0000

    @inlinable
    public init(pageNumber: UInt64, pageShift: UInt8, kind: TLBEntryKind, vmid: UInt16, asid: UInt32) {
        self.pageNumber = pageNumber
        self.pageShift = pageShift
        self.kind = kind
        self.vmid = vmid
        self.asid = asid
    }

    /// First input address the entry covers.
    public var base: UInt64 { pageNumber &<< UInt64(pageShift) }
    /// Last input address the entry covers.
    public var last: UInt64 { base | UInt64.lowMask(Int(pageShift)) }
}

/// One cached translation (leaf only: this model has no walk caches, so every miss costs the
/// architected number of descriptor reads).
public struct TLBEntry: Hashable, Sendable {
    /// Output PA of the first byte of the page.
    public var outputBase: UInt64
    /// Stage-1 output IPA of the first byte (nested only).
    public var intermediateBase: UInt64
    public var hasIntermediate: Bool
    /// Stage-1 permissions, `StagePermissions` bits (all set when stage 1 bypasses).
    public var stage1Permissions: UInt8
    /// Stage-2 permissions (all set when stage 2 bypasses).
    public var stage2Permissions: UInt8

    public init(outputBase: UInt64, intermediateBase: UInt64, hasIntermediate: Bool, stage1Permissions: UInt8, stage2Permissions: UInt8) {
        self.outputBase = outputBase
        self.intermediateBase = intermediateBase
        self.hasIntermediate = hasIntermediate
        self.stage1Permissions = stage1Permissions
        self.stage2Permissions = stage2Permissions
    }
}

/// Permission bits cached in a TLB entry. Stage 1 distinguishes privileged and unprivileged
/// access (AP[1], PXN/UXN); stage 2 does not (S2AP, XN), so its bits are set for both.
public enum StagePermissions {
    public static let privilegedRead: UInt8 = 1 << 0
    public static let privilegedWrite: UInt8 = 1 << 1
    public static let privilegedExecute: UInt8 = 1 << 2
    public static let unprivilegedRead: UInt8 = 1 << 3
    public static let unprivilegedWrite: UInt8 = 1 << 4
    public static let unprivilegedExecute: UInt8 = 1 << 5
    public static let all: UInt8 = 0b11_1111

    /// The bit an access needs. Writes are always data accesses (§13.1.2: the SMMU treats
    /// incoming writes as Data regardless of InD).
    @inlinable
    public static func required(write: Bool, instruction: Bool, privileged: Bool) -> UInt8 {
        let base: UInt8 = write ? privilegedWrite : (instruction ? privilegedExecute : privilegedRead)
        return privileged ? base : base &<< 3
    }
}

/// The SMMU TLB: an open-addressed table (linear probing, at most half full) whose tag is two
/// packed words — the page number and `shift | kind | VMID | ASID` — so a lookup is a multiply,
/// a mask and one or two compares instead of a Dictionary's hashing of a five-field struct. A
/// lookup tries each page size in use (smallest first) with the ASID and, for kinds with an
/// ASID, the global tag; it allocates nothing.
///
/// Replacement policy (a documented implementation choice, as QEMU's `smmu_iotlb_insert`):
/// bounded at `capacity` entries; inserting into a full TLB first flushes the whole TLB.
/// Deterministic, and it never keeps a stale entry past an invalidation.
///
/// Storage is two buffers allocated once in `init` and freed in `deinit` (the slots, and a
/// scratch area of `capacity` entries `removeAll(where:)` rebuilds through), so neither the hit
/// path nor an invalidation allocates, and no access goes through Array's uniqueness and
/// exclusivity checks. Every index is `hash & mask` with `mask = slotCount - 1`, so it is in
/// range whatever the tag (input addresses are device-controlled; nothing else indexes).
public final class TranslationLookasideBuffer {
    /// One slot: `tag == 0` is empty (a live tag always has bit 63 set).
    @usableFromInline
    struct Slot {
        @usableFromInline var page: UInt64
        @usableFromInline var tag: UInt64
        @usableFromInline var entry: TLBEntry
    }

    public let capacity: Int
    @usableFromInline let slots: UnsafeMutablePointer<Slot>
    @usableFromInline let mask: Int
    /// Scratch for `removeAll(where:)`: the survivors, reinserted after the table is cleared.
    let scratch: UnsafeMutablePointer<Slot>
    /// The counters every lookup or insert reads or bumps, in a block this object allocates in
    /// `init` and frees in `deinit`, reached through a `let` pointer: as `var` stored
    /// properties each access made a dynamic exclusivity check (`swift_beginAccess`), a
    /// noticeable share of a translation. Safe: private to this object, used from one thread
    /// at a time, never yielded across a call.
    @usableFromInline
    struct Counts {
        @usableFromInline var count = 0
        /// Bit n set: some entry may have page shift n.
        @usableFromInline var shiftsInUse: UInt64 = 0
        @usableFromInline var overflowFlushes = 0
        @usableFromInline init() {}
    }
    @usableFromInline let counts: UnsafeMutablePointer<Counts>

    public var count: Int { counts.pointee.count }
    public var overflowFlushes: Int { counts.pointee.overflowFlushes }
    @usableFromInline var shiftsInUse: UInt64 {
        @inline(__always) get { counts.pointee.shiftsInUse }
        @inline(__always) set { counts.pointee.shiftsInUse = newValue }
    }

    public init(capacity: Int = 256) {
        self.capacity = max(capacity, 1)
        var slotCount = 8
        while slotCount < 2 * self.capacity { slotCount &<<= 1 }
        mask = slotCount - 1
        let empty = Slot(page: 0, tag: 0, entry: TLBEntry(outputBase: 0, intermediateBase: 0, hasIntermediate: false, stage1Permissions: 0, stage2Permissions: 0))
        slots = .allocate(capacity: slotCount)
        slots.initialize(repeating: empty, count: slotCount)
        scratch = .allocate(capacity: self.capacity)
        scratch.initialize(repeating: empty, count: self.capacity)
        counts = .allocate(capacity: 1)
        counts.initialize(to: Counts())
    }

    deinit {
        counts.deallocate()
        slots.deallocate()
        scratch.deallocate()
    }

    /// The second tag word: valid | page shift | kind | VMID | ASID (17 bits: 16 + global).
    @inlinable @inline(__always)
    static func tag(shift: Int, kind: TLBEntryKind, vmid: UInt16, asid: UInt32) -> UInt64 {
        (1 &<< 63) | (UInt64(shift & 63) &<< 40) | (UInt64(kind.rawValue & 3) &<< 33) | (UInt64(vmid) &<< 17) | UInt64(asid & 0x1_FFFF)
    }

    @inlinable @inline(__always)
    func home(page: UInt64, tag: UInt64) -> Int {
        var h = page &* 0x9E37_79B9_7F4A_7C15 ^ tag
        h ^= h &>> 29
        h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h &>> 32
        return Int(truncatingIfNeeded: h) & mask
    }

    @inlinable @inline(__always)
    func find(page: UInt64, tag: UInt64) -> Int? {
        var i = home(page: page, tag: tag)
        while true {
            let slot = slots[i]
            if slot.tag == tag && slot.page == page { return i }
            if slot.tag == 0 { return nil }
            i = (i &+ 1) & mask
        }
    }

    static func key(of slot: Slot) -> TLBKey {
        TLBKey(pageNumber: slot.page, pageShift: UInt8((slot.tag &>> 40) & 63),
               kind: TLBEntryKind(rawValue: UInt8((slot.tag &>> 33) & 3)) ?? .stage1,
               vmid: UInt16(truncatingIfNeeded: slot.tag &>> 17), asid: UInt32(slot.tag & 0x1_FFFF))
    }

    /// Finds the entry translating `address` for (kind, VMID, ASID). `asid` nil means the kind
    /// has no ASID (S2-only, EL2): only global-tagged entries match.
    @inlinable @inline(__always)
    public func lookup(address: UInt64, kind: TLBEntryKind, vmid: UInt16, asid: UInt32?) -> (TLBKey, TLBEntry)? {
        var shifts = shiftsInUse
        while shifts != 0 {
            let shift = shifts.trailingZeroBitCount
            shifts &= shifts &- 1
            let page = address &>> UInt64(shift)
            if let asid {
                if let i = find(page: page, tag: Self.tag(shift: shift, kind: kind, vmid: vmid, asid: asid)) {
                    return (TLBKey(pageNumber: page, pageShift: UInt8(shift), kind: kind, vmid: vmid, asid: asid), slots[i].entry)
                }
            }
            if let i = find(page: page, tag: Self.tag(shift: shift, kind: kind, vmid: vmid, asid: TLBKey.global)) {
                return (TLBKey(pageNumber: page, pageShift: UInt8(shift), kind: kind, vmid: vmid, asid: TLBKey.global), slots[i].entry)
            }
        }
        return nil
    }

    public func insert(_ entry: TLBEntry, for key: TLBKey) {
        let tag = Self.tag(shift: Int(key.pageShift), kind: key.kind, vmid: key.vmid, asid: key.asid)
        if let i = find(page: key.pageNumber, tag: tag) {
            slots[i].entry = entry
            return
        }
        if counts.pointee.count >= capacity { clear(); counts.pointee.overflowFlushes += 1 }
        place(Slot(page: key.pageNumber, tag: tag, entry: entry))
        shiftsInUse |= 1 &<< UInt64(key.pageShift & 63)
    }

    /// Puts a slot known to be absent into the first free place of its probe sequence.
    private func place(_ slot: Slot) {
        var i = home(page: slot.page, tag: slot.tag)
        while slots[i].tag != 0 { i = (i &+ 1) & mask }
        slots[i] = slot
        counts.pointee.count += 1
    }

    private func clear() {
        for i in 0...mask { slots[i].tag = 0 }
        counts.pointee.count = 0
        counts.pointee.shiftsInUse = 0
    }

    /// Removes every entry whose tag satisfies `predicate`; returns how many. The survivors are
    /// reinserted into a cleared table (linear probing has no tombstones), so the table stays
    /// as if they had been inserted alone.
    @discardableResult
    public func removeAll(where predicate: (TLBKey) -> Bool) -> Int {
        let before = count
        var kept = 0
        var shifts: UInt64 = 0
        for i in 0...mask where slots[i].tag != 0 && !predicate(Self.key(of: slots[i])) {
            scratch[kept] = slots[i]
            shifts |= 1 &<< ((slots[i].tag &>> 40) & 63)
            kept += 1
        }
        guard kept != before else { return 0 }
        clear()
        for i in 0..<kept { place(scratch[i]) }
        shiftsInUse = shifts
        return before - kept
    }

    /// Makes this TLB hold exactly what `other` holds, slot for slot (a forked world's SMMU must
    /// hit, miss and overflow as the original would). Both have the same capacity.
    func copyContents(of other: TranslationLookasideBuffer) {
        precondition(other.mask == mask, "TLB copy between different capacities")
        slots.update(from: other.slots, count: mask + 1)
        counts.pointee = other.counts.pointee
    }

    /// Every entry by tag (order unspecified; `sortedEntries` is the deterministic view).
    public var entries: [TLBKey: TLBEntry] {
        var out: [TLBKey: TLBEntry] = [:]
        for i in 0...mask where slots[i].tag != 0 { out[Self.key(of: slots[i])] = slots[i].entry }
        return out
    }

    /// The entries sorted by tag (for reports and tests).
    public var sortedEntries: [(TLBKey, TLBEntry)] {
        var out: [(TLBKey, TLBEntry)] = []
        for i in 0...mask where slots[i].tag != 0 { out.append((Self.key(of: slots[i]), slots[i].entry)) }
        return out.sorted { a, b in
            (a.0.kind.rawValue, a.0.vmid, a.0.asid, a.0.base, a.0.pageShift) <
                (b.0.kind.rawValue, b.0.vmid, b.0.asid, b.0.base, b.0.pageShift)
        }
    }
}
