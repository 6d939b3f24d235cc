import Scenario

/// `doorbell explain [TOPIC]`: a strategy id, an invariant or a glossary term, printed from the
/// data the model itself uses (`StrategyDefinition`, `Invariant.statement`, `Glossary`), so
/// the explanation cannot drift from what runs.
public enum ExplainReport {
    /// The topic list: every strategy id, invariant and glossary name.
    public static var topics: String {
        var text = "Topics for `doorbell explain TOPIC`:\n\n"
        text += "  strategies:  " + Strategy.allCases.map(\.rawValue).joined(separator: ", ") + "\n"
        text += "  invariants:  " + Invariant.allCases.map(\.rawValue).joined(separator: ", ") + "\n"
        text += "  glossary:    " + Glossary.allNames.joined(separator: ", ") + "\n"
        return text
    }

    /// Every name `text(for:)` accepts, strategies first: the did-you-mean candidates.
    public static var allTopics: [String] {
        Strategy.allCases.map(\.rawValue) + Invariant.allCases.map(\.rawValue) + Glossary.allNames
    }

    /// The explanation of `topic`, nil when no strategy, invariant or term has that name.
    public static func text(for topic: String) -> String? {
        if let strategy = Strategy(rawValue: topic.lowercased()) { return text(strategy) }
        if let invariant = Invariant(rawValue: topic.lowercased()) {
            return "invariant \(invariant.rawValue): \(invariant.statement)\n\n"
                + "The explorer checks it after every step (`doorbell explore`); docs/strategies.md, \"The five invariants\".\n"
        }
        if let entry = Glossary.entry(topic) {
            return "\(entry.term): \(entry.meaning).\n  in Doorbell: \(entry.modelled)\n"
        }
        return nil
    }

    static func text(_ strategy: Strategy) -> String {
        let d = strategy.definition
        var text = "strategy \(strategy.rawValue)\n"
        text += "  origin:        \(d.origin)\n"
        text += "  upstream:      \(d.upstream.rawValue)\n"
        text += "  base release:  \(d.baseRelease.rawValue) (the host kernel it runs on unless --kernel says otherwise)\n"
        text += "  changes:       " + (d.changes.isEmpty ? "nothing (the baseline)" : d.changes.map(\.rawValue).joined(separator: ", ")) + "\n"
        text += "  VMM MSI plan:  \(d.msiPlan.rawValue)\n"
        text += "\nSee it run: `doorbell strategies` (every strategy side by side), `doorbell trace --scenario seed --strategy \(strategy.rawValue)`.\n"
        return text
    }

    /// `doorbell explain --format json`: the topic list (no topic), or the topic's kind
    /// (strategy, invariant, term) and its fields from the same data as the text; nil when no
    /// strategy, invariant or term has that name.
    public static func json(for topic: String?) -> String? {
        guard let topic else {
            return JSONDocument.render(command: "explain", [
                "topic": .null, "kind": .string("topics"),
                "topics": .object([
                    "strategies": .array(Strategy.allCases.map { .string($0.rawValue) }),
                    "invariants": .array(Invariant.allCases.map { .string($0.rawValue) }),
                    "glossary": .array(Glossary.allNames.map { .string($0) }),
                ]),
            ])
        }
        if let strategy = Strategy(rawValue: topic.lowercased()) {
            let d = strategy.definition
            return JSONDocument.render(command: "explain", [
                "topic": .string(strategy.rawValue), "kind": .string("strategy"),
                "strategy": .object(["origin": .string(d.origin), "upstream": .string(d.upstream.rawValue),
                                     "base-release": .string(d.baseRelease.rawValue), "changes": .array(d.changes.map { .string($0.rawValue) }),
                                     "msi-plan": .string(d.msiPlan.rawValue)]),
            ])
        }
        if let invariant = Invariant(rawValue: topic.lowercased()) {
            return JSONDocument.render(command: "explain", [
                "topic": .string(invariant.rawValue), "kind": .string("invariant"),
                "invariant": .object(["statement": .string(invariant.statement)]),
            ])
        }
        if let entry = Glossary.entry(topic) {
            return JSONDocument.render(command: "explain", [
                "topic": .string(entry.term), "kind": .string("term"),
                "term": .object(["meaning": .string(entry.meaning), "in-doorbell": .string(entry.modelled)]),
            ])
        }
        return nil
    }
}
