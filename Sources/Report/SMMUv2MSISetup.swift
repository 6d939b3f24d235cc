import Bus
import Machine
import Testbed

/// What `doorbell msi` programs into an SMMUv2 (MMU-500) for the function's stream:
/// bypass (an SMR whose S2CR bypasses), stage 1 (an SMR → S2CR → a stage-1 context bank whose
/// TTBR0 maps the MSI IOVA page onto the ITS translation page, as Linux's arm-smmu driver with
/// dma-iommu's MSI cookie does), or nested, which is refused: the SMMUv2 architecture has nested
/// context banks (CBAR.TYPE 3) but neither Linux's arm-smmu driver nor this model uses them.
enum SMMUv2MSISetup {
    static func program(_ bm: BareMetal, smmu: Int, streamID: StreamID, translation: MSIReport.Translation,
                        doorbellPage: UInt64, attributes: PageAttributes) throws -> [String] {
        try bm.resetSMMUv2(smmu)
        switch translation {
        case .bypass:
            try bm.bypassSMMUv2Stream(streamID, smmu: smmu)
            return ["SMMUv2: SMR0 = StreamID \(streamID), S2CR0 = bypass"]
        case .s1:
            let tables = try bm.enableSMMUv2Stage1(streamID: streamID, smmu: smmu)
            try tables.map(input: MSIReport.msiIOVA & ~0xFFF, output: doorbellPage, size: 0x1000, attributes: attributes)
            return ["SMMUv2: SMR0 = StreamID \(streamID) → S2CR0 → context bank 0 (stage 1, ASID 1); IOVA \(Hex.format(MSIReport.msiIOVA & ~0xFFF)) → PA \(Hex.format(doorbellPage)) (the ITS translation page)"]
        case .nested:
            throw CommandFailure("nested translation is not available on an SMMUv2: Linux's arm-smmu driver (v6.14-v7.0) never programs nested context banks (no iommufd nesting ops, no IOMMU_HWPT_DATA type for it), and the model does not either; use --translation s1 or bypass")
        }
    }
}
