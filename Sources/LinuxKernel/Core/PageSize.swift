import Bus

/// PAGE_SIZE, PAGE_SHIFT and HPAGE_SIZE of this kernel (arch/arm64/include/asm/page-def.h,
/// CONFIG_PAGE_SHIFT 12/14/16), from `configuration.pageSize`. A host and a guest each have
/// their own.
///
/// What follows PAGE_SIZE in the model, as in Linux: the io-pgtable granule
/// (`arm_lpae_restrict_pgsizes` prefers PAGE_SIZE), hence a DMA domain's IOVA granule
/// (`iommu_dma_init_domain`: `__ffs(pgsize_bitmap)`) and its MSI pages; an MSI cookie's
/// granule (`cookie_msi_granule`: PAGE_SIZE); iommufd's sw_msi pages and the IOAS's
/// [PAGE_SIZE, ULONG_MAX − PAGE_SIZE] allocation range and PAGE_SIZE ceiling on
/// `iova_alignment`; VFIO type1's `pgsize_bitmap`; user pages (`mmap`, pinning); KVM memslot
/// alignment; `dma_alloc_coherent`'s rounding; the SMMU queue ceiling `Q_MAX_SZ_SHIFT`.
///
/// What does not (architected sizes): ITS table pages (GITS_BASER.Page_Size), the LPI
/// property/pending tables (64 KiB aligned), ITTs, SMMU stream/CD tables and queue alignment,
/// the 4 KiB PCIe config space, and the 4 KiB frames of the RAM store (`SparseRAM`) and of
/// `PhysicalPages`, which callers that need a PAGE_SIZE page ask for with that alignment.
extension LinuxKernel {
    /// `PAGE_SIZE`.
    public var pageSize: UInt64 { configuration.pageSize.size }
    /// `PAGE_SHIFT`.
    public var pageShift: Int { configuration.pageSize.shift }
    /// `HPAGE_SIZE` = PMD_SIZE on arm64: one level-2 block of the CPU's granule (2 MiB with 4K
    /// pages, 32 MiB with 16K, 512 MiB with 64K).
    public var hugePageSize: UInt64 { UInt64(1) << UInt64(configuration.pageSize.levelShift(2)) }

    /// `PAGE_ALIGN(size)`: nil when rounding up overflows.
    func pageAlign(_ size: UInt64) -> UInt64? {
        let (sum, overflow) = size.addingReportingOverflow(pageSize &- 1)
        return overflow ? nil : sum & ~(pageSize &- 1)
    }
}
