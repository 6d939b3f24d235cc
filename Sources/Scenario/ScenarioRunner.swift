import Bus

/// One strategy's run of one scenario: what was built, every event, every fired vector.
public struct StrategyRun: Hashable, Sendable {
    public var scenario: String
    public var strategy: Strategy
    /// Set when the world could not be built: the step and the error (an observed outcome too,
    /// e.g. an attach refused by iommufd).
    public var setupFailure: World.SetupFailure?
    public var outcomes: [VectorOutcome]
    /// Per script step, what the event did (or why it could not run).
    public var eventLog: [String]

    /// Fired vectors that reached the right guest LPI on the right vCPU.
    public var deliveredCount: Int { outcomes.filter(\.delivered).count }
    /// Vectors fired (masked ones included: their Pending bit is their outcome).
    public var firedCount: Int { outcomes.count }
    /// The first vector that did not arrive.
    public var firstFailure: VectorOutcome? { outcomes.first { $0.verdict.failurePoint != nil } }
    /// Everything delivered (and something was fired, and the world was built).
    public var allDelivered: Bool { setupFailure == nil && !outcomes.isEmpty && outcomes.allSatisfy(\.delivered) }
}

/// Runs scenarios: builds a world per strategy, runs the event script, and observes.
public enum ScenarioRunner {
    /// Runs `scenario` under `strategy`. `traceStep` names a script step whose MSI is traced
    /// into `trace`.
    public static func run(_ scenario: ScenarioDescription, strategy: Strategy, deviceTree: [UInt8]? = nil,
                           traceStep: Int? = nil, trace: TraceLog? = nil) -> StrategyRun {
        var run = StrategyRun(scenario: scenario.name, strategy: strategy, setupFailure: nil, outcomes: [], eventLog: [])
        let world: World
        do {
            world = try World.build(scenario, strategy: strategy, deviceTree: deviceTree)
        } catch {
            run.setupFailure = error
            return run
        }
        for (step, event) in scenario.script.enumerated() {
            let log = step == traceStep ? trace : nil
            switch world.perform(event, step: step, trace: log) {
            case .fired(let outcome):
                run.outcomes.append(outcome)
                run.eventLog.append("\(step): \(event.kind.rawValue) → \(outcome.verdict)")
            case .done(let note):
                run.eventLog.append("\(step): \(event.kind.rawValue): \(note)")
            }
        }
        return run
    }

    /// Every strategy the scenario asks for, in canonical order.
    public static func runAll(_ scenario: ScenarioDescription, deviceTree: [UInt8]? = nil) -> [StrategyRun] {
        scenario.strategiesToRun.map { run(scenario, strategy: $0, deviceTree: deviceTree) }
    }
}
