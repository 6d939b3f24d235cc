// STUB — owned by the IOMMU-core/dma-iommu helper; replace entirely.
/// `struct iommu_group`.
public final class IOMMUGroup {
    public let id: Int
    init(id: Int) { self.id = id }
}
