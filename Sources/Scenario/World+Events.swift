import Bus

extension World {
    /// What an event did: a fired vector's outcome, or a note.
    public enum EventResult: Hashable, Sendable {
        case fired(VectorOutcome)
        case done(String)
    }

    /// Runs one event of the script.
    public func perform(_ event: ScenarioEvent, step: Int, trace: TraceLog? = nil) -> EventResult {
        switch event {
        case .fire(let device, let vector):
            return .fired(fire(device: device, vector: vector, step: step, trace: trace))
        default:
            return .done("not run: \(event.kind.rawValue) is not modelled yet")
        }
    }
}
