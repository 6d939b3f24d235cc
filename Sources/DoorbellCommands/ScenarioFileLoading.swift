import ArgumentParser
import Scenario

/// Reads a scenario file; a mistake in it is a usage error (exit 64) whose message names the
/// file, line, column and key.
func loadScenarioFile(_ path: String) throws -> ScenarioDescription {
    do { return try ScenarioFile.load(path: path) } catch { throw ValidationError(error.description) }
}
