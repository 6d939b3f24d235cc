import Firmware
import ArgumentParser
import Report
import Scenario

/// `doorbell compare`: every strategy on every built-in scenario.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Every strategy on every built-in scenario (or one), as a matrix.",
        discussion: """
        Rows are scenarios, columns strategies; a cell is "delivered/fired" and, when a vector \
        did not arrive, where the first one stopped (stage-1, stage-2, its, host, misrouted, \
        setup). JSON (schema 2, see the README and Schemas/doorbell.schema.json) carries vector 0 and the first failing vector of \
        each run with every layer's result.
        """
    )

    @Option(help: ArgumentHelp("Run the built-in scenarios on this platform instead of their own: a preset, a device tree blob, an ACPI table or a directory of ACPI tables.", valueName: "preset|file|dir"), completion: CommandLineCompletions.platform)
    var platform: String?

    @Option(help: ArgumentHelp("Only this built-in scenario.", valueName: "name"), completion: CommandLineCompletions.scenario)
    var scenario: String?

    @OptionGroup var kernel: KernelReleaseOption

    @Option(help: "Output format: table, markdown or json.")
    var format: ReportFormat = .table

    func run() throws {
        var scenarios = BuiltInScenarios.all
        if let scenario {
            scenarios = [try CommandLineNames.builtInScenario(scenario)]
        }
        var platformTopology: Topology?
        if let platform {
            let chosen = try ChosenPlatform(platform)
            platformTopology = chosen.platformTopology
            scenarios = scenarios.map { var s = $0; s.platform = chosen.platform; return s }
        }
        scenarios = scenarios.map(kernel.apply(to:))
        let results = runScenarios(scenarios, platformTopology: platformTopology)
        // A platform on which nothing could even be set up answers nothing: exit 1 with why,
        // not a matrix of "setup: …" cells.
        if let platform, let first = results.flatMap(\.1).first?.setupFailure,
           results.allSatisfy({ $0.1.allSatisfy { $0.setupFailure != nil } }) {
            throw CommandFailure("\(platform): no strategy could be set up on this platform (the first failed at \(first))")
        }
        print(ScenarioReport.comparison(results, format: format), terminator: "")
    }
}
