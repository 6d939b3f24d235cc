import Bus
import Scenario

/// `doorbell trace --format json`: the same records, outcome and explanation the text rendering
/// (`TraceReport.text`) prints, as data. Kept apart from the text so a change of how traces are
/// recorded touches only what both read (`TraceRecord`, `VectorOutcome`).
public enum TraceJSON {
    public static func render(scenario: String, strategy: Strategy, device: Int, vector: Int, firmware: [String],
                              records: [TraceRecord], outcome: VectorOutcome?, run: StrategyRun) -> String {
        let explanation = outcome?.delivered == false ? run.explanation : nil
        return JSONDocument.render(command: "trace", [
            "scenario": .string(scenario),
            "strategy": .string(strategy.rawValue),
            "device": .number(device),
            "vector": .number(vector),
            "firmware": .array(firmware.map { .string($0) }),
            "records": .records(records),
            "outcome": outcome.map { .encodable(ReportJSON.vector($0)) } ?? .null,
            "explanation": .string(explanation),
        ])
    }
}
