/// drivers/iommu/iommu.c `iommu_pgsize`, shared by the arm-smmu-v3 and arm-smmu domains.
enum IOMMUPageSize {
    /// `iommu_pgsize`: the largest supported page size no larger than `size` and aligned like
    /// iova | paddr, and how many such pages to map before a larger size could take over
    /// (when iova and paddr share their offset within that larger size).
    static func split(bitmap: UInt64, iova: UInt64, physical: UInt64, size: UInt64) -> (size: UInt64, count: Int)? {
        guard size > 0 else { return nil }
        let addressMerge = iova | physical
        var sizes = bitmap & UInt64.lowMask(64 - size.leadingZeroBitCount)
        if addressMerge != 0 { sizes &= UInt64.lowMask(addressMerge.trailingZeroBitCount + 1) }
        guard sizes != 0 else { return nil }
        let index = 63 - sizes.leadingZeroBitCount
        let pgsize = UInt64(1) << UInt64(index)
        var span = size
        let larger = bitmap & ~UInt64.lowMask(index + 1)
        if larger != 0 {
            let next = UInt64(1) << UInt64(larger.trailingZeroBitCount)
            if (iova ^ physical) & (next - 1) == 0 {
                let offset = next - (addressMerge & (next - 1))
                let (offsetEnd, overflow) = offset.addingReportingOverflow(next)
                if !overflow && offsetEnd <= size { span = offset }
            }
        }
        let count = span >> UInt64(index)
        return (pgsize, Int(min(count, UInt64(Int.max))))
    }

    /// `iommu_map` (drivers/iommu/iommu.c): checks alignment to the smallest page (-EINVAL) and
    /// that the range does not wrap (-ERANGE), then maps `size` bytes through the driver's
    /// `map_pages` (`arm_lpae_map_pages` on `pageTable`) in `iommu_pgsize` steps. On failure
    /// the part already mapped is unmapped again (`iommu_unmap` in its error path), through
    /// the domain's own unmap and sync, which `rollBack` does given the size mapped.
    static func map(_ pageTable: IOPageTableARM, iova: UInt64, physical: UInt64, size: UInt64,
                    protection: IOMMUProtection, rollBack: (UInt64) -> Void) throws(Errno) {
        let minPage = UInt64(1) << UInt64(pageTable.pageSizeBitmap.trailingZeroBitCount & 63)
        guard size > 0, (iova | physical | size) & (minPage &- 1) == 0 else { throw .EINVAL }
        guard !iova.addingReportingOverflow(size - 1).overflow, !physical.addingReportingOverflow(size - 1).overflow else { throw .ERANGE }
        var done: UInt64 = 0
        while done < size {
            guard let (pgsize, count) = split(bitmap: pageTable.pageSizeBitmap, iova: iova &+ done,
                                              physical: physical &+ done, size: size - done) else {
                rollBack(done)
                throw .EINVAL
            }
            let result = pageTable.mapPages(iova: iova &+ done, physical: physical &+ done, pageSize: pgsize,
                                            count: count, protection: protection)
            done &+= result.mapped
            if let error = result.error {
                rollBack(done)
                throw error
            }
        }
    }
}
