import Foundation
import Report
import Scenario
import Testing

/// `doorbell explain`, and docs/glossary.md kept equal to the `Glossary` data it prints.
@Suite("doorbell explain and the glossary") struct ExplainTests {
    @Test("docs/glossary.md holds Glossary.markdownTable between its markers")
    func glossaryDocumentIsGenerated() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/glossary.md"), encoding: .utf8)
        let begin = try #require(text.range(of: "<!-- glossary:begin -->\n"))
        let end = try #require(text.range(of: "<!-- glossary:end -->"))
        #expect(String(text[begin.upperBound..<end.lowerBound]) == Glossary.markdownTable)
    }

    @Test("a row's names are each a topic, in any case; TLBI_* matches the TLBI commands")
    func glossaryLookups() throws {
        #expect(Glossary.entry("asid")?.term == "VMID, ASID")
        #expect(Glossary.entry("F_TRANSLATION")?.term == "C_BAD_STE, F_TRANSLATION …")
        #expect(Glossary.entry("TLBI_NH_VA")?.term == "CMD_SYNC, CFGI_STE, TLBI_*")
        #expect(Glossary.entry("doorbell") == nil)
    }

    @Test("with no topic, every strategy, invariant and term is listed")
    func listsTopics() throws {
        let run = try BinaryTests.run(["explain"])
        #expect(run.status == 0)
        for strategy in Strategy.allCases { #expect(run.stdout.contains(strategy.rawValue)) }
        for invariant in Invariant.allCases { #expect(run.stdout.contains(invariant.rawValue)) }
        #expect(run.stdout.contains("SW_MSI"))
    }

    @Test("a strategy prints its origin, upstream status, base release and layers from StrategyDefinition", arguments: Strategy.allCases)
    func strategy(_ strategy: Strategy) throws {
        let run = try BinaryTests.run(["explain", strategy.rawValue])
        #expect(run.status == 0)
        let d = strategy.definition
        #expect(run.stdout.contains("origin:        \(d.origin)\n"))
        #expect(run.stdout.contains("upstream:      \(d.upstream.rawValue)\n"))
        #expect(run.stdout.contains("base release:  \(d.baseRelease.rawValue) "))
        for layer in d.changes { #expect(run.stdout.contains(layer.rawValue)) }
    }

    @Test("an invariant prints its statement; a term its glossary entry")
    func invariantAndTerm() throws {
        let invariant = try BinaryTests.run(["explain", "no-silent-loss"])
        #expect(invariant.stdout.hasPrefix("invariant no-silent-loss: \(Invariant.noSilentLoss.statement)"))
        let term = try BinaryTests.run(["explain", "SW_MSI"])
        #expect(term.status == 0)
        #expect(term.stdout.contains("0x0800_0000 + 1 MiB"))
    }

    @Test("an unknown topic is a usage error with a did-you-mean")
    func unknownTopic() throws {
        let run = try BinaryTests.run(["explain", "vits-drect"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("unknown topic 'vits-drect' (did you mean 'vits-direct'?"))
    }
}
