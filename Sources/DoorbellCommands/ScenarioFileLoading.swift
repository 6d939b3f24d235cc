import ArgumentParser
import Scenario

/// Reads a scenario file (until the YAML reader lands, only built-ins are available).
func loadScenarioFile(_ path: String) throws -> ScenarioDescription {
    throw ValidationError("scenario files are not supported yet")
}
