import Bus
import Machine
import GIC

/// ITS and redistributor bring-up in the order Linux's irq-gic-v3-its.c uses: redistributor LPI
/// tables (`its_cpu_init_lpis`: PROPBASER, PENDBASER, then EnableLPIs), ITS tables
/// (`its_alloc_tables`: one GITS_BASER per table type), the command queue (`its_alloc_collections`
/// / CBASER, CWRITER), GITS_CTLR.Enabled, then MAPC per CPU (`its_cpu_init_collection`).
extension BareMetal {
    /// LPI INTIDs this programmer gives out start at 8192, the first LPI (GICv3 §5.1).
    public static let firstLPI: UInt32 = INTID.firstLPI.rawValue

    /// Sets up every redistributor's LPI configuration and pending tables and enables LPIs.
    /// One configuration table is shared by all, as Linux does (`gic_rdists->prop_table_pa`).
    public func enableLPIs(idBits: Int = 16) throws(Failure) {
        guard let gic = machine.gic else { throw .noSuchComponent("GICv3") }
        let lpis = UInt64(1) << UInt64(idBits)
        let configuration = try allocate(lpis - UInt64(BareMetal.firstLPI), alignment: 4096)
        lpiConfigurationTable = configuration
        for redistributor in gic.redistributors {
            guard let rdBase = redistributor.rdBase else { continue }
            let pending = try allocate(max(lpis / 8, 0x1_0000), alignment: 0x1_0000)
            // GICR_WAKER: clear ProcessorSleep[1] (Linux gic_enable_redist), then LPI tables.
            try write(register(rdBase, Redistributor.Offset.waker), 4, 0)
            // PROPBASER: PA[51:12] | IDbits[4:0] = idBits − 1; PENDBASER: PA[51:16].
            let propbaser = GICRPropbaser(rawValue: configuration.rawValue | UInt64(idBits - 1))
            let pendbaser = GICRPendbaser(rawValue: pending.rawValue)
            try write(register(rdBase, Redistributor.Offset.propbaser), 8, propbaser.rawValue)
            try write(register(rdBase, Redistributor.Offset.pendbaser), 8, pendbaser.rawValue)
            try write(register(rdBase, Redistributor.Offset.ctlr), 4, 1)   // EnableLPIs
        }
        // ICC_PMR_EL1 resets to 0, which masks every priority; Linux's gic_cpu_sys_reg_init
        // writes DEFAULT_PMR_VALUE (0xF0) so that its default LPI priority 0xA0 is taken.
        for cpu in 0..<gic.cpuInterfaces.count { gic.setPriorityMask(cpu: cpu, 0xF0) }
    }

    /// Programs ITS `index`: flat device and collection tables sized from GITS_TYPER, a 4 KiB
    /// command queue, Enabled, and one collection per CPU (ICID = CPU number).
    public func enableITS(_ index: Int = 0) throws(Failure) {
        guard index < machine.its.count, let gic = machine.gic else { throw .noSuchComponent("ITS \(index)") }
        let its = machine.its[index]
        let base = its.base
        let typer = try read(register(base, ITS.Offset.typer), 8)
        let deviceBits = typer.bits(17, 13) &+ 1
        for n in 0..<8 {
            let at = register(base, ITS.Offset.baser &+ UInt64(n) * 8)
            let baser = GITSBaser(rawValue: try read(at, 8))
            let type = baser.type
            guard type == GITSBaser.TableType.devices || type == GITSBaser.TableType.collections else { continue }
            let entrySize = baser.entrySize
            let entries: UInt64 = type == GITSBaser.TableType.devices ? UInt64(1) << deviceBits : UInt64(max(gic.redistributors.count, 1))
            let pages = min(max((entries &* entrySize &+ 4095) / 4096, 1), 256)
            let table = try allocate(pages * 4096)
            // Valid[63] | Type/EntrySize kept | PA[47:12] | PageSize 4K (0) | Size = pages − 1.
            try write(at, 8, 1 << 63 | baser.rawValue.keepingBits(58, 48) | table.rawValue | (pages - 1))
        }
        let queue = try allocate(4096)
        itsQueues[index] = queue
        try write(register(base, ITS.Offset.cbaser), 8, 1 << 63 | queue.rawValue)   // Valid, Size = 1 page
        try write(register(base, ITS.Offset.cwriter), 8, 0)
        try write(register(base, ITS.Offset.ctlr), 4, 1)                             // Enabled
        var commands: [ITSCommand] = []
        for cpu in 0..<gic.redistributors.count {
            commands.append(.mapc(collection: CollectionID(UInt16(truncatingIfNeeded: cpu)), target: gic.target(ofCPU: cpu), valid: true))
        }
        commands.append(.sync(target: gic.target(ofCPU: 0)))
        try issue(commands, its: index)
    }

    /// Writes `commands` at GITS_CWRITER and advances it (the ITS consumes them at once); fails
    /// with the first error code the ITS recorded while consuming them.
    public func issue(_ commands: [ITSCommand], its index: Int = 0) throws(Failure) {
        guard index < machine.its.count, let queue = itsQueues[index] else { throw .noSuchComponent("ITS \(index) (enable it first)") }
        let its = machine.its[index]
        let errorsBefore = its.counters.commandErrors
        var writer = try read(register(its.base, ITS.Offset.cwriter), 8).keepingBits(19, 5)
        for command in commands {
            let (w0, w1, w2, w3) = command.encodeWords()
            for (i, word) in [w0, w1, w2, w3].enumerated() {
                try write(PhysicalAddress(queue.rawValue &+ writer &+ UInt64(i) * 8), 8, word)
            }
            writer = (writer &+ 32) % 4096
        }
        try write(register(its.base, ITS.Offset.cwriter), 8, writer)
        if its.counters.commandErrors != errorsBefore, let code = its.lastCommandError {
            throw .itsCommandError(code.rawValue)
        }
    }

    /// Maps `deviceID` on ITS `its` with an ITT for `events` EventIDs (a power of two, as Linux's
    /// `its_create_device` rounds it), and EventID e → LPI `firstINTID + e` on collection
    /// `collection`, each LPI enabled at priority 0xA0 (Linux's default `LPI_PROP_DEFAULT_PRIO`).
    public func mapDevice(_ deviceID: DeviceID, events: Int, firstINTID: UInt32, collection: UInt16 = 0, its index: Int = 0) throws(Failure) {
        guard index < machine.its.count else { throw .noSuchComponent("ITS \(index)") }
        let its = machine.its[index]
        let eventBits = max(1, Int.bitWidth - max(events - 1, 1).leadingZeroBitCount)
        let ittBytes = UInt64(its.configuration.ittEntrySize) << UInt64(eventBits)
        let itt = try allocate(max(ittBytes, 256), alignment: 256)
        var commands: [ITSCommand] = [.mapd(device: deviceID, size: UInt8(eventBits - 1), ittAddress: itt, valid: true)]
        for event in 0..<events {
            let intid = firstINTID &+ UInt32(event)
            try setLPIConfiguration(intid, priority: 0xA0, enabled: true)
            commands.append(.mapti(device: deviceID, event: EventID(UInt32(event)), intid: INTID(intid), collection: CollectionID(collection)))
            commands.append(.inv(device: deviceID, event: EventID(UInt32(event))))
        }
        if let gic = machine.gic { commands.append(.sync(target: gic.target(ofCPU: Int(collection)))) }
        // In batches of 64: MAPD + 2 commands per event outgrow the command queue (one 4 KiB
        // page, 128 commands) from 64 events on.
        var start = 0
        while start < commands.count {
            let end = min(start + 64, commands.count)
            try issue(Array(commands[start..<end]), its: index)
            start = end
        }
    }

    /// Writes an LPI's configuration byte (Priority[7:2] | bit1 RES1 | Enable[0], GICv3 §5.1.1);
    /// the redistributor sees it only after an INV/INVALL, as hardware that caches it would.
    public func setLPIConfiguration(_ intid: UInt32, priority: UInt8, enabled: Bool) throws(Failure) {
        guard let table = lpiConfigurationTable, intid >= BareMetal.firstLPI else { throw .noSuchComponent("LPI configuration table (enable LPIs first)") }
        guard let address = LPIConfigurationTable.entryAddress(base: table, intid: INTID(intid)) else {
            throw .noSuchComponent("LPI configuration byte for INTID \(intid)")
        }
        try write(address, 1, UInt64(LPIConfigurationTable.entry(priority: priority, enabled: enabled)))
    }
}
