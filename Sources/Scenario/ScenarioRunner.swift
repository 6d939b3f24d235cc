import Firmware
import Bus
import LinuxKernel

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
    /// Invariants broken, in step order (checked after every fired vector).
    public var violations: [Violation] = []
    /// Script steps whose event had nothing to act on (e.g. a hot-plug of a plugged device).
    public var skippedSteps: Set<Int> = []
    /// GICv4.1 hosts: whether KVM could forward MSIs as vLPIs (`vgic_supports_direct_msis`),
    /// and what each irqbypass connection did (`KVMVirtualMachine.forwardingLog`).
    public var directInjectionAvailable = false
    public var forwarding: [KVMForwardingEvent] = []

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
    public static func run(_ scenario: ScenarioDescription, strategy: Strategy, platformTopology: Topology? = nil,
                           traceStep: Int? = nil, trace: TraceLog? = nil,
                           finally inspect: ((World, [VectorOutcome]) -> Void)? = nil) -> StrategyRun {
        var run = StrategyRun(scenario: scenario.name, strategy: strategy, setupFailure: nil, outcomes: [], eventLog: [])
        let world: World
        do {
            world = try World.build(scenario, strategy: strategy, platformTopology: platformTopology)
        } catch {
            run.setupFailure = error
            return run
        }
        var tracker = InvariantTracker()
        for (step, event) in scenario.script.enumerated() {
            let log = step == traceStep ? trace : nil
            let result = world.perform(event, step: step, trace: log)
            run.violations += tracker.record(event, result, step: step, world: world)
            switch result {
            case .fired(let outcome):
                run.outcomes.append(outcome)
                run.eventLog.append("\(step): \(event.kind.rawValue) → \(outcome.verdict)")
            case .done(let note):
                run.eventLog.append("\(step): \(event.kind.rawValue): \(note)")
            case .skipped:
                run.eventLog.append("\(step): \(event.kind.rawValue): \(result.note ?? "")")
                run.skippedSteps.insert(step)
            }
        }
        run.directInjectionAvailable = world.vmm.vm.hasDirectMSIs
        run.forwarding = world.vmm.vm.forwardingLog
        if let inspect {
            // The last observation: the fires after the last non-fire event.
            let script = scenario.script
            let lastEvent = script.lastIndex { if case .fire = $0 { false } else { true } } ?? -1
            let tail = run.outcomes.filter { $0.step > lastEvent }
            inspect(world, tail)
        }
        return run
    }

    /// Every strategy the scenario asks for, in canonical order.
    public static func runAll(_ scenario: ScenarioDescription, platformTopology: Topology? = nil) -> [StrategyRun] {
        scenario.strategiesToRun.map { run(scenario, strategy: $0, platformTopology: platformTopology) }
    }
}

/// Follows a script: the last event that was not a fire, and whether each vector was delivered
/// the first time it fired, so that a later failure is charged to the event before it.
struct InvariantTracker {
    var lastEvent: ScenarioEvent?
    var firstDelivery: [Int: Bool] = [:]

    mutating func record(_ event: ScenarioEvent, _ result: World.EventResult, step: Int, world: World) -> [Violation] {
        switch result {
        case .fired(let outcome):
            let key = outcome.device << 16 | outcome.vector
            let before = firstDelivery[key]
            var violations = world.check(outcome, previousEvent: lastEvent, deliveredBefore: before)
            if before == nil, !outcome.verdict.isPending { firstDelivery[key] = outcome.delivered }
            // A vector that never delivered keeps failing the same way: report it once.
            if before == false { violations.removeAll { $0.invariant == .delivery } }
            return violations
        case .done, .skipped:
            lastEvent = event
            if let violation = world.adversarialViolation(event, step: step) { return [violation] }
            return []
        }
    }
}
