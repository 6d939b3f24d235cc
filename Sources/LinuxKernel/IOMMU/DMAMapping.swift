// STUB — owned by the IOMMU-core/dma-iommu helper; replace entirely.
/// The DMA API (`dma_map_single`, `dma_alloc_coherent`, …) over dma-iommu.
public final class DMAMapping {
    unowned(safe) let kernel: LinuxKernel
    init(kernel: LinuxKernel) { self.kernel = kernel }
}
