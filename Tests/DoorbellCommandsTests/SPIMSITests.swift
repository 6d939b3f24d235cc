import Bus
import Testing
import LinuxKernel
import Report
@testable import DoorbellCommands

/// MSIs delivered as SPIs: QEMU `virt` gic-version=2 (one GICv2m frame at 0x0802_0000, SPIs
/// 80…143, msi-map → the frame, SMMUv3) and RK3568 (GICv3 MBIs, `mbi-ranges` 296…319, no
/// IOMMU on the PCIe). The message is Linux's `gicv2m_compose_msi_msg` / `mbi_compose_msi_msg`:
/// data = the SPI; address = MSI_SETSPI_NS / GICD_SETSPI_NSR, or under a DMA domain the IOVA
/// page `iommu_dma_prepare_msi` mapped it at (0xFFFF_F000) + 0x40.
@Suite("MSIs as SPIs (GICv2m, MBI)")
struct SPIMSITests {
    static let gic2 = Fixtures.path("qemu-virt/virt-smmu-gic2.dtb")
    static let rk3568 = Fixtures.path("boards/rockchip_rk3568-rock-3a.dtb")

    func platform(_ path: String) throws -> PlatformOptions { try PlatformOptions.parse(["--platform", path]) }

    @Test("doorbell msi on the gic2 dump: data = SPI 80 + vector; MSI_SETSPI_NS under bypass, IOVA 0xffff_f040 under stage 1 and nested",
          arguments: [(MSICommand.Translation.bypass, UInt64(0x0802_0040)), (.s1, 0xFFFF_F040), (.nested, 0xFFFF_F040)])
    func msiGIC2(translation: MSICommand.Translation, address: UInt64) throws {
        let report = try MSIReport.make(platform: platform(Self.gic2), translation: translation, vector: 3, address: nil)
        #expect(report.acknowledged == 83)
        #expect(report.expectedINTID == 83)
        #expect(report.status == .completed)
        #expect(report.text.contains("MSI-X vector 3: address \(Hex.format(address)), data 0x53 (SPI 83)"), "\(report.text)")
        #expect(report.text.contains("MSI_TYPER = 0x0050_0040 (SPIs 80…143)"))
        #expect(report.text.contains("CPU0 reads GICC_IAR = 83"))
    }

    @Test("a message to the frame at an offset other than MSI_SETSPI_NS sets nothing pending")
    func msiOutOfRange() throws {
        // The doorbell page mapped at stage 1, but vector 3's data is 83: write the frame's
        // doorbell with the untranslated physical address under bypass and a wrong page offset.
        let report = try MSIReport.make(platform: platform(Self.gic2), translation: .bypass, vector: 1, address: 0x0802_0044)
        #expect(report.acknowledged == 1023, "MSI_SETSPI_NS is at +0x40; +0x44 is no register")
    }

    @Test("doorbell msi on RK3568: GICD_SETSPI_NSR at GICD + 0x40 with data = 296 + vector")
    func msiMBI() throws {
        let report = try MSIReport.make(platform: platform(Self.rk3568), translation: .bypass, vector: 2, address: nil)
        #expect(report.acknowledged == 298)
        #expect(report.text.contains("MSI-X vector 2: address 0xfd40_0040, data 0x12a (SPI 298)"), "\(report.text)")
    }

    @Test("doorbell host on the gic2 dump: the driver's vectors get SPIs 80… through the v2m domain, at the IOVA doorbell under DMA, the frame under identity",
          arguments: [(KernelConfiguration.DefaultDomain.dmaStrict, KernelConfiguration.Version.v6_15, UInt64(0xFFFF_F040)),
                      (.dmaStrict, .v6_14, 0xFFFF_F040), (.dmaStrict, .v7_0, 0xFFFF_F040), (.identity, .v6_15, 0x0802_0040)])
    func hostGIC2(domain: KernelConfiguration.DefaultDomain, version: KernelConfiguration.Version, address: UInt64) throws {
        let report = try HostReport.make(platform: platform(Self.gic2), owner: .driver,
                                         configuration: KernelConfiguration(version: version, defaultDomain: domain), vector: 2)
        #expect(report.messageAddress == address)
        #expect(report.delivered)
        #expect(report.text.contains("gicv2m_irq_domain_alloc"))
        #expect(report.text.contains("vector 2: irq 66, SPI 82 → MSI-X entry address \(Hex.format(address)) data 0x52"), "\(report.text)")
    }

    @Test("VFIO on a GICv2m platform is refused (EPERM): the v2m domain does not isolate MSIs")
    func vfioRefused() throws {
        #expect(throws: (any Error).self) {
            try HostReport.make(platform: platform(Self.gic2), owner: .vfioType1, configuration: KernelConfiguration(), vector: 0)
        }
    }

    @Test("doorbell host on RK3568: mbi_irq_domain_alloc hands out SPIs 296…, the message is GICD_SETSPI_NSR")
    func hostMBI() throws {
        let report = try HostReport.make(platform: platform(Self.rk3568), owner: .driver, configuration: KernelConfiguration(), vector: 1)
        #expect(report.messageAddress == 0xFD40_0040)
        #expect(report.delivered)
        #expect(report.text.contains("vector 1: irq 65, SPI 297 → MSI-X entry address 0xfd40_0040 data 0x129"), "\(report.text)")
    }
}
