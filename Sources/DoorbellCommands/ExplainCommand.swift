import ArgumentParser
import Report
import Scenario

/// `doorbell explain [TOPIC]`: what a strategy id, an invariant or a glossary term means.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain a strategy id, an invariant or a glossary term; with no topic, list the topics.",
        discussion: """
        A strategy prints where it comes from, how far upstream it got, the kernel release it is \
        based on and the layers it changes; an invariant prints what the explorer checks; a term \
        prints its glossary entry (docs/glossary.md is generated from the same data).
        """
    )

    @Argument(help: ArgumentHelp("A strategy id, an invariant or a glossary term.", valueName: "topic"))
    var topic: String?

    @Option(help: "Output format: text or json.")
    var format: TextFormat = .text

    func run() throws {
        if format == .json {
            guard let json = ExplainReport.json(for: topic) else {
                throw ValidationError(DidYouMean.unknown("topic", topic ?? "", among: ExplainReport.allTopics))
            }
            print(json, terminator: "")
            return
        }
        guard let topic else {
            print(ExplainReport.topics, terminator: "")
            return
        }
        guard let text = ExplainReport.text(for: topic) else {
            throw ValidationError(DidYouMean.unknown("topic", topic, among: ExplainReport.allTopics))
        }
        print(text, terminator: "")
    }
}
