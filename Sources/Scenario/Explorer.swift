import Firmware
import Bus

/// Runs event sequences against one strategy and finds the invariants they break: every
/// sequence up to a depth (breadth first, states with an already-seen hash not expanded), then
/// seeded random walks deeper. Each sequence is run on a freshly built world — the events are
/// executed, never assumed — with every vector fired after every event (the observation
/// step). Every violation is shrunk to a minimal sequence that still breaks the same invariant.
public struct Explorer: Sendable {
    public struct Options: Hashable, Sendable {
        /// Exhaustive depth (events per sequence).
        public var depth: Int
        /// Random walks: how many, and how many events each (0: none).
        public var walks: Int
        public var steps: Int
        public var seed: UInt64

        public init(depth: Int = 2, walks: Int = 0, steps: Int = 8, seed: UInt64 = 1) {
            self.depth = depth
            self.walks = walks
            self.steps = steps
            self.seed = seed
        }
    }

    /// A violation with the minimal event sequence that shows it.
    public struct Finding: Hashable, Sendable {
        public var strategy: Strategy
        public var sequence: [ScenarioEvent]
        public var violation: Violation
        /// The event kind charged with it: the last event of the minimal sequence (nil: the
        /// strategy breaks the invariant with no event at all).
        public var kind: EventKind? { sequence.last?.kind }
    }

    public struct Result: Hashable, Sendable {
        public var strategy: Strategy
        /// Worlds built and run (states visited), and how many had a hash seen before.
        public var states: Int
        public var duplicates: Int
        public var setupFailure: World.SetupFailure?
        /// Violations before any event (the strategy does not deliver in this scenario).
        public var baseline: [Violation]
        /// One finding per (invariant, event kind), minimal.
        public var findings: [Finding]
        /// The event kinds that were run and acted on something at least once (a hot-plug of a
        /// device that is plugged is skipped, so it does not count).
        public var kindsRun: [EventKind]
        public var violated: Bool { setupFailure != nil || !baseline.isEmpty || !findings.isEmpty }
    }

    public let scenario: ScenarioDescription
    public let platformTopology: Topology?
    public let options: Options
    /// How each state is reached: forking the world of the state one event shorter (the
    /// default), or rebuilding and replaying (the oracle). Both give the same result.
    public var statePath: StatePath = .fork

    public init(scenario: ScenarioDescription, platformTopology: Topology? = nil, options: Options = Options()) {
        self.scenario = scenario
        self.platformTopology = platformTopology
        self.options = options
    }

    /// The events the explorer draws from: for each device, its vector 0 and every event kind
    /// that applies to the scenario's shape.
    public var alphabet: [ScenarioEvent] {
        var events: [ScenarioEvent] = []
        let vcpus = max(scenario.vm.vcpus, 1)
        for (d, device) in scenario.devices.enumerated() {
            events += [.guestMask(device: d, vector: 0), .guestUnmask(device: d, vector: 0), .guestRewrite(device: d, vector: 0),
                       .guestAffinity(device: d, vector: 0, cpu: 1 % vcpus), .hostAffinity(device: d, vector: 0, cpu: 0),
                       .hostReactivate(device: d, vector: 0), .msixReenable(device: d)]
            if device.interrupts == .msix { events.append(.addVector(device: d)) }
            events += [.functionLevelReset(device: d), .suspendResume(device: d), .forgedEventID(device: d, eventID: UInt32(clamping: device.vectors))]
            if scenario.vm.viommu != .none {
                events += [.guestDomain(device: d, domain: .identity), .guestDomain(device: d, domain: .dma),
                           .guestDomain(device: d, domain: .detach), .guestMapOutsideRAM(device: d, ipa: 0x20_0000_0000),
                           .guestCorruptSTE(device: d)]
            }
            // Hot-plug needs the function behind a root port (QEMU refuses device_del on pcie.0).
            if scenario.vm.behindRootPorts { events += [.hotUnplug(device: d), .hotPlug(device: d)] }
        }
        events.append(.saveRestore)
        // GICv4.1 hosts: vCPU 0 blocks, runs again, and moves to host CPU 1.
        if scenario.hostHasGICv41 { events += [.vcpuNonResident(vcpu: 0), .vcpuResident(vcpu: 0), .vpeMigrate(vcpu: 0, cpu: 1)] }
        return events.filter { World.runs($0.kind) }
    }

    /// The observation step: every active vector of every device fired, in device order.
    public var observation: [ScenarioEvent] {
        var observe: [ScenarioEvent] = []
        for (d, device) in scenario.devices.enumerated() {
            for v in 0..<device.activeVectors { observe.append(.fire(device: d, vector: v)) }
        }
        return observe
    }

    /// The script of a sequence: every vector fired, then each event followed by every vector
    /// fired again.
    public func script(_ sequence: [ScenarioEvent]) -> [ScenarioEvent] {
        let observe = observation
        var script = observe
        for event in sequence { script += [event] + observe }
        return script
    }

    /// Runs one sequence: its violations and the hash of the state it ends in.
    func run(_ sequence: [ScenarioEvent], strategy: Strategy) -> (StrategyRun, UInt64) {
        var s = scenario
        s.events = script(sequence)
        var hash: UInt64 = 0
        let run = ScenarioRunner.run(s, strategy: strategy, platformTopology: platformTopology) { world, outcomes in
            hash = world.stateHash(lastOutcomes: outcomes)
        }
        return (run, hash)
    }

    /// Runs one sequence and keeps what the search reads from it.
    func facts(_ sequence: [ScenarioEvent], strategy: Strategy) -> StateFacts {
        let (run, hash) = self.run(sequence, strategy: strategy)
        return StateFacts(hash: hash, violations: run.violations, skippedSteps: run.skippedSteps.sorted(), setupFailure: run.setupFailure)
    }

    /// Violations charged to events (not present before any event).
    func eventViolations(_ facts: StateFacts, baselineSteps: Int) -> [Violation] {
        facts.violations.filter { $0.step >= baselineSteps }
    }

    /// Explores `strategy`; `progress` is called after every state with (states, duplicates).
    public func explore(_ strategy: Strategy, progress: (Int, Int) -> Void = { _, _ in }) -> Result {
        search(strategy, StateSource(explorer: self, strategy: strategy, split: nil, memo: nil), progress: progress)
    }

    /// The search every mode shares. Items are numbered in the order a whole run visits them:
    /// the root and every level above `depth` are shared (every shard runs them, so each knows
    /// exactly which states the deepest level expands and which findings exist by then); the
    /// deepest level's states and the random walks are split (only their owner runs them).
    func search(_ strategy: Strategy, _ source: StateSource, progress: (Int, Int) -> Void) -> Result {
        let baselineSteps = script([]).count
        var item = 0
        _ = source.begin(item: item, shared: true)
        let root = source.state([])
        item += 1
        var result = Result(strategy: strategy, states: 1, duplicates: 0, setupFailure: root.setupFailure,
                            baseline: root.violations, findings: [], kindsRun: [])
        if root.setupFailure != nil { return result }
        var seen: Set<UInt64> = [root.hash]
        var found: [String: Finding] = [:]
        var kinds: Set<EventKind> = []
        let alphabet = self.alphabet
        let depth = max(options.depth, 0)

        func noteEffective(_ sequence: [ScenarioEvent], _ facts: StateFacts) {
            let skipped = Set(facts.skippedSteps)
            for (step, event) in script(sequence).enumerated() where !skipped.contains(step) {
                if case .fire = event { continue }
                kinds.insert(event.kind)
            }
        }

        // What a shard knew when the shared part ended: a key with a finding of one event
        // there has it in the whole run too (a key's finding only ever gets shorter), so a
        // shard skips a shrink only when the whole run skips it.
        var sharedFound: [String: Finding]?

        func consider(_ sequence: [ScenarioEvent], _ facts: StateFacts) {
            for v in eventViolations(facts, baselineSteps: baselineSteps) {
                guard let event = v.event ?? sequence.last else { continue }
                let key = "\(v.invariant.rawValue)|\(event.kind.rawValue)"
                if let existing = (sharedFound ?? found)[key], existing.sequence.count <= 1 { continue }
                let minimal = source.shrink(sequence, invariant: v.invariant, baselineSteps: baselineSteps)
                let finding = Finding(strategy: strategy, sequence: minimal.sequence, violation: minimal.violation ?? v)
                let finalKey = "\(v.invariant.rawValue)|\(finding.kind?.rawValue ?? "-")"
                if let existing = found[finalKey], existing.sequence.count <= finding.sequence.count { continue }
                found[finalKey] = finding
            }
        }

        var frontier: [[ScenarioEvent]] = [[]]
        for level in 0..<depth {
            let shared = level + 1 < depth
            if !shared, source.split != nil { sharedFound = found }
            var next: [[ScenarioEvent]] = []
            for prefix in frontier {
                for event in alphabet {
                    defer { item += 1 }
                    guard source.begin(item: item, shared: shared) else { continue }
                    let sequence = prefix + [event]
                    let facts = source.state(sequence, extended: shared)
                    result.states += 1
                    noteEffective(sequence, facts)
                    consider(sequence, facts)
                    if seen.contains(facts.hash) {
                        result.duplicates += 1
                    } else {
                        seen.insert(facts.hash)
                        next.append(sequence)
                    }
                    progress(result.states, result.duplicates)
                }
            }
            frontier = next
            source.keep(next)
        }
        source.keep([])
        if source.split != nil, sharedFound == nil { sharedFound = found }
        if options.walks > 0, options.steps > 0, !alphabet.isEmpty {
            for walk in 0..<options.walks {
                defer { item += 1 }
                guard source.begin(item: item, shared: false) else { continue }
                var rng = SeededGenerator(seed: options.seed &+ UInt64(walk) &* 0x9E37_79B9)
                var sequence: [ScenarioEvent] = []
                for _ in 0..<options.steps {
                    sequence.append(alphabet[Int(rng.next() % UInt64(alphabet.count))])
                }
                let facts = source.state(sequence)
                result.states += 1
                noteEffective(sequence, facts)
                consider(sequence, facts)
                progress(result.states, result.duplicates)
            }
        }
        result.findings = found.keys.sorted().compactMap { found[$0] }
        result.kindsRun = EventKind.allCases.filter { kinds.contains($0) }
        return result
    }

    /// Greedy shrinking: drop events one at a time while the same invariant is still broken.
    func shrink(_ sequence: [ScenarioEvent], strategy: Strategy, invariant: Invariant,
                baselineSteps: Int) -> (sequence: [ScenarioEvent], violation: Violation?) {
        shrink(sequence, invariant: invariant, baselineSteps: baselineSteps) { self.facts($0, strategy: strategy) }
    }

    /// The shrink with the facts of each candidate from `facts` (rebuilt, or forked from the
    /// root world).
    func shrink(_ sequence: [ScenarioEvent], invariant: Invariant, baselineSteps: Int,
                facts: ([ScenarioEvent]) -> StateFacts) -> (sequence: [ScenarioEvent], violation: Violation?) {
        var current = sequence
        var violation: Violation?
        var index = 0
        while index < current.count, current.count > 1 {
            var candidate = current
            candidate.remove(at: index)
            let facts = facts(candidate)
            if let v = eventViolations(facts, baselineSteps: baselineSteps).first(where: { $0.invariant == invariant }) {
                current = candidate
                violation = v
            } else {
                index += 1
            }
        }
        if violation == nil {
            let facts = facts(current)
            violation = eventViolations(facts, baselineSteps: baselineSteps).first { $0.invariant == invariant }
        }
        return (current, violation)
    }

    /// The scenario file that replays a finding with `doorbell run` (its expectation, that every
    /// invariant holds, fails: exit 1 with the violation printed).
    public func replayScenario(_ finding: Finding) -> ScenarioDescription {
        var s = scenario
        s.name = "\(scenario.name)-\(finding.strategy.rawValue)-\(finding.violation.invariant.rawValue)"
        s.summary = "explorer finding: \(finding.violation.invariant.rawValue) after \(finding.sequence.map(\.kind.rawValue).joined(separator: ", "))"
        s.strategies = [finding.strategy]
        s.events = script(finding.sequence)
        s.expectations = [Expectation(strategy: finding.strategy, invariantsHold: true)]
        return s
    }
}
