import Bus

/// `struct iova_domain` (drivers/iommu/iova.c): the IOVA allocator behind a DMA domain.
///
/// Allocated ranges are kept sorted by pfn, as iova.c keeps them in an rbtree, with the anchor
/// node at pfn `IOVA_ANCHOR` (~0) that every top-down walk starts from. The search is the one in
/// `__alloc_and_insert_iova_range`: start at the cached node for the limit (`cached_node`, or
/// `cached32_node` for a limit at or below 4 GiB), walk to lower ranges while the candidate
/// `(high - size) & align_mask` collides, and when the walk runs out below the start pfn retry
/// once above the first failure (`retry_pfn`), from the first node at or above the limit
/// (`iova_find_limit`). A failed 32-bit search remembers its size in `max32_alloc_size` so
/// later searches at least as big fail at once, until a free below 4 GiB resets it
/// (`__cached_rbnode_delete_update`). Reservations (`reserve_iova`) are ordinary nodes, merged
/// with what they overlap. Above that sits the per-CPU range cache (`IOVARangeCache`,
/// `alloc_iova_fast`/`free_iova_fast`), one CPU here since the kernel model runs on CPU 0.
///
/// Checked against drivers/iommu/iova.c (the rbtree allocator): IOVA_ANCHOR ~0;
/// `init_iova_domain` (dma_32bit_pfn = 1 << (32 − shift), max32_alloc_size = dma_32bit_pfn,
/// both cached nodes on the anchor); `__alloc_and_insert_iova_range` with `retry_pfn =
/// curr_iova->pfn_hi` and `low_pfn = retry_pfn + 1` (the 2023 stable fix "iommu/iova: Fix
/// alloc iova overflows issue") and `iova_find_limit` for the retry, including its shortcut to
/// the anchor for limits above 4 GiB; `__cached_rbnode_insert_update` /
/// `__cached_rbnode_delete_update`; `reserve_iova` / `__adjust_overlap_range`;
/// `alloc_iova_fast`'s rounding ("Freeing non-power-of-two-sized allocations back into the
/// IOVA caches will come back to bite us badly"). Some trees carry an augmented-rbtree or
/// maple-tree rework of this search; it is not what upstream ships and is not modelled.
public final class IOVADomain {
    /// One allocated or reserved range, [pfnLo, pfnHi] inclusive (`struct iova`).
    public struct Range: Hashable, Sendable {
        public var pfnLo: UInt64
        public var pfnHi: UInt64
    }

    /// `IOVA_ANCHOR`: the pfn of the sentinel node at the top of the tree.
    public static let anchorPFN = UInt64.max

    /// `iovad->granule`: the smallest page size of the domain.
    public let granule: UInt64
    /// `iova_shift`: log2(granule).
    public let shift: UInt64
    /// `start_pfn`: the lowest pfn handed out (1 for dma-iommu: IOVA 0 is never returned).
    public let startPFN: UInt64
    /// `dma_32bit_pfn`: 4 GiB in granules.
    public let dma32PFN: UInt64
    /// `max32_alloc_size`: a 32-bit search of this many pages or more is known to fail.
    public private(set) var max32AllocSize: UInt64

    /// The rbtree, in pfn order, the anchor last.
    public private(set) var ranges: [Range]
    /// `cached_node` / `cached32_node`, named by their pfn_lo (unique: ranges never overlap).
    private var cachedNodeLo: UInt64
    private var cached32NodeLo: UInt64
    /// `iovad->rcaches`.
    public let rangeCache = IOVARangeCache()

    /// `init_iova_domain(iovad, granule, start_pfn)`. `granule` must be a power of two (the
    /// caller takes the lowest bit of a page-size bitmap), else the next power of two is used.
    public init(granule: UInt64, startPFN: UInt64) {
        var g: UInt64 = 1
        while g < granule && g < (1 << 63) { g <<= 1 }
        self.granule = g
        self.shift = UInt64(self.granule.trailingZeroBitCount)
        self.startPFN = startPFN
        self.dma32PFN = shift >= 32 ? 1 : UInt64(1) << (32 - shift)
        self.max32AllocSize = dma32PFN
        self.ranges = [Range(pfnLo: Self.anchorPFN, pfnHi: Self.anchorPFN)]
        self.cachedNodeLo = Self.anchorPFN
        self.cached32NodeLo = Self.anchorPFN
    }

    // MARK: granule arithmetic (include/linux/iova.h)

    /// `iova_offset`.
    public func offset(_ address: UInt64) -> UInt64 { address & (granule - 1) }
    /// `iova_align`: round up to the granule; nil on overflow.
    public func align(_ size: UInt64) -> UInt64? {
        let (sum, overflow) = size.addingReportingOverflow(granule - 1)
        return overflow ? nil : sum & ~(granule - 1)
    }
    /// `iova_pfn`.
    public func pfn(_ address: UInt64) -> UInt64 { address >> shift }

    /// The ranges a caller may see (everything but the anchor).
    public var allocatedRanges: [Range] { ranges.filter { $0.pfnLo != Self.anchorPFN } }

    // MARK: tree helpers

    private func index(ofLo lo: UInt64) -> Int? {
        var low = 0, high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].pfnLo < lo { low = mid + 1 } else { high = mid }
        }
        return low < ranges.count && ranges[low].pfnLo == lo ? low : nil
    }

    /// Where a range starting at `lo` goes (`iova_insert_rbtree` order).
    private func insertionIndex(lo: UInt64) -> Int {
        var low = 0, high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].pfnLo < lo { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// `__get_cached_rbnode`.
    private func cachedIndex(limitPFN: UInt64) -> Int {
        let lo = limitPFN <= dma32PFN ? cached32NodeLo : cachedNodeLo
        return index(ofLo: lo) ?? (ranges.count - 1)
    }

    /// `iova_find_limit`: the first node (lowest pfn) that ends at or above `limitPFN`. Linux
    /// short-cuts to the anchor for limits above 4 GiB ("an incredibly crude approximation");
    /// kept, since it decides where a 64-bit retry walk starts.
    private func findLimit(_ limitPFN: UInt64) -> Int {
        if limitPFN > dma32PFN { return ranges.count - 1 }
        for (i, r) in ranges.enumerated() where r.pfnHi >= limitPFN { return i }
        return ranges.count - 1
    }

    // MARK: allocation (iova.c)

    /// `alloc_iova(iovad, size, limit_pfn, size_aligned)`: `size` pages at or below
    /// `limitPFN` (inclusive), searching top-down; nil when nothing fits.
    ///
    /// `__alloc_and_insert_iova_range` is called with `limit_pfn + 1`; with `size_aligned` the
    /// result is aligned to `fls_long(size - 1)` bits, i.e. to the size rounded up to a power of
    /// two (an allocation of 3 pages is 4-page aligned).
    public func allocate(size: UInt64, limitPFN: UInt64, sizeAligned: Bool) -> Range? {
        guard size > 0 else { return nil }
        let (limitExclusive, overflow) = limitPFN.addingReportingOverflow(1)
        let limit = overflow ? UInt64.max : limitExclusive
        var alignMask = UInt64.max
        if sizeAligned {
            let bits = 64 - (size - 1).leadingZeroBitCount  // fls_long(size - 1)
            alignMask = bits >= 64 ? 0 : alignMask << UInt64(bits)
        }
        var highPFN = limit
        var lowPFN = startPFN

        if limit <= dma32PFN && size >= max32AllocSize { return nil }

        var current: Int? = cachedIndex(limitPFN: limit)
        let retryPFN = ranges[current ?? (ranges.count - 1)].pfnHi
        var retried = false
        var newPFN: UInt64 = 0
        while true {
            // do { … } while (curr && new_pfn <= curr_iova->pfn_hi && new_pfn >= low_pfn)
            repeat {
                guard let c = current else { break }
                highPFN = min(highPFN, ranges[c].pfnLo)
                newPFN = (highPFN &- size) & alignMask
                current = c > 0 ? c - 1 : nil
            } while current.map { newPFN <= ranges[$0].pfnHi && newPFN >= lowPFN } ?? false

            if highPFN < size || newPFN < lowPFN {
                if !retried && lowPFN == startPFN && retryPFN < limit {
                    retried = true
                    highPFN = limit
                    lowPFN = retryPFN &+ 1
                    current = findLimit(limit)
                    continue
                }
                max32AllocSize = size
                return nil
            }
            break
        }
        let range = Range(pfnLo: newPFN, pfnHi: newPFN &+ (size - 1))
        ranges.insert(range, at: insertionIndex(lo: range.pfnLo))
        // __cached_rbnode_insert_update
        if range.pfnHi < dma32PFN { cached32NodeLo = range.pfnLo } else { cachedNodeLo = range.pfnLo }
        return range
    }

    /// `find_iova` + `__free_iova` (`free_iova(iovad, pfn)`): release the range containing
    /// `pfn`. Returns false when no allocated range contains it.
    @discardableResult
    public func free(pfn: UInt64) -> Bool {
        guard pfn != Self.anchorPFN,
              let i = ranges.firstIndex(where: { $0.pfnLo <= pfn && pfn <= $0.pfnHi }) else { return false }
        let freed = ranges[i]
        // __cached_rbnode_delete_update: the cached nodes move to the freed node's successor.
        let nextLo = ranges[i + 1 < ranges.count ? i + 1 : i].pfnLo
        if let c32 = index(ofLo: cached32NodeLo) {
            let cached = ranges[c32]
            if freed.pfnLo == cached.pfnLo || (freed.pfnHi < dma32PFN && freed.pfnLo >= cached.pfnLo) {
                cached32NodeLo = nextLo
            }
        }
        if freed.pfnLo < dma32PFN { max32AllocSize = dma32PFN }
        if let c = index(ofLo: cachedNodeLo), freed.pfnLo >= ranges[c].pfnLo { cachedNodeLo = nextLo }
        ranges.remove(at: i)
        return true
    }

    /// `reserve_iova(iovad, pfn_lo, pfn_hi)`: keep [lo, hi] out of every allocation. An
    /// overlapping node is extended downwards to cover `lo`; whatever lies above it is inserted
    /// as a new node (`__adjust_overlap_range`, `__insert_new_range`). Linux refuses pfns whose
    /// address would not fit in 64 bits; so does this (returns false).
    @discardableResult
    public func reserve(pfnLo: UInt64, pfnHi: UInt64) -> Bool {
        guard pfnLo <= pfnHi, shift == 0 || (pfnLo | pfnHi) <= (UInt64.max >> shift) else { return false }
        var lo = pfnLo
        let hi = pfnHi
        var overlap = false
        var i = 0
        while i < ranges.count {
            let node = ranges[i]
            if node.pfnLo <= hi && lo <= node.pfnHi {       // __is_range_overlap
                if lo < node.pfnLo {
                    ranges[i].pfnLo = lo
                    if cachedNodeLo == node.pfnLo { cachedNodeLo = lo }
                    if cached32NodeLo == node.pfnLo { cached32NodeLo = lo }
                }
                if hi > node.pfnHi { lo = node.pfnHi &+ 1 } else { return true }
                overlap = true
            } else if overlap {
                break
            }
            i += 1
        }
        // Linux inserts [lo, hi] here even if a later node overlaps its upper part only when
        // `overlap` stopped the walk; the walk above stops at the first non-overlapping node
        // after an overlap, as iova.c does.
        ranges.insert(Range(pfnLo: lo, pfnHi: hi), at: insertionIndex(lo: lo))
        return true
    }

    /// Whether `address` lies in an allocated or reserved range.
    public func isAllocated(address: UInt64) -> Bool {
        let p = pfn(address)
        return ranges.contains { $0.pfnLo <= p && p <= $0.pfnHi && $0.pfnLo != Self.anchorPFN }
    }

    // MARK: the fast path (iova.c alloc_iova_fast / free_iova_fast)

    /// `IOVA_RANGE_CACHE_MAX_SIZE`: sizes up to 2^(6-1) = 32 pages are cached and rounded up.
    public static let rangeCacheMaxSize = 6

    /// `alloc_iova_fast(iovad, size, limit_pfn, flush_rcache)`: the pfn, or nil.
    ///
    /// Sizes below 2^(IOVA_RANGE_CACHE_MAX_SIZE − 1) pages are rounded up to a power of two so
    /// the range cache can recycle them; the cache is tried first with `limit_pfn + 1 − size`
    /// (a cached range must end at or below the limit); then `alloc_iova(…, size_aligned:
    /// true)`; on failure with `flushCache`, every cached range is released to the tree and the
    /// search retried once.
    public func allocateFast(size: UInt64, limitPFN: UInt64, flushCache: Bool) -> UInt64? {
        guard size > 0 else { return nil }
        var size = size
        if size < UInt64(1) << UInt64(Self.rangeCacheMaxSize - 1) {
            size = UInt64(1) << UInt64(64 - (size - 1).leadingZeroBitCount) // roundup_pow_of_two
            if size == 0 { size = 1 }
        }
        if let pfn = rangeCache.get(size: size, limitPFN: limitPFN &+ 1 &- size) { return pfn }
        if let range = allocate(size: size, limitPFN: limitPFN, sizeAligned: true) { return range.pfnLo }
        guard flushCache else { return nil }
        for pfn in rangeCache.flushAll() { free(pfn: pfn) }
        return allocate(size: size, limitPFN: limitPFN, sizeAligned: true)?.pfnLo
    }

    /// `free_iova_fast(iovad, pfn, size)`: into the range cache when it takes it, else back to
    /// the tree. A cached range stays allocated in the tree until the cache lets it go.
    public func freeFast(pfn: UInt64, size: UInt64) {
        if rangeCache.insert(pfn: pfn, size: size) { return }
        free(pfn: pfn)
    }
}

/// A forked world's IOVA domain: the same ranges, cached nodes and range cache, so the fork
/// allocates the IOVAs the original would have (`alloc_iova` walks from the cached node).
extension IOVADomain: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IOVADomain {
        let copy = IOVADomain(granule: granule, startPFN: startPFN)
        copy.max32AllocSize = max32AllocSize
        copy.ranges = ranges
        copy.cachedNodeLo = cachedNodeLo
        copy.cached32NodeLo = cached32NodeLo
        copy.rangeCache.copyState(of: rangeCache)
        return copy
    }
}
