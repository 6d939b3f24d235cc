// STUB — owned by the IOMMU-core/dma-iommu helper; replace entirely.
/// `struct iommu_dma_cookie` (DMA / DMA-FQ domains).
public final class IOMMUDMACookie {}
/// `struct iommu_dma_msi_cookie` (`iommu_get_msi_cookie`, unmanaged domains).
public final class IOMMUDMAMSICookie {}
