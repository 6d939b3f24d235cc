import Testing
@testable import Scenario

/// The `gic:` host key and the GICv4.1 residency events in scenario files.
@Suite struct GICv4ScenarioFileTests {
    @Test("host.gic reads v3 and v4.1, writes only when given, and round-trips with the residency events")
    func gicKeyAndEvents() throws {
        let text = """
            name: g
            platform: qemu-virt-gicv4
            host:
              gic: v4.1
            events:
              - vcpu-non-resident: {vcpu: 0}
              - fire: {vector: 1}
              - vcpu-resident: {vcpu: 0}
              - vpe-migrate: {vcpu: 1, cpu: 0}
            """
        let s = try ScenarioFile.parse(text)
        #expect(s.host.gic == .v41 && s.hostHasGICv41)
        #expect(s.events == [.vcpuNonResident(vcpu: 0), .fire(device: 0, vector: 1), .vcpuResident(vcpu: 0), .vpeMigrate(vcpu: 1, cpu: 0)])
        let written = ScenarioFile.render(s)
        #expect(written.contains("  gic: v4.1\n"))
        #expect(written.contains("vpe-migrate: {vcpu: 1, cpu: 0}"))
        #expect(try ScenarioFile.parse(written) == s)
        let v3 = try ScenarioFile.parse("name: g\nplatform: qemu-virt-gicv4\nhost:\n  gic: v3\n")
        #expect(v3.host.gic == .v3 && !v3.hostHasGICv41)
        // Without the key nothing is written, and the preset decides.
        let preset = try ScenarioFile.parse("name: g\nplatform: qemu-virt-gicv4\n")
        #expect(preset.host.gic == nil && preset.hostHasGICv41)
        #expect(!ScenarioFile.render(preset).contains("gic:"))
        #expect(!(try ScenarioFile.parse("name: g\n")).hostHasGICv41)
    }
}
