import Testing
import VMM
@testable import Scenario

/// The `vm: guest-gic:` key: read, written back only when not the default, and refused with
/// the file, line, column and key when the value is not one of `v3`, `v2m`.
@Suite("scenario files: guest-gic")
struct GuestGICScenarioFileTests {
    @Test("guest-gic: v2m reads as the GICv2m guest and renders back; the default v3 is not written")
    func roundTrip() throws {
        let parsed = try ScenarioFile.parse("name: x\nvm:\n  guest-gic: v2m\n")
        #expect(parsed.vm.guestGIC == .gicv2m)
        let text = ScenarioFile.render(parsed)
        #expect(text.contains("  guest-gic: v2m\n"))
        #expect(try ScenarioFile.parse(text).vm == parsed.vm)
        let plain = try ScenarioFile.parse("name: x\nvm:\n  guest-gic: v3\n")
        #expect(plain.vm.guestGIC == .gicv3)
        #expect(!ScenarioFile.render(plain).contains("guest-gic"))
        #expect(try ScenarioFile.parse("name: x\n").vm.guestGIC == .gicv3)
        // The built-in renders as a file that reads back as itself.
        #expect(try ScenarioFile.parse(ScenarioFile.render(BuiltInScenarios.seedGICv2m)).vm == BuiltInScenarios.seedGICv2m.vm)
    }

    @Test("an unknown guest-gic value names the file, line, column and key")
    func badValue() {
        do {
            let parsed = try ScenarioFile.parse("name: x\nvm:\n  viommu: none\n  guest-gic: v4\n", path: "gic.yaml")
            Issue.record("parsed without error: \(parsed)")
        } catch {
            #expect(error.path == "gic.yaml")
            #expect(error.line == 4)
            #expect(error.column == 14)
            #expect(error.key == "vm.guest-gic")
            #expect(error.message == "unknown value 'v4' (did you mean 'v3'? expected v3, v2m)")
        }
    }
}
