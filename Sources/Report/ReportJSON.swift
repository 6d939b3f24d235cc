import Bus
import Foundation
import GIC
import Scenario

/// The stable JSON of `doorbell compare` and `doorbell run` (schema 1, documented in the
/// README). Keys are kebab-case and sorted; addresses are hex strings as the text tables print
/// them; a missing value is `null`, never an absent key, so consumers can rely on the shape.
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
        /// The host kernel release the strategy ran on (`Strategy.hostRelease`).
        var kernel: String
        var changes: [String]
        @Null var setupFailure: String?
        var fired: Int
        var delivered: Int
        @Null var firstFailure: Failure?
        @Null var explanation: String?
        var vectors: [Vector]

        enum CodingKeys: String, CodingKey {
            case strategy, kernel, changes, fired, delivered, explanation, vectors
            case setupFailure = "setup-failure", firstFailure = "first-failure"
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
        @Null var from: String?
        @Null var to: String?
        @Null var event: String?
        @Null var detail: String?
        enum CodingKeys: String, CodingKey { case result, from, to, event, detail }
    }

    struct ITS: Encodable {
        var index: Int
        var deviceID: String
        var eventID: UInt32
        @Null var lpi: UInt32?
        @Null var cpu: Int?
        @Null var dropped: String?
        enum CodingKeys: String, CodingKey {
            case index, lpi, cpu, dropped
            case deviceID = "device-id", eventID = "event-id"
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
            return Stage(result: s.kind, from: Hex.format(from), to: Hex.format(to))
        case .fault(let fault):
            return Stage(result: s.kind, from: Hex.format(fault.inputAddress), event: "\(fault.type.name)", detail: fault.reason)
        default:
            return Stage(result: s.kind)
        }
    }

    static func vector(_ o: VectorOutcome) -> Vector {
        @Null var its: ITS?
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
        @Null var reason: String?
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
                   firstFailure: failure, explanation: r.explanation, vectors: chosen.map(vector))
    }

    /// The JSON text of several scenarios' runs.
    public static func render(_ results: [(ScenarioDescription, [StrategyRun])], allVectors: Bool) -> String {
        let document = Document(schema: schema, scenarios: results.map { scenario, runs in
            Scenario(name: scenario.name, summary: scenario.summary, platform: scenario.platform.description,
                     runs: runs.map { run($0, host: scenario.host, allVectors: allVectors) })
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(document), let text = String(data: data, encoding: .utf8) else { return "{}\n" }
        return text + "\n"
    }
}
