import Testing
@testable import Scenario

/// Every form of expectation against hand-made runs, so each can both hold and fail.
@Suite("expectations") struct ExpectationCheckTests {
    static func run(_ strategy: Strategy, delivered: Int, of fired: Int, failure: FailurePoint? = nil,
                    violations: [Violation] = [], setup: Bool = false) -> StrategyRun {
        var outcomes: [VectorOutcome] = []
        for v in 0..<fired {
            let verdict: VectorOutcome.Verdict = v < delivered ? .delivered : .failed(failure ?? .stage1, "test")
            outcomes.append(VectorOutcome(step: v, device: 0, vector: v, stage1: .absent, stage2: .absent, handled: [],
                                          verdict: verdict, smmuEvents: [], cost: .init()))
        }
        return StrategyRun(scenario: "t", strategy: strategy, setupFailure: setup ? .init(step: "VMM", error: "EINVAL") : nil,
                           outcomes: outcomes, eventLog: [], violations: violations)
    }

    @Test func deliveredForms() {
        let all = Self.run(.rmrIdentity, delivered: 4, of: 4)
        let none = Self.run(.legacy, delivered: 0, of: 4)
        let some = Self.run(.vfioOverride, delivered: 3, of: 4)
        #expect(ExpectationCheck.evaluate([Expectation(delivered: .all)], [all]).isEmpty)
        #expect(ExpectationCheck.evaluate([Expectation(delivered: .all)], [none]).count == 1)
        #expect(ExpectationCheck.evaluate([Expectation(delivered: .nothing)], [none]).isEmpty)
        #expect(ExpectationCheck.evaluate([Expectation(delivered: .nothing)], [some]).count == 1)
        #expect(ExpectationCheck.evaluate([Expectation(delivered: .count(3))], [some]).isEmpty)
        #expect(ExpectationCheck.evaluate([Expectation(delivered: .count(3))], [all]).count == 1)
        // A setup failure delivers nothing, but is not "3 delivered".
        #expect(ExpectationCheck.evaluate([Expectation(delivered: .count(0))], [Self.run(.legacy, delivered: 0, of: 0, setup: true)]).count == 1)
    }

    @Test func strategyFilterAndFirstFailure() {
        let runs = [Self.run(.legacy, delivered: 0, of: 4, failure: .stage1), Self.run(.rmrIdentity, delivered: 4, of: 4)]
        let legacyOnly = Expectation(strategy: .legacy, firstFailure: .stage1)
        #expect(ExpectationCheck.evaluate([legacyOnly], runs).isEmpty, "applies to legacy only")
        let wrongPoint = ExpectationCheck.evaluate([Expectation(strategy: .legacy, firstFailure: .stage2)], runs)
        #expect(wrongPoint.map(\.observed) == ["first failure at stage-1"])
        let everyone = ExpectationCheck.evaluate([Expectation(firstFailure: .stage1)], runs)
        #expect(everyone.map(\.strategy) == [.rmrIdentity], "rmr-identity has no failure at all")
        #expect(everyone.first?.observed == "no failure")
        let setup = ExpectationCheck.evaluate([Expectation(firstFailure: .setup)], [Self.run(.vitsDirect, delivered: 0, of: 0, setup: true)])
        #expect(setup.isEmpty)
    }

    @Test func invariantForms() {
        let broken = Violation(invariant: .stability, step: 6, event: .hostReactivate(device: 0, vector: 0), detail: "x")
        let clean = Self.run(.irqchipRelay, delivered: 4, of: 4)
        let dirty = Self.run(.vfioOverride, delivered: 3, of: 4, violations: [broken])
        #expect(ExpectationCheck.evaluate([Expectation(invariantsHold: true)], [clean]).isEmpty)
        #expect(ExpectationCheck.evaluate([Expectation(invariantsHold: true)], [dirty]).first?.observed.contains("stability at step 6") == true)
        #expect(ExpectationCheck.evaluate([Expectation(invariantsHold: false)], [dirty]).isEmpty)
        #expect(ExpectationCheck.evaluate([Expectation(invariantsHold: false)], [clean]).map(\.observed) == ["none was"])
    }
}
