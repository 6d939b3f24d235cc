import Testing
@testable import Scenario

/// The explorer, on the seed at depth 1: which events each strategy survives, found by running
/// them. Every "breaks" below is explained by the code path that wrote the wrong message.
@Suite("explorer") struct ExplorerTests {
    static let explorer = Explorer(scenario: BuiltInScenarios.seed, options: .init(depth: 1))

    static func kinds(_ result: Explorer.Result) -> [EventKind] {
        result.findings.compactMap(\.kind).sorted { $0.rawValue < $1.rawValue }
    }

    /// vfio-override loses its address whenever a path other than VFIO's refresh writes the
    /// message: host re-activation (`msi_domain_activate` recomposes), and every event that
    /// makes QEMU re-signal the vector — guest mask (`vfio_msix_vector_release` switches the
    /// trigger), guest rewrite and dynamic re-add — because `vfio_msi_set_vector_signal` does
    /// `free_irq` (which deactivates: `irq_shutdown_and_deactivate`) and, after its refresh
    /// with the override, `request_irq`, whose activation recomposes the irqchip's address.
    /// This is Jason Gunthorpe's objection, confirmed with one-event sequences. On
    /// vfio-override's base release, v6.14, the nested domain has no MSI cookie, so the
    /// recomposed address is the physical doorbell 0x0809_0040.
    @Test func vfioOverrideBreaks() {
        let result = Self.explorer.explore(.vfioOverride)
        #expect(result.baseline.isEmpty)
        #expect(Self.kinds(result) == [.addVector, .guestMask, .guestRewrite, .hostReactivate])
        for finding in result.findings {
            #expect(finding.sequence.count == 1, "minimal: \(finding.sequence)")
            #expect(finding.violation.invariant == .stability)
            #expect(finding.violation.detail.contains("programmed 0x0809_0040"))
        }
    }

    /// The strategies whose address lives where every recompose reads it (msi_desc, or the
    /// sw_msi window itself) survive every modelled event at depth 1.
    @Test(arguments: [Strategy.irqchipRelay, .rmrIdentity, .swMSIWindow, .vitsDirect])
    func survivors(_ strategy: Strategy) {
        let result = Self.explorer.explore(strategy)
        #expect(result.baseline.isEmpty)
        #expect(result.findings.isEmpty, "\(result.findings.map { "\($0.sequence) \($0.violation)" })")
        #expect(result.kindsRun.contains(.hostReactivate) && result.kindsRun.contains(.functionLevelReset))
    }

    /// Adversarial guest and device actions (forged EventIDs, a stage-1 mapping outside guest
    /// RAM, a corrupted STE) never break isolation or containment, under any strategy, and the
    /// writes they make are accounted for.
    @Test(arguments: Strategy.allCases)
    func adversariesAreContained(_ strategy: Strategy) {
        let result = Self.explorer.explore(strategy)
        #expect(result.kindsRun.contains(.forgedEventID) && result.kindsRun.contains(.guestMapOutsideRAM) && result.kindsRun.contains(.guestCorruptSTE))
        let breaches = (result.findings.map(\.violation) + result.baseline).filter { [.isolation, .containment, .noSilentLoss].contains($0.invariant) }
        #expect(breaches.isEmpty, "\(breaches)")
    }

    /// legacy never delivers on the seed, so it breaks delivery before any event.
    @Test func legacyBreaksAtBaseline() {
        let result = Self.explorer.explore(.legacy)
        #expect(result.baseline.contains { $0.invariant == .delivery })
        #expect(result.violated)
    }

    /// Same seed, same walks, same result; and the state hash does not depend on the process.
    @Test func deterministic() {
        let walker = Explorer(scenario: BuiltInScenarios.seed, options: .init(depth: 0, walks: 3, steps: 4, seed: 42))
        let a = walker.explore(.vfioOverride)
        let b = walker.explore(.vfioOverride)
        #expect(a == b)
        #expect(a.states == 4)
    }

    /// A finding's replay scenario reproduces it: run as a scenario, its expectation (every
    /// invariant holds) fails with the same invariant.
    @Test func replayReproduces() throws {
        let result = Self.explorer.explore(.vfioOverride)
        let finding = try #require(result.findings.first)
        let replay = Self.explorer.replayScenario(finding)
        let text = ScenarioFile.render(replay)
        let parsed = try ScenarioFile.parse(text)
        let runs = ScenarioRunner.runAll(parsed)
        #expect(runs.count == 1)
        let mismatches = ExpectationCheck.evaluate(parsed.expectations, runs)
        #expect(mismatches.count == 1)
        #expect(runs.first?.violations.contains { $0.invariant == finding.violation.invariant } == true)
    }

    /// Pruning: the guest's unmask of an unmasked vector changes nothing, so its state is a
    /// duplicate of the root's.
    @Test func duplicatesArePruned() {
        let result = Self.explorer.explore(.rmrIdentity)
        #expect(result.duplicates > 0)
        #expect(result.states == 1 + Self.explorer.alphabet.count)
    }

    /// An unplugged function and a driverless one deliver nothing alike, but only the first can
    /// be hot-plugged: their states must not hash alike, or pruning would hide hot-plug.
    @Test func unpluggedAndDriverlessDiffer() throws {
        let scenario = try #require(BuiltInScenarios.named("root-port"))
        func hash(after event: ScenarioEvent) throws -> UInt64 {
            let world = try World.build(scenario, strategy: .rmrIdentity)
            _ = world.perform(event, step: 0)
            var outcomes: [VectorOutcome] = []
            for v in 0..<4 {
                if case .fired(let o) = world.perform(.fire(device: 0, vector: v), step: 1 + v) { outcomes.append(o) }
            }
            return world.stateHash(lastOutcomes: outcomes)
        }
        #expect(try hash(after: .hotUnplug(device: 0)) != hash(after: .guestDomain(device: 0, domain: .detach)))
        #expect(try hash(after: .guestUnmask(device: 0, vector: 0)) == hash(after: .guestUnmask(device: 0, vector: 1)),
                "unmasking an unmasked vector changes nothing, whichever vector")
    }
}
