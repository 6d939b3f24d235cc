import ArgumentParser
import Report
import Scenario

/// Reads a scenario file. A file that cannot be used — unreadable, not a regular file, over a
/// limit, not UTF-8, not YAML, or with a mistake in a key or value — is an unusable input
/// (exit 1, like a corrupt platform), not a usage error; the message names the file, line,
/// column and key.
func loadScenarioFile(_ path: String) throws -> ScenarioDescription {
    do { return try ScenarioFile.load(path: path) } catch { throw CommandFailure(error.description) }
}
