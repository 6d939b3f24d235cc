// STUB — owned by the VFIO/iommufd helper; replace entirely.
/// drivers/iommu/iommufd: one instance per open /dev/iommu (`struct iommufd_ctx`).
public final class IOMMUFD {
    unowned(safe) let kernel: LinuxKernel
    init(kernel: LinuxKernel) { self.kernel = kernel }
}
