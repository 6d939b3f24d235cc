import Bus

/// The DMA-FQ flush queue of dma-iommu.c (`struct iova_fq`, `queue_iova`, `fq_flush_iotlb`,
/// `fq_ring_free`, `fq_flush_timeout`): in lazy mode an unmap does not invalidate the IOTLB;
/// the freed IOVA waits in a ring until one `flush_iotlb_all` covers everything queued, and
/// only then goes back to the allocator (so no IOVA is reused while a stale TLB entry may
/// still point at the old page).
///
/// Verified against torvalds/linux drivers/iommu/dma-iommu.c: per-CPU rings of
/// IOVA_DEFAULT_FQ_SIZE = 256 entries, full when tail + 1 == head (so 255 entries fit);
/// `queue_iova` first frees entries already covered by a finished flush, flushes and frees when
/// the ring is full, then appends the entry stamped with `fq_flush_start_cnt` and arms the
/// timer (IOVA_DEFAULT_FQ_TIMEOUT, 10 ms) if it is not armed. Entries whose counter is below
/// `fq_flush_finish_cnt` are freed (`free_iova_fast`). There is no wall clock here: the timer is
/// a flag and `timeout()` is what the timer callback would do when it fires; the kernel model
/// runs on CPU 0, so one ring. The single-queue variant (IOVA_SINGLE_FQ_SIZE, used when a driver
/// sets `shadow_on_flush`) is not used by arm-smmu-v3.
public final class DMAFlushQueue {
    /// `IOVA_DEFAULT_FQ_SIZE`.
    public static let defaultSize = 256

    struct Entry {
        var pfn: UInt64
        var pages: UInt64
        var counter: UInt64
    }

    let size: Int
    private var ring: [Entry?]
    private var head = 0
    private var tail = 0
    /// `fq_flush_start_cnt` / `fq_flush_finish_cnt`.
    public private(set) var flushStartCount: UInt64 = 0
    public private(set) var flushFinishCount: UInt64 = 0
    /// `fq_timer_on`: the 10 ms timer is armed.
    public private(set) var timerArmed = false
    unowned(safe) let iovad: IOVADomain
    /// `fq_flush_iotlb`'s `domain->ops->flush_iotlb_all`: installed by the owning domain (a
    /// forked domain installs its own copy's, `IOMMUDomain.clone(into:)`).
    var flushIOTLBAll: () -> Void

    init(iovad: IOVADomain, size: Int = DMAFlushQueue.defaultSize, flushIOTLBAll: @escaping () -> Void) {
        self.iovad = iovad
        self.size = max(size, 2)
        self.ring = [Entry?](repeating: nil, count: self.size)
        self.flushIOTLBAll = flushIOTLBAll
    }

    /// Entries waiting for a flush.
    public var count: Int { (tail - head + size) % size }

    private var isFull: Bool { (tail + 1) % size == head }

    /// `fq_ring_free_locked`: give back every entry a finished flush covers.
    private func freeFlushed() {
        while head != tail, let entry = ring[head], entry.counter < flushFinishCount {
            iovad.freeFast(pfn: entry.pfn, size: entry.pages)
            ring[head] = nil
            head = (head + 1) % size
        }
    }

    /// `fq_flush_iotlb`.
    private func flush() {
        flushStartCount &+= 1
        flushIOTLBAll()
        flushFinishCount &+= 1
    }

    /// `queue_iova(cookie, pfn, pages, freelist)`.
    func queue(pfn: UInt64, pages: UInt64) {
        freeFlushed()
        if isFull {
            flush()
            freeFlushed()
        }
        ring[tail] = Entry(pfn: pfn, pages: pages, counter: flushStartCount)
        tail = (tail + 1) % size
        if !timerArmed { timerArmed = true }
    }

    /// `fq_flush_timeout`: what the timer does when it fires — disarm, one flush of the whole
    /// IOTLB, free every queued IOVA.
    public func timeout() {
        timerArmed = false
        flush()
        freeFlushed()
    }
}

/// A forked world's flush queue: the same ring, counters and timer, so the fork frees each
/// queued IOVA when the original would. Its `flushIOTLBAll` is the owning domain's and is
/// installed by that domain's clone (`IOMMUDomain.clone(into:)`); until then it stops the
/// program rather than skip an invalidation.
extension DMAFlushQueue: WorldCloneable {
    public func clone(into map: inout CloneMap) -> DMAFlushQueue {
        let copy = DMAFlushQueue(iovad: map.clone(iovad), size: size) {
            preconditionFailure("DMAFlushQueue: a forked flush queue flushed before its domain's clone installed flush_iotlb_all")
        }
        copy.ring = ring
        copy.head = head
        copy.tail = tail
        copy.flushStartCount = flushStartCount
        copy.flushFinishCount = flushFinishCount
        copy.timerArmed = timerArmed
        return copy
    }
}
