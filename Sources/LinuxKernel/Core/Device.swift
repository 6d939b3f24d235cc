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
    /// `dev->iommu_group`. Weak: the group lists its devices (`group->devices`) and the IOMMU
    /// subsystem keeps every group (`IOMMUSubsystem.groups`), so a strong reference back would
    /// be a cycle that outlives the kernel.
    public weak var group: IOMMUGroup?
    /// `fwspec->flags`: what the firmware says about the root complex. Only the ACPI path
    /// (`iort_iommu_configure_id`) sets any; `of_iommu_configure` never does.
    public var flags: IOMMUFWSpecFlags
    /// The instance is an arm-smmu (SMMUv1/v2) driver: `iommuIndex` indexes
    /// `LinuxKernel.armSMMUDrivers`, and each `streamIDs` entry is `arm_smmu_of_xlate`'s fwid
    /// (SMR ID in bits [15:0], SMR MASK in [31:16]).
    public let smmuV2: Bool

    public init(iommuIndex: Int, streamIDs: [StreamID], flags: IOMMUFWSpecFlags = [], smmuV2: Bool = false) {
        self.iommuIndex = iommuIndex
        self.streamIDs = streamIDs
        self.flags = flags
        self.smmuV2 = smmuV2
    }
}

/// `IOMMU_FWSPEC_PCI_RC_*` (include/linux/iommu.h).
public struct IOMMUFWSpecFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `IOMMU_FWSPEC_PCI_RC_ATS`: the root complex supports ATS (IORT root complex ATS
    /// Attribute bit 0).
    public static let pciRCATS = IOMMUFWSpecFlags(rawValue: 1 << 0)
    /// `IOMMU_FWSPEC_PCI_RC_CANWBS`: the root complex's accesses are fully coherent and
    /// write-back cacheable whatever the stage-2 attributes (IORT memory access flags bit 2,
    /// `ACPI_IORT_MF_CANWBS`, DEN 0049E.f Table 8); `arm_smmu_master_canwbs` tests it.
    public static let pciRCCANWBS = IOMMUFWSpecFlags(rawValue: 1 << 1)
}
