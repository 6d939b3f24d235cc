import LinuxKernel
import Report
import Testing
@testable import Scenario

/// Every setup failure and every abort of the built-in scenarios names the host function that
/// decided it, its errno and the window or ID it refused, carried as a `KernelRefusal` from the
/// place the kernel model returned the errno — not recovered from the message afterwards.
@Suite("failure causes name function, errno and window") struct FailureCauseTests {
    func runs(_ name: String) throws -> [StrategyRun] {
        ScenarioRunner.runAll(try #require(BuiltInScenarios.named(name)))
    }

    @Test("untranslated-its: iopt_table_enforce_dev_resv_regions refuses SW_MSI beside a hardware MSI region")
    func untranslatedITS() throws {
        let run = try #require(try runs("untranslated-its").first { $0.strategy == .legacy })
        let cause = try #require(run.setupFailure?.cause)
        #expect(cause.function == "iopt_table_enforce_dev_resv_regions")
        #expect(cause.errno == .EINVAL)
        #expect(cause.reason.contains("SW_MSI window 0x0800_0000–0x080f_ffff"))
        #expect(cause.reason.contains("hardware MSI region 0x0809_0000–0x0809_ffff"))
        let explanation = try #require(run.explanation)
        #expect(explanation.contains("because iopt_table_enforce_dev_resv_regions returned EINVAL"))
    }

    @Test("ram-at-msi-window: iopt_check_iova refuses guest RAM over the SW_MSI window")
    func ramAtMSIWindow() throws {
        let run = try #require(try runs("ram-at-msi-window").first { $0.strategy == .legacy })
        let cause = try #require(run.setupFailure?.cause)
        #expect(cause.function == "iopt_check_iova")
        #expect(cause.errno == .EINVAL)
        #expect(cause.subject.hasPrefix("IOVA 0x0800_0000–"))
        #expect(cause.reason.contains("SW_MSI window 0x0800_0000–0x080f_ffff"))
    }

    @Test("sw-msi-window on untranslated-its: iommufd_option_sw_msi_test names the overlapped region")
    func swMSIOption() throws {
        let run = try #require(try runs("untranslated-its").first { $0.strategy == .swMSIWindow })
        let cause = try #require(run.setupFailure?.cause)
        #expect(cause.function == "iommufd_option_sw_msi_test")
        #expect(cause.errno == .EADDRINUSE)
        #expect(cause.reason.contains("0x0809_0000–0x0809_ffff"))
    }

    @Test("two-its on v7.0: the abort names arm_smmu_attach_prepare_vmaster, ENOENT and the root port's StreamID")
    func twoITSAbort() throws {
        var scenario = try #require(BuiltInScenarios.named("two-its"))
        scenario.host.kernel = .v7_0
        let run = ScenarioRunner.run(scenario, strategy: .rmrIdentity)
        let first = try #require(run.firstFailure)
        let cause = try #require(first.cause)
        #expect(cause.function == "arm_smmu_attach_prepare_vmaster")
        #expect(cause.errno == .ENOENT)
        #expect(cause.subject.contains("StreamID 0xf8"))
        #expect(try #require(run.explanation).contains("because arm_smmu_attach_prepare_vmaster returned ENOENT"))
    }

    @Test("every setup failure of every built-in scenario and strategy carries a cause", arguments: BuiltInScenarios.all.map(\.name))
    func everySetupFailure(_ name: String) throws {
        for run in try runs(name) {
            guard let setup = run.setupFailure else { continue }
            let cause = try #require(setup.cause, "\(name)/\(run.strategy.rawValue): \(setup)")
            #expect(!cause.function.isEmpty && !cause.subject.isEmpty)
            #expect(setup.error.contains(cause.errno.name), "the ioctl's errno is the deciding function's")
        }
    }

    @Test("every failing run of every built-in scenario names the deciding function: a refusal, or the function that chose a faulting address",
          arguments: BuiltInScenarios.all.map(\.name))
    func everyFailingRun(_ name: String) throws {
        for run in try runs(name) where !run.allDelivered {
            let label = "\(name)/\(run.strategy.rawValue)"
            if let setup = run.setupFailure {
                #expect(setup.cause != nil, "\(label)")
                continue
            }
            let first = try #require(run.firstFailure, "\(label)")
            let named = first.cause?.function ?? first.programmedBy?.function
            #expect(named != nil, "\(label): \(first.verdict)")
            if let named { #expect(try #require(run.explanation).contains(named), "\(label)") }
        }
    }

    @Test("seed legacy: iommu_dma_compose_msi_msg left the physical doorbell, and the explanation names the StreamID")
    func seedLegacy() throws {
        let run = try #require(try runs("seed").first { $0.strategy == .legacy })
        let first = try #require(run.firstFailure)
        #expect(first.programmedBy?.function == "iommu_dma_compose_msi_msg")
        #expect(first.programmedBy?.detail.contains("0x0809_0040") == true)
        #expect(try #require(run.explanation).contains("StreamID 0x8"))
    }

    @Test("compare's table is followed by one cause line per scenario and sentence, naming function, errno and window")
    func compareTableCauses() throws {
        let names = ["untranslated-its", "two-its", "ram-at-msi-window"]
        let results = try names.map { name in
            let scenario = try #require(BuiltInScenarios.named(name))
            return (scenario, ScenarioRunner.runAll(scenario))
        }
        let text = ScenarioReport.comparison(results, format: .table)
        #expect(text.contains("\nWhy the failing cells fail:\n"))
        #expect(text.contains("  - untranslated-its / legacy, irqchip-relay, vfio-override, rmr-identity, vits-direct: the setup failed at VMM: "
            + "VFIO_DEVICE_ATTACH_IOMMUFD_PT(parent): EINVAL (22), because iopt_table_enforce_dev_resv_regions returned EINVAL"))
        #expect(text.contains("  - two-its / irqchip-relay, vfio-override, vits-direct: the setup failed at VMM: IOMMUFD_CMD_IOAS_MAP_MSI(0x0809_0000): EEXIST (17)"))
        #expect(text.contains("  - ram-at-msi-window / legacy, irqchip-relay, vfio-override, rmr-identity, vits-direct: the setup failed at VMM: IOMMU_IOAS_MAP: EINVAL (22), "
            + "because iopt_check_iova returned EINVAL for IOVA 0x0800_0000–"))
        #expect(text.contains("  - two-its / legacy (0/8 delivered): the host programmed 0x0809_0040 (iommu_dma_compose_msi_msg"))
    }
}
