import Testing
import Bus
@testable import LinuxKernel

/// The IOVA allocator against the rules of drivers/iommu/iova.c. Every expected pfn below is
/// worked out by hand from those rules (top-down from the limit, size alignment to the size
/// rounded up to a power of two, the cached-node start, the retry above it).
@Suite("IOVA allocator (iova.c)")
struct IOVADomainTests {
    /// A 4K-granule domain starting at pfn 1, as `iommu_dma_init_domain` makes it.
    func domain() -> IOVADomain { IOVADomain(granule: 4096, startPFN: 1) }

    @Test("the first allocation is the top page under the limit: IOVA 0xFFFF_F000 under a 32-bit limit")
    func firstAllocationIsTopDown() {
        let iovad = domain()
        #expect(iovad.dma32PFN == 0x10_0000, "1 << (32 − 12)")
        let pfn = iovad.allocateFast(size: 1, limitPFN: dmaBitMask(32) >> 12, flushCache: false)
        #expect(pfn == 0xF_FFFF)
        #expect((pfn ?? 0) << iovad.shift == 0xFFFF_F000)
        #expect(iovad.allocateFast(size: 1, limitPFN: dmaBitMask(32) >> 12, flushCache: false) == 0xF_FFFE,
                "the next one sits just below")
    }

    @Test("the granule is the smallest page size; pfn 0 is never handed out")
    func granuleAndStart() {
        let iovad = IOVADomain(granule: 0x1_0000, startPFN: 1)
        #expect(iovad.shift == 16)
        #expect(iovad.dma32PFN == 0x1_0000)
        #expect(iovad.allocate(size: 0x1_0000, limitPFN: 0xFFFF, sizeAligned: true) == nil,
                "all 65536 pages of the 32-bit space would include pfn 0, below start_pfn")
        #expect(iovad.allocate(size: 1, limitPFN: 0xFFFF, sizeAligned: true)?.pfnLo == 0xFFFF, "64K granule: IOVA 0xFFFF_0000")
    }

    @Test("alloc_iova_fast rounds sizes below 32 pages up to a power of two and aligns to it",
          arguments: [(1, 1), (2, 2), (3, 4), (5, 8), (17, 32), (31, 32), (32, 32), (33, 33), (100, 100)] as [(UInt64, UInt64)])
    func roundingAndAlignment(size: UInt64, expected: UInt64) throws {
        let iovad = domain()
        let pfn = try #require(iovad.allocateFast(size: size, limitPFN: 0xF_FFFF, flushCache: false))
        let range = try #require(iovad.allocatedRanges.first)
        #expect(range.pfnLo == pfn)
        #expect(range.pfnHi - range.pfnLo + 1 == expected, "sizes ≥ 2^(IOVA_RANGE_CACHE_MAX_SIZE−1) are not rounded")
        // size_aligned: aligned to fls_long(size − 1) bits, i.e. the next power of two.
        let alignment = UInt64(1) << UInt64(64 - (expected - 1).leadingZeroBitCount)
        #expect(pfn % max(alignment, 1) == 0)
        // Top-down: the highest aligned start whose range ends at or below the limit.
        #expect(pfn == (0x10_0000 - expected) & ~(max(alignment, 1) - 1))
    }

    @Test("the search starts below the last 32-bit allocation (cached32_node), so a hole above it waits")
    func cachedNodeStartsTheSearch() throws {
        let iovad = domain()
        #expect(iovad.allocateFast(size: 1, limitPFN: 0xF_FFFF, flushCache: false) == 0xF_FFFF)
        // 3 pages → 4, aligned to 4: (0x100000 − 4) rounded down to 4 below 0xFFFFF = 0xFFFF8…0xFFFFB.
        #expect(iovad.allocateFast(size: 3, limitPFN: 0xF_FFFF, flushCache: false) == 0xF_FFF8)
        // The hole 0xFFFFC…0xFFFFE is above the cached node: a 1-page request goes below it.
        #expect(iovad.allocateFast(size: 1, limitPFN: 0xF_FFFF, flushCache: false) == 0xF_FFF7)
    }

    @Test("when nothing fits below the cached node the search retries above it, from the limit")
    func retryAboveCachedNode() {
        // 16 usable pages: 0xFFFF0…0xFFFFF.
        let iovad = IOVADomain(granule: 4096, startPFN: 0xF_FFF0)
        var got: [UInt64] = []
        for _ in 0..<16 {
            if let pfn = iovad.allocate(size: 1, limitPFN: 0xF_FFFF, sizeAligned: true)?.pfnLo { got.append(pfn) }
        }
        #expect(got == (0xF_FFF0...0xF_FFFF).reversed().map { $0 })
        #expect(iovad.allocate(size: 1, limitPFN: 0xF_FFFF, sizeAligned: true) == nil)
        #expect(iovad.max32AllocSize == 1, "a failed 32-bit search remembers its size")
        // Free a page above the cached node (the cached node is the last allocation, 0xFFFF0).
        #expect(iovad.free(pfn: 0xF_FFF8))
        #expect(iovad.max32AllocSize == iovad.dma32PFN, "a free below 4 GiB resets max32_alloc_size")
        #expect(iovad.allocate(size: 1, limitPFN: 0xF_FFFF, sizeAligned: true)?.pfnLo == 0xF_FFF8,
                "nothing below pfn 0xFFFF0: retry from the limit down to retry_pfn + 1 finds the hole")
    }

    @Test("reserve_iova merges into overlapping nodes: extended downwards, the rest inserted above")
    func reserveMerges() {
        let iovad = domain()
        #expect(iovad.reserve(pfnLo: 10, pfnHi: 20))
        #expect(iovad.reserve(pfnLo: 15, pfnHi: 30))
        #expect(iovad.allocatedRanges == [.init(pfnLo: 10, pfnHi: 20), .init(pfnLo: 21, pfnHi: 30)])
        #expect(iovad.reserve(pfnLo: 5, pfnHi: 12))
        #expect(iovad.allocatedRanges == [.init(pfnLo: 5, pfnHi: 20), .init(pfnLo: 21, pfnHi: 30)])
        #expect(iovad.reserve(pfnLo: 22, pfnHi: 25), "wholly inside: nothing new")
        #expect(iovad.allocatedRanges.count == 2)
        #expect(!IOVADomain(granule: 4096, startPFN: 1).reserve(pfnLo: 0, pfnHi: UInt64.max >> 11),
                "a pfn whose address does not fit in 64 bits is refused")
    }

    @Test("a freed small IOVA goes to the range cache and is the next one handed out (LIFO)")
    func rangeCacheReuse() throws {
        let iovad = domain()
        let a = try #require(iovad.allocateFast(size: 2, limitPFN: 0xF_FFFF, flushCache: false))
        let b = try #require(iovad.allocateFast(size: 2, limitPFN: 0xF_FFFF, flushCache: false))
        iovad.freeFast(pfn: a, size: 2)
        iovad.freeFast(pfn: b, size: 2)
        #expect(iovad.allocatedRanges.count == 2, "cached IOVAs stay allocated in the tree")
        #expect(iovad.rangeCache.cachedCounts[1] == 2)
        #expect(iovad.allocateFast(size: 2, limitPFN: 0xF_FFFF, flushCache: false) == b)
        #expect(iovad.allocateFast(size: 2, limitPFN: 0xF_FFFF, flushCache: false) == a)
        // A cached pfn above the caller's limit is not used (iova_magazine_pop scans for ≤ limit).
        iovad.freeFast(pfn: a, size: 2)
        let low = try #require(iovad.allocateFast(size: 2, limitPFN: a - 1, flushCache: false))
        #expect(low < a)
        // Sizes of 32 pages or more never enter the cache.
        let big = try #require(iovad.allocateFast(size: 64, limitPFN: 0xF_FFFF, flushCache: false))
        iovad.freeFast(pfn: big, size: 64)
        #expect(!iovad.allocatedRanges.contains { $0.pfnLo == big })
    }

    @Test("a magazine holds 127 pfns; more go through prev and the depot and all come back")
    func magazines() {
        let cache = IOVARangeCache()
        for pfn in 1...300 as ClosedRange<UInt64> { #expect(cache.insert(pfn: pfn, size: 1)) }
        #expect(cache.cachedCounts[0] == 300)
        var seen = Set<UInt64>()
        while let pfn = cache.get(size: 1, limitPFN: .max) { seen.insert(pfn) }
        #expect(seen == Set(1...300))
        #expect(!cache.insert(pfn: 5, size: 64), "order 6 ≥ IOVA_RANGE_CACHE_MAX_SIZE")
    }

    @Test("property: allocations never overlap each other or a reservation, respect the limit and alignment",
          arguments: [1, 2, 3] as [UInt64])
    func neverOverlaps(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let iovad = IOVADomain(granule: 4096, startPFN: 1)
        var reserved: [IOVADomain.Range] = []
        for _ in 0..<8 {
            let lo = UInt64.random(in: 1...0xF_F000, using: &rng)
            let hi = lo + UInt64.random(in: 0...0x800, using: &rng)
            iovad.reserve(pfnLo: lo, pfnHi: hi)
            reserved.append(.init(pfnLo: lo, pfnHi: hi))
        }
        var live: [(pfn: UInt64, size: UInt64)] = []
        for _ in 0..<1500 {
            if !live.isEmpty && UInt64.random(in: 0...2, using: &rng) == 0 {
                let victim = live.remove(at: Int.random(in: 0..<live.count, using: &rng))
                iovad.freeFast(pfn: victim.pfn, size: victim.size)
                continue
            }
            let size = UInt64.random(in: 1...40, using: &rng)
            let limit = UInt64.random(in: 0...1, using: &rng) == 0 ? UInt64(0xF_FFFF) : UInt64(0xFFFF_FFFF)
            guard let pfn = iovad.allocateFast(size: size, limitPFN: limit, flushCache: true) else { continue }
            let rounded = size < 32 ? UInt64(1) << UInt64(64 - (size - 1).leadingZeroBitCount) : size
            let alignment = UInt64(1) << UInt64(64 - (rounded - 1).leadingZeroBitCount)
            #expect(pfn % alignment == 0 || rounded == 1)
            #expect(pfn >= 1 && pfn + rounded - 1 <= limit)
            for r in reserved { #expect(pfn + rounded - 1 < r.pfnLo || pfn > r.pfnHi, "inside a reservation") }
            for other in live {
                let otherRounded = other.size < 32 ? UInt64(1) << UInt64(64 - (other.size - 1).leadingZeroBitCount) : other.size
                #expect(pfn + rounded - 1 < other.pfn || pfn > other.pfn + otherRounded - 1, "overlaps a live IOVA")
            }
            live.append((pfn, size))
        }
        // The tree itself stays sorted and disjoint.
        let ranges = iovad.ranges
        for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.pfnHi < b.pfnLo) }
    }
}
