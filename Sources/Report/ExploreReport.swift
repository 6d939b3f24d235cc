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
        let findings = results.flatMap(\.findings)
        let replays = try writeReplays(findings, explorer: explorer, outDirectory: outDirectory)
        if !findings.isEmpty {
            text += "\nMinimal counterexamples"
            text += outDirectory == nil ? " (give --out DIR to write each as a scenario file `doorbell run` replays):\n" : ":\n"
            for (f, replay) in zip(findings, replays) {
                text += "  - \(f.strategy.rawValue): \(f.violation.invariant.rawValue) after [\(f.sequence.map(describe).joined(separator: ", "))]\n"
                text += "    \(f.violation.detail)\n"
                if let replay { text += "    replay: doorbell run \(replay)\n" }
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

    /// Writes each finding's replay scenario into `outDirectory` (created when there is a
    /// finding) and returns the file names, in the findings' order; all nil without a directory.
    static func writeReplays(_ findings: [Explorer.Finding], explorer: Explorer, outDirectory: String?) throws -> [String?] {
        guard let outDirectory, !findings.isEmpty else { return findings.map { _ in nil } }
        try FileManager.default.createDirectory(atPath: outDirectory, withIntermediateDirectories: true)
        var names: [String?] = []
        for (i, f) in findings.enumerated() {
            let name = "\(outDirectory)/\(f.strategy.rawValue)-\(f.violation.invariant.rawValue)-\(f.kind?.rawValue ?? "none")-\(i).yaml"
            var replay = explorer.replayScenario(f)
            if case .deviceTree(let platform) = replay.platform {
                replay.platform = .deviceTree(path: relativePath(to: platform, from: outDirectory))
            }
            try ScenarioFile.render(replay).write(toFile: name, atomically: true, encoding: .utf8)
            names.append(name)
        }
        return names
    }

    /// `doorbell explore --format json`: the options, the survival table as one object per
    /// strategy (each event kind's result: survives, n/a, breaks with the invariants, or
    /// not-run when the strategy never got that far), the counterexamples with their replay
    /// files (`null` without --out), what broke before any event, and the state counts. The
    /// replay files are written exactly as for the text.
    public static func json(_ results: [Explorer.Result], explorer: Explorer, outDirectory: String?) throws -> String {
        let kinds = EventKind.allCases.filter { k in k != .fire && results.contains { $0.kindsRun.contains(k) } }
        let findings = results.flatMap(\.findings)
        let replays = try writeReplays(findings, explorer: explorer, outDirectory: outDirectory)
        let strategies: [JSONValue] = results.map { r in
            let neverDelivers = r.setupFailure == nil ? r.baseline.first(where: { $0.invariant == .delivery })?.detail : nil
            let events: [JSONValue] = kinds.map { k in
                let broken = r.findings.filter { $0.kind == k }.map(\.violation.invariant).sorted()
                let result: String
                if r.setupFailure != nil || neverDelivers != nil { result = "not-run" }
                else if !broken.isEmpty { result = "breaks" }
                else { result = r.kindsRun.contains(k) ? "survives" : "n/a" }
                return .object(["kind": .string(k.rawValue), "result": .string(result),
                                "broken": .array(Array(Set(broken)).sorted().map { .string($0.rawValue) })])
            }
            return .object([
                "strategy": .string(r.strategy.rawValue), "states": .number(r.states), "duplicates": .number(r.duplicates),
                "setup-failure": .string(r.setupFailure.map { "\($0.step)" }), "never-delivers": .string(neverDelivers),
                "events": .array(events),
                "baseline": .array(r.baseline.map(violation)),
            ])
        }
        let counterexamples: [JSONValue] = zip(findings, replays).map { f, replay in
            .object(["strategy": .string(f.strategy.rawValue), "invariant": .string(f.violation.invariant.rawValue),
                     "kind": .string(f.kind?.rawValue), "sequence": .array(f.sequence.map { .string(describe($0)) }),
                     "detail": .string(f.violation.detail), "replay": .string(replay)])
        }
        return JSONDocument.render(command: "explore", [
            "scenario": .string(explorer.scenario.name),
            "depth": .number(explorer.options.depth), "walks": .number(explorer.options.walks),
            "steps": .number(explorer.options.steps), "seed": .uint(explorer.options.seed),
            "event-kinds": .array(kinds.map { .string($0.rawValue) }),
            "strategies": .array(strategies),
            "counterexamples": .array(counterexamples),
            "states": .number(results.reduce(0) { $0 + $1.states }),
            "duplicates": .number(results.reduce(0) { $0 + $1.duplicates }),
            "violated": .bool(results.contains(where: \.violated)),
        ])
    }

    static func violation(_ v: Violation) -> JSONValue {
        .object(["invariant": .string(v.invariant.rawValue), "step": .number(v.step),
                 "event": .string(v.event.map(describe)), "detail": .string(v.detail)])
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
        case .vpeMigrate(let vcpu, let cpu):
            "\(e.kind.rawValue)(vCPU \(vcpu)→CPU \(cpu))"
        case .vcpuNonResident(let vcpu), .vcpuResident(let vcpu):
            "\(e.kind.rawValue)(vCPU \(vcpu))"
        default:
            e.device.map { "\(e.kind.rawValue)(\($0))" } ?? e.kind.rawValue
        }
    }
}
