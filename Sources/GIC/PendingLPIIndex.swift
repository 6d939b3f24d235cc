/// The redistributor's index of its pending LPIs by priority: a tournament tree over the words of
/// the pending bitmap (64 LPIs a word). A leaf holds the lowest priority value among the pending,
/// enabled LPIs of its word (0x100 when none); an inner node the lower of its two children.
///
/// ICC_IAR1_EL1 must return the highest-priority pending interrupt (GICv3 IHI 0069 §4.8: the
/// lowest priority value wins) and the model breaks ties by the lowest INTID (§4.8 leaves the
/// choice among equal priorities IMPLEMENTATION DEFINED). The root gives the winning priority in
/// O(1); descending to the leftmost leaf that holds it and scanning that word's bits gives the
/// lowest INTID with it, so an acknowledge costs O(log words + 64) instead of a walk over every
/// pending LPI. Setting or clearing a pending bit updates one leaf and its ancestors (O(log
/// words), stopping early once a node is unchanged).
///
/// The leaves are computed from the GIC-wide configuration cache, whose bytes change only when it
/// is loaded (EnableLPIs, INV, INVALL — through any redistributor). The index remembers the
/// cache `generation` it was built against; before answering, a redistributor brings it up to
/// date: one load of a few bytes since the last answer (an INV) updates only the words those
/// bytes cover, anything else rebuilds the leaves of the pending words (the summary bitmap finds
/// them) and every inner node. Model bookkeeping only; it changes no architected behaviour.
struct PendingLPIIndex {
    /// A leaf or node with no pending, enabled LPI below it.
    static let none: UInt16 = 0x100

    /// `tree[1]` is the root; the leaf of word w is `tree[leafBase + w]`.
    private(set) var tree: ContiguousArray<UInt16> = []
    private(set) var leafBase = 0
    /// The cache generation the leaves match; nil until built.
    private(set) var generation: UInt64?

    /// An empty, unbuilt index for a bitmap of `words` words.
    mutating func reset(words: Int) {
        var base = 1
        while base < words { base &<<= 1 }
        leafBase = base
        tree = ContiguousArray(repeating: Self.none, count: 2 &* base)
        generation = nil
    }

    /// Whether the index was built. A built index keeps every leaf of a word whose pending bits
    /// change up to date with the cache as it is then (the caller's `setLeaf`), so after a load
    /// only the words that load covered can be stale.
    var isBuilt: Bool { generation != nil }

    /// The lowest priority value among the pending, enabled LPIs of word `w` (bits `bits`).
    @inline(__always)
    static func leafValue(word w: Int, bits: UInt64, config: UnsafeBufferPointer<UInt8>) -> UInt16 {
        var best = none
        var rest = bits
        while rest != 0 {
            let i = w &* 64 &+ rest.trailingZeroBitCount
            rest &= rest &- 1
            guard i < config.count else { continue }
            let byte = config[i]
            guard LPIConfigurationTable.isEnabled(byte) else { continue }
            best = min(best, UInt16(LPIConfigurationTable.priority(byte)))
        }
        return best
    }

    /// Sets the leaf of word `w` and re-derives its ancestors, stopping at the first unchanged one.
    mutating func setLeaf(_ w: Int, _ value: UInt16) {
        var node = leafBase &+ w
        guard w >= 0, node < tree.count, tree[node] != value else { return }
        tree[node] = value
        node &>>= 1
        while node >= 1 {
            let v = min(tree[node &* 2], tree[node &* 2 &+ 1])
            if tree[node] == v { return }
            tree[node] = v
            node &>>= 1
        }
    }

    /// The leaf of word `w`, `none` beyond the tree.
    func leaf(_ w: Int) -> UInt16 {
        let node = leafBase &+ w
        return w >= 0 && node < tree.count ? tree[node] : Self.none
    }

    /// Brings the index up to cache generation `current` (`lastLoad`: the bytes its latest load
    /// re-read).
    mutating func refresh(to current: UInt64, lastLoad: (from: Int, count: Int), words: UnsafeBufferPointer<UInt64>,
                          summary: UnsafeBufferPointer<UInt64>, config: UnsafeBufferPointer<UInt8>) {
        if let built = generation, built &+ 1 == current, lastLoad.count > 0, lastLoad.count <= 64 * 4 {
            // One small load (INV) since the index was built: only the words it covers change.
            let first = lastLoad.from / 64
            let last = (lastLoad.from &+ lastLoad.count &- 1) / 64
            for w in first...last where w < words.count {
                setLeaf(w, Self.leafValue(word: w, bits: words[w], config: config))
            }
            generation = current
            return
        }
        for i in tree.indices { tree[i] = Self.none }
        for s in 0..<summary.count where summary[s] != 0 {
            var nonEmpty = summary[s]
            while nonEmpty != 0 {
                let w = s &* 64 &+ nonEmpty.trailingZeroBitCount
                nonEmpty &= nonEmpty &- 1
                guard w < words.count, leafBase &+ w < tree.count else { continue }
                tree[leafBase &+ w] = Self.leafValue(word: w, bits: words[w], config: config)
            }
        }
        var node = leafBase &- 1
        while node >= 1 {
            tree[node] = min(tree[node &* 2], tree[node &* 2 &+ 1])
            node &-= 1
        }
        generation = current
    }

    /// The pending, enabled LPI index (INTID − 8192) with the lowest priority value, the lowest
    /// index among equals, when that value is below `threshold`. The index must be current.
    func best(below threshold: UInt16, words: UnsafeBufferPointer<UInt64>, config: UnsafeBufferPointer<UInt8>) -> (index: Int, priority: UInt16)? {
        guard tree.count > 1 else { return nil }
        let priority = tree[1]
        guard priority != Self.none, priority < threshold else { return nil }
        var node = 1
        while node < leafBase {
            node = tree[node &* 2] == priority ? node &* 2 : node &* 2 &+ 1
        }
        let w = node &- leafBase
        guard w < words.count else { return nil }
        var rest = words[w]
        while rest != 0 {
            let i = w &* 64 &+ rest.trailingZeroBitCount
            rest &= rest &- 1
            guard i < config.count else { continue }
            let byte = config[i]
            if LPIConfigurationTable.isEnabled(byte), UInt16(LPIConfigurationTable.priority(byte)) == priority {
                return (i, priority)
            }
        }
        return nil
    }
}
