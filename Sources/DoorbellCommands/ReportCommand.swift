import ArgumentParser
import Bus
import Firmware
import Foundation
import Report
import Scenario

/// `doorbell report`: the strategies × scenarios matrix as one self-contained HTML file.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write an HTML report: every strategy on every scenario, each cell opening its vector's path through the layers.",
        discussion: """
        One self-contained file (inline style and script, nothing fetched). Each cell of the \
        strategies × scenarios matrix opens the path of its first failing vector (or vector 0) \
        as a drawing through device, SMMU stage 1 and 2, ITS, host, KVM, vITS and guest, with \
        the failing step marked, the explanation, and that MSI's trace. With --explore-depth \
        the explorer runs each scenario to that depth and its counterexamples are listed.
        """
    )

    @Argument(help: ArgumentHelp("A scenario file (default: every built-in scenario).", valueName: "file"))
    var file: String?

    @Option(name: .customLong("scenario"), help: ArgumentHelp("A built-in scenario (repeatable).", valueName: "name"), completion: CommandLineCompletions.scenario)
    var scenarios: [String] = []

    @Option(help: ArgumentHelp("Where to write the HTML file.", valueName: "report.html"))
    var out: String = "doorbell-report.html"

    @Option(help: ArgumentHelp("Explore each scenario to this depth and list the counterexamples (0: no exploration).", valueName: "n"))
    var exploreDepth: Int = 0

    func validate() throws {
        guard (0...3).contains(exploreDepth) else { throw ValidationError("--explore-depth must be 0…3") }
        if file != nil, !scenarios.isEmpty { throw ValidationError("give a scenario file or --scenario, not both") }
    }

    func run() throws {
        var chosen: [(ScenarioDescription, Topology?)] = []
        if let file {
            chosen.append(try loadScenario(file: file, builtIn: nil))
        } else if scenarios.isEmpty {
            chosen = BuiltInScenarios.all.map { ($0, nil) }
        } else {
            for name in scenarios { chosen.append(try loadScenario(file: nil, builtIn: name)) }
        }
        var sections: [(ScenarioDescription, [HTMLReport.Cell])] = []
        var counterexamples: [String] = []
        for (scenario, topology) in chosen {
            let runs = ScenarioRunner.runAll(scenario, platformTopology: topology)
            let cells = runs.map { HTMLReport.Cell(run: $0, trace: Self.trace(scenario, run: $0, topology: topology)) }
            sections.append((scenario, cells))
            if exploreDepth > 0 {
                let explorer = Explorer(scenario: scenario, platformTopology: topology, options: .init(depth: exploreDepth, walks: 0, steps: 0, seed: 1))
                for strategy in scenario.strategiesToRun {
                    for finding in explorer.explore(strategy).findings.prefix(3) {
                        counterexamples.append("\(scenario.name) / \(strategy.rawValue): \(finding.sequence.map { "\($0)" }.joined(separator: ", ")) → \(finding.violation)")
                    }
                }
            }
        }
        let html = HTMLReport.render(title: "Doorbell: MSI strategies × scenarios", scenarios: sections, counterexamples: counterexamples)
        guard FileManager.default.createFile(atPath: out, contents: Data(html.utf8)) else {
            throw CommandFailure("--out \(out): cannot write the report there")
        }
        print("wrote \(out): \(sections.count) scenario(s) × \(Strategy.allCases.count) strategies\(exploreDepth > 0 ? ", \(counterexamples.count) counterexample(s)" : "")")
    }

    /// The trace of the vector a cell shows, replayed on a fresh world up to its step.
    static func trace(_ scenario: ScenarioDescription, run: StrategyRun, topology: Topology?) -> [TraceRecord] {
        guard run.setupFailure == nil, let outcome = HTMLReport.shownOutcome(run) else { return [] }
        var traced = scenario
        traced.events = Array(scenario.script.prefix(outcome.step + 1))
        let log = TraceLog()
        _ = ScenarioRunner.run(traced, strategy: run.strategy, platformTopology: topology, traceStep: outcome.step, trace: log) { _, _ in }
        return log.records.filter { $0.kind != .mmioRead }
    }
}
