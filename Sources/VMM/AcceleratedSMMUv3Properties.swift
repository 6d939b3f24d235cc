import Bus
import LinuxKernel
import SMMUv3

/// The properties of QEMU 11.0's `-device arm-smmuv3,accel=on` that change what the guest
/// sees (hw/arm/smmuv3.c `smmuv3_properties`): `ril` (default on), `ats` (default off), `oas`
/// (44 or 48, default 44) and `ssidsize` (0–20, default 0). QEMU 11.0 takes each as given: the
/// host is only checked against them, never copied (QEMU 11.1 adds `auto`, which derives
/// them from the host's IDRs; 11.0's documentation says "'auto' mode is not currently
/// supported").
///
/// The guest-visible ID registers (`identification`) are QEMU's own emulated SMMUv3 of
/// `smmuv3_init_id_regs` — the accelerated vSMMU sets no `stage`, so stage 1 only — with
/// `smmuv3_accel_idr_override` applied on top: IDR3.RIL = `ril`, IDR0.ATS = `ats`, IDR5.OAS =
/// 0b101 when `oas` is 48, IDR1.SSIDSIZE = `ssidsize`. So a guest sees MSI = 0, CD2L = 0,
/// TERM_MODEL = 1, CMDQS = EVENTQS = 19, AIDR = 1 whatever the host has.
///
/// Verified against the stored qemu/qemu hw/arm/smmuv3-accel.c at commit d21a442a5ab9 (it has
/// the four properties and no `auto`) and QEMU's smmuv3.c `smmuv3_init_id_regs`.
public struct AcceleratedSMMUv3Properties: Hashable, Sendable {
    /// `ril`: IDR3.RIL.
    public var ril: Bool
    /// `ats`: IDR0.ATS.
    public var ats: Bool
    /// `oas`: the Output Address Size in bits, 44 or 48.
    public var oas: Int
    /// `ssidsize`: IDR1.SSIDSIZE, 0–20 (non-zero advertises PASID to the guest).
    public var ssidsize: Int

    public init(ril: Bool = true, ats: Bool = false, oas: Int = 44, ssidsize: Int = 0) {
        self.ril = ril
        self.ats = ats
        self.oas = oas
        self.ssidsize = ssidsize
    }

    /// `SMMU_SSID_MAX_BITS`.
    public static let maxSubstreamIDBits = 20

    /// `smmu_validate_property` for `accel=on` (run at realize, before anything else).
    public func validate() throws(AcceleratedSMMUv3Error) {
        guard oas == 44 || oas == 48 else { throw .invalidProperty("OAS can only be set to 44 or 48 bits") }
        guard (0...Self.maxSubstreamIDBits).contains(ssidsize) else {
            throw .invalidProperty("ssidsize must be in the range 0 to \(Self.maxSubstreamIDBits)")
        }
    }

    /// The vSMMU's ID registers: `SMMUConfiguration.qemu(stage: .stage1)` with
    /// `smmuv3_accel_idr_override`. Out-of-range values (which `validate` refuses) are clamped.
    public var identification: SMMUConfiguration {
        var c = SMMUConfiguration.qemu(stage: .stage1)
        c.rangeInvalidation = ril
        c.ats = ats
        if oas == 48 { c.outputAddressSize = .bits48 }
        c.substreamIDBits = min(max(ssidsize, 0), Self.maxSubstreamIDBits)
        return c
    }

    /// `smmuv3_accel_check_hw_compatible`: the host SMMU behind a vfio-pci device, as
    /// IOMMU_GET_HW_INFO reports it (`struct iommu_hw_info_arm_smmuv3`: the raw IDR0–5), against
    /// the vSMMU's `identification`, in QEMU's order; the first mismatch refuses the device:
    ///
    /// 1. IDR0.ST_LEVEL must be equal;
    /// 2. IDR0.TTENDIAN: host > QEMU's (0b10, little-endian) — 0b11, big-endian only — refused;
    /// 3. IDR0.TTF: host < QEMU's (0b10, AArch64) refused;
    /// 4. IDR1.SIDSIZE: host < 16 refused;
    /// 5. IDR1.SSIDSIZE: host < `ssidsize` refused;
    /// 6. IDR3.RIL: host without it while `ril` is on refused;
    /// 7. IDR5.OAS: host < the vSMMU's refused (the guest's IPAs are the host's stage-2 input);
    /// 8. IDR5.GRAN4K, GRAN16K, GRAN64K must each be equal (QEMU advertises all three).
    ///
    /// Not checked by QEMU 11.0: S1P/S2P (a host without nesting fails later, at
    /// IOMMU_HWPT_ALLOC with a nest parent), ATS, COHACC, MSI, ASID/VMID widths, the IIDR and
    /// AIDR.
    public func checkHostCompatibility(_ info: IOMMUHWInfoARMSMMUv3) throws(AcceleratedSMMUv3Error) {
        let q = identification
        func idr(_ index: Int) -> UInt32 { info.idr.indices.contains(index) ? info.idr[index] : 0 }
        let (h0, q0) = (idr(0), q.idr0)
        if h0.bits(28, 27) != q0.bits(28, 27) {
            throw .streamTableFormat(host: h0.bits(28, 27), qemu: q0.bits(28, 27))
        }
        if h0.bits(22, 21) > q0.bits(22, 21) { throw .littleEndianTables }
        if h0.bits(3, 2) < q0.bits(3, 2) { throw .aarch64Tables }
        let (h1, q1) = (idr(1), q.idr1)
        if h1.bits(5, 0) < q1.bits(5, 0) { throw .streamIDSize(host: h1.bits(5, 0), qemu: q1.bits(5, 0)) }
        if h1.bits(10, 6) < q1.bits(10, 6) { throw .substreamIDSize(host: h1.bits(10, 6), qemu: q1.bits(10, 6)) }
        if (idr(3).bit(10) ? 1 : 0) < (q.idr3.bit(10) ? 1 : 0) { throw .rangeInvalidation }
        let (h5, q5) = (idr(5), q.idr5)
        if h5.bits(2, 0) < q5.bits(2, 0) {
            throw .outputAddressSize(hostBits: Self.oasBits(h5.bits(2, 0)), vsmmuBits: Self.oasBits(q5.bits(2, 0)))
        }
        for (bit, granule) in [(4, Granule.size4K), (5, .size16K), (6, .size64K)] where h5.bit(bit) != q5.bit(bit) {
            throw .translationGranule(granule)
        }
    }

    /// QEMU's `smmuv3_oas_bits`: IDR5.OAS 0…7 → 32, 36, 40, 42, 44, 48, 52, 56.
    static func oasBits(_ field: UInt32) -> Int {
        let map = [32, 36, 40, 42, 44, 48, 52, 56]
        return map[Int(field & 7)]
    }
}

/// Why QEMU 11.0 refuses an accelerated vSMMU or a device behind it (`error_setg` in
/// `smmu_validate_property` and `smmuv3_accel_check_hw_compatible`); `description` is QEMU's
/// message, `check` names the check.
public enum AcceleratedSMMUv3Error: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidProperty(String)
    case streamTableFormat(host: UInt32, qemu: UInt32)
    case littleEndianTables
    case aarch64Tables
    case streamIDSize(host: UInt32, qemu: UInt32)
    case substreamIDSize(host: UInt32, qemu: UInt32)
    case rangeInvalidation
    case outputAddressSize(hostBits: Int, vsmmuBits: Int)
    case translationGranule(Granule)

    /// The ID register field the check compares.
    public var check: String {
        switch self {
        case .invalidProperty: "property"
        case .streamTableFormat: "IDR0.ST_LEVEL"
        case .littleEndianTables: "IDR0.TTENDIAN"
        case .aarch64Tables: "IDR0.TTF"
        case .streamIDSize: "IDR1.SIDSIZE"
        case .substreamIDSize: "IDR1.SSIDSIZE"
        case .rangeInvalidation: "IDR3.RIL"
        case .outputAddressSize: "IDR5.OAS"
        case .translationGranule(let g):
            switch g {
            case .size4K: "IDR5.GRAN4K"
            case .size16K: "IDR5.GRAN16K"
            case .size64K: "IDR5.GRAN64K"
            }
        }
    }

    public var description: String {
        switch self {
        case .invalidProperty(let message): message
        case .streamTableFormat(let host, let qemu):
            "Host SMMUv3 Stream Table format mismatch (host STLEVEL=\(host), QEMU STLEVEL=\(qemu))"
        case .littleEndianTables: "Host SMMUv3 doesn't support Little-endian translation table"
        case .aarch64Tables: "Host SMMUv3 doesn't support AArch64 translation table format"
        case .streamIDSize(let host, let qemu): "Host SMMUv3 SIDSIZE not compatible (host=\(host), QEMU=\(qemu))"
        case .substreamIDSize(let host, let qemu): "Host SMMUv3 SSIDSIZE not compatible (host=\(host), QEMU=\(qemu))"
        case .rangeInvalidation: "Host SMMUv3 doesn't support Range Invalidation"
        case .outputAddressSize(let host, let vsmmu):
            "Host SMMUv3 supports only \(host)-bit IPA, but the vSMMU OAS implies \(vsmmu)-bit IPA"
        case .translationGranule(let g):
            switch g {
            case .size4K: "Host SMMUv3 doesn't support 4K translation granule"
            case .size16K: "Host SMMUv3 doesn't support 16K translation granule"
            case .size64K: "Host SMMUv3 doesn't support 64K translation granule"
            }
        }
    }
}
