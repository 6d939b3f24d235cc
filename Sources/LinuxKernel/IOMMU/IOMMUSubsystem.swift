import Bus
import Firmware

/// The IOMMU core (drivers/iommu/iommu.c) and the dma-iommu glue that the rest of the kernel
/// model calls: device probe into groups with default domains, reserved regions, attach /
/// detach / replace, DMA ownership for VFIO and iommufd, and MSI doorbell preparation.
///
/// The pieces live in one file each: `OFIOMMU` (firmware IDs), `IOMMUGroups` (grouping and
/// default domains), `IOMMUAttach`, `IOMMUReservedRegions`, `IOMMUMapping` (`iommu_map`),
/// `DMAIOMMU` (cookies, IOVA allocation, MSI pages) and `IOMMUMSI` (prepare/compose). On an
/// ACPI topology the firmware side is the IORT's (Sources/LinuxKernel/ACPI: `IORTWalker`,
/// `iortConfigure`, the IORT reserved regions and MSI domain).
public final class IOMMUSubsystem {
    unowned(safe) let kernel: LinuxKernel
    /// Every group, in creation order (`/sys/kernel/iommu_groups`).
    public internal(set) var groups: [IOMMUGroup] = []
    /// iommufd's `iommufd_sw_msi`, registered by iommufd: what `iommu_dma_prepare_msi` calls
    /// for a domain whose cookie is `IOMMU_COOKIE_IOMMUFD`. Arguments: the group's domain, the
    /// descriptor and the physical doorbell address. Nil means iommufd is not loaded.
    public var iommufdSWMSI: ((IOMMUDomain, MSIDescriptor, UInt64) throws(Errno) -> Void)?
    /// `iommu_dma_forcedac` (the `iommu.forcedac` parameter): when set, PCI devices do not try
    /// the 32-bit IOVA space first.
    public var forceDAC = false
    var loggedSubsystemInit = false

    /// The core's per-device fields of `struct dev_iommu` that `DeviceIOMMU` does not carry,
    /// looked up by identity (never iterated).
    var deviceStates: [ObjectIdentifier: IOMMUDeviceState] = [:]

    init(kernel: LinuxKernel) { self.kernel = kernel }

    func state(of device: Device) -> IOMMUDeviceState? {
        device.iommu == nil ? nil : deviceStates[ObjectIdentifier(device)]
    }

    /// `dev_iommu_ops`: the driver instance that translates `device`, if any.
    /// Nil for a device behind an arm-smmu (SMMUv2) instance: the SMMUv3-only paths (vIOMMU,
    /// vSMMU, nesting) find no driver there, as Linux finds no `viommu_alloc` in `arm_smmu_ops`.
    public func driver(for device: Device) -> ArmSMMUv3Driver? {
        guard let iommu = device.iommu, !iommu.smmuV2 else { return nil }
        let index = iommu.iommuIndex
        guard index >= 0, index < kernel.smmuDrivers.count else { return nil }
        return kernel.smmuDrivers[index]
    }

    /// `dev_iommu_ops` for the core: the arm-smmu-v3 or arm-smmu instance of the device.
    public func ops(for device: Device) -> (any IOMMUDriver)? {
        guard let iommu = device.iommu else { return nil }
        guard iommu.smmuV2 else { return driver(for: device) }
        let index = iommu.iommuIndex
        guard index >= 0, index < kernel.armSMMUDrivers.count else { return nil }
        return kernel.armSMMUDrivers[index]
    }

    /// `iommu_group_get`: the device's group, nil when no IOMMU translates it.
    public func group(of device: Device) -> IOMMUGroup? { device.iommu?.group }

    /// `iommu_get_domain_for_dev`: the domain the device's group is attached to now.
    public func domain(for device: Device) -> IOMMUDomain? { device.iommu?.group?.domain }

    /// `iommu_get_dma_domain`: the default domain, which the DMA API uses even while another
    /// domain is attached.
    public func dmaDomain(for device: Device) -> IOMMUDomain? { device.iommu?.group?.defaultDomain }
}

/// Fields of `struct dev_iommu` and `struct device` the IOMMU core keeps per device.
final class IOMMUDeviceState {
    /// `dev->iommu->pci_32bit_workaround`: try IOVAs below 4 GiB first.
    var pci32BitWorkaround = false
    /// `dev->iommu->require_direct`: firmware gave the device an IOMMU_RESV_DIRECT region, so
    /// it may never be left without a 1:1 mapping (blocked domains are refused).
    var requireDirect = false
    /// `dev->dma_iommu`: the DMA API goes through dma-iommu (the default domain is a DMA
    /// domain) rather than dma-direct.
    var usesDMAIOMMU = false
    /// The device these fields belong to (the key of `IOMMUSubsystem.deviceStates` is only its
    /// identity), so a fork can file the copy under the device's copy. Weak: the kernel and
    /// the groups own devices; the IOMMU core only looks them up.
    weak var device: Device?
}
