import Firmware

/// ACPI table fields printed the way ACPICA's disassembler (`iasl -d`) prints a data table:
/// `[HexOffset DecimalOffset ByteLength]  FieldName : FieldValue`, so a user can diff
/// `doorbell topology` against `iasl -d` output line for line.
public enum ACPIFieldText {
    public static func render(_ fields: [ACPIField]) -> String {
        var lines: [String] = []
        for field in fields {
            let hex = String(field.offset, radix: 16, uppercase: true)
            let offset = String(repeating: "0", count: max(0, 3 - hex.count)) + hex
            let decimal = String(field.offset)
            let position = "[\(offset)h \(String(repeating: "0", count: max(0, 4 - decimal.count)) + decimal) \(pad(String(field.length), 3))]"
            lines.append("\(position) \(pad(field.label, 28, left: true)) : \(field.value)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func pad(_ text: String, _ width: Int, left: Bool = true) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return left ? fill + text : text + fill
    }
}
