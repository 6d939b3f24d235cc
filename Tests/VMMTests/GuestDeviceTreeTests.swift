import Testing
import Bus
import Firmware
import PCI
@testable import VMM

/// The guest's DTB read back by the same `Topology(dtb:)` reader the host preset goes through.
/// Expected addresses are QEMU virt's memory map (hw/arm/virt.c `base_memmap`, and the host
/// fixture Tests/Fixtures/qemu-virt/virt-smmu.dtb).
@Suite("Guest device tree")
struct GuestDeviceTreeTests {
    @Test("with a vSMMU: GICv3 + ITS at QEMU's addresses, SMMUv3 at 0x0905_0000, identity iommu-map and msi-map")
    func withVSMMU() throws {
        let t = try GuestDeviceTree(ramSize: 0x100_0000, cpuCount: 2, vSMMU: true).topology()
        #expect(t.memory == [MemoryRange(base: PhysicalAddress(0x4000_0000), size: 0x100_0000)])
        #expect(t.cpus.map(\.mpidr) == [0, 1])
        let gic = try #require(t.gic)
        #expect(gic.architecture == .v3)
        #expect(gic.distributor == MemoryRange(base: PhysicalAddress(0x0800_0000), size: 0x1_0000))
        #expect(gic.redistributorRegions == [MemoryRange(base: PhysicalAddress(0x080A_0000), size: 0xF6_0000)])
        #expect(gic.its.count == 1)
        // GITS_TRANSLATER = ITS + 0x1_0040: the msi-gpa 0x0809_0040.
        #expect(gic.its.first?.translaterAddress == PhysicalAddress(GuestMemoryMap.virt.msiGPA))
        #expect(GuestMemoryMap.virt.msiGPA == 0x0809_0040)
        #expect(t.smmus.count == 1)
        let smmu = try #require(t.smmus.first)
        #expect(smmu.region == MemoryRange(base: PhysicalAddress(0x0905_0000), size: 0x2_0000))
        #expect(smmu.iommuCells == 1 && smmu.dmaCoherent && smmu.enabled)
        let pcie = try #require(t.pcieHostBridges.first)
        #expect(pcie.configSpace == MemoryRange(base: PhysicalAddress(0x40_1000_0000), size: 0x1000_0000))
        #expect(pcie.ranges.map(\.space) == [.io, .memory32, .memory64])
        #expect(pcie.ranges.map(\.cpuAddress) == [PhysicalAddress(0x3EFF_0000), PhysicalAddress(0x1000_0000), PhysicalAddress(0x80_0000_0000)])
        #expect(pcie.ranges.map(\.size) == [0x1_0000, 0x2EFF_0000, 0x80_0000_0000])
        // Identity maps: RID 0x0008 (00:01.0) is StreamID 8 at the SMMU and DeviceID 8 at the ITS.
        #expect(pcie.iommuMap?.translate(0x0008)?.target == .smmuV3(0))
        #expect(pcie.iommuMap?.translate(0x0008)?.id == 0x8)
        #expect(pcie.msiMap?.translate(0xFFFF)?.target == .its(0))
        #expect(pcie.msiMap?.translate(0xFFFF)?.id == 0xFFFF)
    }

    @Test("without a vIOMMU: no SMMU node and no iommu-map (the device is DMA-direct in the guest), msi-map kept")
    func withoutVSMMU() throws {
        let t = try GuestDeviceTree(ramSize: 0x100_0000, vSMMU: false).topology()
        #expect(t.smmus.isEmpty)
        let pcie = try #require(t.pcieHostBridges.first)
        #expect(pcie.iommuMap == nil)
        #expect(pcie.msiMap?.translate(0x0010)?.id == 0x10)
    }

    @Test("the blob is a deterministic function of the options")
    func deterministic() throws {
        let a = try GuestDeviceTree(ramSize: 0x200_0000, cpuCount: 4, vSMMU: true).blob()
        let b = try GuestDeviceTree(ramSize: 0x200_0000, cpuCount: 4, vSMMU: true).blob()
        #expect(a == b)
        #expect(try GuestDeviceTree(ramSize: 0x200_0000, cpuCount: 4, vSMMU: false).blob() != a)
    }
}

/// The two guest address maps: what the guest's DTB says for each, and that nothing in the
/// made-up map overlaps.
@Suite("Guest memory layouts")
struct GuestMemoryLayoutTests {
    @Test("ramAtMSIWindow: RAM starts at the host's MSI_IOVA_BASE 0x0800_0000; the GIC, vITS and vSMMU sit above it; msi-gpa follows the vITS (0x3F02_0000 + 0x1_0040)")
    func ramAtMSIWindowTree() throws {
        let layout = GuestMemoryMap.ramAtMSIWindow
        let t = try GuestDeviceTree(ramSize: 0x100_0000, cpuCount: 2, vSMMU: true, layout: layout).topology()
        #expect(t.memory == [MemoryRange(base: PhysicalAddress(0x0800_0000), size: 0x100_0000)])
        let gic = try #require(t.gic)
        #expect(gic.distributor.base == PhysicalAddress(0x3FFF_0000))
        #expect(gic.redistributorRegions.first?.base == PhysicalAddress(0x3F04_0000))
        #expect(gic.its.first?.translaterAddress == PhysicalAddress(0x3F03_0040))
        #expect(layout.msiGPA == 0x3F03_0040)
        #expect(t.smmus.first?.region.base == PhysicalAddress(0x3F00_0000))
        let pcie = try #require(t.pcieHostBridges.first)
        #expect(pcie.path == "/pcie@40000000", "named after the 32-bit MMIO window (create_pcie)")
        #expect(pcie.ranges.map(\.cpuAddress) == [PhysicalAddress(0x3EFF_0000), PhysicalAddress(0x4000_0000), PhysicalAddress(0x80_0000_0000)])
    }

    @Test("no two windows of either layout overlap, and each layout's whole RAM window stays clear of its MMIO", arguments: [GuestMemoryMap.virt, .ramAtMSIWindow])
    func noOverlap(layout: GuestMemoryMap) {
        let windows = [layout.distributor, layout.its, layout.redistributors, layout.smmu, layout.pcieMMIO32,
                       layout.pcieIO, layout.ram, layout.ecam, layout.pcieMMIO64]
        for i in windows.indices {
            for j in windows.indices where j > i {
                #expect(!windows[i].overlaps(windows[j]), "\(layout): \(windows[i]) vs \(windows[j])")
            }
        }
        #expect(layout.ramWindow(size: layout.ram.size) != nil)
        #expect(layout.ramWindow(size: layout.ram.size + 0x1000) == nil)
        #expect(layout.ramWindow(size: 0) == nil)
    }

    @Test("the host's SW_MSI window [0x0800_0000, +1 MiB) is guest RAM only in ramAtMSIWindow; in virt it is the GIC distributor's")
    func swMSIWindowOwner() {
        let swMSI = GuestMemoryMap.MemoryWindow(base: 0x0800_0000, size: 0x10_0000)
        #expect(GuestMemoryMap.ramAtMSIWindow.ram.overlaps(swMSI))
        #expect(!GuestMemoryMap.virt.ram.overlaps(swMSI))
        #expect(GuestMemoryMap.virt.distributor.overlaps(swMSI))
    }
}
