import Bus
import GIC
import LinuxKernel
import PCI
import SMMUv3

extension World {
    /// Whether `perform` runs events of this kind (the others answer "not run").
    public static func runs(_ kind: EventKind) -> Bool {
        switch kind {
        default: true
        }
    }

    /// What an event did: a fired vector's outcome, a note of what ran, or why nothing ran (the
    /// event had nothing to act on, e.g. a hot-plug of a plugged device).
    public enum EventResult: Hashable, Sendable {
        case fired(VectorOutcome)
        case done(String)
        /// The event found nothing to act on; the note says what was missing.
        case skipped(String)

        /// The note an event log shows: what ran, or "skipped: " and what was missing.
        public var note: String? {
            switch self {
            case .fired: nil
            case .done(let note): note
            case .skipped(let what): "skipped: \(what)"
            }
        }
    }

    /// The host's pci_dev of a device.
    func hostDevice(_ device: Int) -> PCIDevice? {
        guard scenario.devices.indices.contains(device) else { return nil }
        let bridge = functions.indices.contains(device) ? machine.rootComplexes.firstIndex { rc in rc.functions.contains { $0 === functions[device] } } : nil
        let hostBridge = bridge.map { machine.hostBridgeIndices[$0] } ?? 0
        return host.pci.device(scenario.devices[device].requesterID, hostBridge: hostBridge)
    }

    /// The guest's Linux irq of a vector.
    func guestIRQ(_ device: Int, _ vector: Int) -> Int? {
        guard guestDevices.indices.contains(device) else { return nil }
        return try? guest.pci.irqVector(guestDevices[device], vector)
    }

    /// The host's Linux irq of a vector (VFIO's interrupt for it).
    func hostIRQ(_ device: Int, _ vector: Int) -> Int? {
        guard let pdev = hostDevice(device) else { return nil }
        return try? host.pci.irqVector(pdev, vector)
    }

    /// Runs one event of the script through the code path its case names (ScenarioEvent). After
    /// an event that is not a fire, the host and the guest take whatever interrupts it made
    /// pending (a re-enabled vector sends what its Pending bit held, an unmask delivers what the
    /// VMM held), so that they are charged to the event, not to the next fire.
    public func perform(_ event: ScenarioEvent, step: Int, trace: TraceLog? = nil) -> EventResult {
        let result = performEvent(event, step: step, trace: trace)
        if case .fired = result {
            trackVPT(event, result, late: [])
            return result
        }
        deliveries.removeAll()
        for cpu in 0..<host.irq.cpuCount { _ = host.irq.handleInterrupts(cpu: cpu) }
        for cpu in 0..<guest.irq.cpuCount { _ = guest.irq.handleInterrupts(cpu: cpu) }
        let late = takeDeliveries()
        trackVPT(event, result, late: late.retained)
        guard late.count > 0 else { return result }
        let delivered = "; \(late.count) pending interrupt(s) delivered"
        switch result {
        case .fired: return result
        case .done(let note): return .done(note + delivered)
        case .skipped(let what): return .skipped(what + delivered)
        }
    }

    func performEvent(_ event: ScenarioEvent, step: Int, trace: TraceLog?) -> EventResult {
        func run(_ what: String, _ body: () throws -> Void) -> EventResult {
            do {
                try body()
                return .done(what)
            } catch {
                return .done("\(what) failed: \(error)")
            }
        }
        func missing(_ what: String) -> EventResult { .skipped(what) }
        switch event {
        case .fire(let device, let vector):
            return .fired(fire(device: device, vector: vector, step: step, trace: trace))
        case .guestMask(let d, let v):
            guard let irq = guestIRQ(d, v) else { return missing("device \(d) has no guest vector \(v)") }
            return run("guest masked irq \(irq)") { try guest.irq.mask(irq: irq) }
        case .guestUnmask(let d, let v):
            guard let irq = guestIRQ(d, v) else { return missing("device \(d) has no guest vector \(v)") }
            return run("guest unmasked irq \(irq)") {
                // A Pending bit the VMM held is delivered on unmask (KVM_SIGNAL_MSI).
                try guest.irq.unmask(irq: irq)
            }
        case .guestRewrite(let d, let v):
            guard let irq = guestIRQ(d, v) else { return missing("device \(d) has no guest vector \(v)") }
            return run("guest deactivated and re-activated irq \(irq)") {
                try guest.irq.deactivate(irq: irq)
                try guest.irq.activate(irq: irq)
            }
        case .guestAffinity(let d, let v, let cpu):
            guard let irq = guestIRQ(d, v) else { return missing("device \(d) has no guest vector \(v)") }
            return run("guest irq \(irq) → vCPU \(cpu)") { try guest.irq.setAffinity(irq: irq, cpu: cpu) }
        case .hostAffinity(let d, let v, let cpu):
            guard let irq = hostIRQ(d, v) else { return missing("device \(d) has no host vector \(v)") }
            return run("host irq \(irq) → CPU \(cpu)") { try host.irq.setAffinity(irq: irq, cpu: cpu) }
        case .hostReactivate(let d, let v):
            guard let irq = hostIRQ(d, v) else { return missing("device \(d) has no host vector \(v)") }
            return run("host deactivated and re-activated irq \(irq)") {
                try host.irq.deactivate(irq: irq)
                try host.irq.activate(irq: irq)
            }
        case .msixReenable(let d):
            guard guestDevices.indices.contains(d) else { return missing("no device \(d)") }
            return run("guest driver freed its vectors (MSI-X off) and allocated them again (MSI-X on)") {
                try rebindGuestDriver(d)
            }
        case .addVector(let d):
            guard guestDevices.indices.contains(d), scenario.devices[d].interrupts == .msix else { return missing("device \(d) has no MSI-X") }
            return run("guest released its last vector and allocated it again at run time") { try readdLastVector(d) }
        case .functionLevelReset(let d):
            guard let pdev = hostDevice(d) else { return missing("no device \(d)") }
            return run("VFIO_DEVICE_RESET → pci_reset_function (FLR, state saved and restored)") { try host.pci.resetFunction(pdev) }
        case .suspendResume(let d):
            guard let pdev = hostDevice(d) else { return missing("no device \(d)") }
            // System suspend to RAM: `pci_pm_suspend` saves the state, the platform removes
            // power (D3cold: the function model has no PM capability, so this is the only
            // sleep state; it loses everything, as a reset does), and `pci_pm_resume_noirq` →
            // `pci_restore_state` puts config space and MSI-X back from the saved copy.
            return run("host suspend (pci_save_state, power off) and resume (pci_restore_state)") {
                try host.pci.saveState(pdev)
                functions[d].functionLevelReset()
                try host.pci.restoreState(pdev)
            }
        case .forgedEventID(let d, let eventID):
            lastAdversarialWrite = nil
            return forgeEventID(device: d, eventID: eventID)
        case .hotUnplug(let d):
            guard guestDevices.indices.contains(d), !unplugged.contains(d) else { return missing("device \(d) is not plugged") }
            return run("device_del: the guest released the function, QEMU unrealized it (vfio_exitfn)") {
                try vmm.hotUnplug(deviceIndex: d)
                unplugged.insert(d)
            }
        case .hotPlug(let d):
            guard guestDevices.indices.contains(d), unplugged.contains(d) else { return missing("device \(d) is plugged") }
            return run("device_add: QEMU realized the function again, the guest rescanned and re-probed its driver") {
                let device = try vmm.hotPlug(deviceIndex: d)
                unplugged.remove(d)
                corrupted.remove(d)
                driverless.remove(d)
                guard let g = guest.pci.device(device.guestRequesterID) else { throw Errno.ENODEV }
                guestDevices[d] = g
                try bindGuestDriver(d, g)
            }
        case .guestDomain(let d, let change):
            guard guestDevices.indices.contains(d), !unplugged.contains(d) else { return missing("device \(d) is not plugged") }
            return run(change == .detach ? "guest driver unbound (device_release_driver)"
                       : "guest driver unbound, iommu_group type = \(change == .identity ? "identity" : "DMA"), driver re-probed") {
                try changeGuestDomain(d, change)
            }
        case .guestMapOutsideRAM(let d, let ipa):
            lastAdversarialWrite = nil
            return mapOutsideRAM(device: d, ipa: ipa)
        case .guestCorruptSTE(let d):
            guard guestDevices.indices.contains(d), !unplugged.contains(d) else { return missing("device \(d) is not plugged") }
            return run("guest rewrote its STE with S1ContextPtr outside its RAM, CFGI_STE + SYNC") { try corruptGuestSTE(d) }
        case .saveRestore:
            return run("the VM was saved and restored: the vITS and LPI pending state through guest RAM (KVM_DEV_ARM_ITS_SAVE_TABLES / RESTORE_TABLES), VFIO, KVM routes and nested HWPTs rebuilt from the saved state") {
                try vmm.saveAndRestore()
            }
        case .vpeMigrate, .vcpuNonResident, .vcpuResident:
            return performResidency(event)
        default:
            return .done("not run: \(event.kind.rawValue) needs VMM support that is not modelled yet")
        }
    }

    /// The admin's sequence for a domain change: unbind the driver (`device_release_driver`:
    /// the driver's remove frees its IRQs and vectors, `pci_dma_cleanup` drops the claim), then
    /// for identity/DMA write the group's `type` (`iommu_group_store_type`, EPERM while bound)
    /// and probe the driver again. `detach` stops after the unbind.
    func changeGuestDomain(_ d: Int, _ change: GuestDomainChange) throws {
        let g = guestDevices[d]
        try guest.pci.releaseDriver(g) { () throws(Errno) in try self.guest.pci.standardRemove(g) }
        driverless.insert(d)
        guard change != .detach else { return }
        guard let group = guest.iommu.group(of: g.device) else { throw Errno.ENODEV }
        try guest.iommu.setGroupType(group, change == .identity ? "identity" : "DMA")
        try bindGuestDriver(d, g)
        driverless.remove(d)
    }

    /// Adversarial: the guest's DMA domain maps IOVA 0x7F00_0000 to `ipa` (outside its RAM;
    /// `iommu_map` checks nothing) — with an identity domain the IOVA is the IPA — and the
    /// device writes there. Containment: the host's stage 2 must stop it, with a record.
    func mapOutsideRAM(device d: Int, ipa: UInt64) -> EventResult {
        guard guestDevices.indices.contains(d), functions.indices.contains(d) else { return .skipped("no device \(d)") }
        let g = guestDevices[d]
        var iova = ipa & ~0xFFF
        var mapped = false
        if let domain = guest.iommu.dmaDomain(for: g.device), domain.type != .identity {
            iova = 0x7F00_0000
            do {
                try guest.iommu.map(domain, iova: iova, physical: ipa & ~0xFFF, size: 0x1000, protection: [.read, .write])
                mapped = true
            } catch { return .done("guest iommu_map failed: \(error)") }
        }
        let journal = Journal()
        machine.journal = journal
        let result = functions[d].dma(.write, address: IOVA(iova), size: 4, data: 0xBAD0_BAD0)
        machine.journal = nil
        var write = AdversarialWrite(device: d, sent: result.transaction != nil)
        if write.sent {
            for case .smmuTranslated(_, _, let output, _, _) in journal.entries { write.reached = output }
            for driver in host.smmuDrivers { write.records += (try? driver.serviceEventQueue())?.count ?? 0 }
        }
        lastAdversarialWrite = write
        if mapped, let domain = guest.iommu.dmaDomain(for: g.device) { _ = guest.iommu.unmap(domain, iova: iova, size: 0x1000) }
        guard write.sent else { return .done("device \(d) did not write (\(result)): nothing to contain") }
        return .done("device \(d) wrote IOVA \(Hex.format(iova)) → IPA \(Hex.format(ipa)): \(result); landed at "
            + (write.reached.map { Hex.format($0) } ?? "nowhere") + "; \(write.records) SMMU event(s)")
    }

    /// Adversarial: the guest points its STE's S1ContextPtr outside its RAM and invalidates it.
    /// The VMM installs it as a nested HWPT (the pointer is allow-listed); the device's walks
    /// then fault at the CD fetch's stage 2.
    func corruptGuestSTE(_ d: Int) throws {
        let g = guestDevices[d]
        guard let driver = guest.iommu.driver(for: g.device), let ste = try driver.streamTableEntry(for: StreamID(UInt32(g.requesterID.rawValue))) else {
            throw Errno.ENODEV
        }
        var words = ste.words
        guard !words.isEmpty else { throw Errno.EINVAL }
        let mask = UInt64.lowMask(52) & ~UInt64.lowMask(6)
        words[0] = (words[0] & ~mask) | (0x20_0000_0000 & mask)
        try driver.overwriteStreamTableEntries(of: g.device, with: words)
        corrupted.insert(d)
    }

    /// `pci_free_irq_vectors` after `free_irq` of every vector, then the probe's allocation
    /// again: the guest turns MSI-X off and on, and QEMU follows with `vfio_msix_disable` /
    /// `vfio_msix_enable`.
    func rebindGuestDriver(_ d: Int) throws {
        let g = guestDevices[d]
        let n = scenario.devices[d].activeVectors
        for v in 0..<n {
            if let irq = try? guest.pci.irqVector(g, v) { try guest.irq.freeIRQ(irq) }
        }
        try guest.pci.freeIRQVectors(g)
        try bindGuestDriver(d, g, enable: false)
    }

    /// Dynamic MSI-X in the guest: `free_irq` + `pci_msix_free_irq` of the last vector, then
    /// `pci_msix_alloc_irq_at` + `request_irq` for it again (QEMU: the entry is masked, then
    /// reprogrammed and unmasked, so it uses the vector anew: `vfio_msix_vector_use` → SET_IRQS
    /// for one vector → the host's dynamic allocation).
    func readdLastVector(_ d: Int) throws {
        let g = guestDevices[d]
        let last = scenario.devices[d].activeVectors - 1
        let irq = try guest.pci.irqVector(g, last)
        try guest.irq.freeIRQ(irq)
        try guest.pci.msixFreeIRQ(g, irq: irq)
        let (_, newIRQ) = try guest.pci.msixAllocateIRQ(g, at: last)
        try requestGuestIRQ(d, vector: last, irq: newIRQ)
    }

    /// Adversarial: the device writes the doorbell it was programmed with (vector 0's entry)
    /// with an EventID of its choosing. The ITS takes the DeviceID from the write's sideband, so
    /// the most it can raise is one of its own events (isolation, GICv3 §5.2).
    func forgeEventID(device d: Int, eventID: UInt32) -> EventResult {
        guard functions.indices.contains(d), let pdev = hostDevice(d), let table = pdev.msixTableAddress,
              let address = try? machine.bus.read(table, size: 4) | (machine.bus.read(PhysicalAddress(table.rawValue &+ 4), size: 4) << 32) else {
            return .skipped("device \(d) has no programmed MSI-X entry")
        }
        let journal = Journal()
        machine.journal = journal
        let result = functions[d].dma(.write, address: IOVA(address), size: 4, data: UInt64(eventID))
        machine.journal = nil
        deliveries.removeAll()
        for cpu in 0..<host.irq.cpuCount { _ = host.irq.handleInterrupts(cpu: cpu) }
        for cpu in 0..<guest.irq.cpuCount { _ = guest.irq.handleInterrupts(cpu: cpu) }
        lastAdversarialWrite = AdversarialWrite(device: d, sent: result.transaction != nil, guestInterrupts: takeDeliveries().retained)
        var its = "no ITS saw it"
        for case .itsTranslate(_, let deviceID, let event, let entry) in journal.entries {
            if let result = ITSTranslationResult(entry) { its = "ITS: DeviceID \(deviceID) EventID \(event) → \(result)"; break }
        }
        return .done("device \(d) wrote EventID \(eventID) to \(Hex.format(address)): \(result); \(its)")
    }
}

/// What an adversarial write did, for the invariants checked after its event.
struct AdversarialWrite {
    var device: Int
    /// Whether the device put the write on the link (Bus Master and MSI state allow it).
    var sent: Bool
    /// The physical address the SMMU let it reach, if any.
    var reached: UInt64?
    /// SMMU event records it left.
    var records = 0
    /// Guest handlers it made run.
    var guestInterrupts: [World.GuestDelivery] = []

    init(device: Int, sent: Bool, guestInterrupts: [World.GuestDelivery] = []) {
        self.device = device
        self.sent = sent
        self.guestInterrupts = guestInterrupts
    }
}

extension World {
    /// The invariants an adversarial write must keep. A write outside the guest's RAM must stop
    /// at the host's stage 2 (containment) with a record (no silent loss); a forged EventID may
    /// raise at most the device's own guest interrupts, never another device's (isolation).
    func adversarialViolation(_ event: ScenarioEvent, step: Int) -> Violation? {
        if let lost = residencyViolation(event, step: step) { return lost }
        guard let write = lastAdversarialWrite, write.sent else { return nil }
        let d = write.device
        switch event {
        case .guestMapOutsideRAM:
            if let pa = write.reached {
                guard !isGuestRAM(pa), !isDoorbell(pa) else { return nil }
                return Violation(invariant: .containment, step: step, event: event,
                                 detail: "device \(d)'s write to a guest mapping outside RAM reached PA \(Hex.format(pa))")
            }
            guard write.records == 0 else { return nil }
            return Violation(invariant: .noSilentLoss, step: step, event: event,
                             detail: "device \(d)'s write outside the guest's RAM was stopped without a record")
        case .forgedEventID:
            guard let wrong = write.guestInterrupts.first(where: { !ownsGuestIRQ(d, $0.irq) }) else { return nil }
            return Violation(invariant: .isolation, step: step, event: event,
                             detail: "a forged EventID from device \(d) raised guest irq \(wrong.irq) of another device")
        default:
            return nil
        }
    }
}
