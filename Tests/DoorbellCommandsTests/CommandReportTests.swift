import Testing
import Bus
import Machine
import SMMUv3
import Report
@testable import DoorbellCommands

/// The reports behind `doorbell walk` and `doorbell msi`, checked against what the architecture
/// says each configuration must cost and deliver.
@Suite("doorbell walk / msi reports")
struct CommandReportTests {
    func platform(_ name: String = "qemu-virt") throws -> PlatformOptions {
        try PlatformOptions.parse(["--platform", name])
    }

    @Test("the default nested walk costs 1 STE, 1 CD, 4 S1 and 6 × 2 S2 reads; the repeat costs none")
    func nestedWalkCost() throws {
        // Stage 1: 4K granule, 48-bit IOVA → 4 levels (L0–L3), 4 reads. Stage 2: 40-bit IPA, 4K →
        // Linux starts at L1 with 2 concatenated tables, and guest RAM is mapped with 2 MiB
        // blocks at L2, so each S2 walk reads L1 + L2 = 2 descriptors. S2 walks: the CD's IPA,
        // TTB0 and the 3 next-level S1 tables, and the output IPA = 6. (The 4+4-level case with
        // exactly 24 reads is pinned in SMMUv3Tests/TranslationCostTests.)
        let report = try WalkReport.make(platform: platform(), stage: .nested, granule: .size4K, stage2Granule: .size4K, address: 0x1_2345_6040)
        #expect(WalkGeometry.linuxStage2(granule: .size4K, inputSize: 40).startLevel == 1)
        #expect(report.firstCounters.steFetches == 1)
        #expect(report.firstCounters.cdFetches == 1)
        #expect(report.firstCounters.stage1DescriptorReads == 4)
        #expect(report.firstCounters.stage2DescriptorReads == 6 * 2)
        #expect(report.secondCounters.tlbHits == 1)
        #expect(report.secondCounters.stage1DescriptorReads + report.secondCounters.stage2DescriptorReads == 0)
        // The printed cost is the journal's: the same numbers, per level too.
        #expect(report.firstCost.totalReads == report.firstCounters.totalReads && report.firstCost.tlbMisses == 1)
        #expect(report.firstCost.perLevelText == "S1 L0 ×1, S1 L1 ×1, S1 L2 ×1, S1 L3 ×1, S2 L1 ×6, S2 L2 ×6")
        #expect(report.secondCost.tlbHits == 1 && report.secondCost.totalReads == 0)
        // IPA 0x4080_0000 is 8 MiB into guest RAM, which stage 2 backs from PA 0x6000_0000.
        #expect(report.landedAt == PhysicalAddress(0x6080_0040))
        #expect(!report.text.contains("expected"))
    }

    @Test("every stage and granule lands the write where its tables say", arguments: [WalkCommand.Stage.s1, .s2, .nested], Granule.allCases)
    func walkLands(stage: WalkCommand.Stage, granule: Granule) throws {
        let report = try WalkReport.make(platform: platform(), stage: stage, granule: granule, stage2Granule: granule, address: 0x1_2345_6040)
        let expected: UInt64 = switch stage {
        case .s1, .s2: 0x5000_0000 + (0x1_2345_6040 & (granule.size - 1))
        case .nested: 0x6080_0000 + (0x1_2345_6040 & (granule.size - 1))
        }
        #expect(report.landedAt == PhysicalAddress(expected), "stage \(stage) granule \(granule)")
        #expect(report.secondCounters.tlbHits == 1)
    }

    @Test("the MSI is delivered as LPI 8192 + vector under bypass, stage 1 and nested translation", arguments: MSICommand.Translation.allCases)
    func msiDelivers(translation: MSICommand.Translation) throws {
        let report = try MSIReport.make(platform: platform(), translation: translation, vector: 3, address: nil)
        #expect(report.acknowledged == 8195)
        #expect(report.status == .completed)
        #expect(report.text.contains("result: delivered: CPU 0 took LPI 8195"))
    }

    @Test("a message address stage 1 does not map is aborted by the SMMU and no LPI is taken")
    func msiUnmappedAddress() throws {
        let report = try MSIReport.make(platform: platform(), translation: .s1, vector: 0, address: 0x1234_0040)
        #expect(report.acknowledged == 1023)
        #expect(report.status == .aborted)
        #expect(report.text.contains("F_TRANSLATION"))
    }

    @Test("on the untranslated-ITS preset the physical doorbell is programmed and delivered, even with nested translation")
    func msiUntranslatedITS() throws {
        let report = try MSIReport.make(platform: platform("qemu-virt-untranslated-its"), translation: .nested, vector: 1, address: nil)
        #expect(report.acknowledged == 8193)
        #expect(report.text.contains("MSI-X vector 1: address 0x0809_0040"))
    }

    @Test("a QEMU dump without an SMMU delivers through the direct path", arguments: ["virt-noiommu"])
    func msiWithoutSMMU(name: String) throws {
        let path = Fixtures.path("qemu-virt/\(name).dtb")
        let report = try MSIReport.make(platform: platform(path), translation: .nested, vector: 2, address: nil)
        #expect(report.acknowledged == 8194)
        #expect(report.text.contains("no SMMU translates RID 0x0008"))
    }
}

enum Fixtures {
    static func path(_ relative: String) -> String {
        let file = "\(#filePath)"
        let tests = file.split(separator: "/", omittingEmptySubsequences: false).dropLast(2).joined(separator: "/")
        return tests + "/Fixtures/" + relative
    }
}
