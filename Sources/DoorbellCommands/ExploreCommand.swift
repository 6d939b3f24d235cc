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

    @Option(help: ArgumentHelp("A built-in scenario.", valueName: "name"))
    var scenario: String = BuiltInScenarios.seed.name

    @Option(help: ArgumentHelp("A strategy id, or all.", valueName: "id|all"))
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

    @Option(help: ArgumentHelp("Where replay scenario files are written.", valueName: "dir"))
    var out: String = "doorbell-explore"

    func validate() throws {
        guard (0...4).contains(depth) else { throw ValidationError("--depth must be 0…4 (each level multiplies the work by about 20)") }
        guard walks >= 0, steps >= 0, steps <= 64 else { throw ValidationError("--walks ≥ 0 and --steps 0…64") }
        guard strategy == "all" || Strategy(rawValue: strategy) != nil else {
            throw ValidationError("unknown strategy '\(strategy)': all, \(Strategy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        let (loaded, platformTopology) = try loadScenario(file: file, builtIn: file == nil ? scenario : nil)
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
        print(try ExploreReport.render(results, explorer: explorer, outDirectory: out), terminator: "")
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

/// The explorer's report: the survival table, then each finding with its replay command.
enum ExploreReport {
    static func render(_ results: [Explorer.Result], explorer: Explorer, outDirectory: String) throws -> String {
        let kinds = EventKind.allCases.filter { k in k != .fire && results.contains { $0.kindsRun.contains(k) } }
        var text = "Doorbell explore: \(explorer.scenario.name), depth \(explorer.options.depth)"
        if explorer.options.walks > 0 { text += ", \(explorer.options.walks) walks of \(explorer.options.steps) (seed \(explorer.options.seed))" }
        text += "\n\n"
        let header = ["strategy", "states"] + kinds.map(\.rawValue)
        var rows: [[String]] = []
        for r in results {
            var row = [r.strategy.rawValue, "\(r.states)"]
            if let setup = r.setupFailure {
                row += kinds.map { _ in "—" }
                row[1] = "setup: \(setup.step)"
            } else if let first = r.baseline.first(where: { $0.invariant == .delivery }) {
                row += kinds.map { _ in "—" }
                row[1] += " (never delivers: \(first.detail.split(separator: ":").dropFirst().first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""))"
            } else {
                for k in kinds {
                    let broken = r.findings.filter { $0.kind == k }.map(\.violation.invariant).sorted()
                    row.append(broken.isEmpty ? (r.kindsRun.contains(k) ? "survives" : "n/a") : "breaks: " + broken.map(\.rawValue).joined(separator: ","))
                }
            }
            rows.append(row)
        }
        text += transpose(header, rows)
        var files: [String] = []
        let findings = results.flatMap(\.findings)
        if !findings.isEmpty {
            text += "\nMinimal counterexamples:\n"
            try FileManager.default.createDirectory(atPath: outDirectory, withIntermediateDirectories: true)
            for (i, f) in findings.enumerated() {
                let name = "\(outDirectory)/\(f.strategy.rawValue)-\(f.violation.invariant.rawValue)-\(f.kind?.rawValue ?? "none")-\(i).yaml"
                try ScenarioFile.render(explorer.replayScenario(f)).write(toFile: name, atomically: true, encoding: .utf8)
                files.append(name)
                text += "  - \(f.strategy.rawValue): \(f.violation.invariant.rawValue) after [\(f.sequence.map(describe).joined(separator: ", "))]\n"
                text += "    \(f.violation.detail)\n"
                text += "    replay: doorbell run \(name)\n"
            }
        }
        let baselineOnly = results.filter { $0.findings.isEmpty && !$0.baseline.isEmpty }
        for r in baselineOnly {
            text += "\n\(r.strategy.rawValue) breaks \(Set(r.baseline.map(\.invariant)).sorted().map(\.rawValue).joined(separator: ", ")) before any event: \(r.baseline.first?.detail ?? "")\n"
        }
        let states = results.reduce(0) { $0 + $1.states }
        let duplicates = results.reduce(0) { $0 + $1.duplicates }
        text += "\n\(states) states run (\(duplicates) with a state seen before, not expanded).\n"
        return text
    }

    /// Event kinds down, strategies across: the table stays readable with many kinds.
    static func transpose(_ header: [String], _ rows: [[String]]) -> String {
        var t: [[String]] = []
        for (i, name) in header.enumerated() where i >= 1 { t.append([name] + rows.map { $0.indices.contains(i) ? $0[i] : "" }) }
        return ReportText.table(["event"] + rows.map { $0[0] }, t, markdown: false)
    }

    static func describe(_ e: ScenarioEvent) -> String {
        switch e {
        case .fire(let d, let v), .guestMask(let d, let v), .guestUnmask(let d, let v), .guestRewrite(let d, let v), .hostReactivate(let d, let v):
            "\(e.kind.rawValue)(\(d).\(v))"
        case .guestAffinity(let d, let v, let c), .hostAffinity(let d, let v, let c):
            "\(e.kind.rawValue)(\(d).\(v)→\(c))"
        case .guestDomain(let d, let domain):
            "\(e.kind.rawValue)(\(d), \(domain.rawValue))"
        case .forgedEventID(let d, let id):
            "\(e.kind.rawValue)(\(d), \(id))"
        case .guestMapOutsideRAM(let d, let ipa):
            "\(e.kind.rawValue)(\(d), \(Hex.format(ipa)))"
        default:
            e.device.map { "\(e.kind.rawValue)(\($0))" } ?? e.kind.rawValue
        }
    }
}
