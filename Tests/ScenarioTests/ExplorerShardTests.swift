import Testing
@testable import Scenario

/// Sharding: the partials of every shard of a split merge into exactly the whole run's result
/// (states, duplicates, baseline, the same minimal findings, the kinds run), for splits smaller
/// and larger than the work, and no merge has to run a state itself.
@Suite("explorer shards") struct ExplorerShardTests {
    static func shardsMerge(_ explorer: Explorer, _ strategy: Strategy, into count: Int) -> (Explorer.Result, Int, [Explorer.Partial]) {
        let partials = (1...count).map { k in explorer.explore(strategy, shard: Explorer.Split(index: k, count: count)!) }
        let (result, misses) = explorer.merge(strategy, partials: partials)
        return (result, misses, partials)
    }

    /// Depth 2 with random walks: findings that need shrinking (vfio-override), a strategy
    /// that never delivers (legacy: its baseline, no search), and one with only duplicates.
    @Test(arguments: [Strategy.vfioOverride, .legacy, .rmrIdentity], [1, 4])
    func mergeEqualsWholeRun(_ strategy: Strategy, _ count: Int) {
        let explorer = Explorer(scenario: BuiltInScenarios.seed, options: .init(depth: 2, walks: 4, steps: 5, seed: 7))
        let whole = explorer.explore(strategy)
        let (merged, misses, partials) = Self.shardsMerge(explorer, strategy, into: count)
        #expect(merged == whole)
        #expect(misses == 0, "the shards held every state and shrink the merge needed")
        if strategy == .vfioOverride { #expect(!whole.findings.isEmpty) }
        // Every split item is owned by exactly one shard: the states the shards recorded are
        // the whole run's states, each once (the walks aside, which may repeat a sequence).
        if count > 1, strategy == .rmrIdentity {
            let recorded = partials.reduce(0) { $0 + $1.states.count }
            #expect(recorded == whole.states)
        }
    }

    /// More shards than work items: most shards own nothing of the split part, the merge is
    /// still the whole run.
    @Test func moreShardsThanItems() {
        let explorer = Explorer(scenario: BuiltInScenarios.seed, options: .init(depth: 1))
        let count = explorer.alphabet.count + 9
        for strategy in [Strategy.vfioOverride, .swMSIWindow] {
            let whole = explorer.explore(strategy)
            let (merged, misses, partials) = Self.shardsMerge(explorer, strategy, into: count)
            #expect(merged == whole)
            #expect(misses == 0)
            #expect(partials.contains { $0.states.isEmpty && $0.shrinks.isEmpty })
        }
    }

    /// Depth 0: the root is the only shared state and the walks are the whole split.
    @Test func walksOnly() {
        let explorer = Explorer(scenario: BuiltInScenarios.seed, options: .init(depth: 0, walks: 6, steps: 3, seed: 3))
        let whole = explorer.explore(.vfioOverride)
        let (merged, misses, _) = Self.shardsMerge(explorer, .vfioOverride, into: 4)
        #expect(merged == whole)
        #expect(misses == 0)
    }

    /// A merge missing a shard's records still prints the whole run (it runs what is missing
    /// itself) and says how much that was.
    @Test func missingRecordsAreRun() {
        let explorer = Explorer(scenario: BuiltInScenarios.seed, options: .init(depth: 1))
        let whole = explorer.explore(.vfioOverride)
        var partials = (1...3).map { k in explorer.explore(.vfioOverride, shard: Explorer.Split(index: k, count: 3)!) }
        let dropped = partials[1].states.count + partials[1].shrinks.count
        partials[1] = Explorer.Partial(strategy: .vfioOverride)
        let (merged, misses) = explorer.merge(.vfioOverride, partials: partials)
        #expect(merged == whole)
        #expect(misses > 0 && misses <= dropped)
    }

    /// Shard numbers are 1…N.
    @Test func splitBounds() {
        #expect(Explorer.Split(index: 0, count: 4) == nil)
        #expect(Explorer.Split(index: 5, count: 4) == nil)
        #expect(Explorer.Split(index: 1, count: 0) == nil)
        #expect(Explorer.Split(index: 4, count: 4)?.description == "4/4")
        // Each item has exactly one owner.
        for offset in 0..<3 {
            for item in 0..<20 {
                let owners = (1...7).filter { Explorer.Split(index: $0, count: 7)!.owns(item: item, strategyOffset: offset) }
                #expect(owners.count == 1)
            }
        }
    }
}
