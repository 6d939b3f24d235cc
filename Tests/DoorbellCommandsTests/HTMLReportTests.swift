import Foundation
import Report
import Scenario
import Testing

/// The HTML report as a document: self-contained, every cell present, failures marked and
/// drawn at the layer that failed, user text escaped. (Scripts/test-html-report.sh opens it in
/// a real browser.)
@Suite("HTML report")
struct HTMLReportTests {
    static func seedHTML(name: String = "seed") -> (String, [StrategyRun]) {
        var seed = BuiltInScenarios.seed
        seed.name = name
        let runs = ScenarioRunner.runAll(seed)
        return (HTMLReport.render(title: "t", scenarios: [(seed, runs.map { HTMLReport.Cell(run: $0, trace: []) })]), runs)
    }

    @Test("one cell per strategy; the failing one marked and its path drawn failing at SMMU stage 1, the rest passing to the guest")
    func seed() {
        let (html, runs) = Self.seedHTML()
        #expect(html.components(separatedBy: "<td id=\"cell-seed-").count - 1 == Strategy.allCases.count)
        for run in runs {
            let cellStart = html.range(of: "id=\"cell-seed-\(run.strategy.rawValue)\" class=\"cell \(run.allDelivered ? "delivered" : "failed")\"")
            #expect(cellStart != nil, "\(run.strategy)")
        }
        let legacy = html.components(separatedBy: "id=\"cell-seed-legacy\"")[1].components(separatedBy: "</td>")[0]
        #expect(legacy.contains("<g class=\"layer failed\" data-layer=\"SMMU S1\">"))
        #expect(legacy.contains("<g class=\"layer unreached\" data-layer=\"guest\">"))
        let relay = html.components(separatedBy: "id=\"cell-seed-irqchip-relay\"")[1].components(separatedBy: "</td>")[0]
        #expect(relay.contains("<g class=\"layer passed\" data-layer=\"guest\">"))
        #expect(!relay.contains("layer failed"))
    }

    @Test("self-contained: nothing fetched (no src, href or external URL but the SVG namespace)")
    func selfContained() {
        let (html, _) = Self.seedHTML()
        #expect(!html.contains("src=") && !html.contains("href=") && !html.contains("<link"))
        #expect(html.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").range(of: "http") == nil)
    }

    @Test("a hostile scenario name is escaped: no tag opened, no control character")
    func escaping() {
        let (html, _) = Self.seedHTML(name: "<img onerror=x>\u{1B}[2J")
        #expect(!html.contains("<img"))
        #expect(html.contains("&lt;img onerror=x&gt;\\u{1b}[2J"))
        #expect(!html.unicodeScalars.contains { $0.value == 0x1B })
    }
}
