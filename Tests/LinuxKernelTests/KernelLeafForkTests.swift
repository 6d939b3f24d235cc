import Testing
import Bus
@testable import LinuxKernel

/// The kernel model's leaf state copied into a forked world (`WorldCloneable`): each copy goes on
/// exactly as the original would have (same next IOVA, same next page) and neither sees the
/// other's later allocations, frees, log lines or refusals.
@Suite("Kernel leaf state fork")
struct KernelLeafForkTests {
    static let limit = dmaBitMask(32) >> 12

    @Test("a forked IOVA domain allocates what the original would, through the range cache too")
    func iovaDomain() {
        let iovad = IOVADomain(granule: 4096, startPFN: 1)
        let a = iovad.allocateFast(size: 1, limitPFN: Self.limit, flushCache: false)
        _ = iovad.allocateFast(size: 4, limitPFN: Self.limit, flushCache: false)
        iovad.freeFast(pfn: a ?? 0, size: 1)         // now in the per-CPU magazine
        var map = CloneMap()
        let copy = map.clone(iovad)
        let ranges = iovad.allocatedRanges, cached = iovad.rangeCache.cachedCounts
        #expect(copy.allocatedRanges == ranges && cached.reduce(0, +) == 1)
        #expect(copy.rangeCache.cachedCounts == cached)
        // Both take the cached pfn first (a freed pfn stays in the tree while it sits in the
        // rcache, as in iova.c), then a new range below the 4-page one, identically.
        let fromCopy = [copy.allocateFast(size: 1, limitPFN: Self.limit, flushCache: false),
                        copy.allocateFast(size: 1, limitPFN: Self.limit, flushCache: false)]
        #expect(fromCopy[0] == a && fromCopy[1] != nil)
        #expect(copy.allocatedRanges.count == ranges.count + 1)
        #expect(iovad.allocatedRanges == ranges && iovad.rangeCache.cachedCounts == cached,
                "the copy's allocations are not the original's")
        #expect(!iovad.isAllocated(address: (fromCopy[1] ?? 0) << 12))
        let fromOriginal = [iovad.allocateFast(size: 1, limitPFN: Self.limit, flushCache: false),
                            iovad.allocateFast(size: 1, limitPFN: Self.limit, flushCache: false)]
        #expect(fromOriginal == fromCopy)
    }

    @Test("a forked page allocator hands out the original's next pages, zeroed on the copied bus")
    func physicalPages() throws {
        let bus = SystemBus()
        try bus.addRAM(base: PhysicalAddress(0x4000_0000), size: 0x100_0000)
        let pages = PhysicalPages(bus: bus, ranges: [(0x4000_0000, 0x100_0000)])
        _ = try pages.allocate(bytes: 0x3000)
        var map = CloneMap()
        let copy = map.clone(pages)
        map.finish()
        #expect(copy.bus === map.copy(of: bus))
        let next = try copy.allocate(bytes: 0x1000, alignment: 0x4000)
        #expect(try pages.allocate(bytes: 0x1000, alignment: 0x4000) == next)
        try copy.bus.write(next, size: 8, value: 5)
        #expect(try bus.read(next, size: 8) == 0)
    }

    @Test("log and refusals carry over, then diverge")
    func logAndRefusals() {
        let log = KernelLog()
        log.log("pci", "probe")
        let refusals = KernelRefusals()
        _ = refusals.refuse(.EINVAL, in: "f", for: "x", because: "y")
        var map = CloneMap()
        let logCopy = map.clone(log), refusalsCopy = map.clone(refusals)
        #expect(logCopy.lines == log.lines && refusalsCopy.all == refusals.all && refusalsCopy.mark == refusals.mark)
        let mark = refusalsCopy.mark
        _ = refusalsCopy.refuse(.ENOMEM, in: "g", for: "z", because: "w")
        logCopy.log("iommu", "attach")
        #expect(refusalsCopy.latest(since: mark, matching: .ENOMEM) != nil)
        #expect(refusals.latest(since: mark, matching: .ENOMEM) == nil && refusals.all.count == 1)
        #expect(log.lines.count == 1 && logCopy.lines.count == 2)
    }
}

@Suite("Kernel MSI leaf state fork")
struct KernelMSILeafForkTests {
    @Test("a forked MSI cookie and SPI domain continue from the original's state, independently")
    func cookieAndSPIDomain() throws {
        let cookie = IOMMUDMAMSICookie(base: 0x800_0000, pageSize: 4096)
        cookie.msiPages = [IOMMUDMAMSIPage(iova: 0x800_0000, physical: 0x0809_0000)]
        cookie.nextIOVA = 0x800_1000
        let range = GICSPIMSIDomain.Range(kind: .v2m, path: "/v2m", doorbell: PhysicalAddress(0x0802_0040),
                                          spiStart: 80, spiCount: 64, spiOffset: nil)
        let domain = GICSPIMSIDomain(kind: .v2m, ranges: [range])
        #expect(range.findFreeRegion(order: 2) == 0)
        var map = CloneMap()
        let cookieCopy = map.clone(cookie), domainCopy = map.clone(domain)
        #expect(cookieCopy.nextIOVA == 0x800_1000 && cookieCopy.msiPages.map(\.iova) == [0x800_0000])
        #expect(cookieCopy.msiPages[0] !== cookie.msiPages[0])
        #expect(domainCopy.ranges[0] !== range && domainCopy.ranges[0].allocated == range.allocated)
        #expect(domainCopy.ranges[0].findFreeRegion(order: 2) == 4)
        #expect(range.allocated == [80, 81, 82, 83], "the copy's allocation is not the original's")
        #expect(range.findFreeRegion(order: 2) == 4)
    }
}
