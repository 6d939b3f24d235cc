import Testing

/// `--kernel RELEASE` on the commands that run strategies.
@Suite("doorbell --kernel")
struct KernelOptionTests {
    /// On v6.14 every strategy runs without iommufd's native sw_msi, so the merged fix
    /// (rmr-identity) does not deliver; the line under the table names the one release.
    @Test func strategiesOnOneRelease() throws {
        let run = try BinaryTests.run(["strategies", "--kernel", "v6.14"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(run.stdout.contains("host kernel: v6.14 (legacy, irqchip-relay, vfio-override, rmr-identity, sw-msi-window, vits-direct)\n"))
        let row = run.stdout.split(separator: "\n").first { $0.hasPrefix("  rmr-identity ") }
        #expect(row?.contains("0/4 ✗") == true)
        #expect(!run.stdout.contains("choose one with --kernel"))
    }

    /// JSON carries the release per run; an unknown release is a usage error naming the choices.
    @Test func jsonAndMistakes() throws {
        let json = try BinaryTests.run(["strategies", "--kernel", "v6.19", "--format", "json"])
        #expect(json.status == 0)
        #expect(json.stdout.components(separatedBy: "\"kernel\" : \"v6.19\"").count - 1 == 6)
        let bad = try BinaryTests.run(["run", "--kernel", "v5.10", "x.yaml"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("v6.14") && bad.stderr.contains("v6.19"))
    }
}
