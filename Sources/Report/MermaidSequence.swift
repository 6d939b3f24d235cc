import Bus

/// A Mermaid sequence diagram of a trace: one participant per layer, in the order an MSI
/// meets them, and one message per record.
public enum MermaidSequence {
    static let participants: [(TraceLayer, String)] = [
        (.pci, "Device"), (.rootComplex, "RootComplex"), (.smmu, "SMMU"), (.bus, "Bus"), (.its, "ITS"),
        (.redistributor, "Redistributor"), (.cpu, "CPU"), (TraceLayer(rawValue: "host-kernel"), "HostKernel"),
        (TraceLayer(rawValue: "kvm"), "KVM"), (TraceLayer(rawValue: "vits"), "vITS"), (TraceLayer(rawValue: "guest"), "Guest"),
    ]

    public static func render(_ records: [TraceRecord], title: String, outcome: String?) -> String {
        var text = "sequenceDiagram\n    title \(clean(title))\n"
        let used = Set(records.map(\.layer))
        for (layer, name) in participants where used.contains(layer) { text += "    participant \(name)\n" }
        for layer in records.map(\.layer) where !participants.contains(where: { $0.0 == layer }) {
            let name = clean(layer.rawValue)
            if !text.contains("participant \(name)\n") { text += "    participant \(name)\n" }
        }
        var from = records.first.map { name($0.layer) } ?? "Device"
        for record in records {
            let to = name(record.layer)
            var message = record.step
            if let address = record.address { message += " @ \(Hex.format(address))" }
            if !record.detail.isEmpty { message += ": " + record.detail }
            text += "    \(from)->>\(to): \(clean(message))\n"
            from = to
        }
        if let outcome { text += "    Note over \(from): \(clean(outcome))\n" }
        return text
    }

    static func name(_ layer: TraceLayer) -> String {
        participants.first { $0.0 == layer }?.1 ?? clean(layer.rawValue)
    }

    /// Mermaid treats `;` and `#` specially and a message is one line.
    static func clean(_ text: String) -> String {
        String(text.map { c -> Character in
            switch c {
            case ";": ","
            case "#": "№"
            case "\n": " "
            default: c
            }
        })
    }
}
