import Scenario

/// `--format` of the comparison commands.
public enum ReportFormat: String, CaseIterable, Sendable {
    case table, markdown, json
}

/// What the scenario commands print: one scenario's strategies, a scenario file's run with its
/// expectations, the comparison matrix.
public enum ScenarioReport {
    /// `doorbell strategies`: one scenario under its strategies, as a table, Markdown or JSON
    /// (every vector), with the host kernel line, why the failing strategies fail and the legend.
    public static func strategies(_ scenario: ScenarioDescription, _ runs: [StrategyRun], format: ReportFormat) -> String {
        switch format {
        case .json:
            return ReportJSON.render([(scenario, runs)], allVectors: true, command: "strategies")
        case .table, .markdown:
            let markdown = format == .markdown
            let (name, summary, platform) = (SafeText.escape(scenario.name), SafeText.escape(scenario.summary), SafeText.escape("\(scenario.platform)"))
            var text = markdown ? "## \(name): \(summary)\n\n" : "Doorbell: \(name) on \(platform) — \(summary)\n\n"
            text += ReportText.strategyTable(runs, markdown: markdown)
            text += (markdown ? "\n" : "\n  ") + ReportText.hostKernels(scenario, runs) + (scenario.host.kernel == nil ? "; choose one with --kernel" : "") + "\n"
            let why = ReportText.explanations(runs)
            if !why.isEmpty { text += "\nWhy the failing strategies fail:\n" + why }
            text += ReportText.directInjection([(scenario, runs)], markdown: markdown)
            text += "\n" + legend(scenario: scenario.name)
            return text
        }
    }

    /// The closing paragraph; its trace suggestion names the scenario just run (a scenario
    /// file's by its file, which `trace` takes as its argument).
    public static func legend(scenario: String) -> String {
        let source = BuiltInScenarios.named(scenario) != nil ? "--scenario \(scenario)" : "<file>"
        return """
    The guest programs its MSI IOVA into its vMSI-X table; the host programs the physical MSI-X \
    entry; the device's write goes through the guest's stage 1 (IOVA → IPA) and the host's stage 2 \
    (IPA → PA) to the physical ITS, whose LPI the host hands to KVM, which injects the guest's LPI. \
    Trace one MSI with `doorbell trace \(source) --strategy <id>`.

    """
    }

    /// `doorbell run`: `strategies`, then each run's vectors, its event log, its invariant
    /// violations, and whether the file's expectations hold. JSON carries every vector, each
    /// run's violations and the expectations with their mismatches.
    public static func run(_ description: ScenarioDescription, _ runs: [StrategyRun], mismatches: [ExpectationCheck.Mismatch],
                           format: ReportFormat) -> String {
        if format == .json {
            return ReportJSON.render([(description, runs)], allVectors: true, command: "run",
                                     expectations: (description.expectations.count, mismatches))
        }
        var text = strategies(description, runs, format: format)
        if format != .json {
            for run in runs where run.setupFailure == nil && !run.outcomes.isEmpty {
                text += "\n\(run.strategy.rawValue) vectors:\n" + ReportText.vectorTable(run, markdown: format == .markdown)
            }
        }
        if format != .json {
            for run in runs where !run.eventLog.isEmpty && !description.events.isEmpty {
                text += "\n\(run.strategy.rawValue) events:\n" + run.eventLog.map { "  " + $0 + "\n" }.joined()
            }
        }
        if format != .json {
            for run in runs where !run.violations.isEmpty {
                text += "\n\(run.strategy.rawValue): \(run.violations.count) invariant violation(s):\n"
                text += run.violations.map { "  - \($0)\n" }.joined()
            }
        }
        if format != .json, !description.expectations.isEmpty {
            text += mismatches.isEmpty ? "\nExpectations: all \(description.expectations.count) hold.\n"
                : "\nExpectations that do not hold:\n" + mismatches.map { "  - \($0)\n" }.joined()
        }
        return text
    }

    /// `doorbell compare`: scenarios down, strategies across; JSON carries vector 0 and the
    /// first failing vector of each run.
    public static func comparison(_ results: [(ScenarioDescription, [StrategyRun])], format: ReportFormat) -> String {
        switch format {
        case .json: ReportJSON.render(results, allVectors: false, command: "compare")
        case .table, .markdown: ReportText.matrix(results, markdown: format == .markdown)
        }
    }
}
