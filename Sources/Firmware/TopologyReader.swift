import Bus

/// Derives a `Topology` from a `DeviceTree`. Pass 1 finds the units that maps can point at
/// (GIC, ITSs, v2m frames, SMMUs, other IOMMUs) so that pass 2 can resolve every phandle in
/// `iommu-map`, `msi-map`, `msi-parent` and `iommus` to them.
struct TopologyReader {
    let tree: DeviceTree
    /// Node index → what it is, for phandle resolution.
    private var targets: [Int: DeviceTreeTarget] = [:]

    init(tree: DeviceTree) { self.tree = tree }

    mutating func read() throws(TopologyError) -> Topology {
        var topology = Topology()
        let root = tree.root
        topology.model = root.property("model")?.string
        topology.compatible = root.compatible
        topology.memoryReservations = tree.memoryReservations.map { MemoryRange(base: PhysicalAddress($0.address), size: $0.size) }
        topology.cpus = try readCPUs()
        topology.memory = try readMemory()
        topology.reservedMemory = try readReservedMemory()

        // Pass 1: the units maps point at.
        for (index, entry) in tree.nodes.enumerated() {
            let node = entry.node
            if topology.gic == nil, let architecture = Self.gicArchitecture(node) {
                topology.gic = try readGIC(index, architecture: architecture)
                targets[index] = .gic
            } else if node.isCompatible(with: "arm,smmu-v3") {
                targets[index] = .smmuV3(topology.smmus.count)
                topology.smmus.append(try readSMMU(index))
            } else if node.hasProperty("#iommu-cells") {
                targets[index] = .iommu(topology.otherIOMMUs.count)
                topology.otherIOMMUs.append(IOMMUDescription(
                    path: entry.path, compatible: node.compatible, regions: try regions(index, optional: true),
                    iommuCells: try u32(index, "#iommu-cells"), phandle: node.phandle, enabled: node.isEnabled,
                    streamMatchMask: try u32(index, "stream-match-mask"),
                    globalInterrupts: try u32(index, "#global-interrupts"),
                    interruptCount: try cells(index, "interrupts").map { $0.count / 3 }))
            }
        }
        if var gic = topology.gic {
            for (index, entry) in tree.nodes.enumerated() {
                if entry.node.isCompatible(with: "arm,gic-v3-its") {
                    targets[index] = .its(gic.its.count)
                    gic.its.append(try readITS(index))
                } else if entry.node.isCompatible(with: "arm,gic-v2m-frame") {
                    targets[index] = .gicV2mFrame(gic.v2mFrames.count)
                    gic.v2mFrames.append(try readV2m(index))
                }
            }
            topology.gic = gic
        }
        // `msi-parent` of SMMUs needs the ITS targets, so resolve it now.
        for (position, smmu) in topology.smmus.enumerated() {
            if let index = tree.index(ofPath: smmu.path) {
                topology.smmus[position].msiParent = try phandleList(index, "msi-parent", cells: "#msi-cells", missingCells: 0)
            }
        }

        // Pass 2: PCIe host bridges.
        for (index, entry) in tree.nodes.enumerated() where entry.node.property("device_type")?.string == "pci" {
            if let parent = entry.parent, tree.nodes[parent].node.property("device_type")?.string == "pci" { continue }
            topology.pcieHostBridges.append(try readHostBridge(index))
        }
        return topology
    }

    // MARK: Helpers that name the node and property in their errors.

    func path(_ index: Int) -> String { tree.nodes[index].path }

    func fail(_ index: Int, _ property: String, _ problem: String) -> TopologyError {
        .property(path: path(index), property: property, problem: problem)
    }

    /// An optional u32 property; present but not exactly 4 bytes is an error.
    private func u32(_ index: Int, _ name: String) throws(TopologyError) -> UInt32? {
        guard let property = tree.nodes[index].node.property(name) else { return nil }
        guard let value = property.u32 else { throw fail(index, name, "expected one cell, found \(property.value.count) bytes") }
        return value
    }

    func cells(_ index: Int, _ name: String) throws(TopologyError) -> [UInt32]? {
        guard let property = tree.nodes[index].node.property(name) else { return nil }
        guard let cells = property.cells else { throw fail(index, name, "length \(property.value.count) is not a whole number of cells") }
        return cells
    }

    /// The node's `reg` regions. Base and size both come from the blob, so their sum is
    /// computed with overflow reporting: a region that wraps past 2^64 or ends beyond the
    /// 52-bit physical address space (`SystemBus.physicalAddressLimit`) is an error naming
    /// this node and `reg`, with the base and size as written (never a wrapped end).
    func regions(_ index: Int, optional: Bool = false) throws(TopologyError) -> [MemoryRange] {
        let regions: [RegisterRegion]
        do {
            regions = try tree.registerRegions(of: index)
        } catch .missing where optional {
            return []
        } catch {
            throw fail(index, "reg", Self.describe(error))
        }
        for region in regions where region.size > 0 {
            let (last, overflow) = region.base.addingReportingOverflow(region.size - 1)
            if overflow {
                throw fail(index, "reg", "region \(region) runs past the end of the 64-bit address space (base + size overflows)")
            }
            if last >= SystemBus.physicalAddressLimit {
                throw fail(index, "reg", "region \(region) ends at \(Hex.format(last)), beyond the 52-bit physical address space")
            }
        }
        return regions.map { MemoryRange(base: PhysicalAddress($0.base), size: $0.size) }
    }

    static func describe(_ error: AddressDecodingError) -> String {
        switch error {
        case .missing: return "missing"
        case .unsupportedCells(let a, let s):
            return "unsupported #address-cells \(a.map(String.init) ?? "?") / #size-cells \(s.map(String.init) ?? "?")"
        case .badLength(let n): return "length \(n) is not a whole number of entries"
        case .untranslatable(let ancestor, let address):
            return "address \(Hex.format(address)) is not mapped by the ranges of \(ancestor)"
        }
    }

    private func firstRegion(_ index: Int) throws(TopologyError) -> MemoryRange {
        guard let first = try regions(index).first else { throw fail(index, "reg", "empty") }
        return first
    }

    private func resolve(_ phandle: UInt32) -> DeviceTreeTarget {
        guard let index = tree.index(ofPhandle: phandle) else { return .unresolvedPhandle(phandle) }
        return targets[index] ?? .node(path: path(index))
    }

    // MARK: Units.

    private func readCPUs() throws(TopologyError) -> [CPUDescription] {
        guard let cpusIndex = tree.index(ofPath: "/cpus") else { return [] }
        let addressCells = tree.nodes[cpusIndex].node.addressCells
        var out: [CPUDescription] = []
        for (index, entry) in tree.nodes.enumerated() where entry.parent == cpusIndex {
            guard entry.node.property("device_type")?.string == "cpu" else { continue }
            guard let reg = entry.node.property("reg") else { throw fail(index, "reg", "missing") }
            // Arm cpus.yaml: #address-cells is 1 or 2 and reg is the MPIDR affinity fields.
            guard let cells = addressCells, (1...2).contains(cells), reg.value.count == Int(cells) * 4,
                  let mpidr = DeviceTree.readCells(reg.value, at: 0, count: Int(cells)) else {
                throw fail(index, "reg", "expected \(addressCells.map(String.init) ?? "?") cell(s) of MPIDR, found \(reg.value.count) bytes")
            }
            out.append(CPUDescription(path: entry.path, mpidr: mpidr, compatible: entry.node.compatible,
                                      enableMethod: entry.node.property("enable-method")?.string))
        }
        return out
    }

    private func readMemory() throws(TopologyError) -> [MemoryRange] {
        var out: [MemoryRange] = []
        for (index, entry) in tree.nodes.enumerated() where entry.node.property("device_type")?.string == "memory" {
            out += try regions(index, optional: true)
        }
        return out.sorted()
    }

    private func readReservedMemory() throws(TopologyError) -> [ReservedMemoryRegion] {
        guard let parent = tree.index(ofPath: "/reserved-memory") else { return [] }
        var out: [ReservedMemoryRegion] = []
        for (index, entry) in tree.nodes.enumerated() where entry.parent == parent {
            out.append(ReservedMemoryRegion(path: entry.path, ranges: try regions(index, optional: true),
                                            compatible: entry.node.compatible, noMap: entry.node.hasProperty("no-map"),
                                            phandle: entry.node.phandle, iommuAddresses: try iommuAddresses(index)))
        }
        return out
    }

    /// The GIC family from `compatible` (bindings `arm,gic.yaml` for v1/v2, `arm,gic-v3.yaml`).
    static func gicArchitecture(_ node: DeviceTreeNode) -> GICDescription.Architecture? {
        let v3 = ["arm,gic-v3", "qcom,msm8996-gic-v3"]
        let v2 = ["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a9-gic", "arm,cortex-a7-gic",
                  "arm,cortex-a5-gic", "arm,pl390", "arm,arm11mp-gic", "arm,tc11mp-gic", "arm,eb11mp-gic",
                  "brcm,brahma-b15-gic", "nvidia,tegra210-agic", "qcom,msm-8660-qgic", "qcom,msm-qgic2"]
        if node.compatible.contains(where: v3.contains) { return .v3 }
        if node.compatible.contains(where: v2.contains) { return .v2 }
        return nil
    }

    private func readGIC(_ index: Int, architecture: GICDescription.Architecture) throws(TopologyError) -> GICDescription {
        let node = tree.nodes[index].node
        let all = try regions(index)
        guard let distributor = all.first else { throw fail(index, "reg", "no distributor region") }
        var redistributors: [MemoryRange] = []
        var rest = Array(all.dropFirst())
        var stride: UInt64?
        if architecture == .v3 {
            // arm,gic-v3.yaml: reg = GICD, then #redistributor-regions GICR regions (default 1),
            // then optional GICC, GICH, GICV.
            let count = Int(try u32(index, "#redistributor-regions") ?? 1)
            guard count >= 1, count <= rest.count else {
                throw fail(index, "#redistributor-regions", "\(count) regions but reg has \(rest.count) after GICD")
            }
            redistributors = Array(rest.prefix(count))
            rest = Array(rest.dropFirst(count))
            if let property = node.property("redistributor-stride") {
                // A u64 (two cells) in the binding.
                guard let value = property.u64 ?? property.u32.map(UInt64.init) else {
                    throw fail(index, "redistributor-stride", "expected a 64-bit value")
                }
                stride = value
            }
        }
        return GICDescription(
            path: path(index), compatible: node.compatible, phandle: node.phandle, architecture: architecture,
            distributor: distributor, redistributorRegions: redistributors, redistributorStride: stride,
            cpuInterfaceRegions: rest, maintenanceInterrupt: try cells(index, "interrupts"),
            isMSIController: node.hasProperty("msi-controller"), mbiRanges: try cells(index, "mbi-ranges") ?? [],
            its: [], v2mFrames: [])
    }

    private func readITS(_ index: Int) throws(TopologyError) -> ITSDescription {
        let node = tree.nodes[index].node
        return ITSDescription(path: path(index), region: try firstRegion(index), phandle: node.phandle,
                              isMSIController: node.hasProperty("msi-controller"),
                              msiCells: try u32(index, "#msi-cells"), enabled: node.isEnabled,
                              preITSWindow: try preITSWindow(index))
    }

    /// `socionext,synquacer-pre-its = <base size>`, read as Linux's
    /// `its_enable_quirk_socionext_synquacer` reads it: `fwnode_property_read_u32_array(…, 2)`
    /// → `of_property_read_u32_array`, which takes the first two cells of a property of at
    /// least two (`of_find_property_value_of_size` with `sz_max` = 0 has no upper bound). Where
    /// Linux would only skip the quirk (a shorter property, or one of a length that is not whole
    /// cells), this reader stops with the node and property named, so a broken description is
    /// seen rather than silently read as a plain ITS.
    private func preITSWindow(_ index: Int) throws(TopologyError) -> PreITSWindow? {
        let name = PreITSWindow.property
        guard let property = tree.nodes[index].node.property(name) else { return nil }
        guard let cells = property.cells, cells.count >= 2 else {
            throw fail(index, name, "expected <base size> (2 cells), found \(property.value.count) bytes")
        }
        return PreITSWindow(base: cells[0], size: cells[1])
    }

    private func readV2m(_ index: Int) throws(TopologyError) -> GICv2mFrame {
        let node = tree.nodes[index].node
        return GICv2mFrame(path: path(index), region: try firstRegion(index), phandle: node.phandle,
                           isMSIController: node.hasProperty("msi-controller"),
                           baseSPI: try u32(index, "arm,msi-base-spi"), spiCount: try u32(index, "arm,msi-num-spis"),
                           enabled: node.isEnabled)
    }

    private func readSMMU(_ index: Int) throws(TopologyError) -> SMMUv3Description {
        let node = tree.nodes[index].node
        return SMMUv3Description(
            path: path(index), compatible: node.compatible, region: try firstRegion(index),
            iommuCells: try u32(index, "#iommu-cells"), phandle: node.phandle, dmaCoherent: node.hasProperty("dma-coherent"),
            interruptNames: node.property("interrupt-names")?.strings ?? [], msiParent: [], enabled: node.isEnabled)
    }

    /// The target's specifier width for a phandle list or map: its `cellsName` property, else
    /// `missingCells`. Nil when the phandle does not resolve.
    private func targetCells(_ phandle: UInt32, _ cellsName: String, missingCells: UInt32) -> UInt32? {
        guard let node = tree.node(withPhandle: phandle) else { return nil }
        guard let property = node.property(cellsName) else { return missingCells }
        return property.u32
    }

    /// `MAX_PHANDLE_ARGS` in Linux `of.h`: no specifier is longer.
    static let maximumSpecifierCells: UInt32 = 16

    /// A list of `<phandle specifier…>` (DT spec §2.3.3 style; `msi-parent`, `iommus`). When a
    /// phandle does not resolve, the width of its specifier is unknown, so the rest of the list
    /// becomes that reference's arguments.
    private func phandleList(_ index: Int, _ name: String, cells cellsName: String, missingCells: UInt32) throws(TopologyError) -> [PhandleReference] {
        guard let list = try cells(index, name) else { return [] }
        var out: [PhandleReference] = []
        var position = 0
        while position < list.count {
            let phandle = list[position]
            position += 1
            guard let width = targetCells(phandle, cellsName, missingCells: missingCells) else {
                if tree.node(withPhandle: phandle) != nil {
                    throw fail(index, name, "target of phandle \(phandle) has a malformed \(cellsName)")
                }
                out.append(PhandleReference(phandle: phandle, target: .unresolvedPhandle(phandle), arguments: Array(list[position...])))
                return out
            }
            guard width <= Self.maximumSpecifierCells, Int(width) <= list.count - position else {
                throw fail(index, name, "entry at cell \(position - 1) needs \(width) specifier cell(s), \(list.count - position) left")
            }
            out.append(PhandleReference(phandle: phandle, target: resolve(phandle),
                                        arguments: Array(list[position..<(position + Int(width))])))
            position += Int(width)
        }
        return out
    }

    /// Parses `iommu-map`/`msi-map` and its mask (see `IDMap` for the cell-width rule).
    private func idMap(_ index: Int, _ kind: IDMap.Kind) throws(TopologyError) -> IDMap? {
        let name = kind.rawValue
        guard let list = try cells(index, name) else { return nil }
        let mask = try u32(index, kind.maskProperty) ?? 0xFFFF_FFFF
        guard !list.isEmpty else { throw fail(index, name, "empty map") }
        // of_check_bad_map: a 2-cell first target, and every 4-cell entry names it with length 1.
        var legacy = false
        if list.count >= 2, targetCells(list[1], kind.cellsProperty, missingCells: 1) == 2, list.count % 4 == 0 {
            legacy = stride(from: 0, to: list.count, by: 4).allSatisfy { list[$0 + 1] == list[1] && list[$0 + 3] == 1 }
        }
        var entries: [IDMapEntry] = []
        var position = 0
        while position < list.count {
            guard list.count - position >= 2 else { throw fail(index, name, "truncated entry at cell \(position)") }
            let idBase = list[position]
            let phandle = list[position + 1]
            // An unresolved phandle, or a malformed cells property, reads as the classic 1 cell.
            let width: UInt32 = legacy ? 1 : (targetCells(phandle, kind.cellsProperty, missingCells: 1) ?? 1)
            guard width <= Self.maximumSpecifierCells else {
                throw fail(index, name, "target of phandle \(phandle) has an unusable \(kind.cellsProperty)")
            }
            let entryCells = 3 + Int(width)
            guard list.count - position >= entryCells else {
                throw fail(index, name, "entry at cell \(position) needs \(entryCells) cells, \(list.count - position) left")
            }
            let output = Array(list[(position + 2)..<(position + 2 + Int(width))])
            entries.append(IDMapEntry(idBase: idBase, phandle: phandle, target: resolve(phandle),
                                      outputBase: output, length: list[position + entryCells - 1]))
            position += entryCells
        }
        return IDMap(kind: kind, mask: mask, entries: entries, readAsLegacyOneCellEntries: legacy)
    }

    private func readHostBridge(_ index: Int) throws(TopologyError) -> PCIeHostBridge {
        let node = tree.nodes[index].node
        let regions = try regions(index, optional: true)
        let names = node.property("reg-names")?.strings ?? []
        var config: MemoryRange?
        if let position = names.firstIndex(where: { ["config", "ecam", "cfg"].contains($0) }), position < regions.count {
            config = regions[position]
        } else if node.compatible.contains(where: { $0.hasSuffix("ecam") || $0.hasSuffix("ecam-generic") }) {
            config = regions.first
        }
        var busRange: ClosedRange<UInt32> = 0...255
        let busRangeCells = try cells(index, "bus-range")
        if let range = busRangeCells {
            guard range.count == 2, let first = range.first, let last = range.last, first <= last else {
                throw fail(index, "bus-range", "expected <first last> with first ≤ last")
            }
            busRange = first...last
        }
        var bridge = PCIeHostBridge(
            path: path(index), compatible: node.compatible, enabled: node.isEnabled, regions: regions,
            regionNames: names, configSpace: config, busRange: busRange, busRangeIsDefault: busRangeCells == nil,
            domain: try u32(index, "linux,pci-domain"), ranges: try pciRanges(index),
            iommuMap: try idMap(index, .iommu), msiMap: try idMap(index, .msi),
            msiParent: try phandleList(index, "msi-parent", cells: "#msi-cells", missingCells: 0),
            iommus: try phandleList(index, "iommus", cells: "#iommu-cells", missingCells: 0),
            dmaCoherent: node.hasProperty("dma-coherent"),
            functionNodes: try pciFunctionNodes(index), interruptMap: try interruptMap(index))
        bridge.kind = try hostBridgeKind(index, regions: regions, names: names, busRange: busRange)
        return bridge
    }

    /// The controller layout of a host bridge whose binding is not ECAM-style. An enabled
    /// `rockchip,rk3399-pcie` node must name "axi-base" and "apb-base" (as
    /// `rockchip_pcie_parse_dt` requires) with regions configuration access can use
    /// (`RockchipRK3399PCIe.problem`); a disabled one that does not is read as generic.
    private func hostBridgeKind(_ index: Int, regions: [MemoryRange], names: [String],
                                busRange: ClosedRange<UInt32>) throws(TopologyError) -> HostBridgeKind {
        let node = tree.nodes[index].node
        guard node.compatible.contains("rockchip,rk3399-pcie") else { return .generic }
        guard let axi = names.firstIndex(of: "axi-base"), let apb = names.firstIndex(of: "apb-base"),
              axi < regions.count, apb < regions.count else {
            guard node.isEnabled else { return .generic }
            throw fail(index, "reg-names", "rockchip,rk3399-pcie needs \"axi-base\" and \"apb-base\" regions (rockchip_pcie_parse_dt)")
        }
        let description = RockchipRK3399PCIe(axi: regions[axi], apb: regions[apb])
        if let problem = description.problem(busRange: busRange) {
            guard node.isEnabled else { return .generic }
            throw fail(index, "reg", problem)
        }
        return .rockchipRK3399(description)
    }

    /// `interrupt-map` and its mask (see `InterruptMap`), each parent's cells read from the
    /// node its phandle names (#address-cells 0 when absent, as `of_irq_parse_raw` takes it).
    private func interruptMap(_ index: Int) throws(TopologyError) -> InterruptMap? {
        guard let list = try cells(index, "interrupt-map") else { return nil }
        let mask = try cells(index, "interrupt-map-mask")
        let result = InterruptMap.parse(list, mask: mask) { phandle in
            guard let node = tree.node(withPhandle: phandle) else { return nil }
            return (node.property("#address-cells")?.u32 ?? 0, node.property("#interrupt-cells")?.u32)
        }
        switch result {
        case .success(let map): return map
        case .failure(let mistake): throw fail(index, "interrupt-map", mistake.message)
        }
    }

    /// `ranges` of a PCI host bridge: (phys.hi phys.mid phys.lo, parent address, size), with the
    /// bridge's 3 address cells and the parent's address cells (IEEE 1275 PCI binding §2.2.1.1).
    private func pciRanges(_ index: Int) throws(TopologyError) -> [PCIRange] {
        guard let list = try cells(index, "ranges"), let parent = tree.nodes[index].parent else { return [] }
        let node = tree.nodes[index].node
        guard node.addressCells == 3, let sizeCells = node.sizeCells, (1...2).contains(sizeCells),
              let parentCells = tree.nodes[parent].node.addressCells, (1...2).contains(parentCells) else {
            throw fail(index, "ranges", "needs #address-cells 3 and 1–2 size and parent address cells")
        }
        let entry = 3 + Int(parentCells) + Int(sizeCells)
        guard list.count % entry == 0 else { throw fail(index, "ranges", "\(list.count) cells is not a multiple of \(entry)") }
        var out: [PCIRange] = []
        var position = 0
        while position + entry <= list.count {
            let hi = list[position]
            let pciAddress = UInt64(list[position + 1]) << 32 | UInt64(list[position + 2])
            func number(_ start: Int, _ count: Int) -> UInt64 {
                count == 2 ? UInt64(list[start]) << 32 | UInt64(list[start + 1]) : UInt64(list[start])
            }
            let parentAddress = number(position + 3, Int(parentCells))
            let size = number(position + 3 + Int(parentCells), Int(sizeCells))
            let cpuAddress: UInt64
            do {
                cpuAddress = try tree.translate(parentAddress, fromChildrenOf: parent)
            } catch {
                throw fail(index, "ranges", Self.describe(error))
            }
            out.append(PCIRange(space: PCIRange.Space(rawValue: (hi >> 24) & 0x3) ?? .configuration,
                                prefetchable: hi & (1 << 30) != 0, nonRelocatable: hi & (1 << 31) != 0,
                                aliased: hi & (1 << 29) != 0, pciAddress: pciAddress,
                                cpuAddress: PhysicalAddress(cpuAddress), size: size))
            position += entry
        }
        return out
    }
}
