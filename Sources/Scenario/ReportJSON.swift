import Bus
import Foundation
import GIC

/// The stable JSON of `doorbell compare` and `doorbell run` (schema 1, documented in the
/// README). Keys are kebab-case and sorted; addresses are hex strings as the text tables print
/// them; a missing value is `null`, never an absent key, so consumers can rely on the shape.
public enum ReportJSON {
    public static let schema = 1

    struct Document: Encodable {
        var schema: Int
        var scenarios: [Scenario]
    }

    struct Scenario: Encodable {
        var name: String
        var summary: String
        var platform: String
        var runs: [Run]
    }

    struct Run: Encodable {
        var strategy: String
        var changes: [String]
        var setupFailure: String?
        var fired: Int
        var delivered: Int
        var firstFailure: Failure?
        var explanation: String?
        var vectors: [Vector]

        enum CodingKeys: String, CodingKey {
            case strategy, changes, fired, delivered, explanation, vectors
            case setupFailure = "setup-failure", firstFailure = "first-failure"
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(strategy, forKey: .strategy)
            try c.encode(changes, forKey: .changes)
            try c.encode(setupFailure, forKey: .setupFailure)
            try c.encode(fired, forKey: .fired)
            try c.encode(delivered, forKey: .delivered)
            try c.encode(firstFailure, forKey: .firstFailure)
            try c.encode(explanation, forKey: .explanation)
            try c.encode(vectors, forKey: .vectors)
        }
    }

    struct Failure: Encodable {
        var device: Int
        var vector: Int
        var point: String
        var reason: String
    }

    struct Stage: Encodable {
        var result: String
        var from: String?
        var to: String?
        var event: String?
        var detail: String?
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(result, forKey: .result)
            try c.encode(from, forKey: .from)
            try c.encode(to, forKey: .to)
            try c.encode(event, forKey: .event)
            try c.encode(detail, forKey: .detail)
        }
        enum CodingKeys: String, CodingKey { case result, from, to, event, detail }
    }

    struct ITS: Encodable {
        var index: Int
        var deviceID: String
        var eventID: UInt32
        var lpi: UInt32?
        var cpu: Int?
        var dropped: String?
        enum CodingKeys: String, CodingKey {
            case index, lpi, cpu, dropped
            case deviceID = "device-id", eventID = "event-id"
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(deviceID, forKey: .deviceID)
            try c.encode(eventID, forKey: .eventID)
            try c.encode(lpi, forKey: .lpi)
            try c.encode(cpu, forKey: .cpu)
            try c.encode(dropped, forKey: .dropped)
        }
    }

    struct Interrupt: Encodable {
        var irq: Int
        var lpi: UInt32
        var cpu: Int
    }

    struct Vector: Encodable {
        var step: Int
        var device: Int
        var vector: Int
        var guestAddress: String?
        var programmedAddress: String?
        var stage1: Stage
        var stage2: Stage
        var its: ITS?
        var expected: Interrupt?
        var handled: [Interrupt]
        var verdict: String
        var reason: String?
        var descriptorReads: Int
        var tlbHits: Int
        var tlbMisses: Int
        enum CodingKeys: String, CodingKey {
            case step, device, vector, stage1 = "stage-1", stage2 = "stage-2", its, expected, handled, verdict, reason
            case guestAddress = "guest-address", programmedAddress = "programmed-address"
            case descriptorReads = "descriptor-reads", tlbHits = "tlb-hits", tlbMisses = "tlb-misses"
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(step, forKey: .step)
            try c.encode(device, forKey: .device)
            try c.encode(vector, forKey: .vector)
            try c.encode(guestAddress, forKey: .guestAddress)
            try c.encode(programmedAddress, forKey: .programmedAddress)
            try c.encode(stage1, forKey: .stage1)
            try c.encode(stage2, forKey: .stage2)
            try c.encode(its, forKey: .its)
            try c.encode(expected, forKey: .expected)
            try c.encode(handled, forKey: .handled)
            try c.encode(verdict, forKey: .verdict)
            try c.encode(reason, forKey: .reason)
            try c.encode(descriptorReads, forKey: .descriptorReads)
            try c.encode(tlbHits, forKey: .tlbHits)
            try c.encode(tlbMisses, forKey: .tlbMisses)
        }
    }

    static func stage(_ s: VectorOutcome.StageResult) -> Stage {
        switch s {
        case .translated(let from, let to):
            return Stage(result: s.kind, from: Hex.format(from), to: Hex.format(to))
        case .fault(let fault):
            return Stage(result: s.kind, from: Hex.format(fault.inputAddress), event: "\(fault.type.name)", detail: fault.reason)
        default:
            return Stage(result: s.kind)
        }
    }

    static func vector(_ o: VectorOutcome) -> Vector {
        var its: ITS?
        if let i = o.its {
            var entry = ITS(index: i.index, deviceID: Hex.format(UInt64(i.deviceID), minDigits: 1), eventID: i.eventID)
            switch i.result {
            case .delivered(let intid, let cpu, _):
                entry.lpi = intid.rawValue
                entry.cpu = cpu
            case .dropped(let reason):
                entry.dropped = "\(reason)"
            }
            its = entry
        }
        let verdict: String
        var reason: String?
        switch o.verdict {
        case .delivered: verdict = "delivered"
        case .pending: verdict = "pending"
        case .failed(let point, let why):
            verdict = point.rawValue
            reason = why
        }
        return Vector(step: o.step, device: o.device, vector: o.vector, guestAddress: o.guestAddress.map { Hex.format($0) },
                      programmedAddress: o.programmedAddress.map { Hex.format($0) }, stage1: stage(o.stage1), stage2: stage(o.stage2),
                      its: its, expected: o.expected.map { Interrupt(irq: $0.irq, lpi: $0.lpi, cpu: $0.cpu) },
                      handled: o.handled.map { Interrupt(irq: $0.irq, lpi: $0.lpi, cpu: $0.cpu) },
                      verdict: verdict, reason: reason, descriptorReads: o.cost.descriptorReads, tlbHits: o.cost.tlbHits, tlbMisses: o.cost.tlbMisses)
    }

    /// `vectors`: every fired vector (`run`), or only the first and the first failing one
    /// (`compare`, to keep the matrix readable).
    static func run(_ r: StrategyRun, allVectors: Bool) -> Run {
        var chosen = r.outcomes
        if !allVectors {
            chosen = Array(r.outcomes.prefix(1))
            if let failure = r.firstFailure, failure != chosen.first { chosen.append(failure) }
        }
        let failure = r.firstFailure.flatMap { o -> Failure? in
            guard case .failed(let point, let why) = o.verdict else { return nil }
            return Failure(device: o.device, vector: o.vector, point: point.rawValue, reason: why)
        }
        return Run(strategy: r.strategy.rawValue, changes: r.strategy.changes.map(\.rawValue),
                   setupFailure: r.setupFailure?.description, fired: r.firedCount, delivered: r.deliveredCount,
                   firstFailure: failure, explanation: r.explanation, vectors: chosen.map(vector))
    }

    /// The JSON text of several scenarios' runs.
    public static func render(_ results: [(ScenarioDescription, [StrategyRun])], allVectors: Bool) -> String {
        let document = Document(schema: schema, scenarios: results.map { scenario, runs in
            Scenario(name: scenario.name, summary: scenario.summary, platform: scenario.platform.description,
                     runs: runs.map { run($0, allVectors: allVectors) })
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(document), let text = String(data: data, encoding: .utf8) else { return "{}\n" }
        return text + "\n"
    }
}
