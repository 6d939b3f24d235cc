import Bus

/// A whole device tree: the root node, the memory reservation block and the boot CPU, with an
/// index built once so that path and phandle lookups and `reg` decoding (which needs the parent's
/// `#address-cells`/`#size-cells`) are cheap.
///
/// Immutable by design: build a `DeviceTreeNode` value, then a `DeviceTree` from it.
public struct DeviceTree: Hashable, Sendable {
    public let root: DeviceTreeNode
    public let memoryReservations: [MemoryReservation]
    /// `boot_cpuid_phys` from the header (DT spec §5.2).
    public let bootCPUID: UInt32

    /// Every node in pre-order (blob order), with its parent's position; `Entry.path` is built
    /// on demand from the names, so memory stays proportional to the blob (a stored full path
    /// per node costs depth × name length each: a 16 MB blob of deep, long-named nodes took
    /// 840 MB that way).
    public let nodes: [Entry]
    private let phandleIndex: [UInt32: Int]
    /// (parent position, child name) → child position; a path is looked up one name at a time.
    private let childIndex: [ChildKey: Int]

    /// A node with where it sits in the tree.
    public struct Entry: Hashable, Sendable {
        public let node: DeviceTreeNode
        /// Position of the parent in `DeviceTree.nodes`; nil for the root.
        public let parent: Int?
        public let depth: Int
        /// Position of this entry in `DeviceTree.nodes`.
        let index: Int
        /// The tree's names and parents, shared by every entry, for `path`.
        let names: NameTable

        /// The full path (`/intc@8000000/its@8080000`), built from the names up to the root.
        public var path: String { names.path(of: index) }

        public static func == (lhs: Entry, rhs: Entry) -> Bool {
            lhs.parent == rhs.parent && lhs.depth == rhs.depth && lhs.node == rhs.node && lhs.path == rhs.path
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(path)
            hasher.combine(parent)
            hasher.combine(depth)
            hasher.combine(node)
        }
    }

    /// Each node's name and parent position, in `nodes` order; the names share their storage
    /// with the nodes' own `name` strings.
    final class NameTable: Sendable {
        let names: [String]
        let parents: [Int]

        init(names: [String], parents: [Int]) {
            self.names = names
            self.parents = parents
        }

        /// The path of the node at `index`: its ancestors' names joined by `/`, the root being `/`.
        func path(of index: Int) -> String {
            guard names.indices.contains(index) else { return "" }
            var chain: [Int] = []
            var current = index
            // Parents always precede their children (pre-order), so this walk ends at the root.
            while current > 0, chain.count < names.count {
                chain.append(current)
                current = parents[current]
            }
            if chain.isEmpty { return "/" }
            var out = ""
            for position in chain.reversed() {
                out += "/"
                out += names[position]
            }
            return out
        }
    }

    struct ChildKey: Hashable, Sendable {
        let parent: Int
        let name: String
    }

    public init(root: DeviceTreeNode, memoryReservations: [MemoryReservation] = [], bootCPUID: UInt32 = 0) {
        self.root = root
        self.memoryReservations = memoryReservations
        self.bootCPUID = bootCPUID
        var walked: [(node: DeviceTreeNode, parent: Int?, depth: Int)] = []
        // Iterative pre-order walk: a hostile tree may be deep, recursion is not needed here.
        var stack: [(node: DeviceTreeNode, parent: Int?, depth: Int)] = [(root, nil, 0)]
        while let (node, parent, depth) = stack.popLast() {
            let index = walked.count
            walked.append((node, parent, depth))
            for child in node.children.reversed() {
                stack.append((child, index, depth + 1))
            }
        }
        let table = NameTable(names: walked.map(\.node.name), parents: walked.map { $0.parent ?? 0 })
        var entries: [Entry] = []
        entries.reserveCapacity(walked.count)
        var phandles: [UInt32: Int] = [:]
        var children: [ChildKey: Int] = [:]
        for (index, item) in walked.enumerated() {
            entries.append(Entry(node: item.node, parent: item.parent, depth: item.depth, index: index, names: table))
            // First occurrence wins for duplicate phandles or sibling names (both are invalid DTs).
            if let phandle = item.node.phandle, phandles[phandle] == nil { phandles[phandle] = index }
            if let parent = item.parent {
                let key = ChildKey(parent: parent, name: item.node.name)
                if children[key] == nil { children[key] = index }
            }
        }
        nodes = entries
        phandleIndex = phandles
        childIndex = children
    }

    /// Reads a DTB. Same as `FlattenedDeviceTree(bytes:).tree`.
    public init(dtb bytes: [UInt8]) throws(FDTError) {
        self = try FlattenedDeviceTree(bytes: bytes).tree
    }

    public static func == (lhs: DeviceTree, rhs: DeviceTree) -> Bool {
        lhs.root == rhs.root && lhs.memoryReservations == rhs.memoryReservations && lhs.bootCPUID == rhs.bootCPUID
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(root)
        hasher.combine(memoryReservations)
        hasher.combine(bootCPUID)
    }

    /// The node at a full path such as `/intc@8000000/its@8080000`.
    public func node(at path: String) -> DeviceTreeNode? {
        index(ofPath: path).map { nodes[$0].node }
    }

    /// Position in `nodes` of the node at `path`: `/`, then each name from the root down,
    /// separated by `/` (an empty name, as in `//` or a trailing `/`, names nothing). With
    /// duplicate sibling names (an invalid DT) the first sibling in blob order is the one followed.
    public func index(ofPath path: String) -> Int? {
        guard !nodes.isEmpty, path.first == "/" else { return nil }
        if path == "/" { return 0 }
        var current = 0
        for name in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            guard !name.isEmpty, let child = childIndex[ChildKey(parent: current, name: String(name))] else { return nil }
            current = child
        }
        return current
    }

    /// The full path of the node at `index` (`/` for the root), or nil for a bad index.
    public func path(of index: Int) -> String? {
        nodes.indices.contains(index) ? nodes[index].path : nil
    }

    /// Position in `nodes` of the node whose `phandle` is `phandle` (DT spec §2.3.3).
    public func index(ofPhandle phandle: UInt32) -> Int? { phandleIndex[phandle] }

    /// The node whose `phandle` is `phandle`.
    public func node(withPhandle phandle: UInt32) -> DeviceTreeNode? {
        index(ofPhandle: phandle).map { nodes[$0].node }
    }

    /// The parent of the node at `index`, nil for the root or a bad index.
    public func parent(of index: Int) -> Int? {
        guard nodes.indices.contains(index) else { return nil }
        return nodes[index].parent
    }
}

/// One decoded `reg` entry, in the CPU's physical address space after translation through the
/// ancestors' `ranges`.
public struct RegisterRegion: Hashable, Sendable, CustomStringConvertible {
    public var base: UInt64
    public var size: UInt64
    public init(base: UInt64, size: UInt64) {
        self.base = base
        self.size = size
    }
    public var description: String { "\(Hex.format(base)) size \(Hex.format(size, minDigits: 1))" }
}

/// Why a `reg` or `ranges` could not be decoded.
public enum AddressDecodingError: Error, Hashable, Sendable {
    /// The node has no `reg`.
    case missing
    /// `#address-cells`/`#size-cells` is not a u32, or wider than the 2 cells a 64-bit address holds.
    case unsupportedCells(address: UInt32?, size: UInt32?)
    /// The property length is not a whole number of entries.
    case badLength(Int)
    /// The address is outside every window of an ancestor's `ranges`, or that ancestor has no `ranges`.
    /// (`missing` also answers a node index that is not in the tree.)
    case untranslatable(ancestor: String, address: UInt64)
}


extension DeviceTree {
    /// `reg` of the node at `index`, each entry `(address, size)` decoded with the parent's
    /// `#address-cells`/`#size-cells` (DT spec §2.3.6) and translated to a CPU physical address
    /// through every ancestor's `ranges` (§2.3.8; an empty `ranges` is the identity).
    /// Addresses wider than two cells (PCI child addresses) are not decoded.
    public func registerRegions(of index: Int) throws(AddressDecodingError) -> [RegisterRegion] {
        guard nodes.indices.contains(index) else { throw .missing }
        guard let reg = nodes[index].node.property("reg") else { throw .missing }
        guard let parent = nodes[index].parent else {
            // The root has no parent; a `reg` there is meaningless.
            throw .unsupportedCells(address: nil, size: nil)
        }
        let pairs = try Self.decodePairs(reg.value, addressCells: nodes[parent].node.addressCells,
                                         sizeCells: nodes[parent].node.sizeCells)
        var out: [RegisterRegion] = []
        out.reserveCapacity(pairs.count)
        for (address, size) in pairs {
            out.append(RegisterRegion(base: try translate(address, fromChildrenOf: parent), size: size))
        }
        return out
    }

    /// Decodes a list of (address, size) pairs with the given cell counts (each ≤ 2).
    static func decodePairs(_ bytes: [UInt8], addressCells: UInt32?, sizeCells: UInt32?) throws(AddressDecodingError) -> [(UInt64, UInt64)] {
        guard let a = addressCells, let s = sizeCells, a <= 2, s <= 2 else {
            throw .unsupportedCells(address: addressCells, size: sizeCells)
        }
        let entryCells = Int(a + s)
        guard entryCells > 0, bytes.count % (entryCells * 4) == 0 else { throw .badLength(bytes.count) }
        var out: [(UInt64, UInt64)] = []
        var offset = 0
        while offset < bytes.count {
            guard let address = readCells(bytes, at: offset, count: Int(a)),
                  let size = readCells(bytes, at: offset + Int(a) * 4, count: Int(s)) else { throw .badLength(bytes.count) }
            out.append((address, size))
            offset += entryCells * 4
        }
        return out
    }

    /// `count` (0…2) big-endian cells at `offset` as one number.
    static func readCells(_ bytes: [UInt8], at offset: Int, count: Int) -> UInt64? {
        switch count {
        case 0: return 0
        case 1: return BigEndian.u32(bytes, at: offset).map(UInt64.init)
        case 2: return BigEndian.u64(bytes, at: offset)
        default: return nil
        }
    }

    /// Translates an address on the bus formed by the children of `bus` up to the root
    /// (DT spec §2.3.8 `ranges`: (child-bus-address, parent-bus-address, length) triplets; an
    /// empty `ranges` means identity; a bus without `ranges` is not memory-mapped, which Linux
    /// `of_translate_address` also refuses). The walk stops at the root.
    public func translate(_ address: UInt64, fromChildrenOf bus: Int) throws(AddressDecodingError) -> UInt64 {
        guard nodes.indices.contains(bus) else { throw .missing }
        var current = address
        var busIndex = bus
        var steps = 0
        while let parent = nodes[busIndex].parent, steps < nodes.count {
            steps += 1
            let busNode = nodes[busIndex].node
            guard let ranges = busNode.property("ranges") else {
                throw .untranslatable(ancestor: nodes[busIndex].path, address: current)
            }
            if !ranges.isEmpty {
                let childCells = busNode.addressCells
                let parentCells = nodes[parent].node.addressCells
                let sizeCells = busNode.sizeCells
                guard let c = childCells, let p = parentCells, let s = sizeCells, c <= 2, p <= 2, s <= 2 else {
                    throw .unsupportedCells(address: childCells, size: sizeCells)
                }
                let entryBytes = Int(c + p + s) * 4
                guard entryBytes > 0, ranges.value.count % entryBytes == 0 else { throw .badLength(ranges.value.count) }
                var offset = 0
                var translated: UInt64?
                while offset < ranges.value.count, translated == nil {
                    guard let childBase = Self.readCells(ranges.value, at: offset, count: Int(c)),
                          let parentBase = Self.readCells(ranges.value, at: offset + Int(c) * 4, count: Int(p)),
                          let length = Self.readCells(ranges.value, at: offset + Int(c + p) * 4, count: Int(s)) else {
                        throw .badLength(ranges.value.count)
                    }
                    if current >= childBase, current - childBase < length {
                        let (sum, overflow) = parentBase.addingReportingOverflow(current - childBase)
                        if !overflow { translated = sum }
                    }
                    offset += entryBytes
                }
                guard let next = translated else {
                    throw .untranslatable(ancestor: nodes[busIndex].path, address: current)
                }
                current = next
            }
            busIndex = parent
        }
        return current
    }
}
