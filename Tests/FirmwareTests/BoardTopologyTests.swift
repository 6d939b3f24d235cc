import Testing
import Bus
@testable import Firmware

/// Board DTBs from Debian's linux-image 6.1 with interesting MSI routing. Expected values are
/// the fixture's own properties as `dtc -I dtb -O dts` prints them (quoted in each test).
@Suite("Board topologies")
struct BoardTopologyTests {
    static func topology(_ name: String) throws -> Topology { try Topology(dtb: try Fixtures.board(name)) }

    @Test("HiSilicon Hip07 D05: eight ITSs, four GICR regions with a 256 KiB stride, msi-map with mask 0xffff")
    func hip07() throws {
        let t = try Self.topology("hisilicon_hip07-d05")
        let gic = try #require(t.gic)
        // #redistributor-regions = <4>, redistributor-stride = <0x00 0x40000>.
        #expect(gic.redistributorRegions.map(\.base.rawValue) == [0x4D10_0000, 0x6D10_0000, 0x400_4D10_0000, 0x400_6D10_0000])
        #expect(gic.redistributorStride == 0x4_0000)
        // Eight msi-controller children, 256 KiB each; @c6000000 has phandle 0x53.
        #expect(gic.its.count == 8)
        #expect(gic.its.allSatisfy { $0.region.size == 0x4_0000 })
        #expect(gic.its[2].region.base == PhysicalAddress(0xC600_0000) && gic.its[2].phandle == 0x53)
        #expect(gic.its[7].region.base == PhysicalAddress(0x408_C600_0000))
        // Five arm,smmu-v3 nodes; iommu@a0040000 is status = "disabled".
        #expect(t.smmus.count == 5)
        #expect(t.smmus.map(\.enabled) == [false, true, true, true, true])

        let pcie = try #require(t.pcieHostBridges.first)
        // bus-range = <0xf8 0xff>; reg[0] = ECAM 0xaf800000 (+0x800000: 8 buses × 1 MiB).
        #expect(pcie.busRange == 0xF8...0xFF)
        #expect(pcie.configSpace == MemoryRange(base: PhysicalAddress(0xAF80_0000), size: 0x80_0000))
        // msi-map = <0xf800 0x53 0xf800 0x800>; msi-map-mask = <0xffff>.
        let map = try #require(pcie.msiMap)
        #expect(map.mask == 0xFFFF)
        #expect(map.entries == [IDMapEntry(idBase: 0xF800, phandle: 0x53, target: .its(2), outputBase: [0xF800], length: 0x800)])
        // RID f8:00.0 → DeviceID 0xf800 at its[2]; the mask drops bits above 15 first.
        #expect(map.translate(0xF800)?.id == 0xF800)
        #expect(map.translate(0x3_F8FF)?.id == 0xF8FF)
        #expect(map.lookup(0xF7FF) == .noMatch)
    }

    @Test("Marvell Armada 8040: iommu-map-mask 0x31f folds RIDs onto three 32-StreamID windows of an MMU-500")
    func armada8040() throws {
        let t = try Self.topology("marvell_armada-8040-mcbin")
        #expect(t.gic?.architecture == .v2)
        #expect(t.gic?.v2mFrames.count == 4)
        // iommu@5000000 reg = <0x100000 0x100000> under config-space ranges <0 0xf0000000 …>.
        let mmu = try #require(t.otherIOMMUs.first)
        #expect(mmu.compatible.contains("arm,mmu-500"))
        #expect(mmu.regions.first?.base == PhysicalAddress(0xF010_0000))

        let pcie = try #require(t.pcieHostBridges.first { $0.iommuMap != nil })
        #expect(pcie.path == "/cp0/pcie@f2600000")
        // iommu-map = <0x00 &smmu 0x480 0x20 0x100 &smmu 0x4a0 0x20 0x200 &smmu 0x4c0 0x20>,
        // iommu-map-mask = <0x31f>.
        let map = try #require(pcie.iommuMap)
        #expect(map.mask == 0x31F)
        #expect(map.entries.map(\.idBase) == [0x000, 0x100, 0x200])
        #expect(map.entries.map(\.outputBase) == [[0x480], [0x4A0], [0x4C0]])
        #expect(map.entries.allSatisfy { $0.target == .iommu(0) && $0.length == 0x20 })
        // 01:01.0 = 0x108 → masked 0x108 → entry 1, offset 8 → 0x4a8.
        #expect(map.translate(0x0108)?.id == 0x4A8)
        // Bus 5 (0x500) masks to 0x100: it aliases bus 1's window, as the hardware does.
        #expect(map.translate(0x0500)?.id == 0x4A0)
        // 03:00.0 = 0x300 masks to 0x300: no entry, Linux's "no translation" bypass.
        #expect(map.lookup(0x0300) == .noMatch)
        #expect(pcie.msiParent.map(\.target) == [.gicV2mFrame(0)])
    }

    @Test("Arm Juno r2: iommu-map-mask = <0> sends every RID to StreamID 0 of the MMU-401 at 0x2b500000")
    func junoMaskZero() throws {
        let t = try Self.topology("arm_juno-r2")
        let pcie = try #require(t.pcieHostBridges.first)
        let map = try #require(pcie.iommuMap)
        // iommu-map = <0x00 0x38 0x00 0x01>, iommu-map-mask = <0x00>.
        #expect(map.mask == 0)
        guard case .iommu(let index) = map.entries.first?.target else { Issue.record("target"); return }
        #expect(t.otherIOMMUs[index].regions.first?.base == PhysicalAddress(0x2B50_0000))
        #expect(t.otherIOMMUs[index].compatible == ["arm,mmu-401", "arm,smmu-v1"])
        for rid: UInt32 in [0, 0x100, 0xFFFF] { #expect(map.translate(rid)?.id == 0) }
        #expect(pcie.msiParent.first?.target == .gicV2mFrame(0))
    }

    @Test("NXP LS1028A: the ECAM RCiEP bus maps RIDs 0…13 to IDs 0x17…0x24 at both the ITS and the MMU-500")
    func ls1028a() throws {
        let t = try Self.topology("freescale_fsl-ls1028a-rdb")
        let pcie = try #require(t.pcieHostBridges.first { $0.path == "/soc/pcie@1f0000000" })
        // reg = <0x01 0xf0000000 0x00 0x100000>, bus-range = <0x00 0x00>.
        #expect(pcie.configSpace == MemoryRange(base: PhysicalAddress(0x1_F000_0000), size: 0x10_0000))
        #expect(pcie.busRange == 0...0)
        // msi-map = <0x00 0x10 0x17 0x0e>: the ITS has no #msi-cells, read as the classic 1 cell.
        #expect(t.its.first?.msiCells == nil)
        #expect(pcie.msiMap?.entries == [IDMapEntry(idBase: 0, phandle: 0x10, target: .its(0), outputBase: [0x17], length: 0xE)])
        #expect(pcie.iommuMap?.entries == [IDMapEntry(idBase: 0, phandle: 0x11, target: .iommu(0), outputBase: [0x17], length: 0xE)])
        #expect(pcie.msiMap?.translate(5)?.id == 0x1C)
        #expect(pcie.msiMap?.lookup(0xE) == .noMatch)
    }

    @Test("NXP LS1088A: placeholder iommu-map <0 &smmu 0 1> on disabled controllers, for U-Boot to rewrite")
    func ls1088aPlaceholders() throws {
        let t = try Self.topology("freescale_fsl-ls1088a-rdb")
        #expect(t.pcieHostBridges.count == 3)
        for pcie in t.pcieHostBridges {
            #expect(!pcie.enabled)
            #expect(pcie.iommuMap?.entries == [IDMapEntry(idBase: 0, phandle: 0x12, target: .iommu(0), outputBase: [0], length: 1)])
            // Only RID 0 is covered until firmware fills the map in.
            #expect(pcie.iommuMap?.translate(0)?.id == 0)
            #expect(pcie.iommuMap?.lookup(0x100) == .noMatch)
            #expect(pcie.msiParent.map(\.target) == [.its(0)])
        }
    }

    @Test("Qualcomm SM8450: 4-cell iommu-map entries aimed at a 2-cell MMU-500 are read as 1-cell (of_check_bad_map)")
    func qualcommLegacyMap() throws {
        let t = try Self.topology("qcom_sm8450-hdk")
        // apps_smmu: #iommu-cells = <0x02>; iommu-map = <0x00 0x2d 0x1c00 0x01 0x100 0x2d 0x1c01 0x01>.
        #expect(t.otherIOMMUs.first?.iommuCells == 2)
        let map = try #require(t.pcieHostBridges.first?.iommuMap)
        #expect(map.readAsLegacyOneCellEntries)
        #expect(map.entries.map(\.idBase) == [0, 0x100])
        #expect(map.entries.map(\.outputBase) == [[0x1C00], [0x1C01]])
        #expect(map.translate(0x100)?.id == 0x1C01)
        #expect(map.lookup(0x101) == .noMatch)
    }

    @Test("Rockchip RK3568: msi-map targets the GICv3 itself (MBI, mbi-ranges <0x128 0x18>), not an ITS")
    func rockchipMBI() throws {
        let t = try Self.topology("rockchip_rk3568-rock-3a")
        let gic = try #require(t.gic)
        #expect(gic.its.isEmpty && gic.isMSIController)
        #expect(gic.mbiRanges == [0x128, 0x18])
        // msi-map = <0x00 0x01 0x1000 0x1000> on pcie@fe270000: DeviceIDs 0x1000 up.
        let second = try #require(t.pcieHostBridges.first { $0.path == "/pcie@fe270000" })
        #expect(second.msiMap?.entries == [IDMapEntry(idBase: 0, phandle: 1, target: .gic, outputBase: [0x1000], length: 0x1000)])
        #expect(second.busRange == 0...15)
    }

    @Test("TI J721E: four host bridges share one ITS through disjoint DeviceID windows; an SMMUv3 nobody maps")
    func j721e() throws {
        let t = try Self.topology("ti_k3-j721e-common-proc-board")
        #expect(t.pcieHostBridges.map { $0.msiMap?.entries.first?.outputBase } == [[0], [0x1_0000], [0x2_0000], [0x3_0000]])
        #expect(t.pcieHostBridges.allSatisfy { $0.msiMap?.entries.first?.target == .its(0) })
        // iommu@36600000 under bus@100000/bus@30000000 (both with ranges): 0x3660_0000.
        #expect(t.smmus.map(\.region.base) == [PhysicalAddress(0x3660_0000)])
        #expect(t.pcieHostBridges.allSatisfy { $0.iommuMap == nil })
    }

    @Test("AMD Overdrive: the GICv2m frame's reg <0 0x80000> goes through the GIC's ranges to 0xe118_0000")
    func amdOverdriveTranslation() throws {
        let t = try Self.topology("amd_amd-overdrive-rev-b1")
        // ranges = <0x00 0x00 0x00 0xe1100000 0x00 0x100000>: the unit name says e0080000,
        // but an address is what `ranges` makes of it (DT spec §2.3.8).
        #expect(t.gic?.v2mFrames.map(\.region) == [MemoryRange(base: PhysicalAddress(0xE118_0000), size: 0x1000)])
        #expect(t.pcieHostBridges.first?.msiParent.first?.target == .gicV2mFrame(0))
        #expect(t.pcieHostBridges.first?.busRange == 0...127)
    }

    @Test("Arm FVP Base RevC: SMMUv3 whose own MSIs go to the ITS (msi-parent)")
    func fvp() throws {
        let t = try Self.topology("arm_fvp-base-revc")
        // msi-parent = <0x0b 0x10000>: the ITS has #msi-cells = <1>, so 0x10000 is the SMMU's DeviceID.
        #expect(t.smmus.first?.msiParent == [PhandleReference(phandle: 0x0B, target: .its(0), arguments: [0x1_0000])])
        let pcie = try #require(t.pcieHostBridges.first)
        #expect(pcie.iommuMap?.entries.first?.target == .smmuV3(0))
        #expect(pcie.msiMap?.entries.first?.target == .its(0))
        // bus-range = <0x00 0x01>.
        #expect(pcie.busRange == 0...1)
    }
}
