import Foundation
import Testing

/// The `doorbell` binary on the GICv2m guest: the built-in `seed-gicv2m` through `compare`, and a
/// scenario file's `guest-gic:` key through `run`, good and bad.
@Suite("doorbell on a GICv2m guest")
struct GuestGICv2mCommandTests {
    @Test("`doorbell compare --scenario seed-gicv2m`: legacy faults at stage 1, the five others deliver 4/4")
    func compare() throws {
        let run = try BinaryTests.run(["compare", "--scenario", "seed-gicv2m"])
        #expect(run.status == 0, "\(run.stderr)")
        let row = run.stdout.split(separator: "\n").first { $0.hasPrefix("  seed-gicv2m") }
        let cells = try #require(row).split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        #expect(cells == ["seed-gicv2m", "0/4", "stage-1", "4/4", "4/4", "4/4", "4/4", "4/4"])
    }

    @Test("`doorbell run` of a guest-gic: v2m file traces the guest IOVA to the v2m frame; a bad value names line and column")
    func scenarioFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-v2m-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let good = directory.appendingPathComponent("v2m.yaml")
        try "name: v2m\nvm:\n  guest-gic: v2m\n".write(to: good, atomically: true, encoding: .utf8)
        let run = try BinaryTests.run(["run", good.path, "--strategy", "vits-direct"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("0xffff_f040 → 0x0802_0040"), "the guest's stage 1 sends its MSI IOVA to the v2m frame")
        let bad = directory.appendingPathComponent("bad.yaml")
        try "name: v2m\nvm:\n  guest-gic: v4\n".write(to: bad, atomically: true, encoding: .utf8)
        let refused = try BinaryTests.run(["run", bad.path])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("bad.yaml:3:14: vm.guest-gic: unknown value 'v4'"), "\(refused.stderr)")
    }
}
