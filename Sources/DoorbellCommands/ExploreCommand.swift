import Firmware
import ArgumentParser
import Bus
import Foundation
import Machine
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

        A deep run can be split over machines: `--shard K/N` (K from 1 to N, as GNU parallel's \
        {#} or a Slurm array --array=1-N counts) runs the K-th of N shares and prints a partial \
        result as JSON; `--merge` with every shard's file (and the same scenario and options) \
        prints the output of one whole run, byte for byte, in either --format. A shard exits 0 \
        when it wrote its part; the merge exits as explore does.
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

    @Option(help: ArgumentHelp("Run only shard K of N (K is 1…N; a 0-based index I is shard I+1) and print its partial result as JSON (whatever --format says), for --merge.", valueName: "K/N"))
    var shard: String?

    @Option(parsing: .upToNextOption,
            help: ArgumentHelp("Merge every shard's partial result (the files --shard wrote, with the scenario and options they were run with) into the output of one whole run.", valueName: "shard.json"))
    var merge: [String] = []

    /// How each state is reached: `fork` (the world of the state one event shorter, forked) or
    /// `rebuild` (`World.build` + replay of the whole script, the oracle the forked path is
    /// tested against). Hidden: both print the same, only the time differs.
    @Option(name: .customLong("state-path"), help: .hidden)
    var statePath: Explorer.StatePath = .fork

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
        if let shard {
            _ = try Self.split(shard)
            guard merge.isEmpty else { throw ValidationError("--shard runs one share and --merge combines them: give one of the two") }
            guard out == nil else { throw ValidationError("--out belongs to --merge: the replay files are written once, from the merged result") }
        }
    }

    /// `K/N` as a split, or a usage error that says what was wrong.
    static func split(_ argument: String) throws -> Explorer.Split {
        let parts = argument.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]) else {
            throw ValidationError("--shard \(argument): give K/N, this shard's number K (1…N) and the number of shards N, e.g. --shard 2/8")
        }
        guard n >= 1, n <= Explorer.Split.maximumCount else {
            throw ValidationError("--shard \(argument): the number of shards N must be 1…\(Explorer.Split.maximumCount)")
        }
        guard k != 0 else {
            throw ValidationError("--shard 0/\(n): shards are numbered from 1 (1/\(n) … \(n)/\(n)), as GNU parallel's {#} and a Slurm array --array=1-\(n) count; from a 0-based index (Kubernetes' JOB_COMPLETION_INDEX, --array=0-\(n - 1)) give $((INDEX + 1))/\(n)")
        }
        guard let split = Explorer.Split(index: k, count: n) else {
            throw ValidationError("--shard \(argument): K must be 1…\(n)")
        }
        return split
    }

    func run() throws {
        let (loaded, platformTopology) = try loadScenario(file: file, builtIn: file == nil ? scenario : nil)
        // Before the run, not after it: an unwritable --out must not cost the results.
        let createdOut = try out.map(OutputDirectory.checkWritable) ?? false
        let description = kernel.apply(to: loaded)
        let strategies = strategy == "all" ? description.strategiesToRun : [Strategy(rawValue: strategy) ?? .legacy]
        var configured = Explorer(scenario: description, platformTopology: platformTopology,
                                  options: .init(depth: depth, walks: walks, steps: steps, seed: seed))
        configured.statePath = statePath
        let explorer = configured
        let clock = ContinuousClock()
        let start = clock.now
        let progress = Progress()
        let report: @Sendable (Int, Int) -> Void = { _, _ in
            let (states, show) = progress.step(after: clock.now - start)
            // Progress on stderr only, once the run has taken a second (wall time decides
            // only whether to show it, never what is printed on stdout).
            if show { FileHandle.standardError.write("\r  \(states) states explored\u{1B}[K".data(using: .utf8) ?? Data()) }
        }
        let run = ExploreShardFile.Run(doorbell: DoorbellVersion.string, scenario: description.name, strategies: strategies.map(\.rawValue),
                                       kernel: kernel.release?.rawValue, depth: depth, walks: walks, steps: steps, seed: seed)
        let fingerprint = ExploreShardFile.fingerprint(run, scenario: description, platform: Self.platformText(platformTopology))
        if let shard {
            let split = try Self.split(shard)
            // Strategies are independent: explored on every core, written in canonical order.
            let partials = Parallel.map(strategies) { s in explorer.explore(s, shard: split, progress: report) }
            Self.clearProgress(after: clock.now - start)
            print(ExploreShardFile.render(partials, explorer: explorer, split: split, run: run, fingerprint: fingerprint), terminator: "")
            return
        }
        let results: [Explorer.Result]
        if !merge.isEmpty {
            var shards: [ExploreShardFile.Shard] = []
            for path in merge { shards.append(try ExploreShardFile.read(path: path, explorer: explorer)) }
            let partials = try ExploreShardFile.combine(shards, run: run, fingerprint: fingerprint)
            let merged = Parallel.map(strategies) { s in explorer.merge(s, partials: partials, progress: report) }
            let misses = merged.reduce(0) { $0 + $1.misses }
            if misses > 0 {
                FileHandle.standardError.write("doorbell explore --merge: the shards did not hold \(misses) of the states and shrinks; they were run here\n".data(using: .utf8) ?? Data())
            }
            results = merged.map(\.result)
        } else {
            // Strategies are independent: explored on every core, reported in canonical order.
            results = Parallel.map(strategies) { s in explorer.explore(s, progress: report) }
        }
        Self.clearProgress(after: clock.now - start)
        let output: String
        do {
            switch format {
            case .text: output = try ExploreReport.render(results, explorer: explorer, outDirectory: out)
            case .json: output = try ExploreReport.json(results, explorer: explorer, outDirectory: out)
            }
        } catch {
            throw CommandFailure("--out \(out ?? ""): the replay files could not be written (\(OutputDirectory.describe(error)))")
        }
        if createdOut, let out { OutputDirectory.removeIfEmpty(out) }
        print(output, terminator: "")
        if results.contains(where: \.violated) { throw ExitCode(1) }
    }

    static func clearProgress(after elapsed: Duration) {
        if elapsed > .seconds(1), isatty(STDERR_FILENO) != 0 {
            FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8) ?? Data())
        }
    }

    /// The platform file's description, for the run's fingerprint (empty for a preset: the
    /// scenario names it).
    static func platformText(_ topology: Topology?) -> String {
        guard let topology else { return "" }
        do { return TopologyReport.text(try Machine(topology: topology), bridge: nil) } catch { return "\(error)" }
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

extension Explorer.StatePath: ExpressibleByArgument {}
