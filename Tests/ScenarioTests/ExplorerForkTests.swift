import Testing
@testable import Scenario

/// The explorer's forked path (each state a fork of the state one event shorter) against the
/// rebuilt path it replaced (`World.build` + replay of the whole script), which stays the
/// oracle: the same table of states and duplicates, the same findings with the same minimal
/// counterexamples, the same shard records.
@Suite("Explorer fork path")
struct ExplorerForkTests {
    static func explorer(_ scenario: ScenarioDescription, _ options: Explorer.Options, _ path: Explorer.StatePath) -> Explorer {
        var explorer = Explorer(scenario: scenario, options: options)
        explorer.statePath = path
        return explorer
    }

    @Test("depth 1 and random walks: forked and rebuilt give the same result, findings and shrunk counterexamples included")
    func sameResult() {
        let options = Explorer.Options(depth: 1, walks: 2, steps: 3, seed: 7)
        let forked = Self.explorer(BuiltInScenarios.seed, options, .fork).explore(.vfioOverride)
        let rebuilt = Self.explorer(BuiltInScenarios.seed, options, .rebuild).explore(.vfioOverride)
        #expect(forked == rebuilt)
        #expect(!forked.findings.isEmpty, "vfio-override breaks on the seed: the shrink ran on both paths")
        #expect(forked.states == 1 + Self.explorer(BuiltInScenarios.seed, options, .fork).alphabet.count + 2)
    }

    @Test("depth 2 (states forked from their level-1 parent), one shard of eight: the same records")
    func sameShardRecords() throws {
        let options = Explorer.Options(depth: 2)
        let shard = try #require(Explorer.Split(index: 3, count: 8))
        let forked = Self.explorer(BuiltInScenarios.seedGICv4, options, .fork).explore(.vfioOverride, shard: shard)
        let rebuilt = Self.explorer(BuiltInScenarios.seedGICv4, options, .rebuild).explore(.vfioOverride, shard: shard)
        #expect(forked == rebuilt)
        #expect(forked.states.contains { $0.sequence.count == 2 })
    }
}
