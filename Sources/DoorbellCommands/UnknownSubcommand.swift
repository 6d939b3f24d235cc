import ArgumentParser
import Report
import Scenario

extension Doorbell {
    /// `main()`, after one check swift-argument-parser cannot make: with a default subcommand,
    /// a mistyped subcommand (`doorbell tracee`) is taken as an argument of `strategies` and
    /// answered with that command's usage. `strategies` takes no positional argument, so a
    /// first word that starts with a letter and names no subcommand is a mistyped command:
    /// a usage error (exit 64) with the closest command name.
    public static func mainCheckingSubcommand(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
        if let message = unknownSubcommand(arguments) { exit(withError: ValidationError(message)) }
        ReportText.terminalColumns = TerminalWidth.columns()
        main(arguments)
        exit()
    }

    /// The sentence for a first word that is no subcommand, nil when it is one (or an option).
    static func unknownSubcommand(_ arguments: [String]) -> String? {
        guard let first = arguments.first, let initial = first.unicodeScalars.first,
              initial.properties.isAlphabetic else { return nil }
        let names = configuration.subcommands.map { $0._commandName } + ["help"]
        guard !names.contains(first) else { return nil }
        let suggestion = DidYouMean.suggestion(for: first, among: names)
        return "unknown command '\(first)'" + (suggestion.map { "; did you mean '\($0)'?" } ?? "")
            + " (commands: \(names.filter { $0 != "help" }.joined(separator: ", ")))"
    }
}
