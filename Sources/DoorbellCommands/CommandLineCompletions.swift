import ArgumentParser
import Foundation
import Machine
import Scenario

/// What the shell completion scripts (`doorbell --generate-completion-script bash|zsh|fish`)
/// offer for the options that take names: built-in scenarios, strategy ids, and for
/// `--platform` the presets plus the paths that start with what was typed (a platform is a
/// preset or a file or directory).
enum CommandLineCompletions {
    static let scenario = CompletionKind.list(BuiltInScenarios.all.map(\.name))
    static let strategy = CompletionKind.list(Strategy.allCases.map(\.rawValue))
    static let strategyOrAll = CompletionKind.list(Strategy.allCases.map(\.rawValue) + ["all"])
    static let platform = CompletionKind.custom { words in
        let typed = words.last ?? ""
        let presets = MachinePreset.allCases.map(\.rawValue).filter { $0.hasPrefix(typed) }
        let directory = typed.contains("/") ? String(typed[..<(typed.lastIndex(of: "/") ?? typed.startIndex)]) : "."
        let prefix = typed.contains("/") ? directory + "/" : ""
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "/" : directory)) ?? [])
            .map { prefix + $0 }.filter { $0.hasPrefix(typed) }.sorted()
        return presets + entries
    }
}
