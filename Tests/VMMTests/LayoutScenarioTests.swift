import Testing
import Bus
import Firmware
import LinuxKernel
import PCI
import SMMUv3
@testable import VMM

/// Guests on other address maps than QEMU virt's.
///
/// `ramAtMSIWindow` puts guest RAM at 0x0800_0000, the host SMMUv3 driver's SW_MSI window
/// (`MSI_IOVA_BASE`, 1 MiB). The host reports that window as an IOMMU_RESV_SW_MSI region for
/// every device behind an SMMUv3 (`arm_smmu_get_resv_regions`), and iommufd reserves it in the
/// IOAS at attach (`iopt_table_enforce_dev_resv_regions` → `iopt_reserve_iova`), so guest RAM
/// mapped over it afterwards is refused (`iopt_check_iova`: "No reserved IOVA intersects the
/// range" → EINVAL). `lowRAMAboveMSIWindow` is the same low-MMIO map with RAM starting 1 MiB
/// higher: it exercises every moved window (vGIC, vITS, `msi-gpa`, vSMMU, host bridge) with
/// nothing else changed.
@Suite("Guest memory layouts (scenarios)", .serialized)
struct LayoutScenarioTests {
    static var lowRAMAboveMSIWindow: GuestMemoryMap {
        var layout = GuestMemoryMap.ramAtMSIWindow
        layout.name = "ram-above-msi-window"
        layout.ram = GuestMemoryMap.MemoryWindow(base: 0x0810_0000, size: 0x2FF0_0000)
        return layout
    }

    @Test("ramAtMSIWindow, no vIOMMU, v6.15 and v6.14 hosts: the VMM fails where QEMU's vfio realize fails — IOMMU_IOAS_MAP of guest RAM at 0x0800_0000 after the attach reserved the host's SW_MSI window: EINVAL", arguments: [KernelConfiguration.Version.v6_15, .v6_14])
    func ramOverSWMSIWindowRefused(version: KernelConfiguration.Version) throws {
        var hostConfig = KernelConfiguration()
        hostConfig.version = version
        #expect(throws: GuestError.hostCall("IOMMU_IOAS_MAP", .EINVAL)) {
            _ = try VMMHarness.make(viommu: .none, host: hostConfig, layout: .ramAtMSIWindow)
        }
    }

    @Test("ramAtMSIWindow with the accelerated vSMMU: the nest-parent attach reserves the window the same way; IOMMU_IOAS_MAP fails with EINVAL")
    func ramOverSWMSIWindowRefusedNested() throws {
        #expect(throws: GuestError.hostCall("IOMMU_IOAS_MAP", .EINVAL)) {
            _ = try VMMHarness.make(viommu: .acceleratedSMMUv3, layout: .ramAtMSIWindow)
        }
    }

    @Test("the same low-MMIO map with RAM from 0x0810_0000: the guest boots, the vGIC and vITS sit at 0x3FFF_0000 / 0x3F02_0000, the guest programs its vITS doorbell 0x3F03_0040 and every vector reaches its vCPU; guest DMA lands in the host page")
    func lowMMIOLayoutDelivers() throws {
        let layout = Self.lowRAMAboveMSIWindow
        let h = try VMMHarness.make(viommu: .none, layout: layout)
        #expect(h.vmm.vm.vgic?.distributorBase == PhysicalAddress(0x3FFF_0000))
        #expect(h.vmm.vm.vgic?.itsBase == PhysicalAddress(0x3F02_0000))
        #expect(h.vmm.vm.memorySlots.first?.guestPhysical == 0x0810_0000)
        let counter = VMMScenarioTests.Counter()
        let irqs = try VMMScenarioTests.guestVectors(h, counter: counter)
        for v in 0..<4 {
            #expect(h.vmm.function.entries[v].address == 0x3F03_0040, "the guest's GITS_TRANSLATER on this map")
            #expect(h.vmm.vectors[v]?.route.address == 0x3F03_0040)
            #expect(h.fire(v, guestCPUs: 2) == (1, 1), "vector \(v)")
            let desc = try #require(h.guest.irq.descriptor(irqs[v]))
            #expect(desc.perCPUCount[v % 2] == 1)
        }
        let g = try #require(h.guestDevice)
        let buffer = try h.guest.pages.allocate(bytes: 0x1000)
        #expect(layout.ram.contains(buffer.rawValue))
        let bus = try h.guest.dma.map(device: g.device, physical: buffer, size: 0x1000, direction: .fromDevice)
        #expect(h.function.dma(.write, address: bus, size: 8, data: 0x5A).result?.status == .completed)
        let hostPage = try #require(h.hostPhysical(ofGuest: buffer.rawValue))
        #expect(h.machine.bus.ram.read(hostPage.rawValue, size: 8) == 0x5A)
    }

    @Test("the same low-MMIO map with the accelerated vSMMU at 0x3F00_0000 and a guest identity domain: routes use this map's msi-gpa 0x3F03_0040 and every vector is delivered")
    func lowMMIOLayoutNestedIdentity() throws {
        var guestConfig = KernelConfiguration()
        guestConfig.defaultDomain = .identity
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, guest: guestConfig, layout: Self.lowRAMAboveMSIWindow)
        #expect(h.guest.smmuDrivers.count == 1, "the guest found its vSMMU at the moved address")
        #expect(h.vmm.vsmmu?.translationEnabled == true)
        let counter = VMMScenarioTests.Counter()
        _ = try VMMScenarioTests.guestVectors(h, counter: counter)
        for v in 0..<4 {
            #expect(h.vmm.vectors[v]?.route.address == 0x3F03_0040)
            #expect(h.fire(v, guestCPUs: 2) == (1, 1), "vector \(v)")
        }
        #expect(counter.hits == [0: 1, 1: 1, 2: 1, 3: 1])
    }
}
