import Benchmark
import Scenario

/// Strategies × scenarios, and one MSI from the device to the guest's handler.
///
/// - `Scenario.compare.all`: what `doorbell compare` computes (every strategy on every
///   built-in scenario: a whole world built, booted and fired per cell), without printing.
/// - `Scenario.world.seed`: one cell: the seed's world under `rmr-identity`, built and every
///   vector fired.
/// - `Scenario.msi.guest.<strategy>`: one vector fired on an already built world — device
///   write, SMMU, physical ITS, host IRQ, VFIO's eventfd, KVM's irqfd, the vITS, the guest's
///   acknowledge and handler.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(3))

    Benchmark("Scenario.compare.all", configuration: .init(maxIterations: 20)) { benchmark in
        for _ in benchmark.scaledIterations {
            for scenario in BuiltInScenarios.all {
                blackHole(ScenarioRunner.runAll(scenario))
            }
        }
    }

    Benchmark("Scenario.world.seed") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(ScenarioRunner.run(BuiltInScenarios.seed, strategy: .rmrIdentity))
        }
    }

    for strategy in [Strategy.rmrIdentity, .vitsDirect] {
        Benchmark("Scenario.msi.guest.\(strategy.rawValue)") { benchmark in
            guard let world = try? World.build(BuiltInScenarios.seed, strategy: strategy) else { return }
            benchmark.startMeasurement()
            for i in benchmark.scaledIterations {
                blackHole(world.perform(.fire(device: 0, vector: i & 3), step: i))
            }
        }
    }
}
