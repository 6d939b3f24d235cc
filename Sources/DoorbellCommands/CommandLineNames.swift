import ArgumentParser
import Foundation
import Machine
import Scenario

/// The names the command line accepts — built-in scenarios, presets, strategy ids — and the
/// usage error (exit 64) with a did-you-mean for a mistyped one.
enum CommandLineNames {
    /// The built-in scenario `name`, or a usage error naming the closest one.
    static func builtInScenario(_ name: String) throws -> ScenarioDescription {
        guard let found = BuiltInScenarios.named(name) else {
            throw ValidationError(DidYouMean.unknown("scenario", name, among: BuiltInScenarios.all.map(\.name)))
        }
        return found
    }

    /// `--strategy ID` (the option's transform): the strategy, or a did-you-mean.
    static func strategy(_ argument: String) throws -> Strategy {
        guard let strategy = Strategy(rawValue: argument) else {
            throw ValidationError(DidYouMean.unknown("strategy", argument, among: Strategy.allCases.map(\.rawValue)))
        }
        return strategy
    }

    /// A `--platform` that is neither a preset nor an existing path but is close to a preset
    /// name: a usage error with the preset meant. Anything else is left to `PlatformFile`
    /// (a path that does not exist, a file it cannot read).
    static func checkPlatform(_ argument: String) throws {
        let presets = MachinePreset.allCases.map(\.rawValue)
        guard MachinePreset(rawValue: argument) == nil, !FileManager.default.fileExists(atPath: argument),
              DidYouMean.suggestion(for: argument, among: presets) != nil else { return }
        throw ValidationError(DidYouMean.unknown("platform", argument, among: presets))
    }
}
