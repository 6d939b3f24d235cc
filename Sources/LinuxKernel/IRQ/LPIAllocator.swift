/// The ITS LPI allocator (irq-gic-v3-its.c `its_lpi_init`, `alloc_lpi_range`, `free_lpi_range`,
/// `its_lpi_alloc`): a sorted list of free [base, base + span) ranges; allocation takes the
/// first range big enough (first fit, from the bottom) and `its_lpi_alloc` halves the request
/// until something fits. Freed ranges are merged with their neighbours.
public struct LPIAllocator: Hashable, Sendable {
    public struct Range: Hashable, Sendable {
        public var base: UInt32
        public var span: Int
    }

    public private(set) var free: [Range]

    /// All of [first, first + count) free (`its_lpi_init` frees the whole range).
    public init(first: UInt32, count: Int) {
        free = count > 0 ? [Range(base: first, span: count)] : []
    }

    /// `alloc_lpi_range`: the first free range with at least `count` LPIs.
    public mutating func allocateRange(_ count: Int) -> UInt32? {
        guard count > 0 else { return nil }
        for i in free.indices where free[i].span >= count {
            let base = free[i].base
            free[i].base = base &+ UInt32(count)
            free[i].span -= count
            if free[i].span == 0 { free.remove(at: i) }
            return base
        }
        return nil
    }

    /// `its_lpi_alloc(nr_irqs, &base, &nr_ids)`: tries `count`, then halves it until a range is
    /// found; returns the base and the count obtained.
    public mutating func allocate(_ count: Int) -> (base: UInt32, count: Int)? {
        var n = count
        while n > 0 {
            if let base = allocateRange(n) { return (base, n) }
            n /= 2
        }
        return nil
    }

    /// `free_lpi_range`: returns [base, base + count) and merges neighbours.
    public mutating func release(base: UInt32, count: Int) {
        guard count > 0 else { return }
        var index = free.firstIndex { $0.base > base } ?? free.count
        free.insert(Range(base: base, span: count), at: index)
        if index + 1 < free.count, UInt64(free[index].base) + UInt64(free[index].span) == UInt64(free[index + 1].base) {
            free[index].span += free[index + 1].span
            free.remove(at: index + 1)
        }
        if index > 0, UInt64(free[index - 1].base) + UInt64(free[index - 1].span) == UInt64(free[index].base) {
            free[index - 1].span += free[index].span
            free.remove(at: index)
            index -= 1
        }
    }

    /// Total free LPIs.
    public var freeCount: Int { free.reduce(0) { $0 + $1.span } }
}
