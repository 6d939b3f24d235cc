import Benchmark
import MallocInterposerSwift
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
/// - `Scenario.msi.direct.<strategy>`: the steady MSI on a GICv4.1 host (`seed-gicv4`), where
///   the physical ITS writes a vLPI into the vCPU's virtual pending table.
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

    // The world is built in `setup:` and kept across samples, so the measured region is only
    // the steady-state MSIs (before, it was built and freed inside the measured closure, so each
    // sample's first figure carried a whole world: 56–72 µs for a few-µs path). 1000 MSIs per
    // sample; `--scale` reports per MSI. Setup fires every vector once and checks it reached
    // the guest's handler, so the first measured MSI is not a first-touch.
    for strategy in [Strategy.rmrIdentity, .vitsDirect] {
        Benchmark("Scenario.msi.guest.\(strategy.rawValue)",
                  configuration: .init(scalingFactor: .kilo)) { (benchmark: Benchmark, world: World) in
            var step = 0
            for i in benchmark.scaledIterations {
                blackHole(world.perform(.fire(device: 0, vector: i & 3), step: step))
                step &+= 1
            }
        } setup: { () throws -> World in
            let world = try World.build(BuiltInScenarios.seed, strategy: strategy)
            for vector in 0..<4 {
                guard case .fired(let outcome) = world.perform(.fire(device: 0, vector: vector), step: vector),
                      !outcome.handled.isEmpty else { fatalError("seed world: vector \(vector) did not reach the guest's handler") }
            }
            return world
        }
    }

    // The same path without the scenario layer's observation (no journal, no outcome fold):
    // `PCIFunction.raise` (MSI-X entry → root complex → SMMU nested translation → bus → the
    // physical ITS → redistributor), the host kernel taking its LPI (VFIO's handler → eventfd →
    // KVM irqfd → vITS → vLPI pending), the guest taking it (its handler runs). The world is
    // built in `setup:`; 1000 MSIs per sample. What is left is what a steady stream of MSIs
    // costs the model. (The guest handler's record, an append to the world's delivery list,
    // stays in the loop; that list, like every per-MSI record, is a fixed ring, so the loop
    // allocates nothing.)
    //
    // `Scenario.msi.direct.*`, GICv4.1 direct injection (`seed-gicv4`): the same steady loop,
    // but each MSI is a vLPI the physical ITS writes into the resident vPE's virtual pending table, and the guest takes it
    // from there (the virtual CPU interface's VPT scan): no host interrupt, no eventfd, no
    // irqfd, no vITS. Setup checks that: the host takes nothing, the guest all four.
    for (name, scenario, direct) in [("steady", BuiltInScenarios.seed, false), ("direct", BuiltInScenarios.seedGICv4, true)] {
        for strategy in [Strategy.rmrIdentity, .vitsDirect] {
            Benchmark("Scenario.msi.\(name).\(strategy.rawValue)",
                      configuration: .init(scalingFactor: .kilo)) { (benchmark: Benchmark, world: World) in
                let function = world.functions[0]
                let host = world.host.irq, guest = world.guest.irq
                let hostCPUs = host.cpuCount, guestCPUs = guest.cpuCount
                for i in benchmark.scaledIterations {
                    blackHole(function.raise(vector: i & 3))
                    for cpu in 0..<hostCPUs { blackHole(host.handleInterrupts(cpu: cpu)) }
                    for cpu in 0..<guestCPUs { blackHole(guest.handleInterrupts(cpu: cpu)) }
                }
            } setup: { () throws -> World in
                let world = try World.build(scenario, strategy: strategy)
                for vector in 0..<4 { blackHole(world.perform(.fire(device: 0, vector: vector), step: vector)) }
                // Each raise must be taken by the guest (and, with direct injection, not by the
                // host): count handled interrupts over one lap.
                let function = world.functions[0]
                var hostTaken = 0, handled = 0
                for vector in 0..<4 {
                    blackHole(function.raise(vector: vector))
                    for cpu in 0..<world.host.irq.cpuCount { hostTaken += world.host.irq.handleInterrupts(cpu: cpu) }
                    for cpu in 0..<world.guest.irq.cpuCount { handled += world.guest.irq.handleInterrupts(cpu: cpu) }
                }
                guard handled == 4, !direct || hostTaken == 0 else {
                    fatalError("\(name) MSI rig: the host took \(hostTaken), the guest \(handled) of 4 MSIs")
                }
                // A steady MSI allocates nothing. The per-MSI records are rings that grow to
                // their capacity first (64 per eventfd, CPU interface and function, 1024 guest
                // deliveries), so warm up past that, then count mallocs over 64 more MSIs with the
                // harness's interposer (setup runs before the harness turns its counting on, and
                // each sample counts from its own start).
                func lap(_ count: Int) {
                    for i in 0..<count {
                        blackHole(function.raise(vector: i & 3))
                        for cpu in 0..<world.host.irq.cpuCount { blackHole(world.host.irq.handleInterrupts(cpu: cpu)) }
                        for cpu in 0..<world.guest.irq.cpuCount { blackHole(world.guest.irq.handleInterrupts(cpu: cpu)) }
                    }
                }
                lap(4096)
                MallocInterposerSwift.reset()
                MallocInterposerSwift.hook()
                lap(64)
                MallocInterposerSwift.unhook()
                let mallocs = MallocInterposerSwift.getStatistics().mallocCount
                MallocInterposerSwift.reset()
                guard mallocs == 0 else {
                    fatalError("\(name) MSI rig: 64 steady MSIs made \(mallocs) mallocs (expected 0); "
                               + "run the benchmark executable with --allocation-stacks to see where")
                }
                return world
            }
        }
    }
}
