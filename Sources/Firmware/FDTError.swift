import Bus

/// Why a flattened device tree blob was rejected, and where.
///
/// Every structural check of the Devicetree Specification v0.4 §5 has a kind here. `offset` is
/// the byte offset in the blob of the thing that is wrong (the header field, the token, the
/// property name offset), so a user can open the blob in a hex editor and see it.
public struct FDTError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The part of the blob a header field points at (DT spec §5.2, §5.3, §5.4, §5.5).
    public enum Block: String, Hashable, Sendable {
        case memoryReservationMap = "memory reservation block"
        case structure = "structure block"
        case strings = "strings block"
    }

    public enum Kind: Hashable, Sendable {
        /// The blob is shorter than the 40-byte version-17 header (or 36 bytes for version 16).
        case truncatedHeader(length: Int)
        /// `magic` is not 0xd00dfeed (DT spec §5.2).
        case badMagic(UInt32)
        /// `version` below 16, or `last_comp_version` above 17: a layout this reader does not know.
        case unsupportedVersion(version: UInt32, lastCompatibleVersion: UInt32)
        /// `totalsize` is larger than the bytes we were given.
        case totalSizeBeyondBlob(totalSize: UInt32, available: Int)
        /// `totalsize` is smaller than the header itself.
        case totalSizeTooSmall(UInt32)
        /// A block's offset or offset + size lies outside `totalsize` (or the sum overflows).
        case blockOutOfBounds(Block, start: UInt32, size: UInt32)
        /// A block offset is not aligned as §5.1 requires (8 for the reservation map, 4 for the structure block).
        case misalignedBlock(Block, start: UInt32)
        /// The reservation map runs past `totalsize` before its (0, 0) terminator (§5.3).
        case unterminatedReservationMap
        /// A token, or the data it needs, runs past the end of the structure block.
        case truncatedStructure
        /// A token value that §5.4.1 does not define.
        case unknownToken(UInt32)
        /// An `FDT_BEGIN_NODE` name without a NUL terminator inside the structure block.
        case unterminatedNodeName
        /// An `FDT_PROP` whose `len` bytes of value run past the structure block.
        case propertyValueOutOfBounds(length: UInt32)
        /// An `FDT_PROP` `nameoff` at or past `size_dt_strings`.
        case badStringOffset(UInt32)
        /// An `FDT_PROP` `nameoff` whose string has no NUL before the end of the strings block.
        case unterminatedString(UInt32)
        /// An `FDT_PROP` before the root node's `FDT_BEGIN_NODE`, or after it closed.
        case propertyOutsideNode
        /// An `FDT_END_NODE` with no open node.
        case unbalancedEndNode
        /// An `FDT_BEGIN_NODE` after the root node closed: a blob has exactly one root (§5.4.2).
        case nodeAfterRoot
        /// `FDT_END` while nodes are still open.
        case endInsideNode(openNodes: Int)
        /// The structure block ends without `FDT_END`.
        case missingEnd
        /// The structure block holds no root node.
        case missingRoot
        /// Nodes nested deeper than `FlattenedDeviceTree.maximumDepth`.
        case tooDeep(limit: Int)
        /// More nodes than `FlattenedDeviceTree.maximumNodes`.
        case tooManyNodes(limit: Int)
    }

    /// Byte offset in the blob of the offending field or token.
    public let offset: Int
    public let kind: Kind

    public init(offset: Int, _ kind: Kind) {
        self.offset = offset
        self.kind = kind
    }

    public var description: String {
        let at = "at offset \(Hex.format(UInt64(truncatingIfNeeded: offset), minDigits: 4))"
        switch kind {
        case .truncatedHeader(let length): return "DTB truncated: \(length) bytes is shorter than the header (\(at))"
        case .badMagic(let magic): return "bad magic \(Hex.format(UInt64(magic))) (expected 0xd00d_feed) \(at)"
        case .unsupportedVersion(let v, let last): return "unsupported version \(v) (last compatible \(last)) \(at)"
        case .totalSizeBeyondBlob(let total, let available): return "totalsize \(total) exceeds the \(available) bytes given \(at)"
        case .totalSizeTooSmall(let total): return "totalsize \(total) is smaller than the header \(at)"
        case .blockOutOfBounds(let block, let start, let size): return "\(block.rawValue) [\(start), +\(size)) lies outside the blob \(at)"
        case .misalignedBlock(let block, let start): return "\(block.rawValue) offset \(start) is misaligned \(at)"
        case .unterminatedReservationMap: return "memory reservation block has no (0, 0) terminator \(at)"
        case .truncatedStructure: return "structure block ends inside a token \(at)"
        case .unknownToken(let token): return "unknown token \(Hex.format(UInt64(token))) \(at)"
        case .unterminatedNodeName: return "node name has no NUL terminator \(at)"
        case .propertyValueOutOfBounds(let length): return "property value of \(length) bytes runs past the structure block \(at)"
        case .badStringOffset(let nameoff): return "property name offset \(nameoff) is outside the strings block \(at)"
        case .unterminatedString(let nameoff): return "property name at strings offset \(nameoff) has no NUL terminator \(at)"
        case .propertyOutsideNode: return "property outside any node \(at)"
        case .unbalancedEndNode: return "FDT_END_NODE with no open node \(at)"
        case .nodeAfterRoot: return "a second root node \(at)"
        case .endInsideNode(let open): return "FDT_END with \(open) node(s) still open \(at)"
        case .missingEnd: return "structure block has no FDT_END \(at)"
        case .missingRoot: return "structure block has no root node \(at)"
        case .tooDeep(let limit): return "nodes nested deeper than \(InputLimits.describe("device tree depth", limit, unit: "levels")) \(at)"
        case .tooManyNodes(let limit): return "more nodes than \(InputLimits.describe("device tree node", limit, unit: "nodes")) \(at)"
        }
    }
}
