/// The IOVA range cache of iova.c (`struct iova_rcache`, `struct iova_cpu_rcache`,
/// `struct iova_magazine`), for one CPU: per size order (pages 1, 2, 4, … 32) a `loaded` and a
/// `prev` magazine of up to `IOVA_MAG_SIZE` pfns, and a LIFO depot of full magazines.
///
/// Verified against torvalds/linux drivers/iommu/iova.c: IOVA_MAG_SIZE 127 (so a magazine with
/// its size word fills 1 KiB); insert pushes onto `loaded`, swapping in `prev` when `loaded` is
/// full and pushing `loaded` to the depot when both are; get pops from `loaded`, else swaps in
/// `prev`, else takes a depot magazine; `iova_magazine_pop` scans from the top for a pfn at or
/// below the limit and moves the last entry into the hole ("swap it to pop it"). The depot's
/// delayed reclaim (`IOVA_DEPOT_DELAY`, 100 ms) is time-driven and not modelled: depot
/// magazines stay until a flush.
public final class IOVARangeCache {
    /// `IOVA_MAG_SIZE`.
    public static let magazineSize = 127

    struct CPUCache {
        var loaded: [UInt64] = []
        var prev: [UInt64] = []

        mutating func swapMagazines() { (loaded, prev) = (prev, loaded) }
    }

    private var cpu = [CPUCache](repeating: CPUCache(), count: IOVADomain.rangeCacheMaxSize)
    private var depot = [[[UInt64]]](repeating: [], count: IOVADomain.rangeCacheMaxSize)

    init() {}

    /// `order_base_2(size)`, or nil when the size is not cached (log ≥ IOVA_RANGE_CACHE_MAX_SIZE).
    private func order(_ size: UInt64) -> Int? {
        guard size > 0 else { return nil }
        let log = size == 1 ? 0 : 64 - (size - 1).leadingZeroBitCount
        return log < IOVADomain.rangeCacheMaxSize ? log : nil
    }

    /// `iova_rcache_insert`.
    func insert(pfn: UInt64, size: UInt64) -> Bool {
        guard let o = order(size) else { return false }
        if cpu[o].loaded.count < Self.magazineSize {
        } else if cpu[o].prev.count < Self.magazineSize {
            cpu[o].swapMagazines()
        } else {
            depot[o].append(cpu[o].loaded)
            cpu[o].loaded = []
        }
        cpu[o].loaded.append(pfn)
        return true
    }

    /// `iova_rcache_get(iovad, size, limit_pfn)`: a cached pfn ≤ `limitPFN`, or nil.
    func get(size: UInt64, limitPFN: UInt64) -> UInt64? {
        guard let o = order(size) else { return nil }
        if !cpu[o].loaded.isEmpty {
        } else if !cpu[o].prev.isEmpty {
            cpu[o].swapMagazines()
        } else if let magazine = depot[o].popLast() {
            cpu[o].loaded = magazine
        } else {
            return nil
        }
        // iova_magazine_pop
        var i = cpu[o].loaded.count - 1
        while cpu[o].loaded[i] > limitPFN {
            if i == 0 { return nil }
            i -= 1
        }
        let pfn = cpu[o].loaded[i]
        if let last = cpu[o].loaded.popLast(), i < cpu[o].loaded.count { cpu[o].loaded[i] = last }
        return pfn
    }

    /// `free_cpu_cached_iovas` + `free_global_cached_iovas`: every cached pfn, to be freed.
    func flushAll() -> [UInt64] {
        var all: [UInt64] = []
        for o in 0..<cpu.count {
            all += cpu[o].loaded + cpu[o].prev + depot[o].flatMap { $0 }
            cpu[o] = CPUCache()
            depot[o] = []
        }
        return all
    }

    /// How many pfns are cached, per order (for tests and reports).
    public var cachedCounts: [Int] {
        (0..<cpu.count).map { cpu[$0].loaded.count + cpu[$0].prev.count + depot[$0].reduce(0) { $0 + $1.count } }
    }
}

extension IOVARangeCache {
    /// Takes `other`'s per-CPU magazines and depot (a forked world's copy): the rcache decides
    /// which IOVA `alloc_iova_fast` returns next, so it is state, not a mere cache.
    func copyState(of other: IOVARangeCache) {
        cpu = other.cpu
        depot = other.depot
    }
}
