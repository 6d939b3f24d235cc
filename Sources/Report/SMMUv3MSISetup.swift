import Bus
import SMMUv3
import Testbed

/// Programs an SMMUv3 so a device's MSI write reaches a doorbell page, as `doorbell msi
/// --translation` asks: an STE in bypass; a stage-1 STE whose CD maps the MSI IOVA onto the page
/// (what `iommu_dma_prepare_msi` does for a DMA domain); or a nested STE, the guest's stage 1
/// over a host stage 2 that maps the page IPA = PA as Device-nGnRE. The counterpart of
/// `SMMUv2MSISetup`; the ITS and the SPI frames (GICv2m, MBI) share it.
enum SMMUv3MSISetup {
    /// The lines saying what was programmed, and the message address the function must write
    /// (the IOVA when stage 1 translates, else the doorbell itself).
    static func program(_ bm: BareMetal, smmu: Int, streamID: StreamID, translation: MSIReport.Translation,
                        doorbell: UInt64, iova: UInt64, page: String,
                        attributes: PageAttributes) throws -> (lines: [String], messageAddress: UInt64) {
        let doorbellPage = doorbell & ~0xFFF
        try bm.resetSMMU(smmu)
        switch translation {
        case .bypass:
            try bm.installSTE(.bypass, streamID: streamID, smmu: smmu)
            return (["SMMU: STE \(streamID) = bypass"], doorbell)
        case .s1:
            let tables = try bm.enableStage1(streamID: streamID, smmu: smmu)
            try tables.map(input: iova & ~0xFFF, output: doorbellPage, size: 0x1000, attributes: attributes)
            return (["SMMU: STE \(streamID) = stage 1; IOVA \(Hex.format(iova & ~0xFFF)) → PA \(Hex.format(doorbellPage)) (\(page))"], iova)
        case .nested:
            // Stage 2 maps the doorbell page IPA = PA, so the IPA space must reach it, and
            // guest RAM must not sit on it (IPA 4 GiB instead when it would).
            var guestRAM = bm.defaultGuestRAM
            if doorbellPage >= guestRAM.ipa, doorbellPage - guestRAM.ipa < guestRAM.size { guestRAM.ipa = 0x1_0000_0000 }
            let ipaBits = doorbellPage < (1 << 40) ? 40 : 48
            let nested = try bm.enableNested(streamID: streamID, guestRAM: guestRAM, stage2InputSize: ipaBits, smmu: smmu)
            var s2 = attributes
            s2.stage2MemoryAttributes = 0x1   // Device-nGnRE (S2 MemAttr, FWB=0)
            try nested.stage2.map(input: doorbellPage, output: doorbellPage, size: 0x1000, attributes: s2)
            try nested.stage1.map(input: iova & ~0xFFF, output: doorbellPage, size: 0x1000, attributes: attributes)
            return (["SMMU: STE \(streamID) = nested, VMID 1; stage 1 IOVA \(Hex.format(iova & ~0xFFF)) → IPA \(Hex.format(doorbellPage)); stage 2 IPA \(Hex.format(doorbellPage)) → PA \(Hex.format(doorbellPage))"], iova)
        }
    }
}
