import Firmware
import ArgumentParser
import Bus
import Foundation
import Report
import Scenario

/// `doorbell explore`: which strategy survives which event.
struct ExploreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explore",
        abstract: "Run every event sequence up to a depth (and seeded random walks) and check the invariants after every step.",
        discussion: """
        For each strategy, every sequence of events up to --depth is run on a freshly built \
        world, with every vector fired after every event; states whose MSI-path hash was seen \
        before are not expanded. --walks random walks of --steps events (seeded by --seed) go \
        deeper. The invariants (delivery, isolation, containment, no silent loss, stability) are \
        checked after every step; each violation is shrunk to a minimal sequence and written as \
        a scenario file that `doorbell run` replays. With --strategy all, a table of strategy × \
        event kind says which events each strategy survives. Exit status 1 when an invariant was \
        violated, 0 when none was.
        """
    )

    @Argument(help: ArgumentHelp("A scenario file (default: the built-in --scenario).", valueName: "file"))
    var file: String?

    @Option(help: ArgumentHelp("A built-in scenario.", valueName: "name"), completion: CommandLineCompletions.scenario)
    var scenario: String = BuiltInScenarios.seed.name

    @Option(help: ArgumentHelp("A strategy id, or all.", valueName: "id|all"), completion: CommandLineCompletions.strategyOrAll)
    var strategy: String = "all"

    @Option(help: "Exhaustive depth: events per sequence.")
    var depth: Int = 2

    @Option(help: "Random walks after the exhaustive search.")
    var walks: Int = 0

    @Option(help: "Events per random walk.")
    var steps: Int = 8

    @Option(help: "Seed of the random walks.")
    var seed: UInt64 = 1

    @OptionGroup var kernel: KernelReleaseOption

    @Option(help: ArgumentHelp("Write each counterexample as a replay scenario file into this directory (none are written without it).", valueName: "dir"))
    var out: String?

    @Option(help: "Output format: text or json.")
    var format: TextFormat = .text

    func validate() throws {
        guard (0...4).contains(depth) else { throw ValidationError("--depth must be 0…4 (each level multiplies the work by about 20)") }
        guard walks >= 0, steps >= 0, steps <= 64 else { throw ValidationError("--walks ≥ 0 and --steps 0…64") }
        let (work, overflow) = walks.multipliedReportingOverflow(by: steps)
        guard !overflow, work <= InputLimits.maximumExploreSteps else {
            throw ValidationError("--walks \(walks) × --steps \(steps) is more than \(InputLimits.describe("explore step", InputLimits.maximumExploreSteps, unit: "random-walk events per strategy"))")
        }
        guard strategy == "all" || Strategy(rawValue: strategy) != nil else {
            throw ValidationError(DidYouMean.unknown("strategy", strategy, among: ["all"] + Strategy.allCases.map(\.rawValue)))
        }
    }

    func run() throws {
        let (loaded, platformTopology) = try loadScenario(file: file, builtIn: file == nil ? scenario : nil)
        // Before the run, not after it: an unwritable --out must not cost the results.
        let createdOut = try out.map(OutputDirectory.checkWritable) ?? false
        let description = kernel.apply(to: loaded)
        let strategies = strategy == "all" ? description.strategiesToRun : [Strategy(rawValue: strategy) ?? .legacy]
        let explorer = Explorer(scenario: description, platformTopology: platformTopology,
                                options: .init(depth: depth, walks: walks, steps: steps, seed: seed))
        let clock = ContinuousClock()
        let start = clock.now
        let progress = Progress()
        // Strategies are independent: explored on every core, reported in canonical order.
        let results = Parallel.map(strategies) { s in
            explorer.explore(s) { _, _ in
                let (states, show) = progress.step(after: clock.now - start)
                // Progress on stderr only, once the run has taken a second (wall time decides
                // only whether to show it, never what is printed on stdout).
                if show { FileHandle.standardError.write("\r  \(states) states explored\u{1B}[K".data(using: .utf8) ?? Data()) }
            }
        }
        if clock.now - start > .seconds(1), isatty(STDERR_FILENO) != 0 {
            FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8) ?? Data())
        }
        let report: String
        do {
            switch format {
            case .text: report = try ExploreReport.render(results, explorer: explorer, outDirectory: out)
            case .json: report = try ExploreReport.json(results, explorer: explorer, outDirectory: out)
            }
        } catch {
            throw CommandFailure("--out \(out ?? ""): the replay files could not be written (\(OutputDirectory.describe(error)))")
        }
        if createdOut, let out { OutputDirectory.removeIfEmpty(out) }
        print(report, terminator: "")
        if results.contains(where: \.violated) { throw ExitCode(1) }
    }
}

/// A states counter shared by the exploring threads.
final class Progress: @unchecked Sendable {
    private let lock = NSLock()
    private var states = 0

    func step(after elapsed: Duration) -> (Int, Bool) {
        lock.lock()
        defer { lock.unlock() }
        states += 1
        return (states, elapsed > .seconds(1) && isatty(STDERR_FILENO) != 0)
    }
}
