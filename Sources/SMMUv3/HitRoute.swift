/// What a TLB hit needs from the configuration of one (StreamID, SubstreamID) of a stage-1 or
/// nested stream: the TLB tag fields and the TBI bits, resolved once from the cached STE and
/// CD (SMMUv3 §5.2 S1CDMax/S1DSS for the CD index, §3.17 for the tag, §3.4.1 for TBI), so
/// `SMMUTranslator.translate` can answer a TLB hit with one probe here and one in the TLB
/// instead of two configuration-cache lookups that copy the whole decoded STE and CD.
///
/// A route is derived from the configuration cache and never outlives it: it is stored only
/// after the full path resolved the CD without a fault, and every CFGI_* (any invalidation
/// that can drop an STE or CD) clears the whole table. So a route exists only while the
/// STE and CD it was computed from are still cached, and using it changes no outcome.
struct HitRoute {
    /// `HitRouteTable.key(streamID:substreamID:)`; 0 marks an empty slot.
    var key: UInt64
    var kind: TLBEntryKind
    var vmid: UInt16
    /// The CD's ASID; unused when `hasASID` is false (EL2 StreamWorld).
    var asid: UInt32
    var hasASID: Bool
    /// CD.TBI0 / CD.TBI1.
    var topByteIgnore0: Bool
    var topByteIgnore1: Bool
}

/// A direct-mapped table of `HitRoute`s (64 slots). A collision replaces the older route; a
/// missing route only sends the transaction down the full path, which behaves the same.
///
/// Storage is one buffer allocated in `init` and freed in `deinit`, reached through `let`
/// properties only, so a lookup makes no exclusivity check and no Array bounds or
/// uniqueness check. Every index is `hash & mask`, in range whatever the key.
final class HitRouteTable {
    static let slotCount = 64
    private let slots: UnsafeMutablePointer<HitRoute>
    private let mask = HitRouteTable.slotCount - 1

    private static let empty = HitRoute(key: 0, kind: .stage1, vmid: 0, asid: 0, hasASID: false,
                                        topByteIgnore0: false, topByteIgnore1: false)

    init() {
        slots = .allocate(capacity: Self.slotCount)
        slots.initialize(repeating: Self.empty, count: Self.slotCount)
    }

    deinit {
        slots.deallocate()
    }

    /// The packed key: StreamID in the high word; the low word is 0x4000_0000 without a
    /// SubstreamID, or 0x8000_0000 | SubstreamID with one. Nil for a SubstreamID wider than 20
    /// bits (IDR1.SSIDSIZE ≤ 20, §6.3.2), which no route holds (S1CDMax ≤ 20 rejects it), so
    /// such a transaction always takes the full path and faults there. Never 0.
    @inline(__always)
    static func key(streamID: UInt32, substreamID: UInt32?) -> UInt64? {
        guard let substreamID else { return UInt64(streamID) &<< 32 | 0x4000_0000 }
        guard substreamID >> 20 == 0 else { return nil }
        return UInt64(streamID) &<< 32 | 0x8000_0000 | UInt64(substreamID)
    }

    @inline(__always)
    private func index(_ key: UInt64) -> Int {
        var h = key &* 0x9E37_79B9_7F4A_7C15
        h ^= h &>> 29
        return Int(truncatingIfNeeded: h &>> 32) & mask
    }

    @inline(__always)
    func route(for key: UInt64) -> HitRoute? {
        let slot = slots[index(key)]
        return slot.key == key ? slot : nil
    }

    @inline(__always)
    func store(_ route: HitRoute) {
        slots[index(route.key)] = route
    }

    /// Forgets every route (any CFGI_*, a copied translator).
    func removeAll() {
        slots.update(repeating: Self.empty, count: Self.slotCount)
    }
}
