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

/// The SMMU TLB. A Dictionary keyed by the full tag; a lookup tries each page size in use
/// (smallest first) with the ASID and, for kinds with an ASID, the global tag, so it allocates
/// nothing.
///
/// Replacement policy (a documented implementation choice, as QEMU's `smmu_iotlb_insert`):
/// bounded at `capacity` entries; inserting into a full TLB first flushes the whole TLB.
/// Deterministic, and it never keeps a stale entry past an invalidation.
public final class TranslationLookasideBuffer {
    public let capacity: Int
    public private(set) var entries: [TLBKey: TLBEntry] = [:]
    /// Bit n set: some entry may have page shift n.
    @usableFromInline var shiftsInUse: UInt64 = 0
    public private(set) var overflowFlushes = 0

    public init(capacity: Int = 256) {
        self.capacity = max(capacity, 1)
    }

    public var count: Int { entries.count }

    /// Finds the entry translating `address` for (kind, VMID, ASID). `asid` nil means the kind
    /// has no ASID (S2-only, EL2): only global-tagged entries match.
    @inlinable
    public func lookup(address: UInt64, kind: TLBEntryKind, vmid: UInt16, asid: UInt32?) -> (TLBKey, TLBEntry)? {
        var mask = shiftsInUse
        while mask != 0 {
            let shift = mask.trailingZeroBitCount
            mask &= mask &- 1
            var key = TLBKey(pageNumber: address &>> UInt64(shift), pageShift: UInt8(shift), kind: kind, vmid: vmid, asid: TLBKey.global)
            if let asid {
                key.asid = asid
                if let entry = entries[key] { return (key, entry) }
                key.asid = TLBKey.global
            }
            if let entry = entries[key] { return (key, entry) }
        }
        return nil
    }

    public func insert(_ entry: TLBEntry, for key: TLBKey) {
        if entries[key] == nil && entries.count >= capacity {
            entries.removeAll(keepingCapacity: true)
            shiftsInUse = 0
            overflowFlushes += 1
        }
        entries[key] = entry
        shiftsInUse |= 1 &<< UInt64(key.pageShift & 63)
    }

    /// Removes every entry whose tag satisfies `predicate`; returns how many.
    @discardableResult
    public func removeAll(where predicate: (TLBKey) -> Bool) -> Int {
        let before = entries.count
        entries = entries.filter { !predicate($0.key) }
        if entries.isEmpty { shiftsInUse = 0 }
        return before - entries.count
    }

    /// The entries sorted by tag (for reports and tests; Dictionary order is not stable).
    public var sortedEntries: [(TLBKey, TLBEntry)] {
        entries.sorted { a, b in
            (a.key.kind.rawValue, a.key.vmid, a.key.asid, a.key.base, a.key.pageShift) <
                (b.key.kind.rawValue, b.key.vmid, b.key.asid, b.key.base, b.key.pageShift)
        }.map { ($0.key, $0.value) }
    }
}
