import Foundation
import Testing

/// Runs the built `doorbell` binary as a user would and checks its output and exit status.
/// The golden file is the exact expected output of `doorbell` with no arguments; regenerate it
/// with `DOORBELL_UPDATE_GOLDEN=1 swift test --filter BinaryTests` after an intended change, and
/// explain the difference in the commit.
@Suite("doorbell binary")
struct BinaryTests {
    struct Run { var status: Int32; var stdout: String; var stderr: String }

    static var binary: URL {
        // The test bundle sits in the build products directory next to the executable.
        let products = Bundle.allBundles.first { $0.bundlePath.hasSuffix(".xctest") }?.bundleURL.deletingLastPathComponent()
            ?? Bundle.main.bundleURL
        return products.appendingPathComponent("doorbell")
    }

    static func run(_ arguments: [String], environment extra: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        // Outputs are compared byte for byte: the user's COLUMNS must not reflow them.
        var environment = ProcessInfo.processInfo.environment
        environment["COLUMNS"] = nil
        process.environment = environment.merging(extra) { _, new in new }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    static var goldenDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    }

    func checkGolden(_ name: String, _ arguments: [String]) throws {
        let run = try Self.run(arguments)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let file = Self.goldenDirectory.appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["DOORBELL_UPDATE_GOLDEN"] == "1" {
            try run.stdout.write(to: file, atomically: true, encoding: .utf8)
        }
        let golden = try String(contentsOf: file, encoding: .utf8)
        #expect(run.stdout == golden, "output of doorbell \(arguments.joined(separator: " ")) differs from Golden/\(name)")
    }

    @Test("`doorbell` with no arguments prints the strategy table for the seed and why the failing ones fail, byte for byte")
    func defaultOutput() throws {
        try checkGolden("strategies.txt", [])
    }

    @Test("`doorbell seed` prints the three guest shapes and the nested failure step by step, byte for byte")
    func seedOutput() throws {
        try checkGolden("seed.txt", ["seed"])
    }

    @Test("`doorbell compare --format json` over every built-in scenario, byte for byte (schema 2)")
    func compareJSON() throws {
        try checkGolden("compare.json", ["compare", "--format", "json"])
    }

    static var examples: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Examples")
    }

    @Test("`doorbell run` exits 0 when the file's expectations hold and 1 when one does not")
    func runExitStatus() throws {
        let seed = try Self.run(["run", Self.examples.appendingPathComponent("seed.yaml").path])
        #expect(seed.status == 0, "\(seed.stdout)\(seed.stderr)")
        #expect(seed.stdout.contains("Expectations: all"))
        let wrong = """
        name: wrong
        strategy: legacy
        expect:
          - delivered: all
        """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-wrong-\(getpid()).yaml")
        try wrong.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let failed = try Self.run(["run", file.path])
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("legacy: expected all vectors delivered, observed 0/4 delivered"))
    }

    @Test("`doorbell explore` exits 1 on a violation with replayable minimal counterexamples, 0 when none")
    func explore() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-explore-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let broken = try Self.run(["explore", "--strategy", "vfio-override", "--depth", "1", "--out", out])
        #expect(broken.status == 1, "\(broken.stderr)")
        #expect(broken.stdout.split(separator: "\n").contains { $0.contains("host-reactivate") && $0.contains("breaks: stability") })
        let replay = try #require(broken.stdout.split(separator: "\n").first { $0.contains("replay: doorbell run ") })
        let file = String(replay.split(separator: " ").last ?? "")
        let rerun = try Self.run(["run", file])
        #expect(rerun.status == 1)
        #expect(rerun.stdout.contains("expected every invariant to hold"))
        let clean = try Self.run(["explore", "--strategy", "rmr-identity", "--depth", "1", "--out", out])
        #expect(clean.status == 0, "\(clean.stdout)")
        #expect(!clean.stdout.contains("breaks"))
    }

    @Test("compare on a .dtb platform as Markdown; run --strategy narrows a file; trace reads a file")
    func optionsAndFiles() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
        let dtb = fixtures.appendingPathComponent("qemu-virt/virt-smmu.dtb").path
        let markdown = try Self.run(["compare", "--platform", dtb, "--scenario", "seed", "--format", "markdown"])
        #expect(markdown.status == 0, "\(markdown.stderr)")
        #expect(markdown.stdout.hasPrefix("| scenario | legacy | irqchip-relay |"))
        #expect(markdown.stdout.contains("| seed | 0/4 stage-1 | 4/4 |"))
        let seed = Self.examples.appendingPathComponent("seed.yaml").path
        let one = try Self.run(["run", seed, "--strategy", "vits-direct"])
        #expect(one.status == 0)
        #expect(one.stdout.contains("vits-direct") && !one.stdout.contains("  legacy "))
        let traced = try Self.run(["trace", seed, "--strategy", "rmr-identity", "--vector", "3"])
        #expect(traced.status == 0, "\(traced.stderr)")
        #expect(traced.stdout.contains("MSI-X vector 3") && traced.stdout.contains("Outcome: delivered"))
        let badVector = try Self.run(["trace", seed, "--strategy", "legacy", "--vector", "4"])
        #expect(badVector.status == 64)
        #expect(badVector.stderr.contains("--vector 4 does not exist"))
    }

    @Test("a scenario file with a mistake is an unusable input (exit 1) naming the line, column and key")
    func runBadFile() throws {
        let bad = """
        name: bad
        vm:
          viommu: smmu
        """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-bad-\(getpid()).yaml")
        try bad.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try Self.run(["run", file.path])
        #expect(run.status == 1)
        #expect(run.stderr.contains(":3:"))
        #expect(run.stderr.contains("viommu"))
    }

    @Test("`doorbell trace` follows one MSI from the device to the guest handler; mermaid is a sequence diagram")
    func trace() throws {
        let text = try Self.run(["trace", "--scenario", "seed", "--strategy", "rmr-identity", "--vector", "1"])
        #expect(text.status == 0, "\(text.stderr)")
        for step in ["STE fetch", "S1 L3 descriptor", "S2 L3 descriptor", "ITE lookup", "irqfd injection", "handler", "Outcome: delivered"] {
            #expect(text.stdout.contains(step), "missing \(step)")
        }
        let legacy = try Self.run(["trace", "--scenario", "seed", "--strategy", "legacy"])
        #expect(legacy.stdout.contains("F_TRANSLATION"))
        #expect(legacy.stdout.contains("Outcome: stage-1"))
        let mermaid = try Self.run(["trace", "--scenario", "seed", "--strategy", "vits-direct", "--format", "mermaid"])
        #expect(mermaid.stdout.hasPrefix("sequenceDiagram\n"))
        #expect(mermaid.stdout.contains("SMMU->>"))
        let both = try Self.run(["trace", "--strategy", "legacy"])
        #expect(both.status == 64)
    }

    @Test("`doorbell msi` prints the nested MSI path on qemu-virt, byte for byte")
    func msiOutput() throws {
        try checkGolden("doorbell.txt", ["msi"])
    }

    @Test("`doorbell walk` prints the nested walk, byte for byte")
    func walkOutput() throws {
        try checkGolden("walk.txt", ["walk"])
    }

    @Test("usage errors exit 64 and name the problem")
    func usageErrors() throws {
        let badVector = try Self.run(["msi", "--vector", "9"])
        #expect(badVector.status == 64)
        #expect(badVector.stderr.contains("--vector must be 0…3"))
        let badPlatform = try Self.run(["msi", "--platform", "no-such-board"])
        #expect(badPlatform.status == 64)
        #expect(badPlatform.stderr.contains("unknown platform 'no-such-board'"))
        let badAddress = try Self.run(["walk", "--address", "0xZZ"])
        #expect(badAddress.status == 64)
    }

    @Test("a truncated DTB is refused with an error that names the offset, exit 1")
    func truncatedDTB() throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/qemu-virt/virt-smmu.dtb")
        let bytes = try Data(contentsOf: source)
        let truncated = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-truncated-\(getpid()).dtb")
        try bytes.prefix(1000).write(to: truncated)
        defer { try? FileManager.default.removeItem(at: truncated) }
        let run = try Self.run(["topology", "--platform", truncated.path])
        #expect(run.status == 1)
        #expect(run.stderr.contains("offset"))
    }

    @Test("`doorbell topology` on the GICv2 dump lists the GICv2m frame the msi-map names and is supported")
    func topologyGICv2m() throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/qemu-virt/virt-smmu-gic2.dtb")
        let run = try Self.run(["topology", "--platform", source.path])
        #expect(run.status == 0)
        #expect(run.stdout.contains("msi-map: <0x0 v2m[0] 0x0 0x1_0000>"))
        #expect(run.stdout.contains("verdict: supported"))
    }
}
