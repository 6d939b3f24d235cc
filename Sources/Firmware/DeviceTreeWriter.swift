/// Emits a DTB (Devicetree Specification v0.4 §5, version 17, last compatible version 16) from a
/// `DeviceTree`. Tests round-trip the fixtures through it; the VMM writes a guest's tree with it.
///
/// Layout, as dtc writes it: header (40 bytes), memory reservation block at 40 (8-aligned),
/// structure block, strings block. Property names are stored once each in the strings block, in
/// order of first use, so the output is a deterministic function of the tree.
public enum DeviceTreeWriter {
    public enum WriteError: Error, Hashable, Sendable {
        /// A node or property name holds a NUL byte, which would end it early in the blob.
        case nameContainsNUL(path: String)
        /// The blob would pass the 32-bit offsets of the header, or a value the 32-bit `len`.
        case tooLarge
    }

    public static func write(_ tree: DeviceTree) throws(WriteError) -> [UInt8] {
        var structure: [UInt8] = []
        var strings: [UInt8] = []
        var stringOffsets: [String: UInt32] = [:]

        func append(_ value: UInt32) { structure.append(contentsOf: BigEndian.bytes(value)) }
        func pad() { while structure.count % 4 != 0 { structure.append(0) } }

        // Iterative walk: open node, its properties, then its children, then close.
        enum Step { case open(DeviceTreeNode, String), close }
        var steps: [Step] = [.open(tree.root, "/")]
        while let step = steps.popLast() {
            switch step {
            case .close:
                append(FlattenedDeviceTree.Token.endNode.rawValue)
            case .open(let node, let path):
                let nameBytes = Array(node.name.utf8)
                guard !nameBytes.contains(0) else { throw .nameContainsNUL(path: path) }
                append(FlattenedDeviceTree.Token.beginNode.rawValue)
                structure.append(contentsOf: nameBytes)
                structure.append(0)
                pad()
                for property in node.properties {
                    let propertyName = Array(property.name.utf8)
                    guard !propertyName.contains(0) else { throw .nameContainsNUL(path: path + ":" + property.name) }
                    let nameOffset: UInt32
                    if let known = stringOffsets[property.name] {
                        nameOffset = known
                    } else {
                        guard let offset = UInt32(exactly: strings.count) else { throw .tooLarge }
                        nameOffset = offset
                        stringOffsets[property.name] = offset
                        strings.append(contentsOf: propertyName)
                        strings.append(0)
                    }
                    guard let length = UInt32(exactly: property.value.count) else { throw .tooLarge }
                    append(FlattenedDeviceTree.Token.property.rawValue)
                    append(length)
                    append(nameOffset)
                    structure.append(contentsOf: property.value)
                    pad()
                }
                steps.append(.close)
                for child in node.children.reversed() {
                    steps.append(.open(child, path == "/" ? "/" + child.name : path + "/" + child.name))
                }
            }
        }
        append(FlattenedDeviceTree.Token.end.rawValue)

        var reservations: [UInt8] = []
        for entry in tree.memoryReservations {
            reservations += BigEndian.bytes(entry.address) + BigEndian.bytes(entry.size)
        }
        reservations += [UInt8](repeating: 0, count: 16)

        let headerSize = 40
        let reservationOffset = headerSize
        let structureOffset = reservationOffset + reservations.count
        let stringsOffset = structureOffset + structure.count
        let totalSize = stringsOffset + strings.count
        guard let total = UInt32(exactly: totalSize), let structOff = UInt32(exactly: structureOffset),
              let stringsOff = UInt32(exactly: stringsOffset), let structSize = UInt32(exactly: structure.count),
              let stringsSize = UInt32(exactly: strings.count) else { throw .tooLarge }

        var blob: [UInt8] = []
        blob.reserveCapacity(totalSize)
        for field in [FlattenedDeviceTree.magic, total, structOff, stringsOff, UInt32(reservationOffset),
                      17, 16, tree.bootCPUID, stringsSize, structSize] {
            blob += BigEndian.bytes(field)
        }
        blob += reservations
        blob += structure
        blob += strings
        return blob
    }
}
