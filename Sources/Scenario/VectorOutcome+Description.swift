/// The one-line wording of a vector's verdict: the scenario runner's event log and every report
/// print it.
extension VectorOutcome.Verdict: CustomStringConvertible {
    public var description: String {
        switch self {
        case .delivered: "delivered"
        case .pending: "pending (masked)"
        case .failed(let point, let why): "\(point.rawValue): \(why)"
        }
    }
}
