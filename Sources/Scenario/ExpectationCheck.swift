/// Checks a scenario's expectations against its runs. Expectations are the user's claims about
/// outcomes; a strategy never states one itself.
public enum ExpectationCheck {
    /// One expectation that did not hold: which, for which strategy, and what was observed.
    public struct Mismatch: Hashable, Sendable, CustomStringConvertible {
        public var strategy: Strategy
        public var expected: String
        public var observed: String
        public var description: String { "\(strategy.rawValue): expected \(expected), observed \(observed)" }
    }

    public static func evaluate(_ expectations: [Expectation], _ runs: [StrategyRun]) -> [Mismatch] {
        var mismatches: [Mismatch] = []
        for expectation in expectations {
            for run in runs where expectation.strategy == nil || expectation.strategy == run.strategy {
                if let delivered = expectation.delivered {
                    let ok: Bool
                    let wanted: String
                    switch delivered {
                    case .all:
                        ok = run.allDelivered
                        wanted = "all vectors delivered"
                    case .nothing:
                        ok = run.deliveredCount == 0
                        wanted = "no vector delivered"
                    case .count(let n):
                        ok = run.setupFailure == nil && run.deliveredCount == n
                        wanted = "\(n) vector(s) delivered"
                    }
                    if !ok {
                        let seen = run.setupFailure.map { "setup failure (\($0))" } ?? "\(run.deliveredCount)/\(run.firedCount) delivered"
                        mismatches.append(Mismatch(strategy: run.strategy, expected: wanted, observed: seen))
                    }
                }
                if let hold = expectation.invariantsHold {
                    let broken = run.violations
                    if hold, let first = broken.first {
                        mismatches.append(Mismatch(strategy: run.strategy, expected: "every invariant to hold",
                                                   observed: "\(broken.count) violation(s), first: \(first)"))
                    } else if !hold, broken.isEmpty {
                        mismatches.append(Mismatch(strategy: run.strategy, expected: "an invariant to be violated", observed: "none was"))
                    }
                }
                if let point = expectation.firstFailure {
                    let seen: FailurePoint? = run.setupFailure != nil ? .setup : run.firstFailure?.verdict.failurePoint
                    if seen != point {
                        mismatches.append(Mismatch(strategy: run.strategy, expected: "first failure at \(point.rawValue)",
                                                   observed: seen.map { "first failure at \($0.rawValue)" } ?? "no failure"))
                    }
                }
            }
        }
        return mismatches
    }
}
