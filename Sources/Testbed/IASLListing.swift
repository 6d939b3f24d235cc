import Foundation

/// The rows of an ACPICA `iasl -d` disassembly (or of text printed the same way, such as
/// `doorbell topology`'s table part): `[004h 0004   4]  Table Length : 000000EC`. The fixture
/// tests use it as the ACPI readers' oracle. Group headers ("[IORT Memory Access Properties]")
/// and decoded flag bits (no offset) are left out; annotations after a value ("[IO Remapping
/// Table]") are cut; values continued with a trailing backslash are joined; parsing stops at
/// "Raw Table Data" or an "**** Unknown" subtable.
public enum IASLListing {
    public struct Row: Equatable, Sendable, CustomStringConvertible {
        public var offset: Int
        public var label: String
        public var value: String
        public init(offset: Int, label: String, value: String) {
            self.offset = offset
            self.label = label
            self.value = value
        }
        public var description: String { "[\(String(offset, radix: 16))] \(label) : \(value)" }
    }

    public static func rows(_ text: String) -> [Row] {
        var rows: [Row] = []
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)[...]
        let pattern = /^\[([0-9A-F]+)h \d+ +\d+\] +(.*?) : (.*)$/
        while let line = lines.popFirst() {
            if line.hasPrefix("Raw Table Data") || line.hasPrefix("**** Unknown") { break }
            guard let match = line.wholeMatch(of: pattern), let offset = Int(match.1, radix: 16) else { continue }
            var value = String(match.3)
            while value.hasSuffix("\\"), let next = lines.popFirst() {
                value = String(value.dropLast()) + " " + next.trimmingCharacters(in: .whitespaces)
            }
            if value.hasPrefix("[") { continue }
            if value.hasPrefix("\""), let close = value.dropFirst().firstIndex(of: "\"") {
                value = String(value[...close])
            } else if let bracket = value.range(of: " [") {
                value = String(value[..<bracket.lowerBound])
            }
            if !value.hasPrefix("\"") { value = value.split(separator: " ").joined(separator: " ") }
            rows.append(Row(offset: offset, label: String(match.2), value: value))
        }
        return rows
    }
}
