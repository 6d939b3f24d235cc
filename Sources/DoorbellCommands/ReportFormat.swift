import Firmware
import ArgumentParser
import Bus
import Foundation
import Machine
import Report
import Scenario

/// `--format` of the comparison commands.
extension ReportFormat: ExpressibleByArgument {}

/// `--format` of the commands that print one report: the text, or its JSON document (schema
/// 2, `Schemas/doorbell.schema.json`).
enum TextFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// A platform named on the command line: a preset, or a description file read here.
struct ChosenPlatform {
    var platform: Platform
    var platformTopology: Topology?

    init(_ argument: String) throws {
        try CommandLineNames.checkPlatform(argument)
        if let preset = MachinePreset(rawValue: argument) {
            platform = .preset(preset)
            platformTopology = nil
            return
        }
        let topology = try PlatformFile.topology(at: argument)
        platformTopology = topology
        let machine: Machine
        do { machine = try Machine(topology: topology, name: argument) } catch { throw CommandFailure("\(argument): \(error)") }
        if case .unsupported(let why) = machine.support() { throw CommandFailure("\(argument): \(why)") }
        platform = .deviceTree(path: argument)
    }
}

/// Runs scenarios, every core at once (each run builds its own world), results in order.
func runScenarios(_ scenarios: [ScenarioDescription], platformTopology: Topology?) -> [(ScenarioDescription, [StrategyRun])] {
    let jobs = scenarios.flatMap { scenario in scenario.strategiesToRun.map { (scenario, $0) } }
    let runs = Parallel.map(jobs) { job in ScenarioRunner.run(job.0, strategy: job.1, platformTopology: platformTopology) }
    var results: [(ScenarioDescription, [StrategyRun])] = []
    var index = 0
    for scenario in scenarios {
        let count = scenario.strategiesToRun.count
        results.append((scenario, Array(runs[index..<(index + count)])))
        index += count
    }
    return results
}
