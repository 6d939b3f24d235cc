import Bus

/// One `<&device iova-address iova-size>` entry of a reserved-memory node's `iommu-addresses`
/// (binding `reserved-memory.yaml`): the IO virtual range `device` must find this region at.
///
/// The binding says the address/size format follows "the #address-cells and #size-cells
/// properties of the device referenced via the phandle"; Linux reads it with
/// `of_translate_dma_region(np, …)`, whose cell counts are `of_bus_n_addr_cells` /
/// `of_bus_n_size_cells` of the device's DMA parent (drivers/of/address.c) — for a PCI
/// function node that is the host bridge: 3 address cells (phys.hi, mid, lo) and 2 size cells.
/// `iova` is the address after `of_translate_dma_address` (every ancestor bus's `dma-ranges`,
/// absent or empty meaning 1:1).
public struct ReservedIOVARange: Hashable, Sendable, CustomStringConvertible {
    /// The phandle in the first cell.
    public var device: UInt32
    /// The node it names.
    public var devicePath: String
    public var iova: UInt64
    public var size: UInt64

    public init(device: UInt32, devicePath: String, iova: UInt64, size: UInt64) {
        self.device = device
        self.devicePath = devicePath
        self.iova = iova
        self.size = size
    }

    public var description: String { "\(devicePath): iova \(Hex.format(iova)) size \(Hex.format(size, minDigits: 1))" }
}

/// A child of a PCI host bridge node that describes one function (IEEE 1275 PCI bus binding:
/// `reg` is a list of (phys.hi phys.mid phys.lo size.hi size.lo), phys.hi =
/// `npt000ss bbbbbbbb dddddfff rrrrrrrr`; the first entry is the function's config space).
public struct PCIFunctionNode: Hashable, Sendable {
    public var path: String
    public var phandle: UInt32?
    /// phys.hi bits 23:16. Linux does not compare it: `of_pci_get_devfn` takes only bits 15:8,
    /// because the node's parent already stands for the bus.
    public var bus: UInt8
    /// phys.hi bits 15:11.
    public var device: UInt8
    /// phys.hi bits 10:8.
    public var function: UInt8
    /// `memory-region`: phandles of /reserved-memory nodes, in order (no specifier cells).
    public var memoryRegions: [UInt32]
    /// `of_dma_is_coherent(np)`: the first of the node and its ancestors with `dma-coherent`
    /// (true) or `dma-noncoherent` (false) decides; none → false (arm64 `dma_default_coherent`).
    public var dmaCoherent: Bool
    /// The devfns of the bridge nodes this node sits under, from the host bridge down (empty on
    /// the root bus). Linux associates nodes level by level: `pci_set_of_node` looks for the
    /// function among the children of its bus's bridge node (`of_pci_find_child_device`).
    public var upstream: [UInt8] = []

    public init(path: String, phandle: UInt32?, bus: UInt8, device: UInt8, function: UInt8,
                memoryRegions: [UInt32], dmaCoherent: Bool, upstream: [UInt8] = []) {
        self.upstream = upstream
        self.path = path
        self.phandle = phandle
        self.bus = bus
        self.device = device
        self.function = function
        self.memoryRegions = memoryRegions
        self.dmaCoherent = dmaCoherent
    }

    /// Device number << 3 | function: what `of_pci_get_devfn` returns.
    public var devfn: UInt8 { device << 3 | function }
}

extension TopologyReader {
    /// Host-bridge children whose `reg` names a function, and those one level down under a
    /// `multifunc-device` node (`of_pci_find_child_device` looks there too). Children without
    /// `reg` (an interrupt controller, say) are not functions; a `reg` shorter than the 5 cells
    /// `of_pci_get_devfn` reads is malformed.
    func pciFunctionNodes(_ bridge: Int) throws(TopologyError) -> [PCIFunctionNode] {
        var out: [PCIFunctionNode] = []
        var multifunc: [Int] = []
        for (index, entry) in tree.nodes.enumerated() where entry.parent == bridge {
            if entry.node.nodeName == "multifunc-device" { multifunc.append(index); continue }
            if let node = try pciFunctionNode(index) { out.append(node) }
        }
        for parent in multifunc {
            for (index, entry) in tree.nodes.enumerated() where entry.parent == parent {
                if let node = try pciFunctionNode(index) { out.append(node) }
            }
        }
        // Functions under bridge nodes (a root port's node holds its secondary bus's
        // functions), to any depth; the tree's node count bounds the walk.
        var queue: [(Int, [UInt8])] = out.compactMap { node in tree.nodes.indices.first { path($0) == node.path }.map { ($0, [node.devfn]) } }
        var visited = 0
        while !queue.isEmpty, visited < tree.nodes.count {
            let (parent, chain) = queue.removeFirst()
            visited += 1
            // Only a PCI-to-PCI bridge's node (`device_type = "pci"`) stands for a bus.
            guard tree.nodes[parent].node.property("device_type")?.string == "pci" else { continue }
            for (index, entry) in tree.nodes.enumerated() where entry.parent == parent {
                guard var node = try pciFunctionNode(index) else { continue }
                node.upstream = chain
                out.append(node)
                queue.append((index, chain + [node.devfn]))
            }
        }
        return out
    }

    private func pciFunctionNode(_ index: Int) throws(TopologyError) -> PCIFunctionNode? {
        let node = tree.nodes[index].node
        guard let reg = try cells(index, "reg") else { return nil }
        guard reg.count >= 5, let hi = reg.first else {
            throw fail(index, "reg", "a PCI function needs at least 5 cells (phys.hi … size.lo), found \(reg.count)")
        }
        var regions: [UInt32] = []
        if let list = try cells(index, "memory-region") {
            for phandle in list {
                guard tree.index(ofPhandle: phandle) != nil else {
                    throw fail(index, "memory-region", "phandle \(Hex.format(UInt64(phandle), minDigits: 1)) does not resolve")
                }
                regions.append(phandle)
            }
        }
        return PCIFunctionNode(path: path(index), phandle: node.phandle,
                               bus: UInt8(truncatingIfNeeded: hi >> 16), device: UInt8(truncatingIfNeeded: (hi >> 11) & 0x1F),
                               function: UInt8(truncatingIfNeeded: (hi >> 8) & 0x7), memoryRegions: regions,
                               dmaCoherent: isDMACoherent(index))
    }

    /// `of_dma_is_coherent`: walk up from the node itself.
    func isDMACoherent(_ index: Int) -> Bool {
        var current: Int? = index
        var steps = 0
        while let i = current, steps <= tree.nodes.count {
            let node = tree.nodes[i].node
            if node.hasProperty("dma-coherent") { return true }
            if node.hasProperty("dma-noncoherent") { return false }
            current = tree.nodes[i].parent
            steps += 1
        }
        return false
    }

    /// `of_bus_n_addr_cells` / `of_bus_n_size_cells`: the first `#address-cells` /
    /// `#size-cells` from `index` upwards, else Linux's root defaults
    /// (`OF_ROOT_NODE_ADDR_CELLS_DEFAULT` / `OF_ROOT_NODE_SIZE_CELLS_DEFAULT`, both 1).
    /// A present but malformed property reads as 0, which the caller rejects.
    func inheritedCells(_ index: Int, _ name: String) -> UInt32 {
        var current: Int? = index
        var steps = 0
        while let i = current, steps <= tree.nodes.count {
            if let property = tree.nodes[i].node.property(name) { return property.u32 ?? 0 }
            current = tree.nodes[i].parent
            steps += 1
        }
        return 1
    }

    /// `iommu-addresses` of the reserved-memory node at `index`.
    func iommuAddresses(_ index: Int) throws(TopologyError) -> [ReservedIOVARange] {
        let name = "iommu-addresses"
        guard let list = try cells(index, name) else { return [] }
        var out: [ReservedIOVARange] = []
        var position = 0
        while position < list.count {
            let phandle = list[position]
            guard let device = tree.index(ofPhandle: phandle) else {
                // The specifier width comes from the device's parent: unknown without it.
                throw fail(index, name, "phandle \(Hex.format(UInt64(phandle), minDigits: 1)) at cell \(position) does not resolve")
            }
            guard let parent = tree.nodes[device].parent else {
                throw fail(index, name, "phandle at cell \(position) names the root, which has no bus")
            }
            let na = Int(inheritedCells(parent, "#address-cells"))
            let ns = Int(inheritedCells(parent, "#size-cells"))
            guard (1...3).contains(na), (1...2).contains(ns) else {
                throw fail(index, name, "device \(path(device)) sits on a bus with \(na) address / \(ns) size cells (1–3 / 1–2 supported)")
            }
            guard list.count - position - 1 >= na + ns else {
                throw fail(index, name, "entry at cell \(position) needs \(1 + na + ns) cells, \(list.count - position) left")
            }
            let address = Array(list[(position + 1)...(position + na)])
            let size = ns == 2 ? UInt64(list[position + na + 1]) << 32 | UInt64(list[position + na + 2]) : UInt64(list[position + na + 1])
            let iova: UInt64
            do {
                iova = try translateDMA(address, fromChildrenOf: parent)
            } catch {
                throw fail(index, name, "entry at cell \(position): \(Self.describe(error))")
            }
            out.append(ReservedIOVARange(device: phandle, devicePath: path(device), iova: iova, size: size))
            position += 1 + na + ns
        }
        return out
    }

    /// The low 64 bits of a 1–3 cell address, as `of_read_number` leaves them.
    static func number(_ cells: [UInt32]) -> UInt64 {
        var value: UInt64 = 0
        for cell in cells { value = value << 32 | UInt64(cell) }
        return value
    }

    /// The PCI space class `of_bus_pci_get_flags` derives from phys.hi bits 25:24 (config 0,
    /// I/O 1, memory 2 for both 32- and 64-bit).
    static func pciSpaceClass(_ hi: UInt32) -> UInt32 {
        let space = (hi >> 24) & 0x3
        return space == 3 ? 2 : space
    }

    /// `of_translate_dma_address`: up from the bus the device sits on to the root (the root's
    /// own `dma-ranges` is never applied), each bus's `dma-ranges` (child address, parent
    /// address, size) translating; a bus without `dma-ranges`, or with an empty one, passes the
    /// address 1:1 (`of_translate_one`'s dma-ranges exception). A 3-cell (PCI) child address
    /// matches a window on its low 64 bits and only in the same space class (`of_bus_pci_map`).
    func translateDMA(_ address: [UInt32], fromChildrenOf bus: Int) throws(AddressDecodingError) -> UInt64 {
        var cells = address
        var busIndex = bus
        var steps = 0
        while let parent = tree.nodes[busIndex].parent, steps < tree.nodes.count {
            steps += 1
            let busNode = tree.nodes[busIndex].node
            let parentCells = Int(inheritedCells(parent, "#address-cells"))
            guard let ranges = busNode.property("dma-ranges"), !ranges.isEmpty else {
                // 1:1: the number carries over into the parent's cell count.
                let value = Self.number(cells)
                cells = parentCells >= 2 ? [UInt32(truncatingIfNeeded: value >> 32), UInt32(truncatingIfNeeded: value)]
                    : [UInt32(truncatingIfNeeded: value)]
                if parentCells == 3 { cells.insert(0, at: 0) }
                busIndex = parent
                continue
            }
            let c = cells.count
            let s = Int(inheritedCells(busIndex, "#size-cells"))
            guard (1...3).contains(parentCells), (1...2).contains(s), let list = ranges.cells else {
                throw .unsupportedCells(address: UInt32(parentCells), size: UInt32(s))
            }
            let entry = c + parentCells + s
            guard list.count % entry == 0 else { throw .badLength(ranges.value.count) }
            let value = Self.number(cells)
            var translated: UInt64?
            var offset = 0
            while offset + entry <= list.count, translated == nil {
                let child = Array(list[offset..<(offset + c)])
                let parentBase = Self.number(Array(list[(offset + c)..<(offset + c + parentCells)]))
                let length = Self.number(Array(list[(offset + c + parentCells)..<(offset + entry)]))
                let childBase = Self.number(child)
                let sameSpace = c != 3 || Self.pciSpaceClass(child[0]) == Self.pciSpaceClass(cells[0])
                if sameSpace, value >= childBase, value - childBase < length {
                    let (sum, overflow) = parentBase.addingReportingOverflow(value - childBase)
                    if !overflow { translated = sum }
                }
                offset += entry
            }
            guard let next = translated else { throw .untranslatable(ancestor: tree.nodes[busIndex].path, address: value) }
            cells = parentCells >= 2 ? [UInt32(truncatingIfNeeded: next >> 32), UInt32(truncatingIfNeeded: next)]
                : [UInt32(truncatingIfNeeded: next)]
            if parentCells == 3 { cells.insert(0, at: 0) }
            busIndex = parent
        }
        return Self.number(cells)
    }
}
