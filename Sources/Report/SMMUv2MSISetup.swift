import Bus
import Machine
import Testbed

/// What `doorbell msi` programs into an Arm SMMUv1/v2 (MMU-500, MMU-401) for the function's
/// stream: bypass (an SMR whose S2CR bypasses), the DMA domain's single stage (`s1`: an SMR →
/// S2CR → a stage-1 context bank whose TTBR0 maps the MSI IOVA page onto the doorbell page, as
/// Linux's arm-smmu driver with dma-iommu's MSI cookie does; on an SMMU without stage 1, such as
/// the MMU-401, the stage-2 bank Linux allocates instead), or nested, which is refused: the
/// SMMUv2 architecture has nested context banks (CBAR.TYPE 3) but neither Linux's arm-smmu
/// driver nor this model uses them.
enum SMMUv2MSISetup {
    static func program(_ bm: BareMetal, smmu: Int, streamID: StreamID, translation: MSIReport.Translation,
                        doorbellPage: UInt64, page: String = "the ITS translation page", attributes: PageAttributes) throws -> [String] {
        try bm.resetSMMUv2(smmu)
        let configuration = bm.machine.smmuV2s[smmu].configuration
        let description = bm.machine.topology.otherIOMMUs[bm.machine.smmuV2Descriptions[smmu]]
        // "SMMUv1 /iommu@2b500000 (arm,mmu-401)": the version and the node that was programmed.
        let name = "\(configuration.architectureVersion < 2 ? "SMMUv1" : "SMMUv2") \(description.path)"
            + (description.compatible.first.map { " (\($0))" } ?? "")
        switch translation {
        case .bypass:
            try bm.bypassSMMUv2Stream(streamID, smmu: smmu)
            return ["\(name): SMR0 = StreamID \(streamID), S2CR0 = bypass"]
        case .s1 where !configuration.stage1:
            // `arm_smmu_init_domain_context`: an SMMU without stage 1 gets a stage-2 domain
            // (the MMU-401: VMID = bank + 1, the AArch64 format on a 64-bit kernel).
            let tables = try bm.enableSMMUv2Stage2(streamID: streamID, smmu: smmu)
            try tables.map(input: MSIReport.msiIOVA & ~0xFFF, output: doorbellPage, size: 0x1000, attributes: attributes)
            return ["\(name): SMR0 = StreamID \(streamID) → S2CR0 → context bank 0 (stage 2, VMID 1: the SMMU has no stage 1); IOVA \(Hex.format(MSIReport.msiIOVA & ~0xFFF)) → PA \(Hex.format(doorbellPage)) (\(page))"]
        case .s1 where configuration.architectureVersion < 2:
            // Version 1 has no AArch64 format: ARM_SMMU_CTX_FMT_AARCH32_L, a 32-bit IOVA space
            // (the MSI IOVA 0xffff_f000 is its top page, as on any 32-bit aperture).
            let tables = try bm.enableSMMUv2Stage1AArch32(streamID: streamID, smmu: smmu)
            try tables.map(input: MSIReport.msiIOVA & ~0xFFF, output: doorbellPage, size: 0x1000, attributes: attributes)
            return ["\(name): SMR0 = StreamID \(streamID) → S2CR0 → context bank 0 (stage 1, AArch32 long-descriptor, ASID 1); IOVA \(Hex.format(MSIReport.msiIOVA & ~0xFFF)) → PA \(Hex.format(doorbellPage)) (\(page))"]
        case .s1:
            let tables = try bm.enableSMMUv2Stage1(streamID: streamID, smmu: smmu)
            try tables.map(input: MSIReport.msiIOVA & ~0xFFF, output: doorbellPage, size: 0x1000, attributes: attributes)
            return ["\(name): SMR0 = StreamID \(streamID) → S2CR0 → context bank 0 (stage 1, ASID 1); IOVA \(Hex.format(MSIReport.msiIOVA & ~0xFFF)) → PA \(Hex.format(doorbellPage)) (\(page))"]
        case .nested:
            throw CommandFailure("nested translation is not available on an SMMUv2: Linux's arm-smmu driver (v6.14-v7.0) never programs nested context banks (no iommufd nesting ops, no IOMMU_HWPT_DATA type for it), and the model does not either; use --translation s1 or bypass")
        }
    }
}
