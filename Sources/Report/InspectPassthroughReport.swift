import Foundation
import Inspect
import Scenario

/// `inspect --passthrough`: the host's checks, then the strategy table for the device passed
/// through with an accelerated vSMMU and without a vIOMMU, as `doorbell strategies` prints it.
public enum InspectPassthroughReport {
    public static func text(_ whatIf: InspectPassthrough) -> String {
        var out = "Doorbell inspect: \(SafeText.escape(whatIf.device)) passed through\n\nHost checks:\n"
        for check in whatIf.checks {
            out += "  \(check.passed ? "✓" : "✗") \(check.name): \(SafeText.escape(check.detail))\n"
        }
        for (scenario, runs) in whatIf.runs {
            out += "\n" + ScenarioReport.strategies(scenario, runs, format: .table)
        }
        return out
    }

    public static func json(_ whatIf: InspectPassthrough) throws -> String {
        var scenarios: [Any] = []
        for (scenario, runs) in whatIf.runs {
            let text = ScenarioReport.strategies(scenario, runs, format: .json)
            scenarios.append(try JSONSerialization.jsonObject(with: Data(text.utf8)))
        }
        let document: [String: Any] = [
            "schema": JSONDocument.schema,
            "command": "inspect",
            "form": "passthrough",
            "device": whatIf.device,
            "checks": whatIf.checks.map { ["name": $0.name, "passed": $0.passed, "detail": $0.detail] as [String: Any] },
            "scenarios": scenarios,
        ]
        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}
