import Testing
import Bus
import LinuxKernel
import SMMUv3
@testable import VMM

/// QEMU 11.0's accelerated vSMMU against the host SMMU: the guest's ID registers are QEMU's own
/// (`smmuv3_init_id_regs` + `smmuv3_accel_idr_override`), the host's (IOMMU_GET_HW_INFO, the raw
/// IDRs `arm_smmu_hw_info` reads) only pass or fail `smmuv3_accel_check_hw_compatible`.
@Suite("Accelerated vSMMU: host SMMU compatibility (QEMU 11.0)", .serialized)
struct AcceleratedSMMUv3HostCheckTests {
    /// IOMMU_GET_HW_INFO data for a host SMMU with `configuration`.
    static func info(_ configuration: SMMUConfiguration) -> IOMMUHWInfoARMSMMUv3 {
        IOMMUHWInfoARMSMMUv3(idr: [configuration.idr0, configuration.idr1, configuration.idr2, configuration.idr3,
                                   configuration.idr4, configuration.idr5],
                             iidr: 0, aidr: configuration.aidr)
    }

    @Test("a host with a 48-bit OAS, MSI, CD2L, SSIDs and AIDR v3.2 is compatible, and the guest still sees QEMU's 44-bit OAS, no MSI, no CD2L, SSIDSIZE 0, AIDR v3.1; oas=48 makes it 48")
    func widerHostIsCompatible() throws {
        let host = SMMUConfiguration.default
        #expect(host.outputAddressSize == .bits48 && host.msi && host.twoLevelCDTable && host.substreamIDBits == 20)
        let properties = AcceleratedSMMUv3Properties()
        try properties.checkHostCompatibility(Self.info(host))
        let guest = properties.identification
        #expect(guest.idr5 == 0x74 && guest.idr0 == 0x0D44_101A && guest.idr1 == 0x0273_0010 && guest.idr3 == 0x1404)
        #expect(guest.aidr == 1)
        let wide = AcceleratedSMMUv3Properties(oas: 48)
        try wide.checkHostCompatibility(Self.info(host))
        #expect(wide.identification.idr5 & 7 == 5, "smmuv3_accel_idr_override: IDR5.OAS = SMMU_IDR5_OAS_48")
        let tuned = AcceleratedSMMUv3Properties(ril: false, ats: true, ssidsize: 20)
        try tuned.checkHostCompatibility(Self.info(host))
        #expect(!tuned.identification.idr3.bit(10) && tuned.identification.idr0.bit(10) && tuned.identification.idr1.bits(10, 6) == 20)
    }

    @Test("each check refuses with QEMU's message, in QEMU's order",
          arguments: [
            ("IDR0.ST_LEVEL", "Host SMMUv3 Stream Table format mismatch (host STLEVEL=0, QEMU STLEVEL=1)"),
            ("IDR0.TTF", "Host SMMUv3 doesn't support AArch64 translation table format"),
            ("IDR1.SIDSIZE", "Host SMMUv3 SIDSIZE not compatible (host=8, QEMU=16)"),
            ("IDR1.SSIDSIZE", "Host SMMUv3 SSIDSIZE not compatible (host=0, QEMU=8)"),
            ("IDR3.RIL", "Host SMMUv3 doesn't support Range Invalidation"),
            ("IDR5.OAS", "Host SMMUv3 supports only 40-bit IPA, but the vSMMU OAS implies 44-bit IPA"),
            ("IDR5.GRAN16K", "Host SMMUv3 doesn't support 16K translation granule"),
          ])
    func refusals(check: String, message: String) throws {
        var host = SMMUConfiguration.qemuVirt
        var properties = AcceleratedSMMUv3Properties()
        switch check {
        case "IDR0.ST_LEVEL": host.twoLevelStreamTable = false
        case "IDR0.TTF": host.aarch64Tables = false
        case "IDR1.SIDSIZE": host.streamIDBits = 8
        case "IDR1.SSIDSIZE": properties.ssidsize = 8
        case "IDR3.RIL": host.rangeInvalidation = false
        case "IDR5.OAS": host.outputAddressSize = .bits40
        default: host.granule16K = false
        }
        #expect(throws: AcceleratedSMMUv3Error.self) { try properties.checkHostCompatibility(Self.info(host)) }
        do {
            try properties.checkHostCompatibility(Self.info(host))
        } catch {
            #expect(error.check == check)
            #expect(error.description == message)
        }
    }

    @Test("TTENDIAN: a big-endian-only host (0b11) is refused; a mixed-endian one (0b00) is not")
    func endianness() throws {
        var idr = Self.info(.qemuVirt)
        idr.idr[0] = idr.idr[0] & ~(0b11 << 21) | (0b11 << 21)
        #expect(throws: AcceleratedSMMUv3Error.littleEndianTables) { try AcceleratedSMMUv3Properties().checkHostCompatibility(idr) }
        idr.idr[0] &= ~(0b11 << 21)
        try AcceleratedSMMUv3Properties().checkHostCompatibility(idr)
    }

    @Test("smmu_validate_property: oas must be 44 or 48, ssidsize 0–20")
    func properties() throws {
        try AcceleratedSMMUv3Properties(oas: 48, ssidsize: 20).validate()
        #expect(throws: AcceleratedSMMUv3Error.invalidProperty("OAS can only be set to 44 or 48 bits")) {
            try AcceleratedSMMUv3Properties(oas: 52).validate()
        }
        #expect(throws: AcceleratedSMMUv3Error.invalidProperty("ssidsize must be in the range 0 to 20")) {
            try AcceleratedSMMUv3Properties(ssidsize: 21).validate()
        }
    }

    @Test("the VMM on a QEMU host: IOMMU_GET_HW_INFO passes, the guest's SMMU reads QEMU's IDRs; a host SMMU without RIL refuses realize with QEMU's error and no vIOMMU is made")
    func vmmRealize() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3)
        let guestSMMU = try #require(h.guest.smmuDrivers.first)
        #expect(guestSMMU.features.outputAddressBits == 44 && !guestSMMU.features.msi && guestSMMU.features.substreamIDBits == 0)
        #expect(try #require(h.host.smmuDrivers.first).features.outputAddressBits == 44)

        var noRIL = SMMUConfiguration.qemuVirt
        noRIL.rangeInvalidation = false
        #expect(throws: GuestError.vsmmu(.rangeInvalidation)) { try VMMHarness.make(viommu: .acceleratedSMMUv3, hostSMMU: noRIL) }
        #expect(GuestError.vsmmu(.rangeInvalidation).description == "arm-smmuv3 accel: Host SMMUv3 doesn't support Range Invalidation (IDR3.RIL)")
    }

    @Test("the guest's stage 1 on the vSMMU: CD.IPS 44-bit (QEMU's OAS), whatever the host's")
    func guestCDIPS() throws {
        var host = SMMUConfiguration.qemuVirt
        host.outputAddressSize = .bits48
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, hostSMMU: host)
        let cd = try GuestPageSizeTests.guestCD(h)
        #expect(cd.ips == 4 && cd.t0sz == 16)
    }
}
