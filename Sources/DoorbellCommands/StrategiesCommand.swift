import ArgumentParser
import Bus
import Report
import Scenario

/// `doorbell` (no arguments) = `doorbell strategies`: the seed's scenario under every strategy.
struct StrategiesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strategies",
        abstract: "The main job: one scenario (default: the seed) under every MSI strategy, side by side.",
        discussion: """
        Builds, for each strategy, the whole stack on the platform — host kernel, VMM, VM with \
        an accelerated vSMMU, guest kernel with its driver — fires every vector of the \
        passthrough function and follows each MSI through the guest's stage 1, the host's stage \
        2, the physical ITS and KVM to the guest's handler. The table shows vector 0's path; \
        the sentences below it say why each failing strategy fails. Strategy ids: \
        \(Strategy.allCases.map(\.rawValue).joined(separator: ", ")).
        """
    )

    @Option(help: ArgumentHelp("A built-in scenario (\(BuiltInScenarios.all.map(\.name).joined(separator: ", "))).", valueName: "name"), completion: CommandLineCompletions.scenario)
    var scenario: String = BuiltInScenarios.seed.name

    @OptionGroup var kernel: KernelReleaseOption

    @Option(help: "Output format: table, markdown or json.")
    var format: ReportFormat = .table

    func run() throws {
        let builtIn = try CommandLineNames.builtInScenario(scenario)
        let description = kernel.apply(to: builtIn)
        let runs = ScenarioRunner.runAll(description)
        print(ScenarioReport.strategies(description, runs, format: format), terminator: "")
    }
}
