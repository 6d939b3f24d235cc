import Testing

/// `doorbell compare --scenario seed-gicv4`: the seed on a GICv4.1 host, where KVM forwards the
/// passthrough vectors as vLPIs.
@Suite struct DirectInjectionCommandTests {
    @Test("compare names direct injection and the VMAPTI for delivering strategies, and says legacy's MSI reached no ITS")
    func compareSeedGICv4() throws {
        let run = try BinaryTests.run(["compare", "--scenario", "seed-gicv4"])
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        let section = try #require(lines.firstIndex(of: "Direct injection (GICv4.1):"))
        let entries = lines[(section + 1)...].filter { $0.hasPrefix("  - seed-gicv4 / ") }
        #expect(entries.count == 6)
        for strategy in ["irqchip-relay", "vfio-override", "rmr-identity", "sw-msi-window", "vits-direct"] {
            let line = try #require(entries.first { $0.hasPrefix("  - seed-gicv4 / \(strategy): ") })
            #expect(line.contains("direct injection, 4 vectors forwarded as vLPIs (VMAPTI DeviceID 0x8 EventID 0x0 vPEID"), "\(line)")
            #expect(line.contains("virtual pending table") && line.contains("neither the host nor KVM took it"), "\(line)")
        }
        let legacy = try #require(entries.first { $0.hasPrefix("  - seed-gicv4 / legacy: ") })
        #expect(legacy.contains("but no MSI reached the ITS"))
        // The matrix row: the delivering strategies deliver all four vectors.
        let row = try #require(lines.first { $0.hasPrefix("  seed-gicv4 ") })
        #expect(row.split(separator: " ").filter { $0 == "4/4" }.count == 5)
    }

    @Test("the seed on a GICv3 host prints no direct-injection section")
    func seedHasNone() throws {
        let run = try BinaryTests.run(["compare", "--scenario", "seed"])
        #expect(run.status == 0)
        #expect(!run.stdout.contains("Direct injection"))
    }
}
