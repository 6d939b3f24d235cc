import Testing
import Bus
import PCI
@testable import LinuxKernel

/// Where a PCI function's IOMMU is probed: at `device_add` from v6.15 (`iommuProbeAtDeviceAdd`,
/// bcb81ac6ae3c), at its first driver probe (`really_probe` → `pci_dma_configure`) before.
@Suite("IOMMU probe path by release")
struct IOMMUProbePathTests {
    @Test("v6.15: every function has its group after boot, driver or not")
    func atDeviceAdd() throws {
        let h = try HostHarness.make(configuration: KernelConfiguration(version: .v6_15))
        for pci in h.kernel.pci.devices {
            #expect(h.kernel.iommu.group(of: pci.device) != nil, "\(pci.name)")
        }
        #expect(h.kernel.iommu.groups.map(\.id) == [0, 1])
    }

    @Test("v6.14: no group until a driver binds; groups numbered in driver-probe order; vfio-pci's probe configures DMA too")
    func atDriverProbe() throws {
        let h = try HostHarness.make(configuration: KernelConfiguration(version: .v6_14))
        let k = h.kernel
        let ep0 = try #require(HostScenario.pciDevice(h, 0))
        let ep1 = try #require(HostScenario.pciDevice(h, 1))
        #expect(k.iommu.group(of: ep0.device) == nil && k.iommu.group(of: ep1.device) == nil)
        // Bind the second function first: it gets group 0.
        try IOMMUGroupTypeTests.bind(k, ep1)
        #expect(k.iommu.group(of: ep1.device)?.id == 0)
        #expect(k.iommu.group(of: ep0.device) == nil)
        try k.vfio.bindVFIOPCI(ep0.device)
        #expect(k.iommu.group(of: ep0.device)?.id == 1)
    }

    @Test("the PCIe port driver binds every root port at boot with driver_managed_dma, so a port is grouped on v6.14 and never blocks VFIO")
    func portDriver() throws {
        let endpoints = [HostHarness.Endpoint(requesterID: RequesterID(bus: 0, device: 1, function: 0), name: "ep0")]
        let h = try HostHarness.make(endpoints: endpoints, configuration: KernelConfiguration(version: .v6_14))
        for pci in h.kernel.pci.devices where pci.expressPortType == 0x4 {
            #expect(pci.device.driverName == "pcieport" && pci.device.driverManagedDMA)
            #expect(h.kernel.iommu.group(of: pci.device) != nil)
        }
    }
}
