import Bus
import Firmware
import GIC

extension GICv3ITSDriver {
    /// `its_probe_one`: check GITS_PIDR2.ArchRev (3 or 4), read GITS_TYPER, quiesce the ITS
    /// (`its_force_quiescent`: clear Enabled, poll Quiescent), the quirks (`its_enable_quirks`:
    /// GITS_IIDR against `its_quirks`, which may rewrite `its->typer`), `its_alloc_tables`, the command
    /// queue (`ITS_CMD_QUEUE_SZ` = 64 KiB; GITS_CBASER = PA | RaWaWb | InnerShareable |
    /// (64 KiB / 4 KiB − 1) | Valid; GITS_CWRITER = 0), then GITS_CTLR.Enabled = 1.
    func probe() throws(Errno) {
        let mmio = kernel.mmio
        func reg(_ offset: UInt64) throws(Errno) -> PhysicalAddress {
            guard let a = base.adding(offset) else { throw .EINVAL }
            return a
        }
        let pidr2 = try mmio.read32(try reg(ITS.Offset.pidr2))
        let arch = (pidr2 >> 4) & 0xF
        guard arch == 3 || arch == 4 else {
            kernel.log.log("ITS", "\(node.path): no ITS detected, giving up")
            throw .ENODEV
        }
        let typer = try enableQuirks(typer: try mmio.read64(try reg(ITS.Offset.typer)))
        // its_force_quiescent.
        let ctlr = try mmio.read32(try reg(ITS.Offset.ctlr))
        if ctlr & 1 != 0 || ctlr & (1 << 31) == 0 {
            try mmio.write32(try reg(ITS.Offset.ctlr), ctlr & ~1)
            var quiet = false
            for _ in 0..<1000 {
                if try mmio.read32(try reg(ITS.Offset.ctlr)) & (1 << 31) != 0 { quiet = true; break }
            }
            guard quiet else { throw .EBUSY }
        }
        let tables = try allocateTables(typer: typer)
        let queue = try kernel.pages.allocate(bytes: GICv3ITSDriver.commandQueueBytes, alignment: 0x1_0000)
        let cbaser = queue.rawValue | GICv3ITSDriver.raWaWb | GICv3ITSDriver.innerShareable
            | (GICv3ITSDriver.commandQueueBytes / 0x1000 - 1) | UInt64(1) << 63
        try mmio.write64(try reg(ITS.Offset.cbaser), cbaser)
        try mmio.write64(try reg(ITS.Offset.cwriter), 0)
        setProbed(typer: typer, queue: queue, tables: tables)
        try mmio.write32(try reg(ITS.Offset.ctlr), try mmio.read32(try reg(ITS.Offset.ctlr)) | 1)
        kernel.log.log("ITS", "\(node.path): ITS@\(base): \(deviceIDBits) DeviceID bits, ITT entry \(iteSize) bytes, queue @\(queue)")
    }

    /// GITS_CBASER / GITS_BASER attribute encodings (arm-gic-v3.h): InnerCache RaWaWb = 7 at
    /// bits 61:59, InnerShareable = 1 at bits 11:10.
    static let raWaWb: UInt64 = 7 << 59
    static let innerShareable: UInt64 = 1 << 10

    /// `its_alloc_tables`: for each implemented GITS_BASER<n> (Type ≠ 0): the page size
    /// (`its_probe_baser_psz`: try 64 KiB, then 16 KiB, then 4 KiB, keeping what reads back),
    /// `order = get_order(psz)`; for the device table `its_parse_indirect_baser`: when a flat
    /// table would exceed two pages (`(esz << ids) > psz × 2`), try Indirect (write it, read it
    /// back); indirect makes the level-1 table `(ids − log2(psz / esz))` bits of 8-byte entries;
    /// the allocation is `max(get_order(esz << ids), order)`; `its_setup_baser` writes
    /// PA | Type | (esz − 1) << 48 | (pages − 1) | RaWaWb | InnerShareable | Valid | Indirect |
    /// PageSize and reads it back. Collection tables are flat (`its_alloc_tables` parses
    /// indirection for devices and vPEs only). A GICv4 ITS's vPE table (GITS_BASER2, Type 2)
    /// is parsed the same way over `ITS_MAX_VPEID_BITS`; a GICv4.1 ITS first looks for a
    /// sibling ITS sharing it (`find_sibling_its`, only with GITS_TYPER.SVPET ≠ 0, which the
    /// model's ITSs do not report).
    func allocateTables(typer: UInt64) throws(Errno) -> [ITSTableAllocation] {
        let mmio = kernel.mmio
        var result: [ITSTableAllocation] = []
        let deviceIDs = Int(typer.bits(17, 13)) + 1
        for n in 0..<8 {
            guard let address = base.adding(ITS.Offset.baser + UInt64(n) * 8) else { continue }
            let current = try mmio.read64(address)
            let type = current.bits(58, 56)
            let vpes = type == GITSBaser.TableType.vPEs && typer.bit(1)
            guard type == GITSBaser.TableType.devices || type == GITSBaser.TableType.collections || vpes else { continue }
            if vpes, typer.bit(40), typer.bits(42, 41) != 0 {
                kernel.log.log("ITS", "\(node.path): GITS_TYPER.SVPET ≠ 0: vPE table sharing between ITSs is not modelled, allocating a private one")
            }
            let esz = current.bits(52, 48) + 1
            // its_probe_baser_psz.
            var psz: UInt64 = 0x1_0000
            for (size, code) in [(UInt64(0x1_0000), UInt64(2)), (0x4000, 1), (0x1000, 0)] {
                try mmio.write64(address, current.settingBits(9, 8, to: code))
                if try mmio.read64(address).bits(9, 8) == code { psz = size; break }
            }
            var indirect = false
            var entrySize = esz
            var ids = type == GITSBaser.TableType.devices ? deviceIDs : Int(typer.bit(36) ? typer.bits(35, 32) + 1 : 16)
            if vpes { ids = kernel.irq.gicv4.maxVPEIDBits }
            if type == GITSBaser.TableType.devices || vpes, ids < 64, (esz << UInt64(ids)) > psz * 2 {
                try mmio.write64(address, GITSBaser.indirectProbeValue)
                indirect = try mmio.read64(address).bit(62)
                if indirect {
                    var shift = 0
                    while (UInt64(1) << UInt64(shift + 1)) <= psz / esz { shift += 1 }
                    ids = max(ids - shift, 0)
                    entrySize = 8
                }
            }
            let needed = ids < 48 ? entrySize << UInt64(ids) : UInt64.max
            // Collections: one per CPU is all Linux uses; keep the table at one page as its
            // order-of-psz allocation does when ids would ask for more than the queue allows.
            var bytes = max(type == GITSBaser.TableType.collections ? psz : min(needed, 256 * psz), psz)
            bytes = (bytes + psz - 1) / psz * psz
            let pages = bytes / psz
            let table = try kernel.pages.allocate(bytes: bytes, alignment: psz)
            let pszCode: UInt64 = psz == 0x1_0000 ? 2 : (psz == 0x4000 ? 1 : 0)
            var value = table.rawValue.keepingBits(47, 12) | type << 56 | (esz - 1) << 48 | (pages - 1)
                | GICv3ITSDriver.raWaWb | GICv3ITSDriver.innerShareable | UInt64(1) << 63 | pszCode << 8
            if psz == 0x1_0000 { value = value.settingBits(15, 12, to: table.rawValue.bits(51, 48)) }
            if indirect { value |= UInt64(1) << 62 }
            try mmio.write64(address, value)
            let readBack = try mmio.read64(address)
            result.append(ITSTableAllocation(index: n, type: type, base: table, pageSize: psz, entrySize: esz,
                                             pages: pages, indirect: readBack.bit(62), register: readBack))
        }
        return result
    }

    /// `its_alloc_device_table` / `its_alloc_table_entry`: with an indirect device table, the
    /// level-2 page holding `deviceID`'s entry is allocated (psz bytes, zeroed) and its level-1
    /// entry written as PA | Valid on first use. Fails with ENXIO beyond the table.
    func ensureDeviceTableEntry(_ deviceID: UInt32) throws(Errno) {
        guard UInt64(deviceID) < UInt64(1) << UInt64(deviceIDBits) else { throw .ENXIO }
        try ensureTableEntry(deviceID, type: GITSBaser.TableType.devices)
    }

    /// `its_alloc_table_entry` for the vPE table (from `its_alloc_vpe_table`): ENXIO when the
    /// ITS has none or `vpe` is beyond it.
    func ensureVPETableEntry(_ vpe: UInt16) throws(Errno) {
        try ensureTableEntry(UInt32(vpe), type: GITSBaser.TableType.vPEs)
    }

    private func ensureTableEntry(_ id: UInt32, type: UInt64) throws(Errno) {
        let deviceID = id
        guard let table = tables.first(where: { $0.type == type }) else { throw .ENXIO }
        let perPage = table.pageSize / table.entrySize
        guard table.indirect else {
            guard UInt64(deviceID) < table.pages * perPage else { throw .ENXIO }
            return
        }
        let l1Index = UInt64(deviceID) / perPage
        guard l1Index < table.pages * table.pageSize / 8, let entry = table.base.adding(l1Index * 8) else { throw .ENXIO }
        let current = kernel.bus.kernelRead(entry.rawValue, size: 8)
        guard !current.bit(63) else { return }
        let page = try kernel.pages.allocate(bytes: table.pageSize, alignment: table.pageSize)
        kernel.bus.kernelWrite(entry.rawValue, size: 8, value: page.rawValue | UInt64(1) << 63)
    }

    /// `its_cpu_init_collection`: collection ICID = cpu mapped to that CPU's redistributor
    /// (MAPC V=1, followed by SYNC), then INVALL.
    func initCollection(cpu: Int) throws(Errno) {
        guard let target = kernel.irq.target(ofCPU: cpu, physical: physicalTargets) else { throw .EINVAL }
        var targets = collectionTargets
        while targets.count <= cpu { targets.append(ITSTarget(rawValue: 0)) }
        targets[cpu] = target
        setCollectionTargets(targets)
        let icid = CollectionID(UInt16(truncatingIfNeeded: cpu))
        try send(.mapc(collection: icid, target: target, valid: true), syncOn: target)
        try send(.invall(collection: icid), syncOn: nil)
    }
}

extension GITSBaser {
    /// What `its_parse_indirect_baser` writes to test for Indirect support:
    /// InnerShareable | RaWaWb | Indirect (the ITS keeps bit 62 only if it implements it).
    static let indirectProbeValue: UInt64 = GICv3ITSDriver.innerShareable | GICv3ITSDriver.raWaWb | UInt64(1) << 62
}
