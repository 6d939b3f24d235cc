import Bus
import Foundation
import GIC
import Scenario

/// The stable JSON of `doorbell compare`, `strategies` and `run` (schema 2, documented in the
/// README and `Schemas/doorbell.schema.json`). Keys are kebab-case and sorted; addresses are
/// separator-free lowercase hex strings (`JSONDocument.hex`), IDs are numbers; a missing value
/// is `null`, never an absent key, so consumers can rely on the shape.
public enum ReportJSON {
    /// An optional that encodes as `null` when absent: the synthesized encoders skip nil
    /// values (`encodeIfPresent`), and the schema promises every key in every object.
    @propertyWrapper
    struct Null<Value: Encodable>: Encodable {
        var wrappedValue: Value?
        init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }
        func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            if let value = wrappedValue { try container.encode(value) } else { try container.encodeNil() }
        }
    }

    public static var schema: Int { JSONDocument.schema }

    /// `expectations` only in `run`'s document (synthesized `encodeIfPresent` leaves it out
    /// of `compare`'s and `strategies'`).
    struct Document: Encodable {
        var schema: Int
        var command: String
        var scenarios: [Scenario]
        var expectations: Expectations?
    }

    /// The scenario file's expectations: how many, whether all hold, and each that does not.
    struct Expectations: Encodable {
        var count: Int
        var hold: Bool
        var mismatches: [Mismatch]
    }

    struct Mismatch: Encodable {
        var strategy: String
        var expected: String
        var observed: String
    }

    /// An invariant the run broke (`StrategyRun.violations`): which, at which step, after which event.
    struct Violation: Encodable {
        var invariant: String
        var step: Int
        @Null var event: String?
        var detail: String
        enum CodingKeys: String, CodingKey { case invariant, step, event, detail }
    }

    struct Scenario: Encodable {
        var name: String
        var summary: String
        var platform: String
        var runs: [Run]
    }

    struct Run: Encodable {
        var strategy: String
        /// The host kernel release the strategy ran on (`Strategy.hostRelease`).
        var kernel: String
        var changes: [String]
        @Null var setupFailure: String?
        var fired: Int
        var delivered: Int
        @Null var firstFailure: Failure?
        @Null var explanation: String?
        var vectors: [Vector]
        var violations: [Violation]

        enum CodingKeys: String, CodingKey {
            case strategy, kernel, changes, fired, delivered, explanation, vectors, violations
            case setupFailure = "setup-failure", firstFailure = "first-failure"
        }
    }

    struct Failure: Encodable {
        var device: Int
        var vector: Int
        var point: String
        var reason: String
    }

    struct Stage: Encodable, Sendable {
        var result: String
        @Null var from: String?
        @Null var to: String?
        @Null var event: String?
        @Null var detail: String?
        enum CodingKeys: String, CodingKey { case result, from, to, event, detail }
    }

    struct ITS: Encodable, Sendable {
        var index: Int
        var deviceID: UInt32
        var eventID: UInt32
        @Null var lpi: UInt32?
        @Null var cpu: Int?
        @Null var dropped: String?
        enum CodingKeys: String, CodingKey {
            case index, lpi, cpu, dropped
            case deviceID = "device-id", eventID = "event-id"
        }
    }

    struct Interrupt: Encodable, Sendable {
        var irq: Int
        var lpi: UInt32
        var cpu: Int
    }

    struct Vector: Encodable, Sendable {
        var step: Int
        var device: Int
        var vector: Int
        @Null var guestAddress: String?
        @Null var programmedAddress: String?
        var stage1: Stage
        var stage2: Stage
        @Null var its: ITS?
        @Null var expected: Interrupt?
        var handled: [Interrupt]
        var verdict: String
        @Null var reason: String?
        var descriptorReads: Int
        var tlbHits: Int
        var tlbMisses: Int
        enum CodingKeys: String, CodingKey {
            case step, device, vector, stage1 = "stage-1", stage2 = "stage-2", its, expected, handled, verdict, reason
            case guestAddress = "guest-address", programmedAddress = "programmed-address"
            case descriptorReads = "descriptor-reads", tlbHits = "tlb-hits", tlbMisses = "tlb-misses"
        }
    }

    static func stage(_ s: VectorOutcome.StageResult) -> Stage {
        switch s {
        case .translated(let from, let to):
            return Stage(result: s.kind, from: JSONDocument.hex(from), to: JSONDocument.hex(to))
        case .fault(let fault):
            return Stage(result: s.kind, from: JSONDocument.hex(fault.inputAddress), event: "\(fault.type.name)", detail: fault.reason)
        default:
            return Stage(result: s.kind)
        }
    }

    static func vector(_ o: VectorOutcome) -> Vector {
        @Null var its: ITS?
        if let i = o.its {
            var entry = ITS(index: i.index, deviceID: i.deviceID, eventID: i.eventID)
            switch i.result {
            case .delivered(let intid, let cpu, _):
                entry.lpi = intid.rawValue
                entry.cpu = cpu
            case .dropped(let reason):
                entry.dropped = "\(reason)"
            case .virtual(let vintid, _, let cpu, _):
                // GICv4.1 direct injection: the vINTID and the vPE's redistributor.
                entry.lpi = vintid
                entry.cpu = cpu
            }
            its = entry
        }
        let verdict: String
        @Null var reason: String?
        switch o.verdict {
        case .delivered: verdict = "delivered"
        case .pending: verdict = "pending"
        case .pendingInVPT(let vpe, let doorbell):
            verdict = "pending-vpt"
            reason = "pending in vPE \(vpe)'s virtual pending table" + (doorbell.map { ", doorbell LPI \($0) rung" } ?? "")
        case .failed(let point, let why):
            verdict = point.rawValue
            reason = why
        }
        return Vector(step: o.step, device: o.device, vector: o.vector, guestAddress: o.guestAddress.map(JSONDocument.hex),
                      programmedAddress: o.programmedAddress.map(JSONDocument.hex), stage1: stage(o.stage1), stage2: stage(o.stage2),
                      its: its, expected: o.expected.map { Interrupt(irq: $0.irq, lpi: $0.lpi, cpu: $0.cpu) },
                      handled: o.handled.map { Interrupt(irq: $0.irq, lpi: $0.lpi, cpu: $0.cpu) },
                      verdict: verdict, reason: reason, descriptorReads: o.cost.descriptorReads, tlbHits: o.cost.tlbHits, tlbMisses: o.cost.tlbMisses)
    }

    /// `vectors`: every fired vector (`run`), or only the first and the first failing one
    /// (`compare`, to keep the matrix readable).
    static func run(_ r: StrategyRun, host: HostOptions, allVectors: Bool) -> Run {
        var chosen = r.outcomes
        if !allVectors {
            chosen = Array(r.outcomes.prefix(1))
            if let failure = r.firstFailure, failure != chosen.first { chosen.append(failure) }
        }
        let failure = r.firstFailure.flatMap { o -> Failure? in
            guard case .failed(let point, let why) = o.verdict else { return nil }
            return Failure(device: o.device, vector: o.vector, point: point.rawValue, reason: why)
        }
        return Run(strategy: r.strategy.rawValue, kernel: r.strategy.hostRelease(host).rawValue, changes: r.strategy.changes.map(\.rawValue),
                   setupFailure: r.setupFailure?.description, fired: r.firedCount, delivered: r.deliveredCount,
                   firstFailure: failure, explanation: r.explanation, vectors: chosen.map(vector),
                   violations: r.violations.map {
                       Violation(invariant: $0.invariant.rawValue, step: $0.step, event: $0.event.map(ExploreReport.describe), detail: $0.detail)
                   })
    }

    /// The JSON text of several scenarios' runs, as `command` wrote them; `expectations` (only
    /// `run`'s) with the mismatches `ExpectationCheck` found.
    public static func render(_ results: [(ScenarioDescription, [StrategyRun])], allVectors: Bool, command: String,
                              expectations: (count: Int, mismatches: [ExpectationCheck.Mismatch])? = nil) -> String {
        let document = Document(schema: schema, command: command, scenarios: results.map { scenario, runs in
            Scenario(name: scenario.name, summary: scenario.summary, platform: scenario.platform.description,
                     runs: runs.map { run($0, host: scenario.host, allVectors: allVectors) })
        }, expectations: expectations.map { e in
            Expectations(count: e.count, hold: e.mismatches.isEmpty,
                         mismatches: e.mismatches.map { Mismatch(strategy: $0.strategy.rawValue, expected: $0.expected, observed: $0.observed) })
        })
        return JSONDocument.encode(document)
    }
}

extension ReportJSON.Null: Sendable where Value: Sendable {}
