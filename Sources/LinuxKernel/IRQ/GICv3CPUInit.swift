import Bus
import Firmware
import GIC

extension IRQSubsystem {
    /// GIC bring-up in the order Linux runs it: the distributor (`gic_dist_init`, see
    /// `initDistributor`), the redistributors (`gic_populate_rdist` /
    /// `gic_iterate_rdists`: walk each GICR region frame by frame by GICR_TYPER, match
    /// GICR_TYPER.Affinity to the CPU's MPIDR, stop at GICR_TYPER.Last), the ITSs
    /// (`its_init` → `its_probe_one` per `arm,gic-v3-its` node), then per CPU `gic_cpu_init`
    /// (`gic_enable_redist`: clear GICR_WAKER.ProcessorSleep, wait for ChildrenAsleep = 0),
    /// `its_cpu_init` (`its_cpu_init_lpis`, `its_cpu_init_collections`) and ICC_PMR_EL1 =
    /// `DEFAULT_PMR_VALUE` 0xF0 and ICC_CTLR_EL1.EOImode (`gic_cpu_sys_reg_init`: mode 1,
    /// `ICC_CTLR_EL1_EOImode_drop`, while `supports_deactivate_key` is on — a kernel entered at
    /// EL2, which `gic_of_init` checks with `is_hyp_mode_available()`; mode 0 otherwise). The
    /// host model is a KVM host entered at EL2; a guest (role "guest") runs at EL1.
    public func probe() throws(Errno) {
        guard let gic = kernel.topology.gic else {
            kernel.log.log("GICv3", "no GIC in the description: no LPIs")
            return
        }
        if gic.architecture == .v2 { return try probeGICv2(gic) }
        let mmio = kernel.mmio
        let gicdTyper = try mmio.read32(gic.distributor.base.adding(0x4) ?? gic.distributor.base)
        try initDistributor(gic.distributor.base, typer: gicdTyper)
        // `gic_init_bases`: GICD_TYPER.MBIS → `mbi_init`.
        if let mbi = probeMBI(gic, typer: gicdTyper) { spiMSIDomains.append(mbi) }
        // lpi_id_bits = min(GICD_TYPER.IDbits + 1, ITS_MAX_LPI_NRBITS (16)).
        lpiIDBits = min(Int(gicdTyper.bits(23, 19)) + 1, 16)
        guard lpiIDBits >= 14 else {
            kernel.log.log("GICv3", "GICD_TYPER.IDbits too small for LPIs")
            return
        }
        lpiAllocator = LPIAllocator(first: 8192, count: (1 << lpiIDBits) - 8192)
        lpiCountPerCPU = Array(repeating: 0, count: cpuCount)
        managedLPICountPerCPU = Array(repeating: 0, count: cpuCount)
        try discoverRedistributors(gic)
        kernel.log.log("GICv3", "\(redistributors.count) redistributors, \(lpiIDBits) LPI ID bits")
        try probeGICv4Redistributors(distributor: gic.distributor.base)

        // its_setup_lpi_prop_table: LPI_PROPBASE_SZ = ALIGN(2^lpi_id_bits, 64 KiB), every byte
        // LPI_PROP_DEFAULT_PRIO | LPI_PROP_GROUP1 (0xA0 | 0x2): priority 0xA0, disabled.
        let propBytes = (UInt64(1) << UInt64(lpiIDBits) + 0xFFFF) & ~0xFFFF
        propertyTable = try kernel.pages.allocate(bytes: propBytes, alignment: 0x1_0000)
        kernel.bus.kernelWriteBytes(propertyTable.rawValue, [UInt8](repeating: IRQSubsystem.defaultLPIConfiguration, count: Int(propBytes)))

        for (index, node) in kernel.topology.its.enumerated() where node.enabled {
            let driver = GICv3ITSDriver(kernel: kernel, index: kernel.itsDrivers.count, node: node)
            do {
                try driver.probe()
                kernel.itsDrivers.append(driver)
            } catch {
                kernel.log.log("ITS", "\(node.path): probe failed (\(error)), ITS \(index) not used")
            }
        }

        settleGICv4()

        for cpu in 0..<redistributors.count {
            try enableRedistributor(cpu)
            try initLPIs(cpu)
            try allocateVPEL1Table(cpu: cpu)
            for driver in kernel.itsDrivers { try driver.initCollection(cpu: cpu) }
            kernel.cpuInterface.writePMR(cpu: cpu, IRQSubsystem.defaultPMR)
            kernel.cpuInterface.writeCTLR(cpu: cpu, usesEOImodeDrop ? GICv3.eoiModeDrop : 0)
        }
    }

    /// `supports_deactivate_key`: the kernel splits priority drop (ICC_EOIR1_EL1) from
    /// deactivation (ICC_DIR_EL1), as it does when entered at EL2.
    public var usesEOImodeDrop: Bool { kernel.role != .guest }

    /// `GIC_LINE_NR`: min(GICD_TYPER.ITLinesNumber, 1020) lines, (ITLinesNumber + 1) × 32.
    static func lineCount(typer: UInt32) -> Int { min((Int(typer & 0x1F) + 1) * 32, 1020) }

    /// `gic_dist_init`: GICD_CTLR = 0; every SPI non-secure Group 1 (GICD_IGROUPR = ~0); then
    /// `gic_dist_config` (irq-gic-common.c): every SPI level-sensitive (GICD_ICFGR = 0),
    /// priority `GICD_INT_DEF_PRI` 0xA0 (GICD_IPRIORITYR = `GICD_INT_DEF_PRI_X4`), inactive and
    /// disabled (GICD_ICACTIVER / GICD_ICENABLER = ~0); GICD_CTLR = ARE_NS | EnableGrp1A |
    /// EnableGrp1; every SPI routed to the boot CPU (GICD_IROUTER<n> = its MPIDR affinity,
    /// `gic_mpidr_to_affinity`). No extended SPI range (GICD_TYPER.ESPI = 0).
    func initDistributor(_ base: PhysicalAddress, typer: UInt32) throws(Errno) {
        let mmio = kernel.mmio
        func at(_ offset: Int) throws(Errno) -> PhysicalAddress {
            guard let address = base.adding(UInt64(offset)) else { throw .EINVAL }
            return address
        }
        let lines = IRQSubsystem.lineCount(typer: typer)
        try mmio.write32(base, 0)
        for i in stride(from: 32, to: lines, by: 32) { try mmio.write32(try at(0x080 + i / 8), ~0) }
        for i in stride(from: 32, to: lines, by: 16) { try mmio.write32(try at(0xC00 + i / 4), 0) }
        for i in stride(from: 32, to: lines, by: 4) { try mmio.write32(try at(0x400 + i), IRQSubsystem.defaultSPIPriorityX4) }
        for i in stride(from: 32, to: lines, by: 32) {
            try mmio.write32(try at(0x380 + i / 8), ~0)
            try mmio.write32(try at(0x180 + i / 8), ~0)
        }
        try mmio.write32(base, 1 << 4 | 1 << 1 | 1 << 0)
        let affinity = IRQSubsystem.routerAffinity(mpidr: kernel.topology.cpus.first?.mpidr ?? 0)
        for i in 32..<max(lines, 32) { try mmio.write(try at(0x6000 + 8 * i), size: 8, affinity) }
    }

    /// `GICD_INT_DEF_PRI` (0xA0) in each byte: `GICD_INT_DEF_PRI_X4`.
    public static let defaultSPIPriorityX4: UInt32 = 0xA0A0_A0A0

    /// `gic_mpidr_to_affinity`: Aff3 in bits [39:32], Aff2.Aff1.Aff0 in [23:0], mode 0.
    static func routerAffinity(mpidr: UInt64) -> UInt64 { mpidr & 0xFF_00FF_FFFF }

    /// `LPI_PROP_DEFAULT_PRIO | LPI_PROP_GROUP1`.
    public static let defaultLPIConfiguration: UInt8 = 0xA2
    /// `DEFAULT_PMR_VALUE`.
    public static let defaultPMR: UInt8 = 0xF0

    /// `gic_iterate_rdists` + `__gic_populate_rdist`: frame by frame through each region
    /// (stride from the DT, or 2 × 64 KiB, 4 × 64 KiB when GICR_TYPER.VLPIS), matching
    /// GICR_TYPER.Affinity against each CPU's MPIDR (Aff3.Aff2.Aff1.Aff0).
    func discoverRedistributors(_ gic: GICDescription) throws(Errno) {
        let cpus = kernel.topology.cpus
        let wanted = cpus.isEmpty ? [UInt32(0)] : cpus.map { UInt32(truncatingIfNeeded: $0.mpidr.bits(39, 32) << 24 | $0.mpidr.bits(23, 0)) }
        var found: [Int: RedistributorInfo] = [:]
        for region in gic.redistributorRegions {
            var offset: UInt64 = 0
            var frames = 0
            while offset < region.size, frames < 4096, let base = region.base.adding(offset) {
                frames += 1
                let typer = try kernel.mmio.read64(base.adding(0x8) ?? base)
                let affinity = UInt32(truncatingIfNeeded: typer >> 32)
                if let cpu = wanted.firstIndex(of: affinity), cpu < cpuCount, found[cpu] == nil {
                    found[cpu] = RedistributorInfo(cpu: cpu, base: base, typer: typer, pendingTable: PhysicalAddress(0))
                }
                if typer.bit(4) { break }
                let stride = gic.redistributorStride ?? (typer.bit(1) ? 0x4_0000 : 0x2_0000)
                let (next, overflow) = offset.addingReportingOverflow(max(stride, 0x2_0000))
                guard !overflow else { break }
                offset = next
            }
        }
        redistributors = found.keys.sorted().compactMap { found[$0] }
    }

    /// `gic_enable_redist(true)`: GICR_WAKER.ProcessorSleep = 0, then poll ChildrenAsleep.
    func enableRedistributor(_ cpu: Int) throws(Errno) {
        let rd = redistributors[cpu].base
        guard let waker = rd.adding(Redistributor.Offset.waker) else { throw .EINVAL }
        let value = try kernel.mmio.read32(waker)
        try kernel.mmio.write32(waker, value & ~(1 << 1))
        for _ in 0..<1000 {
            if try kernel.mmio.read32(waker) & (1 << 2) == 0 { return }
        }
        kernel.log.log("GICv3", "CPU\(cpu): redistributor failed to wake up")
        throw .ETIMEDOUT
    }

    /// `its_cpu_init_lpis`: PROPBASER = property table | InnerShareable | RaWaWb |
    /// (lpi_id_bits − 1); a zeroed 64 KiB-aligned pending table (`its_allocate_pending_table`,
    /// LPI_PENDBASE_SZ = ALIGN(2^lpi_id_bits / 8, 64 KiB)); PENDBASER = table | InnerShareable |
    /// RaWaWb — without PTZ: Linux never sets GICR_PENDBASER.PTZ (checked in
    /// irq-gic-v3-its.c, "set PENDBASE"), so the redistributor reads the zeroed table when LPIs
    /// are enabled; then GICR_CTLR.EnableLPIs. On GICv4.1 `allocate_vpe_l1_table` follows
    /// (`allocateVPEL1Table`).
    ///
    /// Attribute encodings (arm-gic-v3.h): InnerShareable = 1 << 10; RaWaWb = 7 in InnerCache
    /// (bits 9:7 for both registers).
    func initLPIs(_ cpu: Int) throws(Errno) {
        let rd = redistributors[cpu].base
        let shareable: UInt64 = 1 << 10
        let raWaWb: UInt64 = 7 << 7
        let propbaser = propertyTable.rawValue | shareable | raWaWb | UInt64(lpiIDBits - 1)
        guard let propAddress = rd.adding(Redistributor.Offset.propbaser),
              let pendAddress = rd.adding(Redistributor.Offset.pendbaser) else { throw .EINVAL }
        try kernel.mmio.write64(propAddress, propbaser)
        let pendBytes = max((UInt64(1) << UInt64(lpiIDBits)) / 8, 0x1_0000)
        let pending = try kernel.pages.allocate(bytes: pendBytes, alignment: 0x1_0000)
        let pendbaser = pending.rawValue | shareable | raWaWb
        try kernel.mmio.write64(pendAddress, pendbaser)
        redistributors[cpu].pendingTable = pending
        let ctlr = try kernel.mmio.read32(rd)
        try kernel.mmio.write32(rd, ctlr | 1)
        kernel.log.log("GICv3", "CPU\(cpu): using LPI pending table @\(pending)")
    }

    /// The MAPC/SYNC target naming CPU `cpu`'s redistributor (`its_cpu_init_collection`): its
    /// RD_base physical address when GITS_TYPER.PTA = 1, else GICR_TYPER.Processor_Number.
    func target(ofCPU cpu: Int, physical: Bool) -> ITSTarget? {
        guard cpu >= 0, cpu < redistributors.count else { return nil }
        let rd = redistributors[cpu]
        return physical ? .address(rd.base) : .processor(rd.processorNumber)
    }
}
