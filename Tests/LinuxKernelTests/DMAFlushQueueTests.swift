import Testing
@testable import LinuxKernel

/// The DMA-FQ flush queue (dma-iommu.c queue_iova / fq_flush_timeout).
@Suite("DMA flush queue")
struct DMAFlushQueueTests {
    @Test("255 queued unmaps cost no invalidation; the 256th flushes once and frees what the flush covered")
    func fullRingFlushes() {
        let iovad = IOVADomain(granule: 4096, startPFN: 1)
        var flushes = 0
        let fq = DMAFlushQueue(iovad: iovad) { flushes += 1 }
        var pfns: [UInt64] = []
        for _ in 0..<256 { if let pfn = iovad.allocateFast(size: 64, limitPFN: 0xF_FFFF, flushCache: false) { pfns.append(pfn) } }
        #expect(pfns.count == 256)
        // 64-page IOVAs bypass the range cache, so a free shows in the tree.
        for pfn in pfns.prefix(255) { fq.queue(pfn: pfn, pages: 64) }
        #expect(flushes == 0, "IOVA_DEFAULT_FQ_SIZE 256: full at tail + 1 == head, i.e. 255 entries")
        #expect(fq.count == 255)
        #expect(iovad.allocatedRanges.count == 256, "nothing is freed before a flush")
        #expect(fq.timerArmed)
        fq.queue(pfn: pfns[255], pages: 64)
        #expect(flushes == 1)
        #expect(fq.count == 1, "the flushed 255 were freed, the new one waits")
        #expect(iovad.allocatedRanges.count == 1)
        fq.timeout()
        #expect(flushes == 2)
        #expect(fq.count == 0 && !fq.timerArmed)
        #expect(iovad.allocatedRanges.isEmpty)
    }

    @Test("an entry queued after a flush is not freed by that flush's counter")
    func counterOrdering() {
        let iovad = IOVADomain(granule: 4096, startPFN: 1)
        let fq = DMAFlushQueue(iovad: iovad) {}
        let a = iovad.allocate(size: 64, limitPFN: 0xF_FFFF, sizeAligned: true)?.pfnLo ?? 0
        fq.queue(pfn: a, pages: 64)
        fq.timeout()
        let b = iovad.allocate(size: 64, limitPFN: 0xF_FFFF, sizeAligned: true)?.pfnLo ?? 0
        fq.queue(pfn: b, pages: 64)
        #expect(fq.count == 1, "b was stamped with flush_start_cnt 1 = finish_cnt: still waiting")
        #expect(iovad.allocatedRanges.map(\.pfnLo) == [b])
    }
}
