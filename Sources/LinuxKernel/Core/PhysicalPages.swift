import Bus

/// The kernel's page allocator over the RAM the firmware describes: `alloc_pages` /
/// `dma_alloc_coherent`'s backing store. Pages come zeroed, bottom-up from the first RAM window,
/// and are never reused once freed (a deterministic simplification: every run allocates the same
/// addresses, which is what golden reports need).
public final class PhysicalPages {
    public let ranges: [(base: UInt64, size: UInt64)]
    unowned(safe) let bus: SystemBus
    var cursor: Int = 0
    var next: UInt64

    public init(bus: SystemBus, ranges: [(base: UInt64, size: UInt64)]) {
        self.bus = bus
        self.ranges = ranges.filter { $0.size > 0 }
        self.next = self.ranges.first?.base ?? 0
    }

    /// `bytes` rounded up to 4 KiB, aligned to `alignment` (a power of two ≥ 4 KiB), zeroed.
    /// A request that fits nowhere is ENOMEM and takes nothing: later, smaller requests are
    /// served where they would have been (the callers' retry-smaller loops rely on it, e.g.
    /// `arm_smmu_init_one_queue`).
    public func allocate(bytes: UInt64, alignment: UInt64 = 4096) throws(Errno) -> PhysicalAddress {
        let size = max((bytes &+ 4095) & ~4095, 4096)
        let align = max(alignment, 4096)
        var cursor = self.cursor, next = self.next
        while cursor < ranges.count {
            let range = ranges[cursor]
            let aligned = (next &+ (align &- 1)) & ~(align &- 1)
            let (end, overflow) = aligned.addingReportingOverflow(size)
            if !overflow, aligned >= next, end <= range.base &+ range.size {
                self.cursor = cursor
                self.next = end
                // Zero page by page at the page's store address (a guest kernel's RAM is host
                // pages elsewhere in the store: see KernelRAMAccess).
                var page = aligned
                while page < end {
                    bus.ram.zeroFrame(containing: bus.storeAddress(page, size: 4096))
                    page &+= 4096
                }
                return PhysicalAddress(aligned)
            }
            cursor += 1
            if cursor < ranges.count { next = ranges[cursor].base }
        }
        throw .ENOMEM
    }
}

/// A forked world's page allocator continues where the original's stood, on the copied bus, so
/// the fork hands out the pages the original would have.
extension PhysicalPages: WorldCloneable {
    public func clone(into map: inout CloneMap) -> PhysicalPages {
        let copy = PhysicalPages(bus: map.clone(bus), ranges: ranges)
        copy.cursor = cursor
        copy.next = next
        return copy
    }
}
