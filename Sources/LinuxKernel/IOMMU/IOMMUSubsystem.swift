// STUB — owned by the IOMMU-core/dma-iommu helper; replace entirely.
public final class IOMMUSubsystem {
    unowned(safe) let kernel: LinuxKernel
    init(kernel: LinuxKernel) { self.kernel = kernel }
    /// `iommu_probe_device` (with `of_iommu_configure` first).
    public func probeDevice(_ device: Device) throws(Errno) {}
    /// `iommu_dma_prepare_msi`.
    public func prepareMSI(_ descriptor: MSIDescriptor, device: Device, msiAddress: UInt64) throws(Errno) {}
}
