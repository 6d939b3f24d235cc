import Bus
import Firmware

extension IRQSubsystem {
    /// irq-gic.c bring-up for a GICv2 (`gic_of_init` → `gic_init_bases`), then `gicv2m_init`:
    /// - `gic_dist_init`: GICD_CTLR = 0; every SPI targeted at the boot CPU (GICD_ITARGETSR<n> =
    ///   `gic_get_cpumask` in each byte, CPU interface 0 here); `gic_dist_config`: every SPI
    ///   level-sensitive (GICD_ICFGR = 0), priority 0xA0, inactive and disabled; GICD_CTLR =
    ///   GICD_ENABLE (1).
    /// - `gic_cpu_init` per CPU: `gic_cpu_if_up` (GICC_CTLR Enable, plus EOImodeNS while
    ///   `supports_deactivate_key`: entered at EL2) and GICC_PMR = GICC_INT_PRI_THRESHOLD 0xF0.
    /// - `gicv2m_init` (`probeV2m`).
    func probeGICv2(_ gic: GICDescription) throws(Errno) {
        let mmio = kernel.mmio
        let base = gic.distributor.base
        func at(_ offset: Int) throws(Errno) -> PhysicalAddress {
            guard let address = base.adding(UInt64(offset)) else { throw .EINVAL }
            return address
        }
        let typer = try mmio.read32(try at(0x4))
        let lines = IRQSubsystem.lineCount(typer: typer)
        try mmio.write32(base, 0)
        for i in stride(from: 32, to: lines, by: 4) { try mmio.write32(try at(0x800 + i), 0x0101_0101) }
        for i in stride(from: 32, to: lines, by: 16) { try mmio.write32(try at(0xC00 + i / 4), 0) }
        for i in stride(from: 32, to: lines, by: 4) { try mmio.write32(try at(0x400 + i), IRQSubsystem.defaultSPIPriorityX4) }
        for i in stride(from: 32, to: lines, by: 32) {
            try mmio.write32(try at(0x380 + i / 8), ~0)
            try mmio.write32(try at(0x180 + i / 8), ~0)
        }
        try mmio.write32(base, 1)
        for cpu in 0..<cpuCount {
            kernel.cpuInterface.writePMR(cpu: cpu, IRQSubsystem.defaultPMR)
            kernel.cpuInterface.writeCTLR(cpu: cpu, usesEOImodeDrop ? (1 << 1) : 0)
        }
        kernel.log.log("GIC", "GICv2 at \(Hex.format(base.rawValue)): \(lines - 32) SPIs")
        if let v2m = probeV2m(gic) { spiMSIDomains.append(v2m) }
    }
}
