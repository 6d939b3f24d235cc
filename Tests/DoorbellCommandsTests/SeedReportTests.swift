import Testing
import LinuxKernel
import Report
@testable import DoorbellCommands

/// `doorbell seed`: the issue-5 scenario as the command line shows it.
@Suite("doorbell seed")
struct SeedReportTests {
    @Test("no vIOMMU and a guest identity domain deliver 4/4; the nested DMA domain with a v6.14 host delivers 0/4 and each MSI faults at stage 1 on the physical doorbell")
    func legacyHost() throws {
        let report = try SeedReport.make(nestedHost: .v6_14)
        #expect(report.shapes.map(\.delivered) == [4, 4, 0])
        // No IOMMU in the guest: its vMSI-X holds the vITS doorbell; the host programmed its
        // VFIO domain's SW_MSI page (iommufd sw_msi pgoff 0).
        #expect(report.shapes[0].guestAddress == 0x0809_0040 && report.shapes[0].hostAddress == 0x0800_0040)
        // Nested, v6.14: iommu_dma_prepare_msi found no cookie on the nested domain, so the host
        // wrote the physical doorbell, which the guest's stage 1 does not map.
        let nested = report.shapes[2]
        #expect(nested.hostAddress == 0x0809_0040)
        #expect(nested.guestAddress != 0x0809_0040 && nested.guestAddress & 0xFFF == 0x40, "the guest's own MSI IOVA")
        #expect(nested.hostEvents.count == 4)
        #expect(nested.hostEvents.allSatisfy { $0.eventID == 0x10 && !$0.stage2 && $0.faultClass == 2 && $0.inputAddress == 0x0809_0040 })
        #expect(report.text.contains("Why the nested shape fails"))
    }

    @Test("with a v6.15 host the nested shape still fails: the host writes 0x0800_0040, which the guest's stage 1 maps only with an RMR")
    func currentHost() throws {
        let report = try SeedReport.make(nestedHost: .v6_15)
        let nested = report.shapes[2]
        #expect(nested.hostAddress == 0x0800_0040)
        #expect(nested.delivered == 0)
        #expect(nested.hostEvents.first?.inputAddress == 0x0800_0040)
    }
}
