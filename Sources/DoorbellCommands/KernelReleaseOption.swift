import ArgumentParser
import LinuxKernel
import Scenario

/// `--kernel RELEASE`: the host kernel release every strategy runs on, overriding the scenario
/// file's `host: kernel:` and each strategy's base release (`Strategy.baseRelease`). What
/// differs between releases is `KernelBehaviour`; docs/kernel-releases.md has the table.
struct KernelReleaseOption: ParsableArguments {
    @Option(name: .customLong("kernel"),
            help: ArgumentHelp("The host kernel release for every strategy: \(KernelConfiguration.Version.allCases.map(\.rawValue).joined(separator: ", ")) (default: the scenario's, else each strategy's base release).",
                               valueName: "release"))
    var release: KernelConfiguration.Version?

    /// `scenario` with the release applied, if one was given.
    func apply(to scenario: ScenarioDescription) -> ScenarioDescription {
        guard let release else { return scenario }
        var changed = scenario
        changed.host.kernel = release
        return changed
    }
}
