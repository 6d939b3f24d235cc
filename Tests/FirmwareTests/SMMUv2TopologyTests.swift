import Testing
import Bus
@testable import Firmware

/// Arm SMMUv1/v2 nodes (binding `arm,smmu.yaml`) as the topology records them for the SMMUv2
/// model and the arm-smmu driver: the compatibles Linux binds and `stream-match-mask`.
@Suite("SMMUv2 topology")
struct SMMUv2TopologyTests {
    @Test("LS1028A: /soc/iommu@5000000 is an arm,mmu-500 with stream-match-mask 0x7c00 and #iommu-cells 1")
    func ls1028a() throws {
        let t = try Topology(dtb: try Fixtures.board("freescale_fsl-ls1028a-rdb"))
        let mmu = try #require(t.otherIOMMUs.first { $0.path == "/soc/iommu@5000000" })
        // compatible = "arm,mmu-500"; reg = <0x00 0x5000000 0x00 0x800000>; stream-match-mask = <0x7c00>.
        #expect(mmu.isArmSMMUv2)
        #expect(mmu.streamMatchMask == 0x7C00)
        #expect(mmu.iommuCells == 1)
        #expect(mmu.regions == [MemoryRange(base: PhysicalAddress(0x500_0000), size: 0x80_0000)])
    }

    @Test("Qualcomm SM8450: the qcom,sm8450-smmu-500 / arm,mmu-500 node is an Arm SMMU with 2 iommu cells and no mask")
    func sm8450() throws {
        let t = try Topology(dtb: try Fixtures.board("qcom_sm8450-hdk"))
        let arm = t.otherIOMMUs.filter(\.isArmSMMUv2)
        #expect(!arm.isEmpty)
        #expect(arm.allSatisfy { $0.compatible.contains("arm,mmu-500") })
        #expect(arm.contains { $0.iommuCells == 2 && $0.streamMatchMask == nil })
    }

    @Test("only the compatibles arm_smmu_of_match binds as ARM_SMMU_V2 count; SMMUv1, MMU-400 and MMU-401 do not")
    func compatibles() {
        func node(_ compatible: [String]) -> IOMMUDescription {
            IOMMUDescription(path: "/x", compatible: compatible, regions: [], iommuCells: 1, phandle: nil, enabled: true)
        }
        #expect(!node(["arm,mmu-401"]).isArmSMMUv2)
        #expect(!node(["arm,mmu-400"]).isArmSMMUv2)
        #expect(!node(["arm,smmu-v1"]).isArmSMMUv2)
        #expect(node(["arm,smmu-v2"]).isArmSMMUv2)
        #expect(node(["cavium,smmu-v2"]).isArmSMMUv2)
        #expect(node(["nvidia,tegra194-smmu", "nvidia,smmu-500"]).isArmSMMUv2)
        #expect(!node(["arm,smmu-v3"]).isArmSMMUv2)
        #expect(!node(["rockchip,iommu"]).isArmSMMUv2)
    }

    @Test("arm_smmu_of_match's version: the node's first listed compatible wins (\"arm,mmu-401\", \"arm,smmu-v1\" is ARM_SMMU_V1_64K)")
    func versions() {
        func node(_ compatible: [String]) -> IOMMUDescription {
            IOMMUDescription(path: "/x", compatible: compatible, regions: [], iommuCells: 1, phandle: nil, enabled: true)
        }
        #expect(node(["arm,mmu-401", "arm,smmu-v1"]).armSMMUVersion == .v1With64KGranule)
        #expect(node(["arm,mmu-400", "arm,smmu-v1"]).armSMMUVersion == .v1)
        #expect(node(["arm,smmu-v1"]).armSMMUVersion == .v1)
        #expect(node(["qcom,sm8450-smmu-500", "arm,mmu-500"]).armSMMUVersion == .v2)
        #expect(node(["rockchip,iommu"]).armSMMUVersion == nil)
        #expect(node(["arm,mmu-401"]).isArmSMMU && !node(["arm,smmu-v3"]).isArmSMMU)
    }

    @Test("Juno r2: iommu@2b500000 is an MMU-401 with #global-interrupts 1 and two interrupts (one context interrupt)")
    func junoR2() throws {
        let t = try Topology(dtb: try Fixtures.board("arm_juno-r2"))
        let mmu = try #require(t.otherIOMMUs.first { $0.path == "/iommu@2b500000" })
        // interrupts = <GIC_SPI 40 4>, <GIC_SPI 40 4>; #global-interrupts = <1>; reg size 0x10000.
        #expect(mmu.armSMMUVersion == .v1With64KGranule)
        #expect(mmu.globalInterrupts == 1)
        #expect(mmu.interruptCount == 2)
        #expect(mmu.regions == [MemoryRange(base: PhysicalAddress(0x2B50_0000), size: 0x1_0000)])
        // The GPU's MMU-400 is disabled in this tree.
        let gpu = try #require(t.otherIOMMUs.first { $0.path == "/iommu@2b400000" })
        #expect(gpu.armSMMUVersion == .v1 && !gpu.enabled)
    }
}
