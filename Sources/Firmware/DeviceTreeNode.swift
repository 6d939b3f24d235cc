/// One property of a device tree node: a name and the raw big-endian bytes of its value
/// (DT spec §2.2.4). The typed accessors return nil when the bytes do not have the shape asked
/// for, never trap: a property's value comes from a file.
public struct DeviceTreeProperty: Hashable, Sendable {
    public var name: String
    public var value: [UInt8]

    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }

    /// An empty property (`dma-coherent;`, `msi-controller;`): presence is the value.
    public init(name: String) { self.init(name: name, value: []) }

    /// A property of 32-bit cells, big-endian (`<0x00 0x8004>`).
    public init(name: String, cells: [UInt32]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(cells.count * 4)
        for cell in cells { bytes.append(contentsOf: BigEndian.bytes(cell)) }
        self.init(name: name, value: bytes)
    }

    /// A string list property: each string NUL-terminated (DT spec §2.2.4.1 `<stringlist>`).
    public init(name: String, strings: [String]) {
        var bytes: [UInt8] = []
        for string in strings {
            bytes.append(contentsOf: Array(string.utf8))
            bytes.append(0)
        }
        self.init(name: name, value: bytes)
    }

    public var isEmpty: Bool { value.isEmpty }

    /// The value as one `<u32>`: exactly four bytes.
    public var u32: UInt32? {
        value.count == 4 ? BigEndian.u32(value, at: 0) : nil
    }

    /// The value as one `<u64>`: exactly eight bytes (two cells, most significant first).
    public var u64: UInt64? {
        value.count == 8 ? BigEndian.u64(value, at: 0) : nil
    }

    /// The value as `<prop-encoded-array>` of 32-bit cells: a whole number of cells.
    public var cells: [UInt32]? {
        guard value.count % 4 == 0 else { return nil }
        var out: [UInt32] = []
        out.reserveCapacity(value.count / 4)
        var offset = 0
        while let cell = BigEndian.u32(value, at: offset) {
            out.append(cell)
            offset += 4
        }
        return out
    }

    /// The value as one `<string>`: NUL-terminated, no NUL inside.
    public var string: String? {
        guard let list = strings, list.count == 1 else { return nil }
        return list.first
    }

    /// The value as a `<stringlist>`: one or more NUL-terminated strings.
    public var strings: [String]? {
        guard let last = value.last, last == 0 else { return nil }
        var out: [String] = []
        var start = 0
        for (index, byte) in value.enumerated() where byte == 0 {
            out.append(String(decoding: value[start..<index], as: UTF8.self))
            start = index + 1
        }
        return out
    }

    /// The value as one `<phandle>` (DT spec §2.3.3).
    public var phandle: UInt32? { u32 }
}

/// A node of a device tree: its name (with the unit address, `its@8080000`), its properties in
/// blob order, and its children in blob order (DT spec §2.2.1).
public struct DeviceTreeNode: Hashable, Sendable {
    public var name: String
    public var properties: [DeviceTreeProperty]
    public var children: [DeviceTreeNode]

    public init(name: String, properties: [DeviceTreeProperty] = [], children: [DeviceTreeNode] = []) {
        self.name = name
        self.properties = properties
        self.children = children
    }

    /// The node name without the unit address (`its` for `its@8080000`).
    public var nodeName: String {
        guard let at = name.firstIndex(of: "@") else { return name }
        return String(name[..<at])
    }

    /// The unit address (`8080000` for `its@8080000`), nil when the name has none.
    public var unitAddress: String? {
        guard let at = name.firstIndex(of: "@") else { return nil }
        return String(name[name.index(after: at)...])
    }

    /// The first property called `name`. (A blob may repeat a name; the spec forbids it, the
    /// reader keeps both, lookups see the first, as libfdt's `fdt_getprop` does.)
    public func property(_ name: String) -> DeviceTreeProperty? {
        properties.first { $0.name == name }
    }

    public func hasProperty(_ name: String) -> Bool { property(name) != nil }

    /// The first child with exactly this name (including its unit address).
    public func child(_ name: String) -> DeviceTreeNode? {
        children.first { $0.name == name }
    }

    /// `compatible` as a string list, empty when absent or malformed.
    public var compatible: [String] { property("compatible")?.strings ?? [] }

    /// Whether any `compatible` string equals `value`.
    public func isCompatible(with value: String) -> Bool { compatible.contains(value) }

    /// `phandle` (or the legacy `linux,phandle`), DT spec §2.3.3.
    public var phandle: UInt32? {
        property("phandle")?.u32 ?? property("linux,phandle")?.u32
    }

    /// The cells this node's children use for addresses: `#address-cells`, default 2
    /// (DT spec §2.3.5: not inherited; "a client program should assume a default value of 2").
    public var addressCells: UInt32? {
        guard let property = property("#address-cells") else { return 2 }
        return property.u32
    }

    /// The cells this node's children use for sizes: `#size-cells`, default 1 (DT spec §2.3.5).
    public var sizeCells: UInt32? {
        guard let property = property("#size-cells") else { return 1 }
        return property.u32
    }

    /// `status` (DT spec §2.3.4): a node is enabled when it is absent, "okay" or "ok".
    public var isEnabled: Bool {
        guard let status = property("status")?.string else { return true }
        return status == "okay" || status == "ok"
    }
}

/// An entry of the memory reservation block (DT spec §5.3): physical memory the client must
/// not use.
public struct MemoryReservation: Hashable, Sendable {
    public var address: UInt64
    public var size: UInt64
    public init(address: UInt64, size: UInt64) {
        self.address = address
        self.size = size
    }
}

/// Big-endian reads with checked indexing: every multi-byte value in a DTB is big-endian
/// (DT spec §5.1), and every read here returns nil rather than trapping past the end.
enum BigEndian {
    static func u32(_ bytes: [UInt8], at offset: Int) -> UInt32? {
        guard offset >= 0, offset <= bytes.count - 4 else { return nil }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
            | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    static func u64(_ bytes: [UInt8], at offset: Int) -> UInt64? {
        guard let hi = u32(bytes, at: offset), offset <= Int.max - 4, let lo = u32(bytes, at: offset + 4) else { return nil }
        return UInt64(hi) << 32 | UInt64(lo)
    }

    static func bytes(_ value: UInt32) -> [UInt8] {
        [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
         UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    static func bytes(_ value: UInt64) -> [UInt8] {
        bytes(UInt32(truncatingIfNeeded: value >> 32)) + bytes(UInt32(truncatingIfNeeded: value))
    }
}
