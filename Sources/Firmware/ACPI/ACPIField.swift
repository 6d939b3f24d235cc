/// One row of a table's field dump: where, how wide, iasl's label and iasl's rendering of the
/// value. The labels are those of `iasl -d` (ACPICA `dmtbinfo*.c`), so a dump can be compared
/// line for line with an independent disassembly; values are rendered as iasl renders them
/// (upper-case hex, two digits per byte; quoted ASCII; byte buffers as "00 11 22").
public struct ACPIField: Hashable, Sendable, CustomStringConvertible {
    /// Byte offset from the start of the table.
    public var offset: Int
    public var length: Int
    public var label: String
    public var value: String

    public init(offset: Int, length: Int, label: String, value: String) {
        self.offset = offset
        self.length = length
        self.label = label
        self.value = value
    }

    static func hex(_ offset: Int, _ length: Int, _ label: String, _ value: UInt64) -> ACPIField {
        let digits = String(value, radix: 16, uppercase: true)
        let padded = String(repeating: "0", count: max(0, 2 * length - digits.count)) + digits
        return ACPIField(offset: offset, length: length, label: label, value: padded)
    }

    static func buffer(_ offset: Int, _ label: String, _ bytes: [UInt8]) -> ACPIField {
        let text = bytes.map { byte -> String in
            let digits = String(byte, radix: 16, uppercase: true)
            return digits.count == 1 ? "0" + digits : digits
        }.joined(separator: " ")
        return ACPIField(offset: offset, length: bytes.count, label: label, value: text)
    }

    /// `[004h 0004   4]  Table Length : 00000100`, iasl's layout.
    public var description: String {
        let hexOffset = String(offset, radix: 16, uppercase: true)
        let h = String(repeating: "0", count: max(0, 3 - hexOffset.count)) + hexOffset
        let d = String(offset)
        let dec = String(repeating: "0", count: max(0, 4 - d.count)) + d
        let l = String(length)
        return "[\(h)h \(dec) \(String(repeating: " ", count: max(0, 3 - l.count)))\(l)] \(label) : \(value)"
    }
}

/// A table that can list its fields in iasl's terms.
public protocol ACPIFieldDump {
    /// Rows in table order.
    var fields: [ACPIField] { get }
}
