/// A device tree read from its flattened form, a DTB (Devicetree Specification v0.4 §5).
///
/// Every offset and length in the header and in the structure block comes from the file, so the
/// reader checks each one with checked arithmetic and checked indexing and throws `FDTError`
/// naming the byte offset of the first thing that is wrong. No input traps; a fuzz target
/// (`FuzzTesting/Sources/FuzzDTB`) holds it to that.
public struct FlattenedDeviceTree: Sendable {
    /// The header fields (DT spec §5.2, `struct fdt_header`).
    public struct Header: Hashable, Sendable {
        public var magic: UInt32
        public var totalSize: UInt32
        public var structureOffset: UInt32
        public var stringsOffset: UInt32
        public var memoryReservationMapOffset: UInt32
        public var version: UInt32
        public var lastCompatibleVersion: UInt32
        public var bootCPUID: UInt32
        public var stringsSize: UInt32
        /// `size_dt_struct`: version 17 only; nil for a version-16 blob.
        public var structureSize: UInt32?
    }

    /// `FDT_MAGIC` (DT spec §5.2).
    public static let magic: UInt32 = 0xD00D_FEED
    /// Tokens of the structure block (DT spec §5.4.1).
    public enum Token: UInt32, Sendable {
        case beginNode = 0x1
        case endNode = 0x2
        case property = 0x3
        case nop = 0x4
        case end = 0x9
    }
    /// Nesting deeper than this is refused. Linux's `unflatten_dt_nodes` stops at 64
    /// (`FDT_MAX_DEPTH`); no real tree comes close (`InputLimits`).
    public static let maximumDepth = InputLimits.maximumDeviceTreeDepth
    /// More nodes than this are refused (`InputLimits`).
    public static let maximumNodes = InputLimits.maximumDeviceTreeNodes

    public let header: Header
    public let tree: DeviceTree

    public init(bytes: [UInt8]) throws(FDTError) {
        let header = try Self.readHeader(bytes)
        let total = Int(header.totalSize)
        let reservations = try Self.readReservations(bytes, header: header, total: total)
        // §5.4: the structure block, bounded by size_dt_struct (v17) or totalsize (v16).
        let structStart = Int(header.structureOffset)
        let structEnd: Int
        if let size = header.structureSize {
            structEnd = structStart + Int(size) // both < 2^32: no overflow in Int
        } else {
            structEnd = total
        }
        let stringsStart = Int(header.stringsOffset)
        let stringsEnd = stringsStart + Int(header.stringsSize)
        var reader = StructureReader(bytes: bytes, offset: structStart, end: structEnd,
                                     stringsStart: stringsStart, stringsEnd: stringsEnd)
        let root = try reader.readTree()
        self.header = header
        self.tree = DeviceTree(root: root, memoryReservations: reservations, bootCPUID: header.bootCPUID)
    }

    static func readHeader(_ bytes: [UInt8]) throws(FDTError) -> Header {
        // magic, totalsize, …, last_comp_version: the first 28 bytes tell us which layout.
        guard let magic = BigEndian.u32(bytes, at: 0) else { throw FDTError(offset: bytes.count, .truncatedHeader(length: bytes.count)) }
        guard magic == Self.magic else { throw FDTError(offset: 0, .badMagic(magic)) }
        guard let version = BigEndian.u32(bytes, at: 20), let lastCompatible = BigEndian.u32(bytes, at: 24) else {
            throw FDTError(offset: bytes.count, .truncatedHeader(length: bytes.count))
        }
        // §5.2: version 17 is current and compatible with 16. A newer blob that declares
        // itself readable by 16 or 17 (last_comp_version ≤ 17) keeps the layout we know.
        guard version >= 16, lastCompatible <= 17 else {
            throw FDTError(offset: 20, .unsupportedVersion(version: version, lastCompatibleVersion: lastCompatible))
        }
        let headerSize = version >= 17 ? 40 : 36
        guard bytes.count >= headerSize else { throw FDTError(offset: bytes.count, .truncatedHeader(length: bytes.count)) }
        func field(_ offset: Int) -> UInt32 { BigEndian.u32(bytes, at: offset) ?? 0 }
        let header = Header(
            magic: magic, totalSize: field(4), structureOffset: field(8), stringsOffset: field(12),
            memoryReservationMapOffset: field(16), version: version, lastCompatibleVersion: lastCompatible,
            bootCPUID: field(28), stringsSize: field(32), structureSize: version >= 17 ? field(36) : nil)

        guard Int(header.totalSize) <= bytes.count else {
            throw FDTError(offset: 4, .totalSizeBeyondBlob(totalSize: header.totalSize, available: bytes.count))
        }
        guard Int(header.totalSize) >= headerSize else { throw FDTError(offset: 4, .totalSizeTooSmall(header.totalSize)) }
        // The offset field is blamed when the block cannot even start inside totalsize; the
        // size field when the start is fine but start + size is not.
        try checkBlock(.structure, start: header.structureOffset, size: 0, fieldOffset: 8, total: header.totalSize, headerSize: headerSize)
        if let size = header.structureSize {
            try checkBlock(.structure, start: header.structureOffset, size: size, fieldOffset: 36, total: header.totalSize, headerSize: headerSize)
        }
        try checkBlock(.strings, start: header.stringsOffset, size: 0, fieldOffset: 12, total: header.totalSize, headerSize: headerSize)
        try checkBlock(.strings, start: header.stringsOffset, size: header.stringsSize, fieldOffset: 32, total: header.totalSize, headerSize: headerSize)
        try checkBlock(.memoryReservationMap, start: header.memoryReservationMapOffset, size: 0,
                       fieldOffset: 16, total: header.totalSize, headerSize: headerSize)
        // §5.1: "The memory reservation block shall be aligned to an 8-byte boundary";
        // "the structure block … to a 4-byte boundary".
        guard header.memoryReservationMapOffset % 8 == 0 else {
            throw FDTError(offset: 16, .misalignedBlock(.memoryReservationMap, start: header.memoryReservationMapOffset))
        }
        guard header.structureOffset % 4 == 0 else {
            throw FDTError(offset: 8, .misalignedBlock(.structure, start: header.structureOffset))
        }
        return header
    }

    /// A block [start, start + size) must lie inside [end of header, totalsize). The sum is
    /// computed with overflow reporting because both terms come from the file.
    static func checkBlock(_ block: FDTError.Block, start: UInt32, size: UInt32, fieldOffset: Int, total: UInt32, headerSize: Int) throws(FDTError) {
        let (end, overflow) = start.addingReportingOverflow(size)
        guard !overflow, Int(start) >= headerSize, end <= total else {
            throw FDTError(offset: fieldOffset, .blockOutOfBounds(block, start: start, size: size))
        }
    }

    /// §5.3: (address, size) pairs of big-endian u64, ended by (0, 0).
    static func readReservations(_ bytes: [UInt8], header: Header, total: Int) throws(FDTError) -> [MemoryReservation] {
        var offset = Int(header.memoryReservationMapOffset)
        var out: [MemoryReservation] = []
        while true {
            guard offset + 16 <= total, let address = BigEndian.u64(bytes, at: offset),
                  let size = BigEndian.u64(bytes, at: offset + 8) else {
                throw FDTError(offset: offset, .unterminatedReservationMap)
            }
            if address == 0 && size == 0 { return out }
            out.append(MemoryReservation(address: address, size: size))
            offset += 16
        }
    }
}

/// Walks the structure block token by token (DT spec §5.4), building nodes on an explicit
/// stack so that depth is bounded by `maximumDepth`, not by the Swift call stack.
private struct StructureReader {
    let bytes: [UInt8]
    var offset: Int
    let end: Int
    let stringsStart: Int
    let stringsEnd: Int

    init(bytes: [UInt8], offset: Int, end: Int, stringsStart: Int, stringsEnd: Int) {
        self.bytes = bytes
        self.offset = offset
        self.end = min(end, bytes.count)
        self.stringsStart = stringsStart
        self.stringsEnd = min(stringsEnd, bytes.count)
    }

    mutating func readToken() throws(FDTError) -> (UInt32, Int) {
        let at = offset
        guard at <= end - 4, let token = BigEndian.u32(bytes, at: at) else {
            throw FDTError(offset: at, at >= end ? .missingEnd : .truncatedStructure)
        }
        offset = at + 4
        return (token, at)
    }

    /// Rounds `offset` up to the next 4-byte boundary (§5.4.1 "aligned on a 32-bit boundary").
    mutating func align() {
        offset = (offset + 3) & ~3
    }

    mutating func readTree() throws(FDTError) -> DeviceTreeNode {
        var stack: [DeviceTreeNode] = []
        var root: DeviceTreeNode?
        var nodeCount = 0
        while true {
            let (token, at) = try readToken()
            switch FlattenedDeviceTree.Token(rawValue: token) {
            case .beginNode:
                guard root == nil else { throw FDTError(offset: at, .nodeAfterRoot) }
                guard stack.count < FlattenedDeviceTree.maximumDepth else {
                    throw FDTError(offset: at, .tooDeep(limit: FlattenedDeviceTree.maximumDepth))
                }
                nodeCount += 1
                guard nodeCount <= FlattenedDeviceTree.maximumNodes else {
                    throw FDTError(offset: at, .tooManyNodes(limit: FlattenedDeviceTree.maximumNodes))
                }
                let name = try readNodeName()
                stack.append(DeviceTreeNode(name: name))
            case .endNode:
                guard let node = stack.popLast() else { throw FDTError(offset: at, .unbalancedEndNode) }
                if stack.isEmpty {
                    root = node
                } else {
                    stack[stack.count - 1].children.append(node)
                }
            case .property:
                guard !stack.isEmpty else { throw FDTError(offset: at, .propertyOutsideNode) }
                let property = try readProperty(tokenOffset: at)
                stack[stack.count - 1].properties.append(property)
            case .nop:
                continue
            case .end:
                guard stack.isEmpty else { throw FDTError(offset: at, .endInsideNode(openNodes: stack.count)) }
                guard let root else { throw FDTError(offset: at, .missingRoot) }
                return root
            case nil:
                throw FDTError(offset: at, .unknownToken(token))
            }
        }
    }

    /// The NUL-terminated unit name after `FDT_BEGIN_NODE`, then padding to 4 bytes.
    mutating func readNodeName() throws(FDTError) -> String {
        let start = offset
        var cursor = start
        while cursor < end, bytes[cursor] != 0 { cursor += 1 }
        guard cursor < end else { throw FDTError(offset: start, .unterminatedNodeName) }
        let name = String(decoding: bytes[start..<cursor], as: UTF8.self)
        offset = cursor + 1
        align()
        return name
    }

    /// `FDT_PROP` then `struct { u32 len; u32 nameoff; }`, `len` bytes of value, padding.
    mutating func readProperty(tokenOffset: Int) throws(FDTError) -> DeviceTreeProperty {
        let headerAt = offset
        guard headerAt <= end - 8, let length = BigEndian.u32(bytes, at: headerAt),
              let nameOffset = BigEndian.u32(bytes, at: headerAt + 4) else {
            throw FDTError(offset: tokenOffset, .truncatedStructure)
        }
        let valueStart = headerAt + 8
        guard Int(length) <= end - valueStart else {
            throw FDTError(offset: headerAt, .propertyValueOutOfBounds(length: length))
        }
        let value = Array(bytes[valueStart..<(valueStart + Int(length))])
        let name = try readString(nameOffset, fieldAt: headerAt + 4)
        offset = valueStart + Int(length)
        align()
        return DeviceTreeProperty(name: name, value: value)
    }

    /// A property name from the strings block (§5.5).
    func readString(_ nameOffset: UInt32, fieldAt: Int) throws(FDTError) -> String {
        guard Int(nameOffset) < stringsEnd - stringsStart else {
            throw FDTError(offset: fieldAt, .badStringOffset(nameOffset))
        }
        let start = stringsStart + Int(nameOffset)
        var cursor = start
        while cursor < stringsEnd, bytes[cursor] != 0 { cursor += 1 }
        guard cursor < stringsEnd else { throw FDTError(offset: fieldAt, .unterminatedString(nameOffset)) }
        return String(decoding: bytes[start..<cursor], as: UTF8.self)
    }
}
