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

/// The guest's reserved MSI window (the device-tree form of an IORT RMR), read back by the same
/// reader the guest kernel uses.
@Suite("Guest reserved MSI window (device tree)")
struct GuestReservedMSIWindowTests {
    static let window = GuestMemoryMap.MemoryWindow(base: 0x0800_0000, size: 0x10_0000)

    @Test("the window is a /reserved-memory child with reg = iommu-addresses for the function (3 PCI address cells, 2 size cells), no-map; the function's node under the host bridge has devfn 0x08 and memory-region = the window")
    func rmrNode() throws {
        let fn = GuestDeviceTree.Function(requesterID: RequesterID(bus: 0, device: 1, function: 0), vendorID: 0x1AF4, deviceID: 0x1041)
        let dt = GuestDeviceTree(ramSize: 0x100_0000, vSMMU: true, functions: [fn], reservedMSIWindow: Self.window)
        let t = try dt.topology()
        let reserved = try #require(t.reservedMemory.first)
        #expect(t.reservedMemory.count == 1)
        #expect(reserved.path == "/reserved-memory/msi-window@8000000")
        #expect(reserved.ranges == [MemoryRange(base: PhysicalAddress(0x0800_0000), size: 0x10_0000)])
        #expect(reserved.noMap)
        #expect(reserved.phandle == GuestDeviceTree.reservedMSIPhandle)
        #expect(reserved.iommuAddresses == [ReservedIOVARange(device: GuestDeviceTree.functionPhandle(0),
                                                               devicePath: "/pcie@10000000/pci1af4,1041@1",
                                                               iova: 0x0800_0000, size: 0x10_0000)])
        let pcie = try #require(t.pcieHostBridges.first)
        let node = try #require(pcie.functionNodes.first)
        #expect(pcie.functionNodes.count == 1)
        #expect(node.devfn == 0x08 && node.bus == 0)
        #expect(node.memoryRegions == [GuestDeviceTree.reservedMSIPhandle])
        #expect(node.dmaCoherent, "inherited from the host bridge's dma-coherent")
    }

    @Test("without a window the tree is QEMU's: no reserved-memory, no function nodes")
    func noWindow() throws {
        let fn = GuestDeviceTree.Function(requesterID: RequesterID(bus: 0, device: 1, function: 0))
        let t = try GuestDeviceTree(ramSize: 0x100_0000, vSMMU: true, functions: [fn]).topology()
        #expect(t.reservedMemory.isEmpty)
        #expect(t.pcieHostBridges.first?.functionNodes.isEmpty == true)
    }

    @Test("two functions (one with function number 3) each get their own iommu-addresses entry and node; a window above 4 GiB keeps its upper address cell")
    func twoFunctions() throws {
        let a = GuestDeviceTree.Function(requesterID: RequesterID(bus: 0, device: 1, function: 0), vendorID: 0x1AF4, deviceID: 0x1041)
        let b = GuestDeviceTree.Function(requesterID: RequesterID(bus: 0, device: 2, function: 3), vendorID: 0x8086, deviceID: 0x10D3)
        let high = GuestMemoryMap.MemoryWindow(base: 0x1_2340_0000, size: 0x20_0000)
        let t = try GuestDeviceTree(ramSize: 0x100_0000, vSMMU: true, functions: [a, b], reservedMSIWindow: high).topology()
        let reserved = try #require(t.reservedMemory.first)
        #expect(reserved.iommuAddresses.map(\.devicePath) == ["/pcie@10000000/pci1af4,1041@1", "/pcie@10000000/pci8086,10d3@2,3"])
        #expect(reserved.iommuAddresses.allSatisfy { $0.iova == 0x1_2340_0000 && $0.size == 0x20_0000 })
        #expect(t.pcieHostBridges.first?.functionNodes.map(\.devfn) == [0x08, 0x13])
    }

    @Test("a function on guest bus 2 is a child of its root port's node (pci@1f, bus-range 2–2, 3/2 cells), whose iommu-addresses entry still reads with the PCI bus's cells and translates 1:1; the reader lists it after the host bridge's own children, with the root port's devfn as its upstream chain (pci_set_of_node, level by level)")
    func functionBehindRootPort() throws {
        let a = GuestDeviceTree.Function(requesterID: RequesterID(bus: 0, device: 1, function: 0), vendorID: 0x1AF4, deviceID: 0x1041)
        let b = GuestDeviceTree.Function(requesterID: RequesterID(bus: 2, device: 0, function: 0), vendorID: 0x8086, deviceID: 0x10D3)
        let port = GuestDeviceTree.RootPort(requesterID: RequesterID(bus: 0, device: 0x1F, function: 0), secondaryBus: 2)
        let t = try GuestDeviceTree(ramSize: 0x100_0000, vSMMU: true, functions: [a, b], reservedMSIWindow: Self.window, rootPorts: [port]).topology()
        let reserved = try #require(t.reservedMemory.first)
        #expect(reserved.iommuAddresses.map(\.devicePath) == ["/pcie@10000000/pci1af4,1041@1", "/pcie@10000000/pci@1f/pci8086,10d3@0"])
        #expect(reserved.iommuAddresses.allSatisfy { $0.iova == 0x0800_0000 && $0.size == 0x10_0000 })
        #expect(t.pcieHostBridges.first?.functionNodes.map(\.devfn) == [0x08, 0xF8, 0x00])
        #expect(t.pcieHostBridges.first?.functionNodes.map(\.upstream) == [[], [], [0xF8]])
        #expect(t.pcieHostBridges.count == 1, "a bridge node under a PCI bus is not a host bridge")
    }
}
