import Bus
import Firmware
import GIC

/// The GICv4 part of `struct rdists` (include/linux/irqchip/arm-gic-v3.h) as the GICv3 driver
/// fills it, and the per-CPU vPE configuration table state of a GICv4.1 (`vpe_l1_base`,
/// `vpe_table_mask` in `struct rdist`).
public struct GICv4HostState: Hashable, Sendable {
    /// `has_vlpis`: every redistributor reports GICR_TYPER.VLPIS (`gic_update_rdist_properties`)
    /// and some ITS reports GITS_TYPER.Virtual (`its_init`: `has_v4 & rdists->has_vlpis`). This
    /// is `gic_v3_kvm_info.has_v4`.
    public var hasVLPIs = false
    /// `has_rvpeid`: every redistributor reports GICR_TYPER.RVPEID and some ITS is GICv4.1
    /// (GITS_TYPER.VMAPP; `its_init` clears it otherwise, "Don't bother with inconsistent
    /// systems"). This is `gic_v3_kvm_info.has_v4_1`.
    public var hasRVPEID = false
    /// `has_direct_lpi`: every redistributor reports DirectLPI, or has RVPEID (GICv4.1 mandates
    /// GICR_INVLPIR/GICR_INVALLR/GICR_SYNCR).
    public var hasDirectLPI = false
    /// `gicd_typer2` (GICD_TYPER2, read in `gic_init_bases`).
    public var gicdTyper2: UInt32 = 0
    /// Per CPU, the vPE table `allocate_vpe_l1_table` gave its redistributor (nil: none yet, or
    /// no GICv4.1).
    public var vpeTables: [VPETableShare?] = []

    public init() {}

    /// `ITS_MAX_VPEID_BITS`: 16, or GICD_TYPER2.VID + 1 when GICv4.1 and GICD_TYPER2.VIL.
    public var maxVPEIDBits: Int {
        hasRVPEID && gicdTyper2.bit(7) ? Int(gicdTyper2 & 0x1F) + 1 : 16
    }

    /// `vpe_table_mask` of `cpu`: the CPUs whose redistributors share its vPE table (sorted).
    public func vpeTableMask(_ cpu: Int) -> [Int] {
        guard vpeTables.indices.contains(cpu), let owner = vpeTables[cpu]?.owner else { return [] }
        return vpeTables.indices.filter { vpeTables[$0]?.owner == owner }
    }
}

/// One redistributor's GICR_VPROPBASER (GICv4.1 layout) as `allocate_vpe_l1_table` wrote it.
public struct VPETableShare: Hashable, Sendable {
    /// The CPU that allocated the table; CPUs inheriting it (`inherit_vpe_l1_table_from_rd`)
    /// name the same owner, which is how the model keeps the shared `vpe_table_mask` pointer.
    public var owner: Int
    /// `vpe_l1_base`.
    public var base: PhysicalAddress
    /// The value written to GICR_VPROPBASER.
    public var vpropbaser: UInt64
}

/// GICR_VPROPBASER GICv4.1 fields as Linux names them (`GICR_VPROPBASER_4_1_*`,
/// arm-gic-v3.h): Valid[63], Entry_Size[61:59] (64-bit words − 1), Indirect[55],
/// Page_Size[54:53], Z[52], Addr[51:12], Size[6:0]; InnerCache[9:7], Shareability[11:10].
enum VPropbaser41 {
    static let valid = 63
    static let indirect = 55
    static let z = 52
    static let raWb: UInt64 = 3 << 7
    static let innerShareable: UInt64 = 1 << 10
    /// GICR_VLPI_base (RD_base + 128 KiB) + 0x70 / + 0x78.
    static let vpropbaserOffset: UInt64 = Redistributor.VirtualOffset.vpropbaser
    static let vpendbaserOffset: UInt64 = Redistributor.VirtualOffset.vpendbaser
}

extension IRQSubsystem {
    /// `gic_update_rdist_properties` (after `gic_iterate_rdists`) and `gic_init_bases`: AND the
    /// redistributors' GICR_TYPER.VLPIS / RVPEID / DirectLPI, read GICD_TYPER2. The ITS side
    /// (`its_init`) narrows them once the ITSs are probed (`settleGICv4`).
    func probeGICv4Redistributors(distributor: PhysicalAddress) throws(Errno) {
        var state = GICv4HostState()
        state.hasVLPIs = !redistributors.isEmpty
        state.hasRVPEID = !redistributors.isEmpty
        state.hasDirectLPI = !redistributors.isEmpty
        for rd in redistributors {
            state.hasVLPIs = state.hasVLPIs && rd.typer.bit(1)
            state.hasRVPEID = state.hasRVPEID && rd.typer.bit(7)
            state.hasDirectLPI = state.hasDirectLPI && (rd.typer.bit(3) || rd.typer.bit(7))
        }
        if let typer2 = distributor.adding(0x000C) { state.gicdTyper2 = try kernel.mmio.read32(typer2) }
        state.vpeTables = Array(repeating: nil, count: redistributors.count)
        gicv4 = state
    }

    /// `its_init`: `has_v4` / `has_v4_1` over the probed ITSs; a GICv4.1 redistributor without a
    /// GICv4.1 ITS loses RVPEID, and without a GICv4 ITS there is no direct injection at all
    /// ("ITS: Disabling GICv4 support"). With DirectLPI `its_init_vpe_domain` needs no proxy
    /// device ("Using DirectLPI for VPE invalidation").
    func settleGICv4() {
        let v4 = kernel.itsDrivers.contains { $0.isV4 }
        let v41 = kernel.itsDrivers.contains { $0.isV41 }
        if !v41 { gicv4.hasRVPEID = false }
        if !(v4 && gicv4.hasVLPIs) {
            gicv4.hasVLPIs = false
            gicv4.hasRVPEID = false
            return
        }
        kernel.log.log("ITS", gicv4.hasDirectLPI ? "Using DirectLPI for VPE invalidation" : "GICv4 without DirectLPI: proxy device not modelled")
        kernel.log.log("GICv4", "GICv4\(gicv4.hasRVPEID ? ".1" : "") direct injection available, \(gicv4.maxVPEIDBits) vPEID bits")
    }

    /// `allocate_vpe_l1_table` on `cpu` (from `its_cpu_init_lpis`, GICv4.1 only):
    /// 1. GICR_VPENDBASER.Valid set → write PendingLast alone (no doorbell, Valid cleared);
    /// 2. `inherit_vpe_l1_table_from_rd`: a CPU already up whose GICR_TYPER gives the same
    ///    common affinity (`compute_common_aff`) lends its GICR_VPROPBASER (Z cleared), its
    ///    `vpe_l1_base` and its `vpe_table_mask`;
    /// 3. `inherit_vpe_l1_table_from_its`: an ITS with GITS_TYPER.SVPET ≠ 0 and the same
    ///    affinity (none here: the model's ITSs report SVPET = 0);
    /// 4. else probe Page_Size (write 64 KiB, read back), read Entry_Size, `epp = psz / (esz ×
    ///    8)`; fewer entries per page than `ITS_MAX_VPEID` makes the table indirect with
    ///    `npg = DIV_ROUND_UP(DIV_ROUND_UP(ITS_MAX_VPEID, epp) × 8, psz)` level-1 pages; the
    ///    zeroed pages, then Addr | RaWb | InnerShareable | Z | Valid.
    /// The value is written to GICR_VPROPBASER and `cpu` joins the mask.
    func allocateVPEL1Table(cpu: Int) throws(Errno) {
        guard gicv4.hasRVPEID, redistributors.indices.contains(cpu) else { return }
        let rd = redistributors[cpu].base
        guard let vprop = rd.adding(VPropbaser41.vpropbaserOffset), let vpend = rd.adding(VPropbaser41.vpendbaserOffset) else { throw .EINVAL }
        if try kernel.mmio.read64(vpend).bit(GICRVPendbaser.valid) {
            try kernel.mmio.write64(vpend, UInt64(1) << UInt64(GICRVPendbaser.pendingLast))
        }
        let ownAffinity = IRQSubsystem.commonAffinity(redistributors[cpu].typer)
        for other in 0..<cpu where gicv4.vpeTables.indices.contains(other) {
            guard let share = gicv4.vpeTables[other], IRQSubsystem.commonAffinity(redistributors[other].typer) == ownAffinity,
                  let otherVProp = redistributors[other].base.adding(VPropbaser41.vpropbaserOffset) else { continue }
            let value = try kernel.mmio.read64(otherVProp).settingBit(VPropbaser41.z, to: false)
            guard value.bit(VPropbaser41.valid) else { continue }
            try kernel.mmio.write64(vprop, value)
            gicv4.vpeTables[cpu] = VPETableShare(owner: share.owner, base: share.base, vpropbaser: value)
            return
        }
        try kernel.mmio.write64(vprop, UInt64(2) << 53)
        let probed = try kernel.mmio.read64(vprop)
        var gpsz = probed.bits(54, 53)
        let esz = probed.bits(61, 59)
        let psz: UInt64
        switch gpsz {
        case 1: psz = 0x4000
        case 2: psz = 0x1_0000
        default: gpsz = 0; psz = 0x1000
        }
        var value = UInt64(0).settingBits(54, 53, to: gpsz).settingBits(61, 59, to: esz)
        let epp = psz / ((esz + 1) * 8)
        let maxVPEs = UInt64(1) << UInt64(gicv4.maxVPEIDBits)
        var npg: UInt64 = 1
        if epp < maxVPEs {
            value = value.settingBit(VPropbaser41.indirect, to: true)
            let nl2 = (maxVPEs + epp - 1) / epp
            npg = (nl2 * 8 + psz - 1) / psz
        }
        value = value.settingBits(6, 0, to: npg - 1)
        let table = try kernel.pages.allocate(bytes: npg * psz, alignment: psz)
        value |= table.rawValue.keepingBits(51, 12) | VPropbaser41.raWb | VPropbaser41.innerShareable
        value = value.settingBit(VPropbaser41.z, to: true).settingBit(VPropbaser41.valid, to: true)
        try kernel.mmio.write64(vprop, value)
        gicv4.vpeTables[cpu] = VPETableShare(owner: cpu, base: table, vpropbaser: value)
        kernel.log.log("GICv4", "CPU\(cpu): VPROPBASER = \(Hex.format(value)) (vPE table @\(table), \(npg) page(s) of \(psz / 1024) KiB\(value.bit(VPropbaser41.indirect) ? ", indirect" : ""))")
    }

    /// `compute_common_aff(GICR_TYPER)`: Affinity with the bits below CommonLPIAff's level
    /// cleared.
    static func commonAffinity(_ typer: UInt64) -> UInt32 {
        let affinity = UInt32(truncatingIfNeeded: typer >> 32)
        let level = UInt32(typer.bits(25, 24))
        return affinity & ~(UInt32.max >> (level * 8))
    }

    /// `allocate_vpe_l2_table(cpu, id)` for every CPU (from `its_alloc_vpe_table`): with an
    /// indirect GICR_VPROPBASER the level-2 page holding `vpe`'s entry is allocated and its
    /// level-1 entry written as PA | Valid on first use; a flat table only checks the range.
    /// Returns false when `vpe` is beyond the table.
    func allocateVPEL2Tables(vpe: UInt16) -> Bool {
        guard gicv4.hasRVPEID else { return true }
        for cpu in gicv4.vpeTables.indices {
            guard let share = gicv4.vpeTables[cpu] else { continue }
            let value = share.vpropbaser
            let esz = (value.bits(61, 59) + 1) * 8
            let psz: UInt64 = [0x1000, 0x4000, 0x1_0000, 0x1_0000][Int(value.bits(54, 53))]
            let npg = value.bits(6, 0) + 1
            let perPage = psz / esz
            guard value.bit(VPropbaser41.indirect) else {
                if UInt64(vpe) >= npg * perPage { return false }
                continue
            }
            let index = UInt64(vpe) / perPage
            guard index < npg * psz / 8, let entry = share.base.adding(index * 8) else { return false }
            guard !kernel.bus.kernelRead(entry.rawValue, size: 8).bit(63) else { continue }
            guard let page = try? kernel.pages.allocate(bytes: psz, alignment: psz) else { return false }
            kernel.bus.kernelWrite(entry.rawValue, size: 8, value: page.rawValue | UInt64(1) << 63)
        }
        return true
    }
}
