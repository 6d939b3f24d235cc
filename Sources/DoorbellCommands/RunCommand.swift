import Firmware
import ArgumentParser
import Report
import Scenario

/// `doorbell run FILE`: a scenario file under its strategies, with its expectations checked.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a scenario file (YAML) and check its expectations.",
        discussion: """
        Exit status: 0 when every expectation in the file holds (or it has none), 1 when one \
        does not, 64 for a usage error (bad arguments, or a scenario file with a mistake: the \
        message names the file, line, column and key). See Examples/ and the README's \
        "Scenario files" section for the format.
        """
    )

    @Argument(help: ArgumentHelp("The scenario file.", valueName: "file"))
    var file: String

    @Option(help: ArgumentHelp("Run only this strategy (overrides the file's `strategy`).", valueName: "id"), completion: CommandLineCompletions.strategy, transform: CommandLineNames.strategy)
    var strategy: Strategy?

    @OptionGroup var kernel: KernelReleaseOption

    @Option(help: "Output format: table, markdown or json.")
    var format: ReportFormat = .table

    func run() throws {
        var (description, platformTopology) = try loadScenario(file: file, builtIn: nil)
        if let strategy { description.strategies = [strategy] }
        description = kernel.apply(to: description)
        let runs = ScenarioRunner.runAll(description, platformTopology: platformTopology)
        let mismatches = ExpectationCheck.evaluate(description.expectations, runs)
        print(ScenarioReport.run(description, runs, mismatches: mismatches, format: format), terminator: "")
        if !mismatches.isEmpty { throw ExitCode(1) }
    }
}
