import Testing
import Bus
@testable import Firmware

/// qemu-virt (virt-smmu.dtb) with what a platform that hands a PCI function a firmware-owned
/// buffer adds: /reserved-memory with an identity region (IOVA = PA) and a remapped one
/// (IOVA ≠ PA), and a node for 00:01.0 under the host bridge whose `memory-region` names both.
enum RMRTree {
    static let directPhandle: UInt32 = 0x9001
    static let remappedPhandle: UInt32 = 0x9002
    static let iovaOnlyPhandle: UInt32 = 0x9004
    static let endpointPhandle: UInt32 = 0x9003
    /// phys.hi of a 32-bit memory space address (ss = 10): the space the IOVA is in.
    static let memory32: UInt32 = 0x0200_0000

    static func cells(_ name: String, _ values: [UInt32]) -> DeviceTreeProperty { DeviceTreeProperty(name: name, cells: values) }

    /// The edited tree; `iommuAddresses` overrides the direct region's property for error tests.
    static func tree(directIOMMUAddresses: [UInt32]? = nil, endpointReg: [UInt32] = [0x0800, 0, 0, 0, 0]) throws -> DeviceTree {
        let base = try DeviceTree(dtb: try Fixtures.qemu("virt-smmu"))
        var root = base.root
        let direct = DeviceTreeNode(name: "direct@ffe00000", properties: [
            cells("reg", [0, 0xFFE0_0000, 0, 0x20_0000]), DeviceTreeProperty(name: "no-map"),
            cells("iommu-addresses", directIOMMUAddresses ?? [endpointPhandle, memory32, 0, 0xFFE0_0000, 0, 0x20_0000]),
            cells("phandle", [directPhandle]),
        ])
        let remapped = DeviceTreeNode(name: "remapped@f0000000", properties: [
            cells("reg", [0, 0xF000_0000, 0, 0x10_0000]), DeviceTreeProperty(name: "no-map"),
            cells("iommu-addresses", [endpointPhandle, memory32, 0, 0xE000_0000, 0, 0x10_0000]),
            cells("phandle", [remappedPhandle]),
        ])
        // No reg: a carve-out in the IOVA space only.
        let iovaOnly = DeviceTreeNode(name: "carveout", properties: [
            cells("iommu-addresses", [endpointPhandle, memory32, 0, 0xD000_0000, 0, 0x1000]),
            cells("phandle", [iovaOnlyPhandle]),
        ])
        let reserved = DeviceTreeNode(name: "reserved-memory", properties: [
            cells("#address-cells", [2]), cells("#size-cells", [2]), DeviceTreeProperty(name: "ranges"),
        ], children: [direct, remapped, iovaOnly])
        root.children.append(reserved)
        guard let pcie = root.children.firstIndex(where: { $0.name == "pcie@10000000" }) else { throw Missing() }
        root.children[pcie].children.append(DeviceTreeNode(name: "ep@1,0", properties: [
            cells("reg", endpointReg),
            cells("memory-region", [directPhandle, remappedPhandle, iovaOnlyPhandle]),
            cells("phandle", [endpointPhandle]),
        ]))
        return DeviceTree(root: root, memoryReservations: base.memoryReservations, bootCPUID: base.bootCPUID)
    }

    struct Missing: Error {}
}

@Suite("Reserved IOVA regions from the device tree (iommu-addresses, PCI function nodes)")
struct ReservedIOVATests {
    @Test("written with DeviceTreeWriter and read back: function node RID, memory-region, iommu-addresses")
    func roundTrip() throws {
        let blob = try DeviceTreeWriter.write(try RMRTree.tree())
        let topology = try Topology(dtb: blob)
        let bridge = try #require(topology.pcieHostBridges.first)
        // reg phys.hi 0x0800 = bus 0, device 1 (bits 15:11), function 0: 00:01.0, RID 0x0008.
        let function = try #require(bridge.functionNodes.first)
        #expect(bridge.functionNodes.count == 1)
        #expect(function.path == "/pcie@10000000/ep@1,0")
        #expect(function.bus == 0 && function.device == 1 && function.function == 0 && function.devfn == 0x08)
        #expect(function.phandle == RMRTree.endpointPhandle)
        #expect(function.memoryRegions == [RMRTree.directPhandle, RMRTree.remappedPhandle, RMRTree.iovaOnlyPhandle])
        // The host bridge carries dma-coherent; of_dma_is_coherent walks up to it.
        #expect(function.dmaCoherent)

        let regions = topology.reservedMemory
        #expect(regions.map(\.path) == ["/reserved-memory/direct@ffe00000", "/reserved-memory/remapped@f0000000", "/reserved-memory/carveout"])
        // The IOVA is 3 PCI cells (the device's parent, the host bridge, has #address-cells 3);
        // no dma-ranges anywhere, so phys.mid:lo is the IOVA 1:1.
        #expect(regions[0].phandle == RMRTree.directPhandle)
        #expect(regions[0].ranges == [MemoryRange(base: PhysicalAddress(0xFFE0_0000), size: 0x20_0000)])
        #expect(regions[0].iommuAddresses == [ReservedIOVARange(device: RMRTree.endpointPhandle, devicePath: function.path,
                                                                iova: 0xFFE0_0000, size: 0x20_0000)])
        #expect(regions[1].iommuAddresses.map(\.iova) == [0xE000_0000])
        #expect(regions[1].ranges.map(\.base) == [PhysicalAddress(0xF000_0000)])
        #expect(regions[2].ranges.isEmpty && regions[2].iommuAddresses.map(\.size) == [0x1000])
    }

    @Test("the fixtures have no function nodes and no iommu-addresses")
    func fixturesUnchanged() throws {
        for name in Fixtures.all {
            let topology = try Topology(dtb: try Fixtures.bytes(name))
            #expect(topology.reservedMemory.allSatisfy { $0.iommuAddresses.isEmpty }, "\(name)")
        }
        let qemu = try Topology(dtb: try Fixtures.qemu("virt-smmu"))
        #expect(qemu.pcieHostBridges.allSatisfy { $0.functionNodes.isEmpty })
    }

    @Test("a bus dma-ranges window translates the IOVA; a 3-cell address only matches its own space")
    func dmaRanges() throws {
        let tree = try RMRTree.tree()
        var root = tree.root
        let pcie = try #require(root.children.firstIndex { $0.name == "pcie@10000000" })
        // PCI memory 0x0 → CPU 0x4000_0000, 4 GiB: IOVA (bus address) 0xFFE0_0000 → 0x1_3FE0_0000.
        root.children[pcie].properties.append(RMRTree.cells("dma-ranges", [0x0200_0000, 0, 0, 0, 0x4000_0000, 1, 0]))
        let translated = try Topology(deviceTree: DeviceTree(root: root))
        #expect(translated.reservedMemory[0].iommuAddresses.map(\.iova) == [0x1_3FE0_0000])

        // An I/O-space window never matches a memory-space address: of_bus_pci_map's flags test.
        var ioRoot = tree.root
        ioRoot.children[pcie].properties.append(RMRTree.cells("dma-ranges", [0x0100_0000, 0, 0, 0, 0x4000_0000, 1, 0]))
        #expect(throws: TopologyError.self) { try Topology(deviceTree: DeviceTree(root: ioRoot)) }
    }

    @Test("malformed properties name the node and property", arguments: [
        // Truncated: phandle + 3 address cells + 1 of 2 size cells.
        ([RMRTree.endpointPhandle, RMRTree.memory32, 0, 0xFFE0_0000, 0], "iommu-addresses"),
        // A phandle no node carries: the specifier width is unknown.
        ([0xDEAD, 0, 0, 0, 0, 0], "iommu-addresses"),
    ])
    func malformedIOMMUAddresses(_ cells: [UInt32], _ property: String) throws {
        let tree = try RMRTree.tree(directIOMMUAddresses: cells)
        do throws(TopologyError) {
            _ = try Topology(deviceTree: tree)
            Issue.record("accepted")
        } catch .property(let path, let name, _) {
            #expect(path == "/reserved-memory/direct@ffe00000" && name == property)
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test("a function node whose reg is shorter than of_pci_get_devfn's 5 cells is an error at that node")
    func shortReg() throws {
        #expect(throws: TopologyError.property(path: "/pcie@10000000/ep@1,0", property: "reg",
                                               problem: "a PCI function needs at least 5 cells (phys.hi … size.lo), found 3")) {
            try Topology(deviceTree: try RMRTree.tree(endpointReg: [0x0800, 0, 0]))
        }
    }

    @Test("random iommu-addresses bytes throw or parse, never trap")
    func fuzz() throws {
        var generator = SeededGenerator(seed: 0x5EED_0004)
        for _ in 0..<300 {
            let count = Int.random(in: 0...9, using: &generator)
            var cells: [UInt32] = []
            for _ in 0..<count {
                // Mostly the real phandle, so the width logic runs.
                cells.append(Bool.random(using: &generator) ? RMRTree.endpointPhandle : UInt32.random(in: 0...0xFFFF_FFFF, using: &generator))
            }
            if let topology = try? Topology(deviceTree: try RMRTree.tree(directIOMMUAddresses: cells)) {
                // Whatever parsed used whole 6-cell entries.
                #expect(count % 6 == 0)
                #expect(topology.reservedMemory[0].iommuAddresses.count == count / 6)
            }
        }
    }
}
