import Firmware
import Foundation
import LinuxKernel
import Testing
@testable import Scenario

/// Passthrough strategies on an SMMUv2 host (the NXP LS1028A's MMU-500): every strategy needs a
/// nesting-parent stage 2 for the vSMMU, which Linux's arm-smmu driver cannot give, so each one
/// stops at IOMMU_HWPT_ALLOC(NEST_PARENT) with a cause that says so.
@Suite("SMMUv2 host: nested strategies refuse")
struct SMMUv2ScenarioTests {
    @Test("seed on LS1028A: every strategy's setup fails at __iommu_paging_domain_alloc_flags with EOPNOTSUPP")
    func seedOnLS1028A() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/boards/freescale_fsl-ls1028a-rdb.dtb").path
        let topology = try Topology(dtb: try DeviceTreeFile.read(path: path))
        var scenario = try #require(BuiltInScenarios.named("seed"))
        scenario.platform = .deviceTree(path: path)
        let runs = ScenarioRunner.runAll(scenario, platformTopology: topology)
        #expect(!runs.isEmpty)
        for run in runs {
            let cause = try #require(run.setupFailure?.cause, "\(run.strategy)")
            #expect(cause.function == "__iommu_paging_domain_alloc_flags")
            #expect(cause.errno == .EOPNOTSUPP)
            #expect(cause.reason.contains("Linux has no nested translation for SMMUv2"))
        }
    }
}
