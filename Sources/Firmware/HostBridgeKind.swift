import Bus

/// How software reaches a host bridge's configuration space, by the binding its node has.
///
/// Most host bridges the model reads have one configuration window (`PCIeHostBridge.configSpace`):
/// an ECAM region (`pci-host-ecam-generic`, `*-ecam`, ACPI MCFG) or the region named "config",
/// "ecam" or "cfg" (DesignWare and its Layerscape, TI and Marvell glue, Cadence on TI K3), read
/// as ECAM from the first bus. Controllers whose configuration access is laid out otherwise get
/// their own case, read from their binding's `reg-names`.
public enum HostBridgeKind: Hashable, Sendable {
    /// Configuration through `configSpace` when it is set; no configuration access when nil.
    case generic
    /// `rockchip,rk3399-pcie` (binding `rockchip,rk3399-pcie.yaml`): see `RockchipRK3399PCIe`.
    case rockchipRK3399(RockchipRK3399PCIe)
}

/// The RK3399 PCIe controller's two register spaces (`reg-names` "axi-base" and "apb-base",
/// read as Linux's `rockchip_pcie_parse_dt` in `drivers/pci/controller/pcie-rockchip.c`,
/// read at torvalds/linux 2bce6abecc03, maps them). There is no ECAM window: Linux's `rockchip_pcie_rd_conf` /
/// `rockchip_pcie_wr_conf` (`pcie-rockchip-host.c`) reach the root port's own configuration
/// space in apb-base at PCIE_RC_CONFIG_NORMAL_BASE (0x80_0000) and every other bus through
/// axi-base at PCIE_ECAM_OFFSET(bus, devfn, where) (the controller model is
/// `PCI.RockchipPCIeController`).
public struct RockchipRK3399PCIe: Hashable, Sendable {
    /// "axi-base": outbound region 0, the configuration region (32 MiB on the RK3399).
    public var axi: MemoryRange
    /// "apb-base": the client and core registers (16 MiB on the RK3399).
    public var apb: MemoryRange

    public init(axi: MemoryRange, apb: MemoryRange) {
        self.axi = axi
        self.apb = apb
    }

    /// PCIE_RC_CONFIG_NORMAL_BASE (`pcie-rockchip.h`).
    public static let rcConfigNormalBase: UInt64 = 0x80_0000
    /// The apb-base bytes the driver touches for configuration: the root port's 4 KiB and
    /// outbound region 0's descriptors at PCIE_CORE_AXI_CONF_BASE (0xC0_0000) + 0x10.
    public static let apbNeeded: UInt64 = 0xC0_0010
    /// AXI_REGION_0_SIZE: the configuration region; 25 address bits pass
    /// (RC_REGION_0_PASS_BITS + 1), so buses 0…31.
    public static let region0Size: UInt64 = 32 << 20

    /// The problem Linux would have with these regions for bus numbers `busRange`, as a
    /// sentence, or nil. axi-base must reach bus `busRange.upperBound`'s last function
    /// (PCIE_ECAM_OFFSET takes the absolute bus number: (last + 1) << 20 bytes), region 0 passes
    /// no more than 32 MiB, apb-base must hold the root port's configuration space and region 0's
    /// descriptors, and the two must not overlap.
    public func problem(busRange: ClosedRange<UInt32>) -> String? {
        let needed = (UInt64(busRange.upperBound) + 1) << 20
        if needed > Self.region0Size {
            return "bus-range ends at bus \(busRange.upperBound), beyond the 32 buses outbound region 0 reaches (RC_REGION_0_PASS_BITS: 25 address bits)"
        }
        if axi.size < needed {
            return "axi-base \(axi) is truncated: bus \(busRange.upperBound) needs \(Hex.format(needed, minDigits: 1)) bytes (bus << 20 | devfn << 12 | where)"
        }
        if apb.size < Self.apbNeeded {
            return "apb-base \(apb) is truncated: the root port's configuration space at +0x80_0000 and outbound region 0's descriptors at +0xc0_0008 need \(Hex.format(Self.apbNeeded, minDigits: 1)) bytes"
        }
        func end(_ range: MemoryRange) -> UInt64 {
            let (sum, overflow) = range.base.rawValue.addingReportingOverflow(range.size)
            return overflow ? .max : sum
        }
        if axi.base.rawValue < end(apb), apb.base.rawValue < end(axi) {
            return "axi-base \(axi) overlaps apb-base \(apb)"
        }
        return nil
    }
}
