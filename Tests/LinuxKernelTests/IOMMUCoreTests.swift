import Testing
import Bus
import PCI
@testable import LinuxKernel

/// The IOMMU core on a booted qemu-virt host: firmware IDs, groups, default domains, DMA
/// ownership and attach/detach/replace as VFIO and iommufd use them.
@Suite("IOMMU core")
struct IOMMUCoreTests {
    @Test("of_iommu_configure: qemu-virt's identity iommu-map gives RID 0x0008 StreamID 0x8 on smmu0, a group and a DMA domain with an IOVA cookie")
    func configureFromIOMMUMap() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let fwspec = try #require(pci.device.iommu)
        #expect(fwspec.iommuIndex == 0)
        #expect(fwspec.streamIDs == [StreamID(0x8)], "iommu-map = <0x0 &smmu 0x0 0x10000>: StreamID = RID")
        let group = try #require(k.iommu.group(of: pci.device))
        #expect(group.devices.map(\.name) == ["0000:00:01.0"])
        #expect(group.defaultDomain === group.domain)
        #expect(group.domain?.type == .dma)
        guard case .dmaIOVA(let cookie)? = group.domain?.cookie else { Issue.record("no IOVA cookie"); return }
        #expect(cookie.iovad.granule == 0x1000, "__ffs(4K|2M|1G)")
        #expect(cookie.iovad.startPFN == 1)
        // iova_reserve_pci_windows: qemu-virt's 32-bit window (bus 0x1000_0000, 0x2EFF_0000 bytes)
        // and 64-bit window (0x80_0000_0000, 0x80_0000_0000 bytes) are reserved; SW_MSI is not.
        #expect(cookie.iovad.isAllocated(address: 0x1000_0000) && cookie.iovad.isAllocated(address: 0x3EFE_F000))
        #expect(!cookie.iovad.isAllocated(address: 0x3EFF_0000))
        #expect(cookie.iovad.isAllocated(address: 0x80_0000_0000) && cookie.iovad.isAllocated(address: 0xFF_FFFF_F000))
        #expect(!cookie.iovad.isAllocated(address: 0x0800_0000), "\"We ARE the software that manages these\"")
    }

    @Test("a host bridge without iommu-map (virt-smmu-default-bypass) leaves its functions without an IOMMU: dma-direct, physical doorbell")
    func noIOMMUMap() throws {
        let h = try HostScenario.host(dtb: "qemu-virt/virt-smmu-default-bypass.dtb")
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        #expect(pci.device.iommu == nil)
        #expect(k.log.lines.contains("iommu: 0000:00:01.0: no IOMMU (noMap)"))
        let counter = HostScenario.Counter()
        _ = try HostScenario.probe(k, pci, counter: counter)
        #expect(HostScenario.entry(h.functions[0], 0).address == 0x0809_0040)
        let buffer = try k.pages.allocate(bytes: 0x1000)
        #expect(try k.dma.map(device: pci.device, physical: buffer, size: 0x1000, direction: .toDevice).rawValue == buffer.rawValue)
    }

    @Test("DMA ownership: claiming blocks DMA, attach/replace/detach follow iommu.c's rules, release restores the default domain")
    func ownershipAndAttach() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        let defaultDomain = try #require(group.defaultDomain)
        try k.pci.enableDevice(pci)
        try k.pci.setMaster(pci)
        let buffer = try k.pages.allocate(bytes: 0x1000)
        let iova = try k.dma.map(device: pci.device, physical: buffer, size: 0x1000, direction: .bidirectional)
        #expect(h.functions[0].dma(.write, address: iova, size: 4, data: 7).result?.status == .completed)

        final class Owner {}
        let owner = Owner(), other = Owner()
        try k.iommu.claimDMAOwner(group, owner: owner)
        #expect(group.domain?.type == .blocked, "__iommu_take_dma_ownership attaches the blocking domain")
        #expect(h.functions[0].dma(.write, address: iova, size: 4, data: 8).result?.status == .aborted, "blocked: abort STE")
        #expect(throws: Errno.EPERM) { try k.iommu.claimDMAOwner(group, owner: other) }

        let first = try k.iommu.allocateDomain(for: pci.device)
        let second = try k.iommu.allocateDomain(for: pci.device)
        #expect(first.type == .unmanaged && first.cookieType == .none)
        try k.iommu.attachGroup(first, to: group)
        #expect(group.domain === first)
        #expect(throws: Errno.EBUSY, "attached to a user domain: detach first") { try k.iommu.attachGroup(second, to: group) }
        try k.iommu.replaceGroupDomain(group, with: second)
        #expect(group.domain === second, "replace switches without passing through blocking")
        k.iommu.detachGroup(second, from: group)
        #expect(group.domain === group.blockingDomain, "owned: detach goes back to blocking, not to the default domain")

        k.iommu.releaseDMAOwner(group)
        #expect(group.domain === defaultDomain && group.owner == nil)
        #expect(h.functions[0].dma(.write, address: iova, size: 4, data: 9).result?.status == .completed, "the default domain's mapping is still there")
        #expect(k.bus.ram.read(buffer.rawValue, size: 4) == 9)
    }

    @Test("device-level claims by one owner nest; another owner gets EPERM; the last release frees the group")
    func deviceClaimsNest() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let device = try #require(HostScenario.pciDevice(h, 0)?.device)
        let group = try #require(k.iommu.group(of: device))
        final class Owner {}
        let owner = Owner()
        try k.iommu.claimDMAOwner(device: device, owner: owner)
        try k.iommu.claimDMAOwner(device: device, owner: owner)
        #expect(group.ownerCount == 2)
        #expect(throws: Errno.EPERM) { try k.iommu.claimDMAOwner(device: device, owner: Owner()) }
        k.iommu.releaseDMAOwner(device: device)
        #expect(group.ownerCount == 1 && group.domain?.type == .blocked)
        k.iommu.releaseDMAOwner(device: device)
        #expect(group.ownerCount == 0 && group.domain === group.defaultDomain)
    }

    @Test("pci_device_group: behind a PCIe-to-PCI bridge or a root port without ACS the bridge's group; multifunction siblings share; others get new groups")
    func pciDeviceGroup() throws {
        let h = try HostHarness.make(boot: false)
        let k = h.kernel
        var keep: [PCIDevice] = []
        func function(_ rid: RequesterID, behind bridge: PCIDevice? = nil, portType: UInt8? = 0x0,
                      secondaryBus: UInt8? = nil, multifunction: Bool = false) -> PCIDevice {
            let device = Device(name: "0000:" + rid.description)
            let pci = PCIDevice(device: device, requesterID: rid, hostBridge: 0)
            pci.upstreamBridge = bridge
            pci.expressPortType = portType
            pci.secondaryBus = secondaryBus
            pci.isMultifunction = multifunction
            device.pci = pci
            device.iommu = DeviceIOMMU(iommuIndex: 0, streamIDs: [StreamID(UInt32(rid.rawValue))])
            keep.append(pci)
            k.pci.devices.append(pci)
            return pci
        }
        func probe(_ pci: PCIDevice) -> IOMMUGroup {
            let group = k.iommu.deviceGroup(pci.device)
            group.devices.append(pci.device)
            pci.device.iommu?.group = group
            return group
        }
        // PCIe-to-PCI bridge (port type 7) at 00:02.0 with secondary bus 2.
        let pcieToPCI = function(RequesterID(bus: 0, device: 2, function: 0), portType: 0x7, secondaryBus: 2)
        let bridgeGroup = probe(pcieToPCI)
        let behind1 = function(RequesterID(bus: 2, device: 3, function: 0), behind: pcieToPCI, portType: nil)
        let behind2 = function(RequesterID(bus: 2, device: 4, function: 0), behind: pcieToPCI, portType: nil)
        #expect(probe(behind1) === bridgeGroup, "get_pci_alias_or_group: the aliasing bridge's group")
        #expect(probe(behind2) === bridgeGroup)
        // Root port (type 4) at 00:03.0 without ACS: its endpoint joins it (pci_acs_path_enabled false).
        let rootPort = function(RequesterID(bus: 0, device: 3, function: 0), portType: 0x4, secondaryBus: 3)
        let portGroup = probe(rootPort)
        #expect(portGroup !== bridgeGroup)
        #expect(probe(function(RequesterID(bus: 3, device: 0, function: 0), behind: rootPort)) === portGroup)
        // A multifunction endpoint at 00:05.{0,1} without ACS: one group.
        let f0 = probe(function(RequesterID(bus: 0, device: 5, function: 0), multifunction: true))
        let f1 = probe(function(RequesterID(bus: 0, device: 5, function: 1), multifunction: true))
        #expect(f0 === f1)
        // A single-function endpoint on the root bus: its own group.
        let lone = probe(function(RequesterID(bus: 0, device: 6, function: 0)))
        #expect(Set([bridgeGroup.id, portGroup.id, f0.id, lone.id]) == [0, 1, 2, 3], "group numbers in creation order")
        withExtendedLifetime(keep) {}
    }
}
