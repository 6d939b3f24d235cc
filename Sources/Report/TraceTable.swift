import Bus

/// Renders trace records as a numbered table: one line per thing the hardware did, with the
/// address it touched, the value, and what it meant.
public enum TraceTable {
    public static func render(_ records: [TraceRecord], layers: Set<TraceLayer>? = nil) -> String {
        let shown = records.filter { layers?.contains($0.layer) ?? true }
        guard !shown.isEmpty else { return "  (nothing traced)\n" }
        let stepWidth = min(max(shown.map { $0.step.count }.max() ?? 0, 4), 34)
        var out = ""
        for (i, record) in shown.enumerated() {
            let number = pad(String(i + 1), 3, right: true)
            let layer = pad(record.layer.rawValue, 13)
            let step = pad(record.step, stepWidth)
            let address = record.address.map { Hex.format($0, minDigits: 9) } ?? ""
            let value = record.value.map { Hex.format($0, minDigits: 16) } ?? ""
            var line = "\(number)  \(layer) \(step)  \(pad(address, 15))  \(pad(value, 22))"
            if !record.detail.isEmpty { line += "  \(record.detail)" }
            while line.last == " " { line.removeLast() }
            out += line + "\n"
        }
        return out
    }

    public static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        guard text.count < width else { return text }
        let fill = String(repeating: " ", count: width - text.count)
        return right ? fill + text : text + fill
    }
}
