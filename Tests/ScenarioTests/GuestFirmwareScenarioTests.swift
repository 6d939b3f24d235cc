import Testing
import VMM
@testable import Scenario

/// `vm.firmware`: ACPI by default with an accelerated vSMMU (QEMU needs it for accel=on), the
/// device tree otherwise; and what it changes for the RMR of `rmr-identity`.
@Suite("guest firmware") struct GuestFirmwareScenarioTests {
    @Test("defaults follow the vIOMMU; an explicit default equals the left-out one; the writer states it and the reader takes it back")
    func fileKey() throws {
        #expect(VMOptions().firmware == .acpi)
        #expect(VMOptions(viommu: .none).firmware == .dt)
        #expect(VMOptions(firmware: .acpi) == VMOptions())
        #expect(VMOptions(firmware: .dt) != VMOptions())
        let dt = try ScenarioFile.parse("name: x\nvm:\n  firmware: dt\n")
        #expect(dt.vm.firmware == .dt && dt.vm.viommu == .acceleratedSMMUv3)
        #expect(try ScenarioFile.parse("name: x\nvm:\n  viommu: none\n").vm.firmware == .dt)
        let text = ScenarioFile.render(dt)
        #expect(text.contains("  firmware: dt\n"))
        #expect(try ScenarioFile.parse(text) == dt)
        #expect(ScenarioFile.render(ScenarioDescription(name: "x")).contains("  firmware: acpi\n"))
        #expect(throws: ScenarioFileError.self) { try ScenarioFile.parse("name: x\nvm:\n  firmware: uefi\n") }
    }

    @Test("rmr-identity with firmware dt: QEMU's device tree has no RMR, so the seed's vectors fault in the guest's stage 1")
    func deviceTreeFaults() {
        var scenario = BuiltInScenarios.seed
        scenario.vm.firmware = .dt
        let run = ScenarioRunner.run(scenario, strategy: .rmrIdentity)
        #expect(run.deliveredCount == 0 && !run.outcomes.isEmpty)
        #expect(run.firstFailure?.verdict.failurePoint == .stage1)
    }

    @Test("rmr-identity with the default ACPI guest: the IORT RMR maps the window 1:1 and the seed delivers 4/4")
    func acpiDelivers() {
        let run = ScenarioRunner.run(BuiltInScenarios.seed, strategy: .rmrIdentity)
        #expect(BuiltInScenarios.seed.vm.firmware == .acpi)
        #expect(run.allDelivered && run.deliveredCount == 4)
    }
}
