import Bus

extension ITS {
    /// Consumes commands from GITS_CREADR up to GITS_CWRITER (GICv3 §5.3; docs/hardware.md §ITS commands),
    /// when GITS_CTLR.Enabled=1, GITS_CBASER.Valid=1 and the queue is not stalled.
    ///
    /// Error policy (`GICConfiguration.CommandErrorPolicy`, default `.skipAndContinue`): a
    /// parameter error is recorded (`errorLog`, `lastCommandError`, `counters.commandErrors`) and
    /// the command is skipped, as QEMU does; with `.stall` the queue stops on it with
    /// CREADR.Stalled=1 until a CWRITER write with Retry=1. A bus fault reading the queue or a
    /// table always stalls (QEMU stalls on memory errors). A CWRITER offset beyond the queue is
    /// UNPREDICTABLE architecturally; the model then processes nothing and counts it.
    func processCommandQueue() {
        guard enabled, cbaser.bit(63), !stalled else { return }
        let queueBytes = commandQueueBytes
        guard cwriter < queueBytes, creadr < queueBytes else {
            counters.invalidQueueOffsets &+= 1
            return
        }
        var budget = queueBytes / UInt64(ITSCommand.byteCount)
        while creadr != cwriter, budget > 0 {
            budget -= 1
            guard let address = commandQueueBase.adding(creadr) else { stall(words: [], .memoryFault(address: commandQueueBase.rawValue)); return }
            var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            do {
                w.0 = try bus.read(address, size: 8, requester: .hardware)
                w.1 = try bus.read(PhysicalAddress(address.rawValue &+ 8), size: 8, requester: .hardware)
                w.2 = try bus.read(PhysicalAddress(address.rawValue &+ 16), size: 8, requester: .hardware)
                w.3 = try bus.read(PhysicalAddress(address.rawValue &+ 24), size: 8, requester: .hardware)
            } catch {
                stall(words: [], .memoryFault(address: address.rawValue))
                return
            }
            let outcome = execute(w)
            switch outcome {
            case .completed:
                break
            case .memoryFault:
                stall(words: [w.0, w.1, w.2, w.3], outcome)
                return
            case .error, .unsupported:
                record(words: [w.0, w.1, w.2, w.3], outcome)
                if case .stall = configuration.commandErrorPolicy {
                    stalled = true
                    return
                }
            }
            creadr = (creadr &+ UInt64(ITSCommand.byteCount)) % queueBytes
        }
    }

    private func stall(words: [UInt64], _ outcome: ITSCommandOutcome) {
        record(words: words, outcome)
        stalled = true
    }

    private func record(words: [UInt64], _ outcome: ITSCommandOutcome) {
        switch outcome {
        case .error(let code):
            counters.commandErrors &+= 1
            lastCommandError = code
        case .unsupported: counters.unsupportedCommands &+= 1
        case .memoryFault: counters.commandMemoryFaults &+= 1
        case .completed: return
        }
        if errorLog.count < ITS.errorLogCapacity {
            errorLog.append(ITSCommandErrorRecord(queueOffset: creadr, words: words, outcome: outcome))
        }
        trace?.append(.its, "command error", address: commandQueueBase.rawValue &+ creadr, value: words.first ?? 0, "\(outcome)")
    }

    /// Decodes and executes one command taken from the queue.
    func execute(_ w: (UInt64, UInt64, UInt64, UInt64)) -> ITSCommandOutcome {
        if let outcome = executeVirtual(w) { return outcome }
        guard let command = ITSCommand(w.0, w.1, w.2, w.3) else {
            return .unsupported(opcode: UInt8(truncatingIfNeeded: w.0))
        }
        if let outcome = executeOnVirtualEvent(command) { return outcome }
        counters.commandsProcessed &+= 1
        trace?.append(.its, "command", address: commandQueueBase.rawValue &+ creadr, value: w.0, command.description)
        switch command {
        case .mapd(let d, let size, let itt, let valid): return mapd(d.rawValue, size: size, itt: itt, valid: valid)
        case .mapc(let c, let target, let valid): return mapc(c.rawValue, target: target, valid: valid)
        case .mapti(let d, let e, let intid, let c):
            return mapti(d.rawValue, e.rawValue, intid: intid, icid: c.rawValue, opcode: ITSCommand.Opcode.mapti)
        case .mapi(let d, let e, let c):
            return mapti(d.rawValue, e.rawValue, intid: INTID(e.rawValue), icid: c.rawValue, opcode: ITSCommand.Opcode.mapi)
        case .movi(let d, let e, let c): return movi(d.rawValue, e.rawValue, icid: c.rawValue)
        case .int(let d, let e):
            return withMappedInterrupt(d.rawValue, e.rawValue, error: .intUnmappedInterrupt) { ite, cpu in
                gic.redistributors[cpu].setPending(ite.intid)
                return .completed
            }
        case .clear(let d, let e):
            return withMappedInterrupt(d.rawValue, e.rawValue, error: .clearUnmappedInterrupt) { ite, cpu in
                gic.redistributors[cpu].clearPending(ite.intid)
                return .completed
            }
        case .inv(let d, let e):
            return withMappedInterrupt(d.rawValue, e.rawValue, error: .invUnmappedInterrupt) { ite, cpu in
                gic.redistributors[cpu].invalidate(ite.intid)
                return .completed
            }
        case .discard(let d, let e):
            return withMappedInterrupt(d.rawValue, e.rawValue, error: .discardUnmappedInterrupt) { ite, cpu in
                gic.redistributors[cpu].clearPending(ite.intid)
                return writeITE(d.rawValue, e.rawValue, InterruptTranslationEntry(rawValue: 0))
            }
        case .invall(let c):
            switch lookupCollection(c.rawValue) {
            case .found(let cpu):
                gic.redistributors[cpu].invalidateAll()
                return .completed
            case .fault(let a): return .memoryFault(address: a)
            case .outOfRange, .unmapped: return .error(.invallUnmappedCollection)
            }
        case .movall(let from, let to):
            guard let source = gic.redistributorIndex(for: from), let destination = gic.redistributorIndex(for: to) else {
                return .error(.movallProcessorOutOfRange)
            }
            guard source != destination else { return .completed }
            let rd1 = gic.redistributors[source]
            let rd2 = gic.redistributors[destination]
            for intid in rd1.pendingLPIs {
                rd1.clearPending(intid)
                rd2.setPending(intid)
            }
            return .completed
        case .sync(let target):
            // Every earlier command has completed synchronously; SYNC has nothing to wait for.
            // An RDbase naming no redistributor is not an architected error (docs/hardware.md §ITS command errors).
            counters.syncs &+= 1
            trace?.append(.its, "SYNC", value: target.rawValue,
                          "redistributor \(gic.redistributorIndex(for: target).map(String.init) ?? "none"): all effects complete")
            return .completed
        }
    }

    // MARK: - Individual commands

    /// MAPD (0x08): DeviceID out of range → 0x010801 (also when the device table cannot hold
    /// the DeviceID, including an indirect table whose level-1 entry is not Valid: software must
    /// allocate the level-2 page first; QEMU silently ignores such a MAPD, the model reports it);
    /// V=1 with Size + 1 > EventID bits → 0x010802. V=0 unmaps: later MSIs from the device are
    /// dropped; its ITT memory and any pending LPIs are left alone.
    private func mapd(_ device: UInt32, size: UInt8, itt: PhysicalAddress, valid: Bool) -> ITSCommandOutcome {
        let address: PhysicalAddress
        switch deviceEntryAddress(device) {
        case .entry(let a): address = a
        case .fault(let a): return .memoryFault(address: a.rawValue)
        case .outOfRange, .notAllocated: return .error(.mapdDeviceOutOfRange)
        }
        if valid, Int(size) + 1 > configuration.eventIDBits { return .error(.mapdITTSizeOutOfRange) }
        let dte = DeviceTableEntry(valid: valid, size: valid ? size : 0, ittAddress: valid ? itt : PhysicalAddress(0))
        if let entryStorage {
            guard entryStorage.setDeviceEntry(device, dte, tableAddress: address) else { return .memoryFault(address: address.rawValue) }
        } else {
            do {
                try bus.write(address, size: 8, value: dte.rawValue, requester: .hardware)
            } catch {
                return .memoryFault(address: address.rawValue)
            }
        }
        counters.tableWrites &+= 1
        deviceCache.invalidate(UInt64(device))
        eventCache.invalidate { $0 &>> 32 == UInt64(device) }
        return .completed
    }

    /// MAPC (0x09): ICID ≥ 2^CIDbits, or beyond the collection table → 0x010903; V=1 with an
    /// RDbase naming no redistributor (processor number ≥ PEs for PTA=0, not an RD_base frame for
    /// PTA=1) → 0x010902.
    private func mapc(_ icid: UInt16, target: ITSTarget, valid: Bool) -> ITSCommandOutcome {
        guard collectionInRange(icid) else { return .error(.mapcCollectionOutOfRange) }
        if valid, gic.redistributorIndex(for: target) == nil { return .error(.mapcProcessorOutOfRange) }
        let cte = CollectionTableEntry(valid: valid, target: valid ? target : ITSTarget(rawValue: 0))
        if Int(icid) < hardwareCollections.count {
            hardwareCollections[Int(icid)] = cte.rawValue
        } else {
            switch collectionEntryAddress(icid) {
            case .entry(let address):
                if let entryStorage {
                    guard entryStorage.setCollectionEntry(icid, cte, tableAddress: address) else {
                        return .memoryFault(address: address.rawValue)
                    }
                } else {
                    do { try bus.write(address, size: 8, value: cte.rawValue, requester: .hardware) } catch {
                        return .memoryFault(address: address.rawValue)
                    }
                }
                counters.tableWrites &+= 1
            case .fault(let a): return .memoryFault(address: a.rawValue)
            case .outOfRange, .notAllocated: return .error(.mapcCollectionOutOfRange)
            }
        }
        collectionCache.invalidate(UInt64(icid))
        return .completed
    }

    /// MAPTI (0x0A) / MAPI (0x0B): unmapped or out-of-range device → cause 04 (Linux has no
    /// DeviceID-out-of-range code for MAPTI; KVM reports "unmapped device" for both); EventID ≥
    /// 2^(DTE.Size+1) → 05; pINTID < 8192 or ≥ 2^(GICD_TYPER.IDbits+1) → 06; ICID ≥ 2^CIDbits → 03.
    /// The opcode byte of the code is the command's own (0x010Axx for MAPTI, 0x010Bxx for MAPI,
    /// per the encoding; KVM reuses the MAPTI codes for MAPI). The collection need not be mapped
    /// yet (kvm-unit-tests its-migrate-unmapped-collection). Re-mapping a mapped event
    /// overwrites it, as QEMU does.
    private func mapti(_ device: UInt32, _ event: UInt32, intid: INTID, icid: UInt16, opcode: UInt8) -> ITSCommandOutcome {
        let dte: DeviceTableEntry
        switch lookupDevice(device) {
        case .found(let entry): dte = entry
        case .fault(let a): return .memoryFault(address: a)
        case .outOfRange, .unmapped: return .error(.make(opcode: opcode, cause: ITSCommandError.Cause.unmappedDevice))
        }
        guard UInt64(event) < dte.eventCount else { return .error(.make(opcode: opcode, cause: ITSCommandError.Cause.eventOutOfRange)) }
        guard intid.isLPI, intid.rawValue < configuration.lpiLimit else {
            return .error(.make(opcode: opcode, cause: ITSCommandError.Cause.physicalIDOutOfRange))
        }
        guard collectionInRange(icid) else { return .error(.make(opcode: opcode, cause: ITSCommandError.Cause.collectionOutOfRange)) }
        return writeITE(device, event, InterruptTranslationEntry(physicalINTID: intid, collection: CollectionID(icid)), dte: dte)
    }

    /// MOVI (0x01): the event must be mapped (else 0x010107) and both its current collection and
    /// the new one mapped (else 0x010109, as KVM checks). A pending LPI moves with it.
    private func movi(_ device: UInt32, _ event: UInt32, icid: UInt16) -> ITSCommandOutcome {
        guard case .found(let dte) = lookupDevice(device), case .found(let ite) = lookupEvent(device, dte, event) else {
            return .error(.moviUnmappedInterrupt)
        }
        guard case .found(let oldCPU) = lookupCollection(ite.collection.rawValue),
              case .found(let newCPU) = lookupCollection(icid) else {
            return .error(.moviUnmappedCollection)
        }
        let outcome = writeITE(device, event, ite.moved(to: CollectionID(icid)), dte: dte)
        guard outcome == .completed else { return outcome }
        if oldCPU != newCPU, gic.redistributors[oldCPU].clearPending(ite.intid) {
            gic.redistributors[newCPU].setPending(ite.intid)
        }
        return .completed
    }

    /// Shared by INT, CLEAR, INV and DISCARD: the event must be mapped and its collection mapped,
    /// else the command's "unmapped interrupt" code (KVM reports that code for an unmapped
    /// device, an out-of-range EventID and an unmapped collection alike).
    private func withMappedInterrupt(_ device: UInt32, _ event: UInt32, error: ITSCommandError,
                                     _ body: (InterruptTranslationEntry, Int) -> ITSCommandOutcome) -> ITSCommandOutcome {
        let dte: DeviceTableEntry
        switch lookupDevice(device) {
        case .found(let entry): dte = entry
        case .fault(let a): return .memoryFault(address: a)
        case .outOfRange, .unmapped: return .error(error)
        }
        let ite: InterruptTranslationEntry
        switch lookupEvent(device, dte, event) {
        case .found(let entry): ite = entry
        case .fault(let a): return .memoryFault(address: a)
        case .outOfRange, .unmapped: return .error(error)
        }
        switch lookupCollection(ite.collection.rawValue) {
        case .found(let cpu): return body(ite, cpu)
        case .fault(let a): return .memoryFault(address: a)
        case .outOfRange, .unmapped: return .error(error)
        }
    }

    /// Writes an ITE (8 bytes, plus the 4-byte doorbell word when ITT entries are ≥ 12 bytes) and
    /// drops its cached copy.
    private func writeITE(_ device: UInt32, _ event: UInt32, _ ite: InterruptTranslationEntry, dte: DeviceTableEntry? = nil) -> ITSCommandOutcome {
        let table: DeviceTableEntry
        if let dte { table = dte } else {
            guard case .found(let entry) = lookupDevice(device) else { return .completed }
            table = entry
        }
        guard let address = InterruptTranslationTable.entryAddress(itt: table.ittAddress, event: EventID(event), entrySize: configuration.ittEntrySize) else {
            return .memoryFault(address: table.ittAddress.rawValue)
        }
        if let entryStorage {
            guard entryStorage.setEventEntry(device: device, event: event, ite, tableAddress: address) else {
                return .memoryFault(address: address.rawValue)
            }
            counters.tableWrites &+= 1
            eventCache.invalidate(ITS.eventKey(device, event))
            return .completed
        }
        do {
            try bus.write(address, size: 8, value: ite.rawValue, requester: .hardware)
            if configuration.ittEntrySize >= 12 {
                try bus.write(PhysicalAddress(address.rawValue &+ 8), size: 4,
                              value: ite.valid ? InterruptTranslationEntry.physicalDoorbell : 0, requester: .hardware)
            }
        } catch {
            return .memoryFault(address: address.rawValue)
        }
        counters.tableWrites &+= 1
        eventCache.invalidate(ITS.eventKey(device, event))
        return .completed
    }
}
