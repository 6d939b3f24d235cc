/// The one-line wording of a vector's verdict: the scenario runner's event log and every report
/// print it.
extension VectorOutcome.Verdict: CustomStringConvertible {
    public var description: String {
        switch self {
        case .delivered: "delivered"
        case .pending: "pending (masked)"
        case .pendingInVPT(let vpe, let doorbell):
            "pending in vPE \(vpe)'s VPT (vCPU not resident\(doorbell.map { "; doorbell LPI \($0) rung" } ?? ", no doorbell"))"
        case .failed(let point, let why): "\(point.rawValue): \(why)"
        }
    }
}
