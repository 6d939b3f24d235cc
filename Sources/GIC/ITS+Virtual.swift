import Bus

extension InterruptTranslationEntry {
    /// A GICv4 virtual entry (IntType = 0): vINTID in INTID[25:2], vPEID[63:48] (the layout of
    /// QEMU's ITE, `ITE_L`, shared with physical entries).
    public init(virtualINTID vintid: UInt32, vpe: UInt16) {
        rawValue = UInt64(0)
            .settingBit(0, to: true)
            .settingBits(25, 2, to: UInt64(vintid))
            .settingBits(63, 48, to: UInt64(vpe))
    }

    @inlinable public var vpe: UInt16 { UInt16(truncatingIfNeeded: rawValue.bits(63, 48)) }
}

extension ITSCommandError {
    /// Cause values this model reports for the virtual commands. IHI 0069H lets an ITS report
    /// command errors through an IMPLEMENTATION DEFINED syndrome (GITS_TYPER.SEIS); Linux's
    /// `E_ITS_*` list names none for virtual commands. The model keeps the same scheme
    /// (0x01 << 16 | opcode << 8 | cause) with the GICv3 causes where one fits (0x02 RDbase or
    /// VPT size out of range, 0x04 unmapped device, 0x05 EventID out of range, 0x06 vINTID or
    /// doorbell INTID out of range, 0x07 unmapped interrupt) and two model-assigned ones.
    public enum VirtualCause {
        /// vPEID ≥ 2^(GICD_TYPER2.VID + 1) or beyond the vPE table (model-assigned).
        public static let vpeOutOfRange: UInt8 = 0x10
        /// The vPE has no valid vPE table entry (model-assigned).
        public static let unmappedVPE: UInt8 = 0x11
    }
}

/// GICv4.1 virtual LPIs in the ITS (Arm IHI 0069H §5.3 virtual command descriptions, §5.2
/// translation of an ITE with IntType = virtual): the vPE table at GITS_BASER2, VMAPP, VMAPTI,
/// VMAPI, VMOVI, VMOVP, VSYNC, VINVALL, INVDB, and INT/CLEAR/INV/DISCARD on an event mapped to a
/// vLPI. Enabled by `GICConfiguration.virtualLPIs` on an ITS whose tables live in memory (an
/// emulated ITS with its own entry storage, such as KVM's vITS, advertises no virtual support).
extension ITS {
    /// Bytes per vPE table entry (`VPETableEntry`), reported in GITS_BASER2.Entry_Size.
    public static let vpeEntrySize = 32

    var virtualSupported: Bool { configuration.virtualLPIs && entryStorage == nil }

    private func vpeInRange(_ vpe: UInt16) -> Bool { UInt64(vpe) < UInt64(1) &<< UInt64(configuration.vpeIDBits) }

    /// The vPE table entry address of `vpe` (BASER2; flat or indirect).
    func vpeEntryAddress(_ vpe: UInt16) -> GITSBaser.Lookup {
        guard vpeInRange(vpe) else { return .outOfRange }
        return GITSBaser(rawValue: baser[2]).entryAddress(index: UInt64(vpe)) { (a) throws(BusError) -> UInt64 in
            try bus.read(a, size: 8, requester: .hardware)
        }
    }

    /// The valid vPE table entry of `vpe`.
    func lookupVPE(_ vpe: UInt16) -> Lookup<VPETableEntry> {
        switch vpeEntryAddress(vpe) {
        case .outOfRange: return .outOfRange
        case .notAllocated: return .unmapped
        case .fault(let a): return .fault(a.rawValue)
        case .entry(let address):
            counters.tableReads &+= 1
            var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            do {
                w.0 = try bus.read(address, size: 8, requester: .hardware)
                w.1 = try bus.read(PhysicalAddress(address.rawValue &+ 8), size: 8, requester: .hardware)
                w.2 = try bus.read(PhysicalAddress(address.rawValue &+ 16), size: 8, requester: .hardware)
                w.3 = try bus.read(PhysicalAddress(address.rawValue &+ 24), size: 8, requester: .hardware)
            } catch {
                return .fault(address.rawValue)
            }
            let entry = VPETableEntry(words: w)
            return entry.valid ? .found(entry) : .unmapped
        }
    }

    private func writeVPE(_ vpe: UInt16, _ entry: VPETableEntry, error: ITSCommandError) -> ITSCommandOutcome {
        guard case .entry(let address) = vpeEntryAddress(vpe) else { return .error(error) }
        do {
            try bus.writeWords(address, entry.words)
        } catch {
            return .memoryFault(address: address.rawValue)
        }
        counters.tableWrites &+= 1
        return .completed
    }

    private func isDoorbellInRange(_ intid: UInt32) -> Bool {
        intid == ITSVirtualCommand.noDoorbell || (intid >= 8192 && intid < configuration.lpiLimit)
    }

    // MARK: - Commands

    /// Executes a virtual command; nil when the opcode is not one (or the ITS has no virtual
    /// support, where GICv3 ITSs ignore them as unsupported opcodes).
    func executeVirtual(_ w: (UInt64, UInt64, UInt64, UInt64)) -> ITSCommandOutcome? {
        guard virtualSupported, let command = ITSVirtualCommand(w.0, w.1, w.2, w.3) else { return nil }
        counters.commandsProcessed &+= 1
        trace?.append(.its, "command", address: commandQueueBase.rawValue &+ creadr, value: w.0, command.description)
        let op = command.opcode
        func fail(_ cause: UInt8) -> ITSCommandOutcome { .error(.make(opcode: op, cause: cause)) }
        guard vpeInRange(command.vpe) else { return fail(ITSCommandError.VirtualCause.vpeOutOfRange) }
        switch command {
        case .vmapp(let vpe, let target, let valid, let vpt, let size, let vconf, _, _, let db):
            return vmapp(vpe, target: target, valid: valid, vpt: vpt, size: size, vconf: vconf, doorbell: db, fail: fail)
        case .vmapti(let d, let e, let vpe, let vintid, let db):
            return vmapti(d.rawValue, e.rawValue, vpe: vpe, vintid: vintid, doorbell: db, fail: fail)
        case .vmapi(let d, let e, let vpe, let db):
            return vmapti(d.rawValue, e.rawValue, vpe: vpe, vintid: e.rawValue, doorbell: db, fail: fail)
        case .vmovi(let d, let e, let vpe, let dv, let db):
            return vmovi(d.rawValue, e.rawValue, vpe: vpe, doorbell: dv ? db : ITSVirtualCommand.noDoorbell, fail: fail)
        case .vmovp(let vpe, let target, _, _, let dbv, let db):
            return vmovp(vpe, target: target, doorbell: dbv ? db : nil, fail: fail)
        case .vsync(let vpe), .vinvall(let vpe), .invdb(let vpe):
            switch lookupVPE(vpe) {
            case .found(let entry):
                guard let cpu = gic.redistributorIndex(for: entry.target) else { return fail(ITSCommandError.Cause.sizeOrProcessorOutOfRange) }
                let rd = gic.redistributors[cpu]
                if case .invdb = command, entry.defaultDoorbell != ITSVirtualCommand.noDoorbell {
                    // INVDB: the redistributors re-read the default doorbell's configuration
                    // (Linux its_vpe_4_1_send_inv after writing its LPI property byte).
                    rd.invalidate(INTID(entry.defaultDoorbell))
                } else if case .vinvall = command {
                    rd.virtualState.counters.invalidations &+= 1
                }
                return .completed
            case .fault(let a): return .memoryFault(address: a)
            case .outOfRange, .unmapped: return fail(ITSCommandError.VirtualCause.unmappedVPE)
            }
        }
    }

    /// VMAPP: V = 1 maps `vpe` to the redistributor RDbase names (else cause 02), with its VPT of
    /// VPT_size + 1 vINTID bits (more than GICD_TYPER.IDbits + 1, or fewer than 14, is cause 02),
    /// its VConf table and default doorbell (cause 06 if not an LPI or 1023); V = 0 unmaps it.
    private func vmapp(_ vpe: UInt16, target: ITSTarget, valid: Bool, vpt: PhysicalAddress, size: UInt8,
                       vconf: PhysicalAddress, doorbell: UInt32, fail: (UInt8) -> ITSCommandOutcome) -> ITSCommandOutcome {
        let previous: VPETableEntry?
        switch lookupVPE(vpe) {
        case .found(let entry): previous = entry
        case .fault(let a): return .memoryFault(address: a)
        case .outOfRange: return fail(ITSCommandError.VirtualCause.vpeOutOfRange)
        case .unmapped: previous = nil
        }
        var entry = VPETableEntry.invalid
        var cpu: Int?
        if valid {
            guard let index = gic.redistributorIndex(for: target) else { return fail(ITSCommandError.Cause.sizeOrProcessorOutOfRange) }
            guard Int(size) + 1 >= 14, Int(size) + 1 <= configuration.lpiIDBits else {
                return fail(ITSCommandError.Cause.sizeOrProcessorOutOfRange)
            }
            guard isDoorbellInRange(doorbell) else { return fail(ITSCommandError.Cause.physicalIDOutOfRange) }
            entry = VPETableEntry(valid: true, vptSize: size, vptAddress: vpt, vconfAddress: vconf, target: target, defaultDoorbell: doorbell)
            cpu = index
        }
        let outcome = writeVPE(vpe, entry, error: .make(opcode: ITSVirtualCommand.Opcode.vmapp, cause: ITSCommandError.VirtualCause.vpeOutOfRange))
        guard outcome == .completed else { return outcome }
        if let previous, let old = gic.redistributorIndex(for: previous.target) { gic.redistributors[old].mapVPE(vpe, nil) }
        if let cpu { gic.redistributors[cpu].mapVPE(vpe, entry.mapping) }
        return .completed
    }

    /// VMAPTI / VMAPI (vINTID = EventID): maps (DeviceID, EventID) to vINTID of `vpe`. The vPE
    /// need not be mapped yet (Linux maps the VM's vPEs lazily, `its_map_vm`, but always before
    /// the first VMAPTI). Unmapped device 04, EventID out of range 05, vINTID or Dbell_pINTID not
    /// an LPI below 2^(GICD_TYPER.IDbits + 1) (1023 for no doorbell) 06.
    private func vmapti(_ device: UInt32, _ event: UInt32, vpe: UInt16, vintid: UInt32, doorbell: UInt32,
                        fail: (UInt8) -> ITSCommandOutcome) -> ITSCommandOutcome {
        let dte: DeviceTableEntry
        switch lookupDevice(device) {
        case .found(let entry): dte = entry
        case .fault(let a): return .memoryFault(address: a)
        case .outOfRange, .unmapped: return fail(ITSCommandError.Cause.unmappedDevice)
        }
        guard UInt64(event) < dte.eventCount else { return fail(ITSCommandError.Cause.eventOutOfRange) }
        guard vintid >= 8192, vintid < configuration.lpiLimit, isDoorbellInRange(doorbell) else {
            return fail(ITSCommandError.Cause.physicalIDOutOfRange)
        }
        return writeVirtualITE(device, event, dte: dte, InterruptTranslationEntry(virtualINTID: vintid, vpe: vpe), doorbell: doorbell)
    }

    /// VMOVI: moves a vLPI to another vPE (and sets its per-vLPI doorbell, D = 1, or none); its
    /// pending state moves with it, as QEMU `gicv3_redist_mov_vlpi` does. The event must be
    /// mapped to a vLPI (else 07) and both vPEs mapped (else the unmapped-vPE cause).
    private func vmovi(_ device: UInt32, _ event: UInt32, vpe: UInt16, doorbell: UInt32,
                       fail: (UInt8) -> ITSCommandOutcome) -> ITSCommandOutcome {
        guard isDoorbellInRange(doorbell) else { return fail(ITSCommandError.Cause.physicalIDOutOfRange) }
        guard case .found(let dte) = lookupDevice(device), case .found(let ite) = lookupEvent(device, dte, event), !ite.isPhysical else {
            return fail(ITSCommandError.Cause.unmappedInterrupt)
        }
        guard case .found(let old) = lookupVPE(ite.vpe), case .found(let new) = lookupVPE(vpe),
              let oldCPU = gic.redistributorIndex(for: old.target), let newCPU = gic.redistributorIndex(for: new.target) else {
            return fail(ITSCommandError.VirtualCause.unmappedVPE)
        }
        let outcome = writeVirtualITE(device, event, dte: dte, InterruptTranslationEntry(virtualINTID: ite.intid.rawValue, vpe: vpe), doorbell: doorbell)
        guard outcome == .completed else { return outcome }
        if ite.vpe != vpe, gic.redistributors[oldCPU].clearVirtualPending(ite.intid.rawValue, mapping: old.mapping) {
            _ = gic.redistributors[newCPU].setVirtualPending(ite.intid.rawValue, vpe: vpe, mapping: new.mapping, doorbell: doorbell)
        }
        return .completed
    }

    /// VMOVP: retargets `vpe` to the redistributor RDbase names (GICv4.1: with DB = 1 also sets
    /// its default doorbell). With GITS_TYPER.VMOVP = 1 one command moves the vPE for every ITS
    /// (SequenceNumber and ITSList are ignored; Linux `its_send_vmovp` then sends it to a single
    /// ITS), so every ITS of this GIC that maps the vPE updates its entry. A pending doorbell
    /// request moves with the vPE.
    private func vmovp(_ vpe: UInt16, target: ITSTarget, doorbell: UInt32?, fail: (UInt8) -> ITSCommandOutcome) -> ITSCommandOutcome {
        guard case .found(var entry) = lookupVPE(vpe), let oldCPU = gic.redistributorIndex(for: entry.target) else {
            return fail(ITSCommandError.VirtualCause.unmappedVPE)
        }
        guard let newCPU = gic.redistributorIndex(for: target) else { return fail(ITSCommandError.Cause.sizeOrProcessorOutOfRange) }
        if let doorbell {
            guard isDoorbellInRange(doorbell) else { return fail(ITSCommandError.Cause.physicalIDOutOfRange) }
            entry.defaultDoorbell = doorbell
        }
        entry.target = target
        let unmapped = ITSCommandError.make(opcode: ITSVirtualCommand.Opcode.vmovp, cause: ITSCommandError.VirtualCause.unmappedVPE)
        for its in gic.itss where its.virtualSupported {
            guard its === self || { if case .found = its.lookupVPE(vpe) { return true } else { return false } }() else { continue }
            let outcome = its.writeVPE(vpe, entry, error: unmapped)
            guard outcome == .completed else { return outcome }
        }
        let old = gic.redistributors[oldCPU]
        let requested = old.virtualState.doorbellRequested.contains(vpe)
        old.mapVPE(vpe, nil)
        let new = gic.redistributors[newCPU]
        new.mapVPE(vpe, entry.mapping)
        if requested { new.virtualState.doorbellRequested.insert(vpe) }
        return .completed
    }

    /// INT, CLEAR, INV and DISCARD on an event mapped to a vLPI (IHI 0069H: these commands act on
    /// the vINTID in the vPE's VPT); nil when the command is another one or the event is not
    /// virtual, so the physical path handles it.
    func executeOnVirtualEvent(_ command: ITSCommand) -> ITSCommandOutcome? {
        guard virtualSupported else { return nil }
        let device: DeviceID, event: EventID, error: ITSCommandError
        switch command {
        case .int(let d, let e): (device, event, error) = (d, e, .intUnmappedInterrupt)
        case .clear(let d, let e): (device, event, error) = (d, e, .clearUnmappedInterrupt)
        case .inv(let d, let e): (device, event, error) = (d, e, .invUnmappedInterrupt)
        case .discard(let d, let e): (device, event, error) = (d, e, .discardUnmappedInterrupt)
        default: return nil
        }
        guard case .found(let dte) = lookupDevice(device.rawValue),
              case .found(let ite) = lookupEvent(device.rawValue, dte, event.rawValue), !ite.isPhysical else { return nil }
        guard case .found(let vte) = lookupVPE(ite.vpe), let cpu = gic.redistributorIndex(for: vte.target) else {
            // DISCARD of a vLPI whose vPE is gone still unmaps the event.
            if case .discard = command { return writeVirtualITE(device.rawValue, event.rawValue, dte: dte, InterruptTranslationEntry(rawValue: 0), doorbell: 0) }
            return .error(error)
        }
        counters.commandsProcessed &+= 1
        let rd = gic.redistributors[cpu]
        let vintid = ite.intid.rawValue
        switch command {
        case .int:
            _ = gic.redistributors[residencyRedistributor(vpe: ite.vpe, mapped: cpu)].setVirtualPending(vintid, vpe: ite.vpe, mapping: vte.mapping, doorbell: readDoorbell(device.rawValue, event.rawValue, dte))
        case .clear:
            rd.clearVirtualPending(vintid, mapping: vte.mapping)
        case .inv:
            rd.virtualState.counters.invalidations &+= 1
        default:
            rd.clearVirtualPending(vintid, mapping: vte.mapping)
            return writeVirtualITE(device.rawValue, event.rawValue, dte: dte, InterruptTranslationEntry(rawValue: 0), doorbell: 0)
        }
        return .completed
    }

    /// Writes a virtual (or invalid) ITE: 8 bytes plus the 4-byte Dbell_pINTID word when ITT
    /// entries are 12 bytes or more (a smaller ITT keeps no per-vLPI doorbell).
    private func writeVirtualITE(_ device: UInt32, _ event: UInt32, dte: DeviceTableEntry, _ ite: InterruptTranslationEntry,
                                 doorbell: UInt32) -> ITSCommandOutcome {
        guard let address = InterruptTranslationTable.entryAddress(itt: dte.ittAddress, event: EventID(event), entrySize: configuration.ittEntrySize) else {
            return .memoryFault(address: dte.ittAddress.rawValue)
        }
        do {
            try bus.write(address, size: 8, value: ite.rawValue, requester: .hardware)
            if configuration.ittEntrySize >= 12 {
                try bus.write(PhysicalAddress(address.rawValue &+ 8), size: 4, value: UInt64(doorbell), requester: .hardware)
            }
        } catch {
            return .memoryFault(address: address.rawValue)
        }
        counters.tableWrites &+= 1
        eventCache.invalidate(ITS.eventKey(device, event))
        return .completed
    }

    /// The ITE's Dbell_pINTID word (1023 when the ITT keeps none or it cannot be read).
    private func readDoorbell(_ device: UInt32, _ event: UInt32, _ dte: DeviceTableEntry) -> UInt32 {
        guard configuration.ittEntrySize >= 12,
              let address = InterruptTranslationTable.entryAddress(itt: dte.ittAddress, event: EventID(event), entrySize: configuration.ittEntrySize),
              let word = try? bus.read(PhysicalAddress(address.rawValue &+ 8), size: 4, requester: .hardware) else {
            return ITSVirtualCommand.noDoorbell
        }
        return UInt32(truncatingIfNeeded: word)
    }

    // MARK: - Translation

    /// The rest of a translation whose ITE is virtual (IHI 0069H §5.2): vPEID → vPE table entry
    /// → the vPE's redistributor, which writes vINTID's bit in the VPT and signals the vCPU if
    /// the vPE is resident, else rings a doorbell.
    func translateVirtual(deviceID: DeviceID, eventID: EventID, dte: DeviceTableEntry, ite: InterruptTranslationEntry) -> ITSTranslationResult {
        guard virtualSupported else { return virtualDrop(.virtualNotModelled, deviceID, eventID) }
        let vte: VPETableEntry
        switch lookupVPE(ite.vpe) {
        case .found(let entry): vte = entry
        case .outOfRange, .unmapped: return virtualDrop(.unmappedVPE, deviceID, eventID)
        case .fault: return virtualDrop(.tableReadFault, deviceID, eventID)
        }
        guard let mapped = gic.redistributorIndex(for: vte.target) else { return virtualDrop(.unmappedVPE, deviceID, eventID) }
        let cpu = residencyRedistributor(vpe: ite.vpe, mapped: mapped)
        let vintid = ite.intid.rawValue
        guard Redistributor.vptByte(vintid, vte.mapping) != nil else { return virtualDrop(.vINTIDOutOfRange, deviceID, eventID) }
        counters.translations &+= 1
        let delivery = gic.redistributors[cpu].setVirtualPending(vintid, vpe: ite.vpe, mapping: vte.mapping,
                                                                 doorbell: readDoorbell(deviceID.rawValue, eventID.rawValue, dte))
        trace?.append(.its, "vLPI", value: UInt64(vintid), "EventID \(eventID.rawValue) → vINTID \(vintid) of vPE \(ite.vpe) on redistributor \(cpu): \(delivery)")
        return .virtual(vintid: vintid, vpe: ite.vpe, cpu: cpu, delivery: delivery)
    }

    /// The redistributor that holds `vpe`'s residency: the one VMAPP/VMOVP named (`mapped`)
    /// unless the vPE is resident, or waiting for its doorbell, on another redistributor that
    /// shares `mapped`'s vPE configuration table (the same GICR_TYPER.CommonLPIAff group). Linux
    /// relies on this: "GICv4.1 allows us to skip VMOVP if moving to a cpu whose RD is sharing
    /// its VPE table with the current one" (`its_vpe_set_affinity`), so a vPE scheduled on such
    /// a redistributor is found there by the vLPIs its ITS still sends to the old one.
    func residencyRedistributor(vpe: UInt16, mapped: Int) -> Int {
        let rds = gic.redistributors
        func holds(_ rd: Redistributor) -> Bool { rd.residentVPE == vpe || rd.virtualState.doorbellRequested.contains(vpe) }
        guard rds.indices.contains(mapped), !holds(rds[mapped]) else { return mapped }
        let group = rds[mapped].commonAffinityGroup
        for (index, rd) in rds.enumerated() where index != mapped && rd.commonAffinityGroup == group && holds(rd) {
            return index
        }
        return mapped
    }

    private func virtualDrop(_ reason: ITSDropReason, _ device: DeviceID, _ event: EventID) -> ITSTranslationResult {
        counters.countDrop(reason)
        trace?.append(.its, "MSI dropped", address: translaterAddress.rawValue, value: UInt64(event.rawValue),
                      "DeviceID \(device) EventID \(event.rawValue): \(reason)")
        return .dropped(reason)
    }
}
