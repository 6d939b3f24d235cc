import Bus

/// `struct device`: what every subsystem hangs its state on. PCI functions get one from the PCI
/// core; the IOMMU core fills `iommu`; the MSI core keeps the descriptors.
public final class Device {
    /// The device's name as sysfs shows it ("0000:00:01.0").
    public let name: String
    /// The PCI function, for PCI devices (`to_pci_dev`). Not owned: the PCI core owns it.
    public weak var pci: PCIDevice?
    /// `dev->iommu`: firmware IDs, the driver's per-device state and the group.
    public var iommu: DeviceIOMMU?
    /// `dev->dma_mask`: the device's addressing limit (DMA_BIT_MASK(n)).
    public var dmaMask: UInt64 = .max
    /// `dev->msi` descriptors, by MSI index (MSI-X table entry or MSI vector).
    public var msiDescriptors: [MSIDescriptor] = []
    /// The bound driver ("vfio-pci", or nil for none).
    public var driverName: String?
    /// `driver_managed_dma` of the bound driver (`struct pci_driver`): such a driver (vfio-pci)
    /// did not take the default domain at bind (`pci_dma_configure`), so `pci_dma_cleanup`
    /// does not release it.
    public internal(set) var driverManagedDMA = false

    public init(name: String) { self.name = name }
}

/// `dev->iommu` plus `dev->iommu->fwspec`: which IOMMU instance translates the device and with
/// which StreamIDs (from `iommu-map`, `of_iommu_configure` / `of_map_id`).
public final class DeviceIOMMU {
    /// Index of the IOMMU driver instance (`LinuxKernel.smmuDrivers`).
    public let iommuIndex: Int
    /// `fwspec->ids`: the StreamIDs (the device's RID and its DMA aliases, mapped).
    public var streamIDs: [StreamID]
    /// The driver's per-device state (`dev_iommu_priv_get`, e.g. `struct arm_smmu_master`).
    public var driverData: AnyObject?
    /// `dev->iommu_group`.
    public var group: IOMMUGroup?

    public init(iommuIndex: Int, streamIDs: [StreamID]) {
        self.iommuIndex = iommuIndex
        self.streamIDs = streamIDs
    }
}
