import LinuxKernel
import Testing
import Report
@testable import Scenario

/// Each strategy on each named host release. The expectations follow from the one switch the
/// seed's MSI path crosses, `KernelBehaviour.nativeSWMSI` (commit 40f5175d0eb7, v6.15): without
/// it the nested domain has no MSI cookie, so nothing maps a doorbell in the stage-2 parent and
/// the host composes the physical ITS address. Strategies whose guest IOVA reaches the device
/// through VFIO (irqchip-relay's msi_desc preset, vfio-override's rewrite) do not need the
/// switch; those that rely on iommufd's sw_msi (rmr-identity, sw-msi-window) or on its
/// per-vector IOVA (vits-direct) do.
@Suite struct KernelReleaseScenarioTests {
    static let releases = KernelConfiguration.Version.allCases

    @Test(arguments: releases)
    func seedUnderEachRelease(_ release: KernelConfiguration.Version) {
        var seed = BuiltInScenarios.seed
        seed.host.kernel = release
        let runs = ScenarioRunner.runAll(seed)
        for run in runs {
            let needsNativeSWMSI: Set<Strategy> = [.rmrIdentity, .swMSIWindow, .vitsDirect]
            let delivers = run.strategy != .legacy
                && (!needsNativeSWMSI.contains(run.strategy) || KernelConfiguration(version: release).has(.nativeSWMSI))
            #expect((run.deliveredCount == run.firedCount && run.firedCount > 0) == delivers,
                    "\(run.strategy.rawValue) on \(release.rawValue): \(run.deliveredCount)/\(run.firedCount)")
        }
        // legacy on v6.14 programs the physical doorbell (no cookie anywhere); from v6.15 the
        // host's sw_msi maps the doorbell at the SW_MSI window and programs 0x0800_0040.
        let legacy = runs.first { $0.strategy == .legacy }?.outcomes.first?.programmedAddress
        #expect(legacy == (release >= .v6_15 ? 0x0800_0040 : 0x0809_0040))
    }

    /// Without a release in the scenario, each strategy runs on its base release; with one,
    /// every strategy runs on it.
    @Test func baseReleasesAndOverride() {
        #expect(Strategy.allCases.map { $0.hostRelease(HostOptions()) } == [.v6_14, .v6_14, .v6_14, .v6_15, .v6_15, .v6_15])
        #expect(Strategy.allCases.allSatisfy { $0.hostRelease(HostOptions(kernel: .v6_19)) == .v6_19 })
        let seed = BuiltInScenarios.seed
        let runs = ScenarioRunner.runAll(seed)
        #expect(ReportText.hostKernels(seed, runs)
                == "host kernel: v6.14 (legacy, irqchip-relay, vfio-override), v6.15 (rmr-identity, sw-msi-window, vits-direct)")
    }

    /// `host: kernel:` reads every named release, writes it back, and names the line of a typo.
    @Test func scenarioKey() throws {
        for release in Self.releases {
            let parsed = try ScenarioFile.parse("name: x\nhost:\n  kernel: \(release.rawValue)\n")
            #expect(parsed.host.kernel == release)
            #expect(try ScenarioFile.parse(ScenarioFileWriter.render(parsed)) == parsed)
        }
        #expect(try ScenarioFile.parse("name: x").host.kernel == nil)
        do {
            _ = try ScenarioFile.parse("name: x\nhost:\n  kernel: v6.16\n", path: "k.yaml")
            Issue.record("v6.16 is not a named release")
        } catch {
            #expect(error.line == 3)
            #expect(error.description.contains("v6.14, v6.15, v6.19, v7.0"))
        }
    }
}
