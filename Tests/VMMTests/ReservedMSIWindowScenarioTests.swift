import Testing
import Bus
import Firmware
import LinuxKernel
import PCI
import SMMUv3
@testable import VMM

/// Strategy `rmr-identity`: the guest's firmware (the IORT RMR node of an ACPI guest) reserves the host's
/// SW_MSI window 0x0800_0000/1 MiB as a 1:1 region for the passthrough function, so the address
/// the v6.15 host programs (0x0800_0040: `iommufd_sw_msi` maps the physical ITS page at the
/// window's first page in the stage-2 parent) is translated by the guest's stage 1 to the same
/// IPA and by stage 2 to the doorbell.
@Suite("Guest reserved MSI window (rmr-identity)", .serialized)
struct ReservedMSIWindowScenarioTests {
    @Test("accelerated vSMMU, v6.15 host, guest RMR 0x0800_0000/1 MiB: the guest's device gets an IOMMU_RESV_DIRECT region, its DMA domain maps the window 1:1 in stage 1, the host programs 0x0800_0040, and all 4 vectors reach their vCPUs (without the window: the seed's stage-1 fault, VMMScenarioTests.nestedV615)")
    func rmrIdentityDelivers() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, msi: .rmrIdentity)
        let g = try #require(h.guestDevice)
        // iort_get_rmrs on QEMU 11's RMR node: flags 0 → remapping not permitted → DIRECT;
        // access attributes 0x00 (Device-nGnRnE) → prot R|W|MMIO.
        let direct = h.guest.iommu.reservedRegions(for: g.device).filter { $0.type == .direct }
        #expect(direct == [ReservedRegion(start: 0x0800_0000, length: 0x10_0000, protection: [.read, .write, .mmio], type: .direct)])
        let domain = try #require(h.guest.iommu.domain(for: g.device))
        #expect(domain.type == .dma)
        for iova: UInt64 in [0x0800_0000, 0x0800_0040, 0x080F_F000] {
            #expect(h.guest.iommu.iovaToPhys(domain, iova) == iova, "1:1 at \(Hex.format(iova))")
        }
        #expect(h.guest.iommu.iovaToPhys(domain, 0x0810_0000) == nil, "the window ends at 1 MiB")
        let counter = VMMScenarioTests.Counter()
        let irqs = try VMMScenarioTests.guestVectors(h, counter: counter)
        let hostDev = try #require(h.host.pci.device(VMMHarness.hostRID))
        let hostTable = try #require(hostDev.msixTableAddress).rawValue
        for v in 0..<4 {
            #expect(try h.machine.bus.read(PhysicalAddress(hostTable + UInt64(v) * 16), size: 4) == 0x0800_0040, "vector \(v)")
            #expect(h.vmm.vectors[v]?.route.address == GuestMemoryMap.virt.msiGPA)
        }
        let hostSMMU = try #require(h.host.smmuDrivers.first)
        for v in 0..<4 {
            #expect(h.fire(v, guestCPUs: 2) == (1, 1), "vector \(v)")
            let desc = try #require(h.guest.irq.descriptor(irqs[v]))
            #expect(desc.perCPUCount[v % 2] == 1)
        }
        #expect(counter.hits == [0: 1, 1: 1, 2: 1, 3: 1])
        #expect(try hostSMMU.serviceEventQueue().isEmpty, "no fault on the host")
        #expect(h.vmm.pollVirtualEvents() == 0)
    }

    @Test("the VMM's tables carry the RMR: an IORT RMR node (rev 3, flags 0, single mapping of the root bus's RIDs to the SMMUv3 node, range 0x0800_0000 + 1 MiB) in the ACPI tables the guest booted from, the host bridge preserving the boot configuration, and no device-tree stand-in")
    func rmrInGuestTables() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, msi: .rmrIdentity)
        #expect(h.vmm.configuration.resolvedFirmware == .acpi)
        let iort = try #require(h.vmm.guestTopology.iort)
        let rmrNodes = iort.nodes.filter { if case .rmr = $0.kind { true } else { false } }
        let node = try #require(rmrNodes.first)
        #expect(rmrNodes.count == 1)
        guard case .rmr(let rmr) = node.kind else { return }
        #expect(node.revision == 3 && rmr.flags == 0)
        #expect(rmr.ranges == [IORTMemoryRange(base: 0x0800_0000, length: 0x10_0000)])
        #expect(node.mappings.map(\.inputRange) == [0...0xFF] && node.mappings.allSatisfy(\.isSingleMapping))
        let smmuIndex = try #require(iort.nodes.firstIndex { if case .smmuV3 = $0.kind { true } else { false } })
        #expect(node.mappings.first?.outputNode == smmuIndex)
        #expect(h.vmm.guestTopology.pcieHostBridges.first?.preserveBootConfiguration == true)
        #expect(h.vmm.guestTopology.reservedMemory.isEmpty)
        #expect(h.vmm.guestACPITables.iort.nodes.count == iort.nodes.count)
    }

    @Test("firmware dt: QEMU's device tree has no RMR, so the guest has no DIRECT region, its stage 1 does not map 0x0800_0040 and every vector faults in the guest's stage 1 (the device's writes never reach the ITS)")
    func deviceTreeGuestHasNoRMR() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, msi: .rmrIdentity, firmware: .dt)
        #expect(h.vmm.guestTopology.iort == nil && h.vmm.guestTopology.reservedMemory.isEmpty)
        let g = try #require(h.guestDevice)
        #expect(h.guest.iommu.reservedRegions(for: g.device).allSatisfy { $0.type != .direct })
        let domain = try #require(h.guest.iommu.domain(for: g.device))
        #expect(h.guest.iommu.iovaToPhys(domain, 0x0800_0040) == nil)
        let counter = VMMScenarioTests.Counter()
        _ = try VMMScenarioTests.guestVectors(h, counter: counter)
        for v in 0..<4 { #expect(h.fire(v, guestCPUs: 2) == (0, 0), "vector \(v)") }
        #expect(counter.hits.isEmpty)
    }

    @Test("the window in the guest's IOVA allocator: a DMA mapping after the RMR never lands inside it")
    func dmaAvoidsWindow() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, msi: .rmrIdentity)
        let g = try #require(h.guestDevice)
        try h.guest.pci.enableDevice(g)
        try h.guest.pci.setMaster(g)
        for _ in 0..<8 {
            let buffer = try h.guest.pages.allocate(bytes: 0x1000)
            let iova = try h.guest.dma.map(device: g.device, physical: buffer, size: 0x1000, direction: .fromDevice)
            #expect(!MSIPlan.hostSWMSIWindow.contains(iova.rawValue))
            #expect(h.function.dma(.write, address: iova, size: 8, data: 0x77).result?.status == .completed)
        }
    }

    @Test("ramAtMSIWindow with the guest window at 0x0800_0000 (observed): the VMM stops before the guest exists — the host reserved [0x0800_0000, +1 MiB) at the nest-parent attach, so IOMMU_IOAS_MAP of guest RAM there is EINVAL; the RMR never reaches a guest")
    func ramAtMSIWindowWithRMR() throws {
        #expect(throws: GuestError.hostCall("IOMMU_IOAS_MAP", .EINVAL)) {
            _ = try VMMHarness.make(viommu: .acceleratedSMMUv3, layout: .ramAtMSIWindow, msi: .rmrIdentity)
        }
    }
}
