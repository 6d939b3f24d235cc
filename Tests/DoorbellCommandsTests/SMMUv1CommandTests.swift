import Foundation
import Testing

/// The commands on a generic `arm,smmu-v1` (ARM_SMMU_V1: stage 1 and 2, AArch32 formats only) in
/// front of Juno r2's PCIe (fixture `smmuv1/juno-r2-smmu-v1.dtb`): the DMA domain is stage 1
/// in the AArch32 long-descriptor format, a 32-bit IOVA space walked from level 1.
@Suite("SMMUv1 (arm,smmu-v1) commands")
struct SMMUv1CommandTests {
    static var fixture: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/smmuv1/juno-r2-smmu-v1.dtb").path
    }

    @Test("msi: an AArch32 long-descriptor stage-1 bank maps the MSI IOVA onto the GICv2m frame; three descriptor reads from level 1")
    func msi() throws {
        let run = try BinaryTests.run(["msi", "--platform", Self.fixture])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("SMMUv1 /iommu@2b500000 (arm,smmu-v1): SMR0 = StreamID 0x0 → S2CR0 → context bank 0 (stage 1, AArch32 long-descriptor, ASID 1)"), "\(run.stdout)")
        #expect(run.stdout.contains("S1 L1 descriptor"), "\(run.stdout)")
        #expect(!run.stdout.contains("S1 L0 descriptor"), "a 32-bit VA starts at level 1")
        #expect(run.stdout.contains("0xffff_f040 → 0x2c1c_0040 (stage 1)"), "\(run.stdout)")
        #expect(run.stdout.contains("result: delivered: CPU 0 took SPI 82"), "\(run.stdout)")
    }

    @Test("host: Linux's arm-smmu gives the function an ARM_32_LPAE_S1 domain and the SPI is delivered")
    func host() throws {
        let run = try BinaryTests.run(["host", "--platform", Self.fixture, "--owner", "driver"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("iommu arm-smmu.0, StreamIDs 0x0"), "\(run.stdout)")
        #expect(run.stdout.contains("S1 L1 descriptor"), "\(run.stdout)")
        #expect(run.stdout.contains("0xffff_f040 → 0x2c1c_0040 (stage 1)"), "\(run.stdout)")
        #expect(run.stdout.contains("result: delivered"), "\(run.stdout)")
    }

    @Test("walk: stage 1 by default; an address above 4 GiB is refused for the 32-bit VA")
    func walk() throws {
        let run = try BinaryTests.run(["walk", "--platform", Self.fixture, "--address", "0x1234_5040"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("stage 1 only: AArch32 long-descriptor (TTBCR.EAE), 4K granule, 32-bit VA"), "\(run.stdout)")
        #expect(run.stdout.contains("cost (miss): 3 stage-1 and 0 stage-2 descriptor reads"), "\(run.stdout)")
        let high = try BinaryTests.run(["walk", "--platform", Self.fixture])
        #expect(high.status != 0)
        #expect(high.stderr.contains("whose VA is 32 bits"), "\(high.stderr)")
        let s2 = try BinaryTests.run(["walk", "--platform", Self.fixture, "--stage", "s2"])
        #expect(s2.status == 0, "\(s2.stderr)")
        #expect(s2.stdout.contains("stage 2 only: 4K granule, 40-bit IPA"), "\(s2.stdout)")
    }
}
