import Testing
import Bus
import Firmware
import Machine
import PCI
@testable import LinuxKernel

/// A host booted on ACPI tables takes the IORT paths: `iort_iommu_configure_id`,
/// `iort_get_device_domain` / `iort_msi_map_id`, `iort_iommu_get_resv_regions`, CANWBS.
@Suite("ACPI host")
struct ACPIHostTests {
    static let ep0 = RequesterID(bus: 0, device: 1, function: 0)

    @Test("QEMU virt tables: 00:01.0's StreamID, DeviceID, ITS and ITS group are the IORT's")
    func qemuVirt() throws {
        let host = try ACPIHost.host()
        let kernel = host.kernel
        let pci = try ACPIHost.device(host, Self.ep0)
        let fwspec = try #require(pci.device.iommu)
        #expect(fwspec.streamIDs == [StreamID(0x08)])
        #expect(fwspec.flags == [])
        #expect(kernel.smmuDrivers[fwspec.iommuIndex].node.path == "IORT@0x48 SMMUv3")
        #expect(kernel.iommu.group(of: pci.device) != nil)
        let domain = try kernel.pci.msiDomain(of: pci)
        #expect(domain.deviceID == 0x08 && domain.requesterID == Self.ep0)
        #expect(kernel.itsDrivers[domain.its].node.translationID == 0)
        #expect(kernel.itsDrivers[domain.its].node.path.hasSuffix("GIC ITS 0"))
        let walker = try #require(kernel.iortWalker)
        let group = walker.mapID(from: 2, id: 0x08, typeMask: IORTWalker.msiTypeMask)
        #expect(group.node == 0 && group.id == 0x08)
        #expect(kernel.iommu.deviceHasIsolatedMSI(pci.device))
        // Reserved regions: the SW_MSI window only (generic SMMUv3 model, no RMR).
        let regions = kernel.iommu.driver(for: pci.device)?.reservedRegions(for: pci.device) ?? []
        #expect(regions.map(\.type) == [.swMSI])
        #expect(!kernel.log.lines.contains { $0.contains("Firmware Bug") })
    }

    @Test("bypass fixture: a function in the bypass range has no IOMMU but an ITS MSI domain")
    func bypass() throws {
        // The pxb-pcie's bus 0x80: the root bus of the (one) host bridge here.
        let rid = RequesterID(bus: 0x80, device: 1, function: 0)
        let host = try ACPIHost.host("qemu-virt-bypass", endpoints: [HostHarness.Endpoint(requesterID: rid, name: "bypassed")]) {
            $0.pcieHostBridges[0].busRange = 0x80...0xFF
        }
        let pci = try ACPIHost.device(host, rid)
        #expect(pci.device.iommu == nil)
        #expect(host.kernel.log.lines.contains("iommu: \(pci.device.name): no IOMMU (noTranslation(32776))"))
        let domain = try host.kernel.pci.msiDomain(of: pci)
        #expect(domain.deviceID == 0x8008)
        #expect(host.kernel.itsDrivers[domain.its].node.translationID == 0)
    }

    @Test("no root complex for the segment: no IOMMU and no MSI domain")
    func otherSegment() throws {
        let host = try ACPIHost.host { $0.pcieHostBridges[0].domain = 3 }
        let pci = try ACPIHost.device(host, Self.ep0)
        #expect(pci.device.iommu == nil)
        guard case .failure(let failure) = host.kernel.iommu.configure(pci.device) else { Issue.record("configured"); return }
        #expect(failure == .noRootComplex(segment: 3))
        #expect(throws: Errno.ENODEV) { try host.kernel.pci.msiDomain(of: pci) }
    }

    @Test("root complex ATS and CANWBS attributes become fwspec flags; CANWBS decides vSMMU support")
    func canwbs() throws {
        var iort = try #require(try ACPIHost.tables("qemu-virt").iort)
        let plain = try ACPIHost.host(iort: iort)
        let plainDevice = try ACPIHost.device(plain, Self.ep0).device
        let plainDriver = try #require(plain.kernel.iommu.driver(for: plainDevice))
        #expect(plainDriver.features.nesting)
        #expect(!plainDriver.viommuSupported(for: plainDevice, type: .armSMMUv3))

        guard case .rootComplex(var rc) = iort.nodes[2].kind else { Issue.record("node 2 is not a root complex"); return }
        rc.memoryProperties.memoryFlags |= 1 << 2
        rc.atsAttribute = 1
        iort.nodes[2].kind = .rootComplex(rc)
        let host = try ACPIHost.host(iort: iort)
        let device = try ACPIHost.device(host, Self.ep0).device
        #expect(device.iommu?.flags == [.pciRCATS, .pciRCCANWBS])
        let driver = try #require(host.kernel.iommu.driver(for: device))
        #expect(driver.viommuSupported(for: device, type: .armSMMUv3))
    }

    @Test("HiSilicon Hi161x SMMUv3: one IOMMU_RESV_MSI region at the group's ITS base + 64 KiB")
    func hisilicon() throws {
        var iort = try #require(try ACPIHost.tables("qemu-virt").iort)
        guard case .smmuV3(var smmu) = iort.nodes[1].kind else { Issue.record("node 1 is not an SMMUv3"); return }
        smmu.model = IORTSMMUv3.Model.hisiliconHi161x
        iort.nodes[1].kind = .smmuV3(smmu)
        let host = try ACPIHost.host(iort: iort)
        let device = try ACPIHost.device(host, Self.ep0).device
        let regions = try #require(host.kernel.iommu.driver(for: device)).reservedRegions(for: device)
        #expect(regions == [
            ReservedRegion(start: 0x0800_0000, length: 0x10_0000, protection: [.write, .noExec, .mmio], type: .swMSI),
            ReservedRegion(start: 0x0809_0000, length: 0x1_0000, protection: [.write, .noExec, .mmio], type: .msi),
        ])
    }

    @Test("SMMUv3 node model → driver options; Cavium CN99xx (64 KiB, no page 1) boots with page-0 queue registers")
    func smmuModelOptions() throws {
        var iort = try #require(try ACPIHost.tables("qemu-virt").iort)
        guard case .smmuV3(var smmu) = iort.nodes[1].kind else { Issue.record("node 1 is not an SMMUv3"); return }
        smmu.model = IORTSMMUv3.Model.caviumCN99xx
        iort.nodes[1].kind = .smmuV3(smmu)
        let host = try ACPIHost.host(iort: iort)
        let driver = try #require(host.kernel.smmuDrivers.first)
        #expect(driver.node.region.size == 0x1_0000)
        #expect(driver.options == .page0RegistersOnly)
        #expect(try ACPIHost.device(host, Self.ep0).device.iommu != nil)
        let generic = try ACPIHost.host()
        #expect(generic.kernel.smmuDrivers.first?.options == [])
    }
}
