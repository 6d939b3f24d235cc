import Bus
import Foundation
import Scenario

/// The explorer's report: the survival table, then each finding with its replay command.
public enum ExploreReport {
    /// The survival table, then each finding with its replay command; the findings' replay
    /// scenarios are written to `outDirectory` — only when one is given: nothing is written
    /// into the current directory unasked.
    public static func render(_ results: [Explorer.Result], explorer: Explorer, outDirectory: String?) throws -> String {
        let kinds = EventKind.allCases.filter { k in k != .fire && results.contains { $0.kindsRun.contains(k) } }
        var text = "Doorbell explore: \(SafeText.escape(explorer.scenario.name)), depth \(explorer.options.depth)"
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
            text += "\nMinimal counterexamples"
            text += outDirectory == nil ? " (give --out DIR to write each as a scenario file `doorbell run` replays):\n" : ":\n"
            if let outDirectory { try FileManager.default.createDirectory(atPath: outDirectory, withIntermediateDirectories: true) }
            for (i, f) in findings.enumerated() {
                text += "  - \(f.strategy.rawValue): \(f.violation.invariant.rawValue) after [\(f.sequence.map(describe).joined(separator: ", "))]\n"
                text += "    \(f.violation.detail)\n"
                guard let outDirectory else { continue }
                let name = "\(outDirectory)/\(f.strategy.rawValue)-\(f.violation.invariant.rawValue)-\(f.kind?.rawValue ?? "none")-\(i).yaml"
                var replay = explorer.replayScenario(f)
                if case .deviceTree(let platform) = replay.platform {
                    replay.platform = .deviceTree(path: relativePath(to: platform, from: outDirectory))
                }
                try ScenarioFile.render(replay).write(toFile: name, atomically: true, encoding: .utf8)
                files.append(name)
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

    /// `path` (relative to the working directory, or absolute) as the replay file in
    /// `directory` must name it: `ScenarioFile.load` resolves a relative platform against the
    /// directory of the file that names it, so the replay reproduces from any working
    /// directory. Both are made absolute with symbolic links resolved; when they share no
    /// directory but the root, the absolute path is used.
    static func relativePath(to path: String, from directory: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath
        func absolute(_ p: String) -> [String] {
            let url = URL(fileURLWithPath: p, relativeTo: URL(fileURLWithPath: cwd, isDirectory: true))
            return url.standardizedFileURL.resolvingSymlinksInPath().pathComponents
        }
        let target = absolute(path), base = absolute(directory)
        var common = 0
        while common < min(target.count, base.count), target[common] == base[common] { common += 1 }
        guard common > 1 else { return "/" + target.dropFirst().joined(separator: "/") }
        let ups = Array(repeating: "..", count: base.count - common)
        return (ups + target[common...]).joined(separator: "/")
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
