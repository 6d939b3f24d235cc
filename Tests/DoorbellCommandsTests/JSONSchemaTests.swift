import Foundation
import Testing

/// Every command's `--format json` document, from the built binary, against
/// `Schemas/doorbell.schema.json` (validated by `JSONSchemaSubset`), and the validator against
/// documents that are wrong on purpose, so a schema test can fail.
@Suite("JSON schema")
struct JSONSchemaTests {
    static var schemaURL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Schemas/doorbell.schema.json")
    }

    static func schema() throws -> JSONSchemaSubset {
        JSONSchemaSubset(try JSONTree.parse(String(contentsOf: schemaURL, encoding: .utf8)))
    }

    static var repository: String { schemaURL.deletingLastPathComponent().deletingLastPathComponent().path }

    /// The arguments of each command's document, and the `command` it must carry.
    static let invocations: [(String, [String])] = [
        ("compare", ["compare", "--scenario", "seed", "--format", "json"]),
        ("strategies", ["strategies", "--format", "json"]),
        ("run", ["run", "Examples/events.yaml", "--format", "json"]),
        ("trace", ["trace", "--scenario", "seed", "--strategy", "legacy", "--format", "json"]),
        ("trace", ["trace", "--scenario", "seed", "--strategy", "vfio-override", "--format", "json"]),
        ("run", ["run", "Examples/seed.yaml", "--format", "json"]),
        ("explore", ["explore", "--depth", "1", "--format", "json"]),
        ("host", ["host", "--format", "json"]),
        ("host", ["host", "--owner", "vfio-type1", "--format", "json"]),
        ("host", ["host", "--device", "00:01.0", "--device", "01:00.0", "--format", "json"]),
        ("topology", ["topology", "--format", "json"]),
        ("topology", ["topology", "--platform", "Tests/Fixtures/acpi/arm-sgi", "--format", "json"]),
        ("seed", ["seed", "--format", "json"]),
        ("msi", ["msi", "--format", "json"]),
        ("msi", ["msi", "--translation", "bypass", "--format", "json"]),
        ("msi", ["msi", "--platform", "Tests/Fixtures/qemu-virt/virt-smmu-gic2.dtb", "--format", "json"]),
        ("host", ["host", "--platform", "Tests/Fixtures/qemu-virt/virt-smmu-gic2.dtb", "--format", "json"]),
        ("walk", ["walk", "--format", "json"]),
        ("walk", ["walk", "--stage", "s2", "--format", "json"]),
        ("presets", ["presets", "--format", "json"]),
        ("explain", ["explain", "--format", "json"]),
        ("explain", ["explain", "legacy", "--format", "json"]),
        ("explain", ["explain", "delivery", "--format", "json"]),
        ("explain", ["explain", "ITS", "--format", "json"]),
        ("inspect", ["inspect", "Tests/Fixtures/snapshots/dt-vfio", "--format", "json"]),
        ("inspect", ["inspect", "Tests/Fixtures/snapshots/x86-host", "--format", "json"]),
        ("inspect", ["inspect", "Tests/Fixtures/snapshots/acpi-smmuv3", "--passthrough", "0000:02:00.0", "--strategy", "vfio-override", "--format", "json"]),
    ]

    /// The binary with the fixture paths made absolute (the working directory is
    /// process-wide, so tests running in parallel must not change it).
    static func run(_ arguments: [String]) throws -> BinaryTests.Run {
        try BinaryTests.run(arguments.map { $0.hasPrefix("Examples/") || $0.hasPrefix("Tests/") ? repository + "/" + $0 : $0 })
    }

    @Test("every command's --format json document validates against Schemas/doorbell.schema.json and names its command",
          arguments: invocations.indices)
    func documentValidates(_ index: Int) throws {
        let (command, arguments) = Self.invocations[index]
        let run = try Self.run(arguments)
        // explore exits 1 when an invariant broke, inspect when the model cannot answer for
        // the machine; their documents are still whole.
        #expect(run.status == 0 || (["explore", "inspect"].contains(command) && run.status == 1), "stderr: \(run.stderr)")
        let document = try JSONTree.parse(run.stdout)
        #expect(document["command"] == .string(command))
        #expect(document["schema"] == .integer(2))
        let errors = try Self.schema().errors(document)
        #expect(errors.isEmpty, "doorbell \(arguments.joined(separator: " ")): \(errors.prefix(5).joined(separator: "\n"))")
    }

    @Test("explore's JSON names the replay files it wrote, and they exist")
    func exploreReplayFiles() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-json-explore-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let run = try Self.run(["explore", "--depth", "1", "--out", out, "--format", "json"])
        let document = try JSONTree.parse(run.stdout)
        #expect(try Self.schema().errors(document).isEmpty)
        guard case .array(let counterexamples)? = document["counterexamples"] else { Issue.record("no counterexamples array"); return }
        #expect(!counterexamples.isEmpty)
        #expect(run.status == 1)
        for case .string(let replay)? in counterexamples.map({ $0["replay"] }) {
            #expect(replay.hasPrefix(out + "/") && FileManager.default.fileExists(atPath: replay))
        }
        #expect(counterexamples.allSatisfy { if case .string? = $0["replay"] { true } else { false } })
    }

    @Test("run's JSON carries each run's violations and the expectations, and trace's the delivered path")
    func runAndTraceContent() throws {
        // events.yaml's events break invariants; its runs list them.
        let events = try JSONTree.parse(try Self.run(["run", "Examples/events.yaml", "--format", "json"]).stdout)
        guard case .array(let scenarios)? = events["scenarios"], case .array(let runs)? = scenarios.first?["runs"] else {
            Issue.record("no runs"); return
        }
        let violations = runs.reduce(0) { total, run in if case .array(let v)? = run["violations"] { total + v.count } else { total } }
        #expect(violations > 0)
        #expect(events["expectations"]?["count"] == .integer(0))
        // seed.yaml's two expectations hold; with legacy's claimed as "all", one does not.
        let seed = try JSONTree.parse(try Self.run(["run", "Examples/seed.yaml", "--format", "json"]).stdout)
        #expect(seed["expectations"]?["count"] == .integer(2) && seed["expectations"]?["hold"] == .bool(true))
        let text = try String(contentsOf: URL(fileURLWithPath: Self.repository + "/Examples/seed.yaml"), encoding: .utf8)
        let wrong = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-json-run-\(getpid()).yaml")
        defer { try? FileManager.default.removeItem(at: wrong) }
        try text.replacingOccurrences(of: "delivered: none", with: "delivered: all").write(to: wrong, atomically: true, encoding: .utf8)
        let failing = try Self.run(["run", wrong.path, "--format", "json"])
        #expect(failing.status == 1)
        let document = try JSONTree.parse(failing.stdout)
        #expect(try Self.schema().errors(document).isEmpty)
        #expect(document["expectations"]?["hold"] == .bool(false))
        guard case .array(let mismatches)? = document["expectations"]?["mismatches"] else { Issue.record("no mismatches"); return }
        #expect(mismatches.count == 1 && mismatches.first?["strategy"] == .string("legacy"))
        let trace = try JSONTree.parse(try Self.run(["trace", "--scenario", "seed", "--strategy", "vfio-override", "--format", "json"]).stdout)
        #expect(trace["outcome"]?["verdict"] == .string("delivered"))
        #expect(trace["outcome"]?["its"]?["device-id"] == .integer(8))
        #expect(trace["explanation"] == .null)
        guard case .array(let records)? = trace["records"] else { Issue.record("no records"); return }
        #expect(records.count > 10)
    }

    @Test("msi's JSON address is the text's address without separators, and reads as a number")
    func addressForm() throws {
        let text = try Self.run(["msi"]).stdout
        let document = try JSONTree.parse(try Self.run(["msi", "--format", "json"]).stdout)
        guard case .string(let address)? = document["address"] else { Issue.record("no address"); return }
        #expect(address.hasPrefix("0x") && !address.contains("_"))
        let value = UInt64(address.dropFirst(2), radix: 16)
        #expect(value != nil)
        let grouped = text.split(separator: "\n").first { $0.contains("MSI-X vector 2: address") }.map(String.init) ?? ""
        #expect(grouped.replacingOccurrences(of: "_", with: "").contains("address \(address),"))
        #expect(document["device-id"] == .integer(8))
    }

    static func valid() throws -> JSONTree {
        try JSONTree.parse(try run(["msi", "--format", "json"]).stdout)
    }

    static func changing(_ document: JSONTree, _ key: String, to value: JSONTree?) -> JSONTree {
        guard case .object(var members) = document else { return document }
        members[key] = value
        return .object(members)
    }

    @Test("the validator accepts the real document and rejects a missing required key, a wrong type, a bad address, an unknown key and a wrong command")
    func validatorRejects() throws {
        let schema = try Self.schema()
        let document = try Self.valid()
        #expect(schema.errors(document).isEmpty)
        let missing = schema.errors(Self.changing(document, "device-id", to: nil))
        #expect(missing.contains { $0.contains("required key \"device-id\" is missing") })
        let wrongType = schema.errors(Self.changing(document, "device-id", to: .string("0x8")))
        #expect(wrongType.contains { $0.contains("expected integer, found string") })
        let grouped = schema.errors(Self.changing(document, "address", to: .string("0x0809_0040")))
        #expect(grouped.contains { $0.contains("does not match") })
        let padded = schema.errors(Self.changing(document, "address", to: .string("0x08090040")))
        #expect(padded.contains { $0.contains("does not match") })
        let upper = schema.errors(Self.changing(document, "address", to: .string("0x809004F")))
        #expect(!upper.isEmpty)
        let extra = schema.errors(Self.changing(document, "surprise", to: .null))
        #expect(extra.contains { $0.contains("\"surprise\" is not allowed") })
        let command = schema.errors(Self.changing(document, "command", to: .string("walk")))
        #expect(!command.isEmpty)
        let negative = schema.errors(Self.changing(document, "vector", to: .integer(-1)))
        #expect(negative.contains { $0.contains("below the minimum") })
    }

    @Test("the validator refuses keywords outside its subset and $refs it cannot resolve")
    func validatorSubset() throws {
        let schema = JSONSchemaSubset(try JSONTree.parse(#"{"type": "string", "maxLength": 3, "$defs": {}}"#))
        #expect(schema.errors(.string("abcd")).contains { $0.contains("unsupported schema keyword maxLength") })
        let dangling = JSONSchemaSubset(try JSONTree.parse(##"{"$ref": "#/$defs/nothing"}"##))
        #expect(dangling.errors(.null).contains { $0.contains("unresolved $ref") })
        let oneOf = JSONSchemaSubset(try JSONTree.parse(#"{"oneOf": [{"type": "integer"}, {"type": "number"}]}"#))
        #expect(oneOf.errors(.integer(1)).contains { $0.contains("2 of 2 oneOf branches match") })
        #expect(oneOf.errors(.number(1.5)).isEmpty)
    }
}
