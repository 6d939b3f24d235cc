import Bus
import LinuxKernel
import Scenario

/// Text and Markdown tables of strategy runs.
public enum ReportText {
    /// Columns padded to their widest cell, two spaces apart; Markdown: a pipe table.
    /// Every cell goes through `SafeText.escape`, so a name cannot break the table.
    /// The terminal's width when the user's `COLUMNS` names one (the command line sets it at
    /// start-up, once). A table wider than that is printed stacked (`stacked`); nil (the
    /// default, and for pipes without `COLUMNS`) keeps the wide table, so output is the same
    /// bytes wherever it runs unless the user asks.
    nonisolated(unsafe) public static var terminalColumns: Int?

    /// A table too wide for `columns`: each row as its first cell on a line, then one
    /// `header: cell` line per other column, words wrapped to fit with a hanging indent.
    static func stacked(_ header: [String], _ rows: [[String]], columns: Int) -> String {
        let width = max(columns, 40)
        var out = ""
        for row in rows {
            out += "  " + (row.first ?? "") + "\n"
            for (i, cell) in row.enumerated().dropFirst() where i < header.count && !cell.isEmpty {
                out += wrap("\(header[i]): \(cell)", width: width, first: "    ", rest: "      ")
            }
        }
        return out
    }

    /// `text` broken at spaces so each line fits `width` (a word longer than a line stays whole).
    static func wrap(_ text: String, width: Int, first: String, rest: String) -> String {
        var out = ""
        var line = first
        var lineHasWord = false
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            if lineHasWord, line.count + 1 + word.count > width {
                out += line + "\n"
                line = rest
                lineHasWord = false
            }
            line += (lineHasWord ? " " : "") + word
            lineHasWord = true
        }
        return out + line + "\n"
    }

    public static func table(_ header: [String], _ rows: [[String]], markdown: Bool) -> String {
        let header = header.map { SafeText.escape($0) }
        let rows = rows.map { $0.map { SafeText.escape($0) } }
        if markdown {
            func line(_ cells: [String]) -> String {
                "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n"
            }
            return line(header) + line(header.map { _ in "---" }) + rows.map(line).joined()
        }
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        if let columns = terminalColumns, 2 + widths.reduce(0, +) + 2 * max(widths.count - 1, 0) > columns {
            return stacked(header, rows, columns: columns)
        }
        func line(_ cells: [String]) -> String {
            var text = "  "
            for (i, cell) in cells.enumerated() {
                text += cell
                if i < cells.count - 1 { text += String(repeating: " ", count: max(widths[i] - cell.count, 0) + 2) }
            }
            return text + "\n"
        }
        return line(header) + line(widths.map { String(repeating: "-", count: $0) }) + rows.map(line).joined()
    }

    /// The main job's table for one scenario: one row per strategy, vector 0's path through
    /// every layer, how many vectors arrived, and what the strategy had to change.
    public static func strategyTable(_ runs: [StrategyRun], markdown: Bool = false) -> String {
        let header = ["strategy", "guest MSI IOVA", "programmed", "stage 1", "stage 2", "ITS (DeviceID, EventID → LPI)", "delivered", "layers changed"]
        var rows: [[String]] = []
        for run in runs {
            let changes = run.strategy.changes.isEmpty ? "—" : run.strategy.changes.map(\.rawValue).joined(separator: ", ")
            guard run.setupFailure == nil, let first = run.outcomes.first else {
                rows.append([run.strategy.rawValue, "", "", "", "", "", "setup failed", changes])
                continue
            }
            rows.append([
                run.strategy.rawValue,
                first.guestAddress.map { Hex.format($0) } ?? "—",
                first.programmedAddress.map { Hex.format($0) } ?? "—",
                first.stage1.cell,
                first.stage2.cell,
                first.its?.cell ?? "—",
                "\(run.deliveredCount)/\(run.firedCount)" + (run.deliveredCount == run.firedCount ? "" : " ✗"),
                changes,
            ])
        }
        return table(header, rows, markdown: markdown)
    }

    /// The line under the strategy table saying which host kernel release each strategy ran
    /// on: "host kernel: v6.14 (legacy, irqchip-relay, vfio-override), v6.15 (…)", releases and
    /// strategies in their canonical orders.
    public static func hostKernels(_ scenario: ScenarioDescription, _ runs: [StrategyRun]) -> String {
        let strategies = runs.map(\.strategy)
        let groups = KernelConfiguration.Version.allCases.compactMap { release -> String? in
            let names = strategies.filter { $0.hostRelease(scenario.host) == release }.map(\.rawValue)
            return names.isEmpty ? nil : "\(release.rawValue) (\(names.joined(separator: ", ")))"
        }
        return "host kernel: " + groups.joined(separator: ", ")
    }

    /// Every fired vector of one run as the guest kernel set it up — the guest RID, the (v)ITS
    /// DeviceID it maps to, the MSI address and data it programmed, the LPI and the vCPU its
    /// ITS driver chose — then what the physical ITS saw (DeviceID, EventID → LPI) and the
    /// verdict.
    public static func vectorTable(_ run: StrategyRun, markdown: Bool = false) -> String {
        let header = ["device", "vector", "guest RID", "guest DeviceID", "address", "data", "LPI", "vCPU", "host ITS", "verdict"]
        var rows: [[String]] = []
        for o in run.outcomes {
            let verdict: String
            switch o.verdict {
            case .delivered: verdict = "delivered"
            case .pending: verdict = "pending"
            case .pendingInVPT: verdict = "pending (VPT)"
            case .failed(let point, _): verdict = point.rawValue
            }
            rows.append([
                "\(o.device)", "\(o.vector)",
                o.guestRequesterID.map { "\($0)" } ?? "—",
                o.guestDeviceID.map { Hex.format(UInt64($0), minDigits: 1) } ?? "—",
                o.guestAddress.map { Hex.format($0) } ?? "—",
                o.guestData.map { Hex.format(UInt64($0), minDigits: 1) } ?? "—",
                o.expected.map { "\($0.lpi)" } ?? "—",
                o.expected.map { "\($0.cpu)" } ?? "—",
                o.its?.cell ?? "—",
                verdict,
            ])
        }
        return table(header, rows, markdown: markdown)
    }

    /// The sentences under the table: one per failing strategy.
    public static func explanations(_ runs: [StrategyRun]) -> String {
        runs.compactMap(\.explanation).map { "  - " + $0 + "\n" }.joined()
    }

    /// `compare`: scenarios down, strategies across; each cell "delivered/fired" and, when
    /// something failed, where the first failure stopped.
    public static func matrix(_ results: [(ScenarioDescription, [StrategyRun])], markdown: Bool = false) -> String {
        let strategies = Strategy.allCases
        let header = ["scenario"] + strategies.map(\.rawValue)
        var rows: [[String]] = []
        for (scenario, runs) in results {
            var row = [scenario.name]
            for strategy in strategies {
                guard let run = runs.first(where: { $0.strategy == strategy }) else { row.append(""); continue }
                row.append(cell(run))
            }
            rows.append(row)
        }
        return table(header, rows, markdown: markdown) + causes(results, markdown: markdown) + directInjection(results, markdown: markdown)
    }

    /// Under the matrix, why each failing cell fails: one line per scenario and distinct
    /// sentence, the strategies that share it named together (the sentence is each run's
    /// `explanation` without its strategy prefix), in scenario then strategy order.
    static func causes(_ results: [(ScenarioDescription, [StrategyRun])], markdown: Bool) -> String {
        var lines: [String] = []
        for (scenario, runs) in results {
            var groups: [(sentence: String, strategies: [String])] = []
            for run in runs {
                guard let explanation = run.explanation, explanation.hasPrefix(run.strategy.rawValue) else { continue }
                var sentence = String(explanation.dropFirst(run.strategy.rawValue.count))
                if sentence.hasPrefix(": ") { sentence.removeFirst(2) } else if sentence.hasPrefix(" ") { sentence.removeFirst() }
                if let index = groups.firstIndex(where: { $0.sentence == sentence }) {
                    groups[index].strategies.append(run.strategy.rawValue)
                } else {
                    groups.append((sentence, [run.strategy.rawValue]))
                }
            }
            for group in groups {
                let separator = group.sentence.hasPrefix("(") ? " " : ": "
                lines.append("\(markdown ? "- " : "  - ")\(scenario.name) / \(group.strategies.joined(separator: ", "))\(separator)\(group.sentence)")
            }
        }
        guard !lines.isEmpty else { return "" }
        return "\nWhy the failing cells fail:\n" + (markdown ? "\n" : "") + lines.joined(separator: "\n") + "\n"
    }

    /// "4/4", "0/4 stage-1", "setup: VMM".
    public static func cell(_ run: StrategyRun) -> String {
        if let setup = run.setupFailure { return "setup: \(setup.step)" }
        var text = "\(run.deliveredCount)/\(run.firedCount)"
        if let point = run.firstFailure?.verdict.failurePoint { text += " \(point.rawValue)" }
        return text
    }
}
