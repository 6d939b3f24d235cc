import Bus
import GIC
import Machine

/// SPI bring-up for MSIs that arrive as SPIs (a GICv2m frame's MSI_SETSPI_NS, a GICv3's
/// GICD_SETSPI_NSR), programmed as Linux leaves the GIC for such an interrupt:
/// - GICv2 (irq-gic.c): `gic_dist_init` sets GICD_CTLR.Enable, `gic_cpu_if_up` GICC_CTLR.Enable,
///   `gic_cpu_init` GICC_PMR = 0xF0; the MSI's `irq_set_type` edge-rising (GICD_ICFGR bit 2n+1),
///   `gic_set_affinity` GICD_ITARGETSR<n> = CPU interface 0, `gic_unmask_irq` GICD_ISENABLER.
/// - GICv3 (irq-gic-v3.c): GICD_CTLR.ARE_NS | EnableGrp1NS, GICD_IGROUPR<n> Group 1, ICC_PMR_EL1
///   = 0xF0, edge-rising, GICD_IROUTER<n> = CPU 0's affinity, GICD_ISENABLER.
/// The priority is Linux's default for SPIs (GICD_INT_DEF_PRI 0xA0).
extension BareMetal {
    public func enableMSISPI(_ intid: UInt32) throws(Failure) {
        guard let gic = machine.gic, let gicd = gic.distributorBase else { throw .noSuchComponent("GIC distributor") }
        let n = UInt64(intid)
        let v2 = gic.configuration.version == 2
        if v2 {
            try write(gicd, 4, 1)
            guard let gicc = machine.topology.gic?.cpuInterfaceRegions.first?.base else { throw .noSuchComponent("GICv2 CPU interface") }
            try write(gicc, 4, 1)
            try write(register(gicc, GICv2CPUInterface.Offset.pmr), 4, 0xF0)
        } else {
            try write(gicd, 4, 1 << 4 | 1 << 1)
            let group = register(gicd, Distributor.Offset.igroupr + (n / 32) * 4)
            try write(group, 4, try read(group, 4) | 1 << (n % 32))
            gic.setPriorityMask(cpu: 0, 0xF0)
        }
        try write(register(gicd, Distributor.Offset.ipriorityr + n), 1, 0xA0)
        let icfgr = register(gicd, Distributor.Offset.icfgr + (n / 16) * 4)
        try write(icfgr, 4, try read(icfgr, 4) | 2 << ((n % 16) * 2))
        if v2 {
            try write(register(gicd, Distributor.GICv2Offset.itargetsr + n), 1, 1)
        } else {
            let affinity = gic.redistributors.first?.affinity ?? 0
            let router = UInt64(affinity >> 24) << 32 | UInt64(affinity & 0xFF_FFFF)
            try write(register(gicd, Distributor.Offset.irouter + 8 * n), 8, router)
        }
        try write(register(gicd, Distributor.Offset.isenabler + (n / 32) * 4), 4, 1 << (n % 32))
    }

    /// CPU 0 takes the highest-priority pending interrupt and ends it: GICC_IAR / GICC_EOIR on
    /// a GICv2, ICC_IAR1_EL1 / ICC_EOIR1_EL1 on a GICv3. Returns the INTID (1023: nothing).
    public func acknowledgeAndEnd() throws(Failure) -> UInt32 {
        guard let gic = machine.gic else { throw .noSuchComponent("GIC") }
        if gic.configuration.version == 2 {
            guard let gicc = machine.topology.gic?.cpuInterfaceRegions.first?.base else { throw .noSuchComponent("GICv2 CPU interface") }
            let intid = UInt32(truncatingIfNeeded: try read(register(gicc, GICv2CPUInterface.Offset.iar), 4) & 0x3FF)
            if intid < 1020 { try write(register(gicc, GICv2CPUInterface.Offset.eoir), 4, UInt64(intid)) }
            return intid
        }
        let intid = gic.acknowledge(cpu: 0)
        if intid < 1020 || intid >= 8192 { gic.endOfInterrupt(cpu: 0, intid: intid) }
        return intid
    }
}
