import Testing
import LinuxKernel
import Report
@testable import DoorbellCommands

/// `doorbell host`: the kernel model's view of a device's MSI, per owner and domain type. Each
/// expected address is the one the Linux path named in the command's output computes.
@Suite("doorbell host")
struct HostReportTests {
    func platform(_ name: String = "qemu-virt") throws -> PlatformOptions {
        try PlatformOptions.parse(["--platform", name])
    }

    @Test("each owner gets its doorbell address and the fired vector reaches its handler or eventfd", arguments: [
        // Kernel driver, DMA domain: dma-iommu's first IOVA page below 4 GiB + GITS_TRANSLATER's 0x40.
        (HostCommand.Owner.driver, KernelConfiguration.DefaultDomain.dmaStrict, UInt64(0xFFFF_F040)),
        (.driver, .dmaLazy, 0xFFFF_F040),
        // Identity domain: iommu_dma_prepare_msi passes through, the physical doorbell.
        (.driver, .identity, 0x0809_0040),
        // VFIO: the SW_MSI window base 0x0800_0000 (MSI cookie for type1, iommufd's sw_msi pgoff 0).
        (.vfioType1, .dmaStrict, 0x0800_0040),
        (.vfioIOMMUFD, .dmaStrict, 0x0800_0040),
    ])
    func owners(owner: HostCommand.Owner, domain: KernelConfiguration.DefaultDomain, expected: UInt64) throws {
        let report = try HostReport.make(platform: platform(), owner: owner,
                                         configuration: KernelConfiguration(defaultDomain: domain), vector: 1)
        #expect(report.messageAddress == expected)
        #expect(report.delivered)
    }

    @Test("on the untranslated-ITS platform a DMA domain still programs the physical doorbell, inside a hardware MSI region")
    func untranslatedITS() throws {
        let report = try HostReport.make(platform: platform("qemu-virt-untranslated-its"), owner: .driver,
                                         configuration: KernelConfiguration(), vector: 0)
        #expect(report.messageAddress == 0x0809_0040)
        #expect(report.text.contains("reserved 0x0000000008090000 0x000000000809ffff msi"))
        #expect(report.delivered)
    }

    @Test("the v6.14 composition path programs the same IOVA doorbell")
    func legacyKernel() throws {
        let report = try HostReport.make(platform: platform(), owner: .driver,
                                         configuration: KernelConfiguration(version: .v6_14), vector: 3)
        #expect(report.messageAddress == 0xFFFF_F040)
        #expect(report.delivered)
    }
}
