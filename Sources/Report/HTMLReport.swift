import Bus
import Scenario

/// `doorbell report`: one self-contained HTML file (inline CSS and script, no network) with the
/// strategies × scenarios matrix; each cell opens (a `<details>` element, so it works without
/// script) the path of its first failing vector, or vector 0, as an SVG drawing through the
/// layers with the failing step marked, the explanation, and the trace of that MSI; then the
/// explorer's counterexamples when there are any. The script only records load errors into the
/// page (`#errors`) so a headless browser test can see them.
public enum HTMLReport {
    /// One strategy on one scenario, and the trace of the vector its cell shows.
    public struct Cell {
        public var run: StrategyRun
        public var trace: [TraceRecord]

        public init(run: StrategyRun, trace: [TraceRecord]) {
            self.run = run
            self.trace = trace
        }
    }

    /// The vector a cell shows: the first that failed, else the first fired.
    public static func shownOutcome(_ run: StrategyRun) -> VectorOutcome? {
        run.firstFailure ?? run.outcomes.first
    }

    public static func render(title: String, scenarios: [(ScenarioDescription, [Cell])], counterexamples: [String] = []) -> String {
        var out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        out += "<title>\(HTMLEscape.text(title))</title><style>\(style)</style></head><body>"
        out += "<h1>\(HTMLEscape.text(title))</h1>"
        out += "<p class=\"lead\">Each cell: vectors delivered / fired, and where the first failure stopped. Open a cell for the path of that vector through the layers, the explanation and its trace.</p>"
        out += "<div id=\"errors\" hidden></div>"
        out += "<table id=\"matrix\"><thead><tr><th>scenario</th>"
        for strategy in Strategy.allCases { out += "<th>\(HTMLEscape.text(strategy.rawValue))</th>" }
        out += "</tr></thead><tbody>"
        for (scenario, cells) in scenarios {
            out += "<tr><th class=\"scenario\" title=\"\(HTMLEscape.text(scenario.summary))\">\(HTMLEscape.text(scenario.name))</th>"
            for strategy in Strategy.allCases {
                guard let cell = cells.first(where: { $0.run.strategy == strategy }) else { out += "<td></td>"; continue }
                out += Self.cell(cell, scenario: scenario)
            }
            out += "</tr>"
        }
        out += "</tbody></table>"
        if !counterexamples.isEmpty {
            out += "<h2>Explorer counterexamples</h2><ul id=\"counterexamples\">"
            for c in counterexamples { out += "<li><pre>\(HTMLEscape.text(c))</pre></li>" }
            out += "</ul>"
        }
        out += "<script>\(script)</script></body></html>\n"
        return out
    }

    static func cell(_ cell: Cell, scenario: ScenarioDescription) -> String {
        let run = cell.run
        let ok = run.allDelivered
        let state = run.setupFailure != nil ? "setup" : ok ? "delivered" : "failed"
        var out = "<td id=\"cell-\(HTMLEscape.text(scenario.name))-\(run.strategy.rawValue)\" class=\"cell \(state)\" data-scenario=\"\(HTMLEscape.text(scenario.name))\" data-strategy=\"\(run.strategy.rawValue)\">"
        out += "<details><summary>\(HTMLEscape.text(ReportText.cell(run)))</summary><div class=\"detail\">"
        if let setup = run.setupFailure {
            out += "<p class=\"why\">Setup failed at \(HTMLEscape.text(setup.step.description)): \(HTMLEscape.text("\(setup.error)"))</p>"
        } else if let outcome = shownOutcome(run) {
            out += "<p>Device \(outcome.device), vector \(outcome.vector)\(outcome.delivered ? "" : " (first failure)")</p>"
            out += HTMLPathDiagram.svg(outcome)
        }
        if let why = run.explanation { out += "<p class=\"why\">\(HTMLEscape.text(why))</p>" }
        if !cell.trace.isEmpty {
            out += "<table class=\"trace\"><tr><th>#</th><th>layer</th><th>step</th><th>address</th><th>value</th><th>detail</th></tr>"
            for (i, r) in cell.trace.enumerated() {
                out += "<tr><td>\(i + 1)</td><td>\(HTMLEscape.text(r.layer.rawValue))</td><td>\(HTMLEscape.text(r.step))</td>"
                out += "<td>\(r.address.map { Hex.format($0) } ?? "")</td><td>\(r.value.map { Hex.format($0, minDigits: 16) } ?? "")</td>"
                out += "<td>\(HTMLEscape.text(r.detail))</td></tr>"
            }
            out += "</table>"
        }
        return out + "</div></details></td>"
    }

    static let style = """
    body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1b1b}
    h1{font-size:20px}table{border-collapse:collapse}
    #matrix th,#matrix td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
    td.delivered summary{color:#1b5e20}td.failed{background:#ffebee}td.failed summary{color:#c62828;font-weight:600}
    td.setup{background:#fff3e0}td.setup summary{color:#e65100;font-weight:600}
    summary{cursor:pointer;white-space:nowrap}.detail{max-width:1100px}.why{max-width:900px}
    svg.path .layer rect{stroke-width:2}svg.path .passed rect{fill:#e8f5e9;stroke:#2e7d32}
    svg.path .failed rect{fill:#c62828;stroke:#b71c1c}svg.path .failed text{fill:#fff}
    svg.path .skipped rect{fill:#fff;stroke:#9e9e9e;stroke-dasharray:4 3}svg.path .unreached rect{fill:#f5f5f5;stroke:#e0e0e0}
    svg.path .unreached text{fill:#9e9e9e}svg.path .name{font-weight:600;font-size:13px}svg.path .note{font-size:10px}
    svg.path .arrow{stroke:#616161;stroke-width:2}
    table.trace{font:12px ui-monospace,monospace;margin-top:8px}table.trace td,table.trace th{border:1px solid #eee;padding:2px 6px}
    """

    static let script = """
    (function(){var e=document.getElementById('errors');
    window.addEventListener('error',function(ev){e.hidden=false;e.textContent+=String(ev.message)+'\\n';});
    document.body.setAttribute('data-cells',String(document.querySelectorAll('td.cell').length));
    document.body.setAttribute('data-failed',String(document.querySelectorAll('td.cell.failed').length));
    if(location.hash){var c=document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if(c){var d=c.querySelector('details');if(d){d.open=true;}}}
    document.body.setAttribute('data-open',String(document.querySelectorAll('details[open]').length));
    document.body.setAttribute('data-ready','1');})();
    """
}
