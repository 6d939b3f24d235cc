import Firmware
import Foundation
import LinuxKernel
import Scenario

/// The partial result `doorbell explore --shard K/N` writes and `--merge` reads: one JSON
/// document (schema 2, command explore, form shard) holding the shard's number, the run's
/// fingerprint and options, and per strategy the states the shard owns and the shrinks it
/// made (`Explorer.Partial`). Sequences are indexes into the explorer's alphabet; a
/// violation's event is an index into the alphabet followed by the observation's fires.
public enum ExploreShardFile {
    /// The layout of the records below; a merge refuses another.
    public static let format = 1
    /// The largest shard file a merge reads (a depth-4 shard of a large scenario is tens of
    /// megabytes).
    public static let maximumFileSize = 1 << 30

    /// What the shards and the merge must agree on, as the user gave it (the fingerprint
    /// covers these and the scenario's and platform's contents).
    public struct Run: Hashable, Sendable, Decodable {
        public var doorbell: String
        public var scenario: String
        public var strategies: [String]
        public var kernel: String?
        public var depth: Int
        public var walks: Int
        public var steps: Int
        public var seed: UInt64

        public init(doorbell: String, scenario: String, strategies: [String], kernel: String?, depth: Int, walks: Int, steps: Int, seed: UInt64) {
            self.doorbell = doorbell
            self.scenario = scenario
            self.strategies = strategies
            self.kernel = kernel
            self.depth = depth
            self.walks = walks
            self.steps = steps
            self.seed = seed
        }

        var json: JSONValue {
            .object(["doorbell": .string(doorbell), "scenario": .string(scenario), "strategies": .array(strategies.map { .string($0) }),
                     "kernel": .string(kernel), "depth": .number(depth), "walks": .number(walks), "steps": .number(steps), "seed": .uint(seed)])
        }

        /// The options of `self` that differ from `other`'s, as "--depth 3 (the merge: 2)".
        func differences(from other: Run) -> [String] {
            var out: [String] = []
            func note(_ name: String, _ mine: String, _ theirs: String) {
                if mine != theirs { out.append("\(name) \(mine) (the merge: \(theirs))") }
            }
            note("doorbell", doorbell, other.doorbell)
            note("scenario", scenario, other.scenario)
            note("strategies", strategies.joined(separator: ","), other.strategies.joined(separator: ","))
            note("--kernel", kernel ?? "default", other.kernel ?? "default")
            note("--depth", "\(depth)", "\(other.depth)")
            note("--walks", "\(walks)", "\(other.walks)")
            note("--steps", "\(steps)", "\(other.steps)")
            note("--seed", "\(seed)", "\(other.seed)")
            return out
        }
    }

    /// One shard file, read.
    public struct Shard: Sendable {
        public var path: String
        public var split: Explorer.Split
        public var fingerprint: String
        public var run: Run
        public var partials: [Explorer.Partial]
    }

    /// The fingerprint of a run: FNV-1a (64 bits) of the doorbell version, the options, the
    /// strategies, the scenario as a scenario file writes it and the platform's description —
    /// everything a state's facts depend on.
    public static func fingerprint(_ run: Run, scenario: ScenarioDescription, platform: String) -> String {
        var text = "doorbell \(run.doorbell)\nstrategies \(run.strategies.joined(separator: ","))\nkernel \(run.kernel ?? "default")\n"
        text += "depth \(run.depth) walks \(run.walks) steps \(run.steps) seed \(run.seed)\n"
        text += ScenarioFile.render(scenario) + "\n" + platform
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return JSONDocument.hex(hash)
    }

    // MARK: Writing

    /// The shard's document: one line of JSON with sorted keys.
    public static func render(_ partials: [Explorer.Partial], explorer: Explorer, split: Explorer.Split, run: Run, fingerprint: String) -> String {
        let table = explorer.alphabet + explorer.observation
        func indexes(_ sequence: [ScenarioEvent]) -> JSONValue {
            .array(sequence.map { e in .number(explorer.alphabet.firstIndex(of: e) ?? -1) })
        }
        func violation(_ v: Violation) -> JSONValue {
            .object(["invariant": .string(v.invariant.rawValue), "step": .number(v.step),
                     "event": v.event.map { e in .number(table.firstIndex(of: e) ?? -1) } ?? .null, "detail": .string(v.detail)])
        }
        let strategies: [JSONValue] = partials.map { p in
            .object([
                "strategy": .string(p.strategy.rawValue),
                "states": .array(p.states.map { r in
                    .object(["sequence": indexes(r.sequence), "hash": .string(JSONDocument.hex(r.facts.hash)),
                             "violations": .array(r.facts.violations.map(violation)),
                             "skipped": .array(r.facts.skippedSteps.map { .number($0) }),
                             "setup-failure": r.facts.setupFailure.map { f in
                                 .object(["step": .string(f.step), "error": .string(f.error),
                                          "cause": f.cause.map { c in
                                              .object(["function": .string(c.function), "errno": .number(c.errno.rawValue),
                                                       "subject": .string(c.subject), "reason": .string(c.reason)])
                                          } ?? .null])
                             } ?? .null])
                }),
                "shrinks": .array(p.shrinks.map { r in
                    .object(["sequence": indexes(r.sequence), "invariant": .string(r.invariant.rawValue),
                             "minimal": indexes(r.minimal), "violation": r.violation.map(violation) ?? .null])
                }),
            ])
        }
        let document: JSONValue = .object([
            "schema": .number(JSONDocument.schema), "command": .string("explore"), "form": .string("shard"),
            "shard-format": .number(format), "shard": .number(split.index), "shards": .number(split.count),
            "fingerprint": .string(fingerprint), "run": run.json, "strategies": .array(strategies),
        ])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(document), let text = String(data: data, encoding: .utf8) else { return "{}\n" }
        return text + "\n"
    }

    // MARK: Reading

    private struct Header: Decodable {
        var schema: Int?
        var command: String?
        var form: String?
        var shardFormat: Int?
        enum CodingKeys: String, CodingKey { case schema, command, form, shardFormat = "shard-format" }
    }

    private struct Document: Decodable {
        var shard: Int
        var shards: Int
        var fingerprint: String
        var run: Run
        var strategies: [StrategyRows]
    }

    private struct StrategyRows: Decodable {
        var strategy: String
        var states: [StateRow]
        var shrinks: [ShrinkRow]
    }

    private struct StateRow: Decodable {
        var sequence: [Int]
        var hash: String
        var violations: [ViolationRow]
        var skipped: [Int]
        var setupFailure: SetupRow?
        enum CodingKeys: String, CodingKey { case sequence, hash, violations, skipped, setupFailure = "setup-failure" }
    }

    private struct ViolationRow: Decodable {
        var invariant: String
        var step: Int
        var event: Int?
        var detail: String
    }

    private struct SetupRow: Decodable {
        var step: String
        var error: String
        var cause: CauseRow?
    }

    private struct CauseRow: Decodable {
        var function: String
        var errno: Int32
        var subject: String
        var reason: String
    }

    private struct ShrinkRow: Decodable {
        var sequence: [Int]
        var invariant: String
        var minimal: [Int]
        var violation: ViolationRow?
    }

    /// Reads the shard file at `path`, written for `explorer`'s scenario. Every way a file can
    /// be wrong is an error naming the file and where in it.
    public static func read(path: String, explorer: Explorer) throws(CommandFailure) -> Shard {
        // Bounded, and a directory, device or FIFO is refused before any read (a size check on
        // the file's attributes alone lets /dev/zero, which reports 0 bytes, read forever).
        let bytes: [UInt8]
        do { bytes = try InputFile.read(path, maximumSize: maximumFileSize) } catch { throw CommandFailure("\(error)") }
        return try parse(Data(bytes), path: path, explorer: explorer)
    }

    /// Parses a shard document (`path` names it in errors).
    public static func parse(_ data: Data, path: String, explorer: Explorer) throws(CommandFailure) -> Shard {
        let decoder = JSONDecoder()
        let header: Header
        do { header = try decoder.decode(Header.self, from: data) } catch {
            throw CommandFailure("\(path): not a shard of doorbell explore (not a JSON object: \(describe(error)))")
        }
        guard header.command == "explore", header.form == "shard" else {
            throw CommandFailure("\(path): not a shard of doorbell explore (write one with doorbell explore --shard K/N)")
        }
        guard header.schema == JSONDocument.schema, header.shardFormat == format else {
            throw CommandFailure("\(path): a shard of schema \(header.schema.map(String.init) ?? "none"), shard-format \(header.shardFormat.map(String.init) ?? "none"); this doorbell merges schema \(JSONDocument.schema), shard-format \(format)")
        }
        let document: Document
        do { document = try decoder.decode(Document.self, from: data) } catch {
            throw CommandFailure("\(path): \(describe(error))")
        }
        guard let split = Explorer.Split(index: document.shard, count: document.shards) else {
            throw CommandFailure("\(path): shard \(document.shard)/\(document.shards) is not a shard number (1…N, N at most \(Explorer.Split.maximumCount))")
        }
        let alphabet = explorer.alphabet
        let table = alphabet + explorer.observation
        var partials: [Explorer.Partial] = []
        for rows in document.strategies {
            guard let strategy = Strategy(rawValue: rows.strategy) else {
                throw CommandFailure("\(path): \(SafeText.escape(rows.strategy)) is not a strategy")
            }
            func sequence(_ indexes: [Int], _ place: String) throws(CommandFailure) -> [ScenarioEvent] {
                var events: [ScenarioEvent] = []
                for i in indexes {
                    guard alphabet.indices.contains(i) else {
                        throw CommandFailure("\(path): \(strategy.rawValue), \(place): event \(i) is not one of the \(alphabet.count) events this scenario explores")
                    }
                    events.append(alphabet[i])
                }
                return events
            }
            func violation(_ row: ViolationRow, _ place: String) throws(CommandFailure) -> Violation {
                guard let invariant = Invariant(rawValue: row.invariant) else {
                    throw CommandFailure("\(path): \(strategy.rawValue), \(place): \(SafeText.escape(row.invariant)) is not an invariant")
                }
                var event: ScenarioEvent?
                if let i = row.event {
                    guard table.indices.contains(i) else {
                        throw CommandFailure("\(path): \(strategy.rawValue), \(place): event \(i) is not one of the \(table.count) events of this scenario's scripts")
                    }
                    event = table[i]
                }
                return .recorded(invariant, step: row.step, event: event, detail: row.detail)
            }
            var partial = Explorer.Partial(strategy: strategy)
            for (n, row) in rows.states.enumerated() {
                let place = "state \(n)"
                guard row.hash.hasPrefix("0x"), let hash = UInt64(row.hash.dropFirst(2), radix: 16) else {
                    throw CommandFailure("\(path): \(strategy.rawValue), \(place): hash \(SafeText.escape(row.hash)) is not 0x and hex digits")
                }
                var violations: [Violation] = []
                for v in row.violations { violations.append(try violation(v, place)) }
                var failure: World.SetupFailure?
                if let s = row.setupFailure {
                    var cause: KernelRefusal?
                    if let c = s.cause {
                        guard let errno = Errno(rawValue: c.errno) else {
                            throw CommandFailure("\(path): \(strategy.rawValue), \(place): errno \(c.errno) is not one the model returns")
                        }
                        cause = KernelRefusal(function: c.function, errno: errno, subject: c.subject, reason: c.reason)
                    }
                    failure = World.SetupFailure(step: s.step, error: s.error, cause: cause)
                }
                let facts = Explorer.StateFacts(hash: hash, violations: violations, skippedSteps: row.skipped, setupFailure: failure)
                partial.states.append(Explorer.StateRecord(sequence: try sequence(row.sequence, place), facts: facts))
            }
            for (n, row) in rows.shrinks.enumerated() {
                let place = "shrink \(n)"
                guard let invariant = Invariant(rawValue: row.invariant) else {
                    throw CommandFailure("\(path): \(strategy.rawValue), \(place): \(SafeText.escape(row.invariant)) is not an invariant")
                }
                partial.shrinks.append(Explorer.ShrinkRecord(
                    sequence: try sequence(row.sequence, place), invariant: invariant, minimal: try sequence(row.minimal, place),
                    violation: try row.violation.map { v throws(CommandFailure) in try violation(v, place) }))
            }
            partials.append(partial)
        }
        return Shard(path: path, split: split, fingerprint: document.fingerprint, run: document.run, partials: partials)
    }

    /// A decoding error as a sentence: where in the document, and what was wrong there.
    static func describe(_ error: Error) -> String {
        guard let error = error as? DecodingError else { return "\(error.localizedDescription)" }
        func at(_ path: [CodingKey]) -> String {
            path.isEmpty ? "the document" : path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(at(context.codingPath)) has no key \(key.stringValue)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(at(context.codingPath)) is not what a shard holds there (\(context.debugDescription))"
        case .dataCorrupted(let context):
            return "\(at(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error.localizedDescription)"
        }
    }

    // MARK: Merging

    /// Checks that `shards` are one complete set of the run `run` (fingerprint `fingerprint`)
    /// and returns their partials, every shard's in shard order.
    public static func combine(_ shards: [Shard], run: Run, fingerprint: String) throws(CommandFailure) -> [Explorer.Partial] {
        for shard in shards where shard.fingerprint != fingerprint {
            let differences = shard.run.differences(from: run)
            let why = differences.isEmpty ? "the scenario's or the platform's contents differ" : differences.joined(separator: ", ")
            throw CommandFailure("\(shard.path) is a shard of a different run (\(why)); give --merge the scenario and options the shards were run with")
        }
        guard let first = shards.first else { throw CommandFailure("--merge needs the shard files") }
        let count = first.split.count
        if let other = shards.first(where: { $0.split.count != count }) {
            throw CommandFailure("\(first.path) is shard \(first.split) but \(other.path) is shard \(other.split): they come from splits into different numbers of shards")
        }
        var byIndex: [Int: Shard] = [:]
        for shard in shards {
            if let earlier = byIndex[shard.split.index] {
                throw CommandFailure("shard \(shard.split) is given twice: \(earlier.path) and \(shard.path)")
            }
            byIndex[shard.split.index] = shard
        }
        let missing = (1...count).filter { byIndex[$0] == nil }
        if !missing.isEmpty {
            let names = missing.prefix(10).map { "\($0)/\(count)" }.joined(separator: ", ") + (missing.count > 10 ? " and \(missing.count - 10) more" : "")
            throw CommandFailure("\(missing.count == 1 ? "shard" : "shards") \(names) \(missing.count == 1 ? "is" : "are") missing: the merge needs the file of every shard 1/\(count) … \(count)/\(count)")
        }
        return (1...count).flatMap { byIndex[$0]?.partials ?? [] }
    }
}
