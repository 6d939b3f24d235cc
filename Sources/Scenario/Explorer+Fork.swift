import Bus

extension Explorer {
    /// Where a state's facts come from.
    public enum StatePath: String, Hashable, Sendable, CaseIterable {
        /// Fork the world of the state one event shorter (the root's for a walk, a shrink
        /// candidate, or a state whose parent this process did not keep) and run the rest of
        /// the script on the copy: a state costs its last event and observation.
        case fork
        /// Build a world and run the whole script (`World.build` + replay): what every state
        /// cost before worlds could be forked, kept as the oracle the forked path is tested
        /// against.
        case rebuild
    }

    /// One state of the search kept alive: the world after the state's script, the invariant
    /// tracker's memory, and the facts gathered so far, so a longer sequence continues from
    /// here on a fork instead of rebuilding the world.
    final class Node {
        let world: World
        let tracker: InvariantTracker
        let violations: [Violation]
        let skippedSteps: Set<Int>
        /// Script steps run so far (the next step's number).
        let steps: Int
        /// The outcomes of the fires since the last other event (what the state hash covers).
        let tail: [VectorOutcome]

        init(world: World, tracker: InvariantTracker, violations: [Violation], skippedSteps: Set<Int>, steps: Int, tail: [VectorOutcome]) {
            self.world = world
            self.tracker = tracker
            self.violations = violations
            self.skippedSteps = skippedSteps
            self.steps = steps
            self.tail = tail
        }

        var facts: StateFacts {
            StateFacts(hash: world.stateHash(lastOutcomes: tail), violations: violations, skippedSteps: skippedSteps.sorted(),
                       setupFailure: nil)
        }
    }

    /// The root state on a newly built world: the observation script, as `ScenarioRunner.run`
    /// runs it. A setup failure is the root's facts, with no node.
    func rootNode(strategy: Strategy) -> (StateFacts, Node?) {
        let world: World
        var s = scenario
        s.events = script([])
        do { world = try World.build(s, strategy: strategy, platformTopology: platformTopology) } catch {
            return (StateFacts(hash: 0, violations: [], skippedSteps: [], setupFailure: error), nil)
        }
        let node = run(s.script, on: world, after: nil)
        return (node.facts, node)
    }

    /// `node`'s world forked and taken through `events`, each followed by the observation (the
    /// rest of `script(sequence)` after `node`'s part of it).
    func advance(_ node: Node, by events: [ScenarioEvent]) -> Node {
        let observe = observation
        return run(events.flatMap { [$0] + observe }, on: node.world.fork(), after: node)
    }

    /// `ScenarioRunner.run`'s loop from where `previous` stopped: each step performed, its
    /// violations recorded by the tracker, skipped steps noted.
    private func run(_ script: [ScenarioEvent], on world: World, after previous: Node?) -> Node {
        var tracker = previous?.tracker ?? InvariantTracker()
        var violations = previous?.violations ?? []
        var skipped = previous?.skippedSteps ?? []
        var tail = previous?.tail ?? []
        var step = previous?.steps ?? 0
        for event in script {
            let result = world.perform(event, step: step, trace: nil)
            violations += tracker.record(event, result, step: step, world: world)
            switch result {
            case .fired(let outcome): tail.append(outcome)
            case .done: tail = []
            case .skipped:
                tail = []
                skipped.insert(step)
            }
            step += 1
        }
        return Node(world: world, tracker: tracker, violations: violations, skippedSteps: skipped, steps: step, tail: tail)
    }
}
