import Testing
import Bus
import PCI
@testable import LinuxKernel

/// `/sys/kernel/iommu_groups/N/type` while VFIO owns the group: `iommu_group_show_type` reads
/// `group->default_domain->type`, never `group->domain`, so the file keeps naming the default
/// domain ("DMA", "DMA-FQ", "identity") after VFIO (type1 container or iommufd) has attached its
/// own unmanaged domain; the host view shows both, the sysfs type and the domain attached now.
@Suite("IOMMU group sysfs type: the default domain, also under VFIO")
struct IOMMUGroupSysfsTypeTests {
    /// iommu.strict / iommu.passthrough → the default domain's type word.
    static let defaults: [(KernelConfiguration.DefaultDomain, String)] = [
        (.dmaStrict, "DMA"), (.dmaLazy, "DMA-FQ"), (.identity, "identity"),
    ]

    /// vfio-pci bound, a type1 container set on the group and VFIO_SET_IOMMU issued: the group
    /// is now on the container's unmanaged domain.
    static func attachType1(_ k: LinuxKernel, _ pci: PCIDevice) throws -> VFIOContainer {
        try k.vfio.bindVFIOPCI(pci.device)
        let container = k.vfio.openContainer(process: UserProcess(kernel: k))
        let groupID = try #require(pci.device.iommu?.group?.id)
        let group = try k.vfio.openGroup(groupID)
        try group.setContainer(container)
        try container.setIOMMU(VFIOContainer.type1v2IOMMU)
        return container
    }

    @Test("VFIO type1: the attached domain is unmanaged, the sysfs type is still the default domain's", arguments: defaults)
    func type1(_ c: (KernelConfiguration.DefaultDomain, String)) throws {
        let h = try HostHarness.make(configuration: KernelConfiguration(defaultDomain: c.0))
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        let before = k.iommu.view(of: pci.device)
        #expect(before.groupType == c.1 && before.domainType == c.1 && before.isDefaultDomain)

        _ = try Self.attachType1(k, pci)
        #expect(group.domain?.type == .unmanaged && group.domain !== group.defaultDomain, "VFIO attached its own domain")
        #expect(k.iommu.groupTypeName(group) == c.1)
        let view = k.iommu.view(of: pci.device)
        #expect(view.groupType == c.1, "iommu_group_show_type reads group->default_domain")
        #expect(view.domainType == "unmanaged" && !view.isDefaultDomain)
        #expect(view.description.contains("  group type \(c.1) (/sys/kernel/iommu_groups/\(group.id)/type: the default domain)"))
        #expect(view.description.contains("  domain unmanaged #"))
        #expect(!view.description.contains("(default)"))
    }

    @Test("VFIO cdev + iommufd: attached to an IOAS's hw_pagetable (unmanaged), the sysfs type is still \"DMA\"")
    func iommufd() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        let process = UserProcess(kernel: k)
        let iommufd = k.openIOMMUFD()
        iommufd.process = process
        let vdev = try k.vfio.bindVFIOPCI(pci.device)
        let file = try k.vfio.openDevice(vdev.cdevName, process: process)
        _ = try file.bindIOMMUFD(iommufd)
        let ioas = try iommufd.ioasAlloc()
        _ = try file.attachIOMMUFDPT(ioas)
        #expect(group.domain?.type == .unmanaged && group.defaultDomain?.type == .dma)
        let view = k.iommu.view(of: pci.device)
        #expect(view.groupType == "DMA" && view.domainType == "unmanaged" && !view.isDefaultDomain)
    }
}
