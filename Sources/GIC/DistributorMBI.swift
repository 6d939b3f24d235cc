import Bus

/// Message-based SPIs (MBIs) on the GICv3 distributor: GICD_SETSPI_NSR (0x0040) and
/// GICD_CLRSPI_NSR (0x0048), present when GICD_TYPER.MBIS = 1 and reserved otherwise (GICv3/v4
/// architecture, IHI 0069, §12.9 "GICD_SETSPI_NSR" / "GICD_CLRSPI_NSR"). A device's MSI is a
/// write of the SPI's INTID (bits [12:0]) to GICD_SETSPI_NSR; Linux's irq-gic-v3-mbi.c composes
/// exactly that message (`mbi_compose_msi_msg`).
///
/// - SETSPI: a write naming an invalid SPI has no effect, nor has one for an SPI already pending.
///   An edge-triggered SPI becomes pending as by a rising edge (acknowledge clears it); a
///   level-sensitive SPI is asserted by the message and stays pending, across acknowledge and
///   deactivation, until GICD_CLRSPI_NSR deasserts it.
/// - CLRSPI: a write naming an invalid SPI, or one that is not pending, has no effect; otherwise
///   the message's assertion and the pending state are removed (pending → inactive, active and
///   pending → active).
/// - 16-bit accesses to bits [15:0] are supported as well as 32-bit ones; other sizes are ignored.
///   Reads return 0 (the registers are write-only).
///
/// This model has a single Security state (GICD_CTLR.DS = 1, as QEMU `virt` without EL3), in
/// which the NS registers serve every SPI and GICD_NSACR is not consulted; GICD_SETSPI_SR
/// (0x0050) and GICD_CLRSPI_SR (0x0058) are then write-ignored.
extension Distributor {
    public enum MBIOffset {
        public static let setspiNSR: UInt64 = 0x0040
        public static let clrspiNSR: UInt64 = 0x0048
        public static let setspiSR: UInt64 = 0x0050
        public static let clrspiSR: UInt64 = 0x0058
    }

    /// The INTID field of GICD_SETSPI_NSR / GICD_CLRSPI_NSR, bits [12:0].
    static func mbiINTID(_ value: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: value & 0x1FFF) }

    static func isMBIRegister(_ offset: UInt64) -> Bool {
        offset == MBIOffset.setspiNSR || offset == MBIOffset.clrspiNSR || offset == MBIOffset.setspiSR || offset == MBIOffset.clrspiSR
    }

    func messageWrite(offset: UInt64, size: Int, value: UInt64) {
        guard configuration.messageBasedSPIs, configuration.version >= 3, size == 2 || size == 4 else { return }
        switch offset {
        case MBIOffset.setspiNSR: _ = setSPIPending(intid: Distributor.mbiINTID(value))
        case MBIOffset.clrspiNSR: _ = clearSPIPending(intid: Distributor.mbiINTID(value))
        default: break
        }
    }

    /// GICD_SETSPI_NSR's effect on SPI `intid` (also what a GICv2m frame's MSI_SETSPI_NS does,
    /// `GICv2mMSIFrame`). Returns whether the write had an effect.
    @discardableResult
    public func setSPIPending(intid: UInt32) -> Bool {
        guard isImplementedSPI(intid), !isPending(intid: intid) else { return false }
        let word = Int(intid / 32)
        let bit = UInt32(1) << (intid % 32)
        if isEdgeTriggered(intid: intid) {
            storage[Int(Offset.ispendr / 4) + word] |= bit
        } else {
            messageLevelBits[word] |= bit
        }
        return true
    }

    /// GICD_CLRSPI_NSR's effect on SPI `intid`. Returns whether the write had an effect.
    @discardableResult
    public func clearSPIPending(intid: UInt32) -> Bool {
        guard isImplementedSPI(intid), isPending(intid: intid) else { return false }
        let word = Int(intid / 32)
        let bit = UInt32(1) << (intid % 32)
        messageLevelBits[word] &= ~bit
        storage[Int(Offset.ispendr / 4) + word] &= ~bit
        return true
    }

    /// Whether a GICD_SETSPI_NSR write holds level-sensitive SPI `intid` asserted.
    public func isMessageAsserted(intid: UInt32) -> Bool {
        isImplementedSPI(intid) && messageLevelBits[Int(intid / 32)] & (1 << (intid % 32)) != 0
    }
}
