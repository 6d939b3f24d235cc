/// Sharding: one exploration spread over N processes (machines, batch jobs) whose partial
/// results merge into exactly the result of one run.
///
/// Why it is exact: the search is sequential only through its duplicate-state pruning (which
/// states a level expands depends on every hash seen before) and through which violations it
/// shrinks (a key that already has a one-event finding is not shrunk again). Both are settled
/// by the shared part — the root and every level above the deepest — which every shard runs in
/// full. The deepest level's states (never expanded) and the random walks (never pruned) are
/// split between the shards; each records the facts of the states it owns (hash, violations,
/// skipped steps) and the shrinks it made. A shard shrinks every violation the whole run could
/// shrink: it skips only keys whose one-event finding existed when the shared part ended,
/// which the whole run has too. The merge then runs the same search with those facts in place
/// of worlds: the same order, the same pruning, the same findings, byte for byte. A fact the
/// shards did not hold (none, unless a file was edited) is computed by the merge itself.
extension Explorer {
    /// What the search reads from one run of a sequence.
    public struct StateFacts: Hashable, Sendable {
        public var hash: UInt64
        public var violations: [Violation]
        /// Script steps whose event had nothing to act on, ascending.
        public var skippedSteps: [Int]
        public var setupFailure: World.SetupFailure?

        public init(hash: UInt64, violations: [Violation], skippedSteps: [Int], setupFailure: World.SetupFailure?) {
            self.hash = hash
            self.violations = violations
            self.skippedSteps = skippedSteps
            self.setupFailure = setupFailure
        }
    }

    /// One state a shard ran.
    public struct StateRecord: Hashable, Sendable {
        public var sequence: [ScenarioEvent]
        public var facts: StateFacts

        public init(sequence: [ScenarioEvent], facts: StateFacts) {
            self.sequence = sequence
            self.facts = facts
        }
    }

    /// One shrink a shard made: the sequence and invariant it started from, and the minimal
    /// sequence with the violation it still shows (nil when the sequence itself no longer
    /// shows it).
    public struct ShrinkRecord: Hashable, Sendable {
        public var sequence: [ScenarioEvent]
        public var invariant: Invariant
        public var minimal: [ScenarioEvent]
        public var violation: Violation?

        public init(sequence: [ScenarioEvent], invariant: Invariant, minimal: [ScenarioEvent], violation: Violation?) {
            self.sequence = sequence
            self.invariant = invariant
            self.minimal = minimal
            self.violation = violation
        }
    }

    /// One shard's share of one strategy: the states it owns and the shrinks it made for them.
    public struct Partial: Hashable, Sendable {
        public var strategy: Strategy
        public var states: [StateRecord]
        public var shrinks: [ShrinkRecord]

        public init(strategy: Strategy, states: [StateRecord] = [], shrinks: [ShrinkRecord] = []) {
            self.strategy = strategy
            self.states = states
            self.shrinks = shrinks
        }
    }

    /// Shard `index` of `count`, numbered from 1 (`2/8` is the second of eight), as Jest's and
    /// Playwright's `--shard` and GNU parallel's job number `{#}` count.
    public struct Split: Hashable, Sendable, CustomStringConvertible {
        public let index: Int
        public let count: Int

        /// The most shards a run is split into.
        public static let maximumCount = 100_000

        /// Nil unless 1 ≤ index ≤ count ≤ `maximumCount`.
        public init?(index: Int, count: Int) {
            guard count >= 1, count <= Self.maximumCount, index >= 1, index <= count else { return nil }
            self.index = index
            self.count = count
        }

        public var description: String { "\(index)/\(count)" }

        /// Whether this shard owns work item `item` of the strategy at `strategyOffset`: items
        /// are dealt round-robin, each strategy starting one shard further, so neighbouring
        /// items (alike in cost) spread and small searches do not all land on shard 1.
        func owns(item: Int, strategyOffset: Int) -> Bool {
            (item % count + strategyOffset % count) % count == index - 1
        }
    }

    /// Runs this shard's share of `strategy`: the shared part in full, the split part's owned
    /// items; returns what it recorded.
    public func explore(_ strategy: Strategy, shard: Split, progress: (Int, Int) -> Void = { _, _ in }) -> Partial {
        let source = StateSource(explorer: self, strategy: strategy, split: shard, memo: nil)
        _ = search(strategy, source, progress: progress)
        return source.recorded
    }

    /// The whole run's result of `strategy` from every shard's partial of it. `misses` counts
    /// the states and shrinks no partial held, which the merge ran itself (0 for the partials of
    /// a complete set of shards).
    public func merge(_ strategy: Strategy, partials: [Partial], progress: (Int, Int) -> Void = { _, _ in })
        -> (result: Result, misses: Int) {
        var memo = Memo()
        for partial in partials where partial.strategy == strategy {
            for record in partial.states { memo.states[record.sequence] = record.facts }
            for record in partial.shrinks {
                memo.shrinks[ShrinkKey(sequence: record.sequence, invariant: record.invariant)] = (record.minimal, record.violation)
            }
        }
        let source = StateSource(explorer: self, strategy: strategy, split: nil, memo: memo)
        let result = search(strategy, source, progress: progress)
        return (result, source.misses)
    }

    struct ShrinkKey: Hashable {
        var sequence: [ScenarioEvent]
        var invariant: Invariant
    }

    struct Memo {
        var states: [[ScenarioEvent]: StateFacts] = [:]
        var shrinks: [ShrinkKey: ([ScenarioEvent], Violation?)] = [:]
    }

    /// Where the search's states come from: run here (a whole run, a shard), or the shards'
    /// records (a merge); a shard also decides which items it runs and records them.
    final class StateSource {
        let explorer: Explorer
        let strategy: Strategy
        let split: Split?
        let memo: Memo?
        let strategyOffset: Int
        private(set) var recorded: Partial
        private(set) var misses = 0
        /// Whether the item being processed is this shard's to record.
        private var owned = true

        init(explorer: Explorer, strategy: Strategy, split: Split?, memo: Memo?) {
            self.explorer = explorer
            self.strategy = strategy
            self.split = split
            self.memo = memo
            self.strategyOffset = Strategy.allCases.firstIndex(of: strategy) ?? 0
            self.recorded = Partial(strategy: strategy)
        }

        /// Starts item `item`; false when this process does not run it (a split item another
        /// shard owns).
        func begin(item: Int, shared: Bool) -> Bool {
            guard let split else { return true }
            owned = split.owns(item: item, strategyOffset: strategyOffset)
            return shared || owned
        }

        func state(_ sequence: [ScenarioEvent], extended: Bool = false) -> StateFacts {
            if let memo {
                if let facts = memo.states[sequence] { return facts }
                misses += 1
            }
            let facts = run(sequence, extended: extended)
            if split != nil, owned { recorded.states.append(StateRecord(sequence: sequence, facts: facts)) }
            return facts
        }

        /// The root's node (its world is only ever forked), once built.
        private var root: Node?
        private var rootFacts: StateFacts?
        /// The frontier's nodes the search will extend.
        private var nodes: [[ScenarioEvent]: Node] = [:]

        /// A state's facts along the explorer's `statePath`; with `extended`, its node is kept
        /// for the longer sequences of the next level (until `keep` drops it).
        func run(_ sequence: [ScenarioEvent], extended: Bool = false) -> StateFacts {
            guard explorer.statePath == .fork else { return explorer.facts(sequence, strategy: strategy) }
            if rootFacts == nil { (rootFacts, root) = explorer.rootNode(strategy: strategy) }
            guard let root, let rootFacts else { return explorer.facts(sequence, strategy: strategy) }
            if sequence.isEmpty { return rootFacts }
            // `World.build` refuses a script with guest-driver events for a guest VFIO user.
            var s = explorer.scenario
            s.events = explorer.script(sequence)
            if let mistake = World.checkGuestOwner(s) {
                return StateFacts(hash: 0, violations: [], skippedSteps: [], setupFailure: World.SetupFailure(step: "guest-owner", error: mistake))
            }
            let node: Node
            if let parent = nodes[Array(sequence.dropLast())], let last = sequence.last {
                node = explorer.advance(parent, by: [last])
            } else {
                node = explorer.advance(root, by: sequence)
            }
            if extended { nodes[sequence] = node }
            return node.facts
        }

        /// Keeps the nodes of `frontier` only (the next level's parents).
        func keep(_ frontier: [[ScenarioEvent]]) {
            let wanted = Set(frontier)
            nodes = nodes.filter { wanted.contains($0.key) }
        }

        func shrink(_ sequence: [ScenarioEvent], invariant: Invariant, baselineSteps: Int) -> (sequence: [ScenarioEvent], violation: Violation?) {
            if let memo {
                if let (minimal, violation) = memo.shrinks[ShrinkKey(sequence: sequence, invariant: invariant)] { return (minimal, violation) }
                misses += 1
            }
            let minimal = explorer.shrink(sequence, invariant: invariant, baselineSteps: baselineSteps) { self.run($0) }
            if split != nil, owned {
                recorded.shrinks.append(ShrinkRecord(sequence: sequence, invariant: invariant, minimal: minimal.sequence, violation: minimal.violation))
            }
            return minimal
        }
    }
}

extension Violation {
    /// A violation read back from a shard file, as the shard recorded it.
    public static func recorded(_ invariant: Invariant, step: Int, event: ScenarioEvent?, detail: String) -> Violation {
        Violation(invariant: invariant, step: step, event: event, detail: detail)
    }
}
