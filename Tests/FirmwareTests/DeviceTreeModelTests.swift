import Testing
import Bus
@testable import Firmware

@Suite("Device tree model, reg decoding and topology errors")
struct DeviceTreeModelTests {
    @Test("typed accessors return nil for the wrong shape instead of trapping")
    func accessors() {
        let cells = DeviceTreeProperty(name: "reg", cells: [0, 0x0808_0000, 0, 0x2_0000])
        #expect(cells.cells == [0, 0x0808_0000, 0, 0x2_0000])
        #expect(cells.u32 == nil && cells.u64 == nil && cells.string == nil)
        #expect(DeviceTreeProperty(name: "x", cells: [0x1, 0x2]).u64 == 0x1_0000_0002)
        #expect(DeviceTreeProperty(name: "x", value: [1, 2, 3]).cells == nil)
        let names = DeviceTreeProperty(name: "interrupt-names", strings: ["eventq", "priq"])
        #expect(names.strings == ["eventq", "priq"] && names.string == nil)
        #expect(DeviceTreeProperty(name: "model", strings: ["linux,dummy-virt"]).string == "linux,dummy-virt")
        // No terminating NUL: not a string.
        #expect(DeviceTreeProperty(name: "x", value: [0x61]).strings == nil)
        #expect(DeviceTreeProperty(name: "dma-coherent").isEmpty)
        let node = DeviceTreeNode(name: "its@8080000")
        #expect(node.nodeName == "its" && node.unitAddress == "8080000")
        // DT spec §2.3.5: absent #address-cells / #size-cells mean 2 and 1.
        #expect(node.addressCells == 2 && node.sizeCells == 1)
    }

    @Test("paths are built from the names on demand and looked up one name at a time")
    func pathsOnDemand() throws {
        let its = DeviceTreeNode(name: "its@8080000")
        let intc = DeviceTreeNode(name: "intc@8000000", children: [its])
        // Two siblings share a name (an invalid DT): the first in blob order is followed.
        let first = DeviceTreeNode(name: "dup", children: [DeviceTreeNode(name: "a")])
        let second = DeviceTreeNode(name: "dup", children: [DeviceTreeNode(name: "b")])
        let tree = DeviceTree(root: DeviceTreeNode(name: "", children: [intc, first, second]))
        #expect(tree.nodes.map(\.path) == ["/", "/intc@8000000", "/intc@8000000/its@8080000", "/dup", "/dup/a", "/dup", "/dup/b"])
        for index in tree.nodes.indices where index < 5 {
            #expect(tree.index(ofPath: tree.nodes[index].path) == index)
        }
        #expect(tree.index(ofPath: "/dup/b") == nil)
        #expect(tree.path(of: 2) == "/intc@8000000/its@8080000" && tree.path(of: 7) == nil && tree.path(of: -1) == nil)
        // Not paths: relative, an empty name, a trailing slash, an unknown name.
        for bad in ["", "intc@8000000", "//intc@8000000", "/intc@8000000/", "/intc@8000000//its@8080000", "/its@8080000"] {
            #expect(tree.index(ofPath: bad) == nil, "\(bad)")
        }
        // Entries of equal trees are equal (the path is part of an entry's value).
        #expect(DeviceTree(root: tree.root).nodes == tree.nodes)
    }

    @Test("reg uses the parent's cells, defaults 2/1, and is translated through ranges")
    func regDecoding() throws {
        // / (no #address-cells: 2, no #size-cells: 1) → bus (ranges 0x0 → 0x1_0000_0000, 1 cell each) → dev.
        let dev = DeviceTreeNode(name: "dev@100", properties: [DeviceTreeProperty(name: "reg", cells: [0x100, 0x40])])
        let bus = DeviceTreeNode(name: "bus", properties: [
            DeviceTreeProperty(name: "#address-cells", cells: [1]), DeviceTreeProperty(name: "#size-cells", cells: [1]),
            // child 0x0, parent (2 cells) 0x1_0000_0000, size 0x1000 (1 cell of the bus).
            DeviceTreeProperty(name: "ranges", cells: [0, 1, 0, 0x1000]),
            DeviceTreeProperty(name: "reg", cells: [0x2, 0x0, 0x10]),
        ], children: [dev])
        let tree = DeviceTree(root: DeviceTreeNode(name: "", children: [bus]))
        let busIndex = try #require(tree.index(ofPath: "/bus"))
        // With the root's defaults (2 address, 1 size cells) <0x2 0x0 0x10> is 0x2_0000_0000 + 0x10.
        #expect(try tree.registerRegions(of: busIndex) == [RegisterRegion(base: 0x2_0000_0000, size: 0x10)])
        let devIndex = try #require(tree.index(ofPath: "/bus/dev@100"))
        #expect(try tree.registerRegions(of: devIndex) == [RegisterRegion(base: 0x1_0000_0100, size: 0x40)])
        // An address outside the bus's window is untranslatable, not wrapped or trapped.
        let outside = DeviceTree(root: DeviceTreeNode(name: "", children: [DeviceTreeNode(
            name: "bus", properties: bus.properties,
            children: [DeviceTreeNode(name: "far", properties: [DeviceTreeProperty(name: "reg", cells: [0x2000, 4])])])]))
        #expect(throws: AddressDecodingError.untranslatable(ancestor: "/bus", address: 0x2000)) {
            try outside.registerRegions(of: try #require(outside.index(ofPath: "/bus/far")))
        }
    }

    @Test("phandle and path lookups find the QEMU ITS")
    func lookups() throws {
        let tree = try DeviceTree(dtb: try Fixtures.qemu("virt-smmu"))
        #expect(tree.node(withPhandle: 0x8003)?.name == "its@8080000")
        #expect(tree.node(at: "/intc@8000000/its@8080000")?.phandle == 0x8003)
        #expect(tree.node(withPhandle: 0x1234) == nil)
        #expect(tree.node(at: "/nope") == nil)
    }

    /// A minimal GICv3 + host bridge tree to break one property at a time.
    static func tree(gicReg: [UInt32] = [0, 0x0800_0000, 0, 0x1_0000, 0, 0x080A_0000, 0, 0xF6_0000],
                     bridge: [DeviceTreeProperty]) -> DeviceTree {
        let gic = DeviceTreeNode(name: "intc@8000000", properties: [
            DeviceTreeProperty(name: "compatible", strings: ["arm,gic-v3"]),
            DeviceTreeProperty(name: "reg", cells: gicReg),
        ])
        let pcie = DeviceTreeNode(name: "pcie@10000000", properties: [
            DeviceTreeProperty(name: "device_type", strings: ["pci"]),
            DeviceTreeProperty(name: "#address-cells", cells: [3]),
            DeviceTreeProperty(name: "#size-cells", cells: [2]),
        ] + bridge)
        return DeviceTree(root: DeviceTreeNode(name: "", properties: [
            DeviceTreeProperty(name: "#address-cells", cells: [2]), DeviceTreeProperty(name: "#size-cells", cells: [2]),
        ], children: [gic, pcie]))
    }

    @Test("malformed properties give an error naming the node path and the property")
    func topologyErrors() {
        #expect(throws: TopologyError.property(path: "/intc@8000000", property: "reg", problem: "length 12 is not a whole number of entries")) {
            try Topology(deviceTree: Self.tree(gicReg: [0, 0x0800_0000, 0], bridge: []))
        }
        #expect(throws: TopologyError.property(path: "/pcie@10000000", property: "bus-range", problem: "expected <first last> with first ≤ last")) {
            try Topology(deviceTree: Self.tree(bridge: [DeviceTreeProperty(name: "bus-range", cells: [5, 1])]))
        }
        #expect(throws: TopologyError.property(path: "/pcie@10000000", property: "iommu-map", problem: "entry at cell 0 needs 4 cells, 3 left")) {
            try Topology(deviceTree: Self.tree(bridge: [DeviceTreeProperty(name: "iommu-map", cells: [0, 1, 0])]))
        }
        #expect(throws: TopologyError.property(path: "/pcie@10000000", property: "msi-map-mask", problem: "expected one cell, found 2 bytes")) {
            try Topology(deviceTree: Self.tree(bridge: [DeviceTreeProperty(name: "msi-map", cells: [0, 1, 0, 1]),
                                                        DeviceTreeProperty(name: "msi-map-mask", value: [0, 0])]))
        }
        #expect(TopologyError.property(path: "/a", property: "reg", problem: "x").description == "/a: reg: x")
    }

    @Test("a map entry with an unknown phandle is kept as data: 'unresolved phandle', not a crash")
    func unresolvedPhandle() throws {
        let t = try Topology(deviceTree: Self.tree(bridge: [DeviceTreeProperty(name: "msi-map", cells: [0, 0x77, 0x10, 0x100])]))
        let map = try #require(t.pcieHostBridges.first?.msiMap)
        #expect(map.entries.first?.target == .unresolvedPhandle(0x77))
        #expect(map.translate(5).map { "\($0.target) \($0.id)" } == "unresolved phandle 0x77 21")
        // Absent bus-range means 0…255 (pci-bus-common.yaml).
        #expect(t.pcieHostBridges.first?.busRange == 0...255 && t.pcieHostBridges.first?.busRangeIsDefault == true)
    }

    @Test("of_map_id rules: a mask that drops id-base bits is an error for the lookup; offsets wrap at 32 bits")
    func lookupRules() {
        let map = IDMap(kind: .msi, mask: 0xFF, entries: [
            IDMapEntry(idBase: 0x10, phandle: 1, target: .its(0), outputBase: [0xFFFF_FFFF], length: 4),
            IDMapEntry(idBase: 0x100, phandle: 1, target: .its(0), outputBase: [0], length: 1),
        ])
        // 0x12 is in entry 0: 0xffffffff + 2 wraps to 1, as the kernel's u32 sum does.
        #expect(map.translate(0x12)?.id == 1)
        // 0x20 misses entry 0 and then hits entry 1, whose id-base 0x100 has bits outside 0xff.
        #expect(map.lookup(0x20) == .maskIgnoresBase(entry: 1))
        let multi = IDMap(kind: .iommu, entries: [IDMapEntry(idBase: 0, phandle: 1, target: .iommu(0), outputBase: [0x10, 0x1], length: 2)])
        #expect(multi.lookup(1) == .unsupportedMultiCellRange(entry: 0))
        let single = IDMap(kind: .iommu, entries: [IDMapEntry(idBase: 0, phandle: 1, target: .iommu(0), outputBase: [0x10, 0x1], length: 1)])
        #expect(single.lookup(0) == .mapped(entry: 0, target: .iommu(0), specifier: [0x10, 0x1]))
        #expect(single.translate(0) == nil)
    }

    @Test("Topology(dtb:) wraps a blob error")
    func blobError() {
        #expect(throws: TopologyError.blob(FDTError(offset: 0, .truncatedHeader(length: 0)))) { try Topology(dtb: []) }
    }

    @Test("the writer refuses a NUL inside a name rather than writing a broken blob")
    func writerRejectsNUL() {
        let tree = DeviceTree(root: DeviceTreeNode(name: "", children: [DeviceTreeNode(name: "a\u{0}b")]))
        #expect(throws: DeviceTreeWriter.WriteError.nameContainsNUL(path: "/a\u{0}b")) { try DeviceTreeWriter.write(tree) }
    }

    @Test("a hand-built tree with reservations round-trips through the writer")
    func writerRoundTrip() throws {
        let tree = DeviceTree(root: DeviceTreeNode(name: "", properties: [
            DeviceTreeProperty(name: "compatible", strings: ["doorbell,test"]),
            DeviceTreeProperty(name: "odd", value: [1, 2, 3]),  // needs padding
        ], children: [DeviceTreeNode(name: "a@1", properties: [DeviceTreeProperty(name: "odd", value: [9])])]),
            memoryReservations: [MemoryReservation(address: 0x4000_0000, size: 0x1000)], bootCPUID: 3)
        let bytes = try DeviceTreeWriter.write(tree)
        let fdt = try FlattenedDeviceTree(bytes: bytes)
        #expect(fdt.tree == tree)
        #expect(fdt.header.bootCPUID == 3)
        // "compatible\0odd\0": each name stored once.
        #expect(fdt.header.stringsSize == 15)
        #expect(bytes.count % 4 == 3)  // header+rsvmap+struct are 4-aligned, then 15 string bytes
    }
}

@Test("lookups by an index outside the tree throw instead of trapping")
func badIndex() throws {
    let tree = try DeviceTree(dtb: try Fixtures.qemu("virt-smmu"))
    #expect(throws: AddressDecodingError.missing) { try tree.registerRegions(of: -1) }
    #expect(throws: AddressDecodingError.missing) { try tree.translate(0, fromChildrenOf: tree.nodes.count) }
    #expect(tree.parent(of: 1_000_000) == nil)
}
