import Bus
import Firmware
import GIC

extension IRQSubsystem {
    /// GIC bring-up in the order Linux runs it: the distributor (`gic_dist_init`: GICD_CTLR
    /// ARE_NS | EnableGrp1NS/Grp1A | Grp1), the redistributors (`gic_populate_rdist` /
    /// `gic_iterate_rdists`: walk each GICR region frame by frame by GICR_TYPER, match
    /// GICR_TYPER.Affinity to the CPU's MPIDR, stop at GICR_TYPER.Last), the ITSs
    /// (`its_init` → `its_probe_one` per `arm,gic-v3-its` node), then per CPU `gic_cpu_init`
    /// (`gic_enable_redist`: clear GICR_WAKER.ProcessorSleep, wait for ChildrenAsleep = 0),
    /// `its_cpu_init` (`its_cpu_init_lpis`, `its_cpu_init_collections`) and ICC_PMR_EL1 =
    /// `DEFAULT_PMR_VALUE` 0xF0 (`gic_cpu_sys_reg_init`).
    public func probe() throws(Errno) {
        guard let gic = kernel.topology.gic, gic.architecture == .v3 else {
            kernel.log.log("GICv3", "no GICv3 in the description: no LPIs")
            return
        }
        let mmio = kernel.mmio
        let gicdTyper = try mmio.read32(gic.distributor.base.adding(0x4) ?? gic.distributor.base)
        try mmio.write32(gic.distributor.base, 1 << 4 | 1 << 1 | 1 << 0)
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

        for cpu in 0..<redistributors.count {
            try enableRedistributor(cpu)
            try initLPIs(cpu)
            for driver in kernel.itsDrivers { try driver.initCollection(cpu: cpu) }
            kernel.cpuInterface.writePMR(cpu: cpu, IRQSubsystem.defaultPMR)
        }
    }

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
    /// are enabled; then GICR_CTLR.EnableLPIs.
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
