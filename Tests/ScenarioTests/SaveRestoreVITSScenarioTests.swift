import Testing
@testable import Scenario

/// The seed scenario's save-restore event under rmr-identity: the destination's vITS comes back
/// from the tables the source saved into guest RAM, and each vector's next MSI is taken as the
/// same vLPI on the same vCPU as before.
@Suite("seed save-restore: vITS through guest RAM")
struct SaveRestoreVITSScenarioTests {
    @Test("rmr-identity: every vector before and after the save-restore is delivered and handled as the same LPI on the same vCPU")
    func seedRMRIdentity() {
        var scenario = BuiltInScenarios.seed
        let vectors = 0..<4
        scenario.events = vectors.map { .fire(device: 0, vector: $0) } + [.saveRestore] + vectors.map { .fire(device: 0, vector: $0) }
        let run = ScenarioRunner.run(scenario, strategy: .rmrIdentity)
        #expect(run.outcomes.count == 8)
        #expect(run.outcomes.allSatisfy { $0.delivered }, "\(run.outcomes.map(\.verdict))")
        let before = run.outcomes.prefix(4).map { $0.handled.map { [$0.lpi, UInt32($0.cpu)] } }
        let after = run.outcomes.suffix(4).map { $0.handled.map { [$0.lpi, UInt32($0.cpu)] } }
        #expect(before == after)
        #expect(before.allSatisfy { $0.count == 1 && $0[0][0] >= 8192 })
    }
}
