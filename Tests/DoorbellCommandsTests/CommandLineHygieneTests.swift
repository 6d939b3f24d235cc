import Foundation
import Testing

/// What a new user types wrong, and what the binary answers: usage errors (exit 64) that name
/// the word meant, options that do what they say, and nothing written unasked.
@Suite("command-line hygiene") struct CommandLineHygieneTests {
    typealias R = BinaryTests

    @Test("--version prints the version string defined once in Swift")
    func version() throws {
        let run = try R.run(["--version"])
        #expect(run.status == 0)
        #expect(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
    }

    @Test("a mistyped subcommand is a usage error naming the command meant, not the default command's usage")
    func mistypedSubcommand() throws {
        let run = try R.run(["tracee"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("unknown command 'tracee'; did you mean 'trace'?"))
        #expect(!run.stderr.contains("doorbell strategies"))
        let far = try R.run(["zzzzzz"])
        #expect(far.status == 64)
        #expect(far.stderr.contains("unknown command 'zzzzzz' (commands:"))
    }

    @Test("--scenario, --platform and --strategy get a did-you-mean", arguments: [
        (["strategies", "--scenario", "sed"], "did you mean 'seed'?"),
        (["msi", "--platform", "qemu-virt-tw0-its"], "did you mean 'qemu-virt-two-its'?"),
        (["compare", "--platform", "qemu-virt-tw0-its"], "did you mean 'qemu-virt-two-its'?"),
        (["trace", "--scenario", "seed", "--strategy", "legacyy"], "did you mean 'legacy'?"),
        (["explore", "--strategy", "vits-drect"], "did you mean 'vits-direct'?"),
    ])
    func didYouMean(_ arguments: [String], _ expected: String) throws {
        let run = try R.run(arguments)
        #expect(run.status == 64)
        #expect(run.stderr.contains(expected), "\(run.stderr)")
    }

    @Test("host --untranslated-its is honoured: the host reserves the ITS page as a hardware MSI region, as on the preset")
    func hostUntranslatedITS() throws {
        let flag = try R.run(["host", "--untranslated-its"])
        let plain = try R.run(["host"])
        #expect(flag.status == 0 && plain.status == 0)
        #expect(flag.stdout.contains("reserved 0x0000000008090000 0x000000000809ffff msi"))
        #expect(!plain.stdout.contains("reserved 0x0000000008090000 0x000000000809ffff msi"))
    }

    @Test("walk --help shows granule defaults as 4K and no empty value lines")
    func walkHelp() throws {
        let run = try R.run(["walk", "--help"])
        #expect(!run.stdout.contains("(default: 12)"))
        #expect(run.stdout.contains("default: 4K"))
        #expect(!run.stdout.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces).hasSuffix(" -") })
    }

    @Test("the footer suggests tracing the scenario that was run")
    func footer() throws {
        let run = try R.run(["strategies", "--scenario", "msi"])
        #expect(run.stdout.contains("doorbell trace --scenario msi --strategy <id>"))
    }

    @Test("trace FILE takes the strategy a file names; a file running several needs --strategy")
    func traceStrategyFromFile() throws {
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Examples/seed.yaml")
        let text = try String(contentsOf: examples, encoding: .utf8)
        let body = text.components(separatedBy: "\nexpect").first ?? text
        let one = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-trace-one-\(getpid()).yaml")
        defer { try? FileManager.default.removeItem(at: one) }
        try body.replacingOccurrences(of: "strategy: all", with: "strategy: rmr-identity").write(to: one, atomically: true, encoding: .utf8)
        let run = try R.run(["trace", one.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.hasPrefix("Doorbell trace: seed, strategy rmr-identity"))
        let all = try R.run(["trace", examples.path])
        #expect(all.status == 64)
        #expect(all.stderr.contains("give --strategy ID: seed runs every strategy"))
    }

    @Test("explore writes no replay file without --out")
    func exploreWritesNothingUnasked() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-cwd-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let process = Process()
        process.executableURL = R.binary
        process.arguments = ["explore", "--strategy", "vfio-override", "--depth", "1"]
        process.currentDirectoryURL = directory
        let out = Pipe()
        process.standardOutput = out
        process.standardError = Pipe()
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(stdout.contains("give --out DIR"))
        #expect(!stdout.contains("replay: doorbell run"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }
}
