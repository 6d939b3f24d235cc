import Bus
import Firmware
import GIC

/// The ITS quirk Doorbell's platforms reach: `its_quirks` "ITS: Socionext Synquacer pre-ITS"
/// (drivers/irqchip/irq-gic-v3-its.c, `CONFIG_SOCIONEXT_SYNQUACER_PREITS`, `default y` in
/// arch/arm64/Kconfig, so built into the arm64 defconfig kernels TI K3 boards run). The same
/// in v6.14, v6.15 and v6.19: no `KernelBehaviour` separates them.
extension GICv3ITSDriver {
    /// `its_quirks` entry `.iidr = 0x0001143b, .mask = 0xffffffff`: GIC-500 r1p1.
    public static let synquacerPreITSIIDR: UInt32 = 0x0001_143B

    /// `its_enable_quirks(its)`, called at the start of `its_probe_one` (before
    /// `its_alloc_tables`): `gic_enable_quirks(readl_relaxed(its->base + GITS_IIDR), …)` runs
    /// each entry whose IIDR matches under its mask, and prints "GIC: enabling workaround for
    /// %s" for each whose init returns true. The only entry modelled is the pre-ITS one; the
    /// Cavium, QDF2400, HiSilicon and Rockchip entries match IIDRs no modelled ITS reports.
    /// Returns GITS_TYPER as the quirks left it (`its->typer`).
    func enableQuirks(typer: UInt64) throws(Errno) -> UInt64 {
        guard let iidrAddress = base.adding(ITS.Offset.iidr) else { throw .EINVAL }
        let iidr = try kernel.mmio.read32(iidrAddress)
        var typer = typer
        if iidr & 0xFFFF_FFFF == GICv3ITSDriver.synquacerPreITSIIDR, let window = node.preITSWindow {
            typer = enableSynquacerPreITS(window, typer: typer)
            kernel.log.log("GIC", "enabling workaround for ITS: Socionext Synquacer pre-ITS")
        }
        return typer
    }

    /// `its_enable_quirk_socionext_synquacer`: when `fwnode_property_read_u32_array(…,
    /// "socionext,synquacer-pre-its", pre_its_window, 2)` succeeds (the firmware reader took
    /// the same first two cells):
    /// - `its->pre_its_base = pre_its_window[0]`, `its->get_msi_base =
    ///   its_irq_get_msi_base_pre_its` (`msiBase(forDeviceID:)`);
    /// - `ids = ilog2(pre_its_window[1]) - 2`; if `device_ids(its) > ids`, GITS_TYPER.Devbits in
    ///   `its->typer` becomes `ids - 1` (`preITSLimitedTyper`);
    /// - `its->msi_domain_flags &= ~IRQ_DOMAIN_FLAG_ISOLATED_MSI` ("the pre-ITS breaks
    ///   isolation, so disable MSI remapping"), which `msi_device_has_isolated_msi` and so
    ///   `iommu_group_has_isolated_msi` later see.
    func enableSynquacerPreITS(_ window: PreITSWindow, typer: UInt64) -> UInt64 {
        setPreITS(base: UInt64(window.base))
        return GICv3ITSDriver.preITSLimitedTyper(typer, windowSize: window.size)
    }

    /// The quirk's DeviceID limit, in Linux's u32 arithmetic: `ilog2(size)` is `fls(size) − 1`
    /// (−1 for 0), `ids = ilog2(size) − 2` wraps for a window under 4 bytes (so nothing is
    /// limited), and `FIELD_PREP(GITS_TYPER_DEVBITS, ids − 1)` keeps the low five bits of the
    /// wrapped `ids − 1` (a 4…7-byte window thus reads as 32 DeviceID bits).
    public static func preITSLimitedTyper(_ typer: UInt64, windowSize size: UInt32) -> UInt64 {
        let ilog2 = Int32(32 - size.leadingZeroBitCount) - 1
        let ids = UInt32(bitPattern: ilog2 &- 2)
        let deviceIDs = typer.bits(17, 13) + 1
        guard deviceIDs > UInt64(ids) else { return typer }
        return typer.settingBits(17, 13, to: UInt64(ids &- 1) & 0x1F)
    }
}
