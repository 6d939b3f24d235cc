import ArgumentParser
import Bus
import Foundation
import Machine
import Scenario

/// `--format` of the comparison commands.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case table, markdown, json
}

/// A platform named on the command line: a preset, or a .dtb path whose bytes are read here.
struct ChosenPlatform {
    var platform: Platform
    var deviceTree: [UInt8]?

    init(_ argument: String) throws {
        if let preset = MachinePreset(rawValue: argument) {
            platform = .preset(preset)
            deviceTree = nil
            return
        }
        guard argument.hasSuffix(".dtb") else {
            throw ValidationError("unknown platform '\(argument)': use a preset (\(MachinePreset.allCases.map(\.rawValue).joined(separator: ", "))) or a .dtb path")
        }
        platform = .deviceTree(path: argument)
        deviceTree = try readFile(argument)
    }
}

/// Runs scenarios with a progress line on stderr when the work takes longer than a second
/// (measured in scenarios, not time: an estimate from the count keeps output deterministic).
func runScenarios(_ scenarios: [ScenarioDescription], deviceTree: [UInt8]?) -> [(ScenarioDescription, [StrategyRun])] {
    let total = scenarios.reduce(0) { $0 + $1.strategiesToRun.count }
    let showProgress = total > 40 && isatty(STDERR_FILENO) != 0
    var done = 0
    var results: [(ScenarioDescription, [StrategyRun])] = []
    for scenario in scenarios {
        var runs: [StrategyRun] = []
        for strategy in scenario.strategiesToRun {
            runs.append(ScenarioRunner.run(scenario, strategy: strategy, deviceTree: deviceTree))
            done += 1
            if showProgress { FileHandle.standardError.write("\r  \(done)/\(total) runs (\(scenario.name))\u{1B}[K".data(using: .utf8) ?? Data()) }
        }
        results.append((scenario, runs))
    }
    if showProgress { FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8) ?? Data()) }
    return results
}
