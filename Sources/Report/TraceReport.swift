import Bus
import Scenario

/// `doorbell trace`: one MSI of one strategy, every step, as text or a Mermaid sequence diagram.
public enum TraceReport {
    /// What set the guest's window up (`firmware`), the traced records, the vector's verdict
    /// and, when it was not delivered, why the strategy fails.
    public static func text(scenario: String, strategy: Strategy, device: Int, vector: Int, firmware: [String],
                            records: [TraceRecord], outcome: VectorOutcome?, run: StrategyRun) -> String {
        var text = "Doorbell trace: \(SafeText.escape(scenario)), strategy \(strategy.rawValue), device \(device) vector \(vector)\n\n"
        text += "Before the MSI, what set the guest's window up:\n"
        for line in firmware { text += "  \(line)\n" }
        text += "\n"
        text += TraceTable.render(records)
        if let outcome { text += "\nOutcome: \(outcome.verdict)\n" }
        if let why = run.explanation, outcome?.delivered == false { text += why + "\n" }
        return text
    }

    /// The records as a sequence diagram, the verdict as a note.
    public static func mermaid(scenario: String, strategy: Strategy, vector: Int, records: [TraceRecord], outcome: VectorOutcome?) -> String {
        MermaidSequence.render(records, title: "\(SafeText.escape(scenario)) · \(strategy.rawValue) · vector \(vector)", outcome: outcome.map { "\($0.verdict)" })
    }
}
