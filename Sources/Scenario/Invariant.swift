import Bus

/// The invariants the explorer checks after every step (docs/strategies.md, "The five
/// checks").
public enum Invariant: String, CaseIterable, Hashable, Sendable, Comparable {
    /// Every fired, unmasked vector of an enabled device ends as exactly one guest LPI on the
    /// vCPU the guest targeted (or, before any event, the strategy simply does not deliver).
    case delivery
    /// A device raises only LPIs mapped for its own DeviceID; a write with a forged EventID
    /// raises nothing it should not.
    case isolation
    /// Device DMA reaches only what the host mapped in stage 2 (guest RAM, doorbell pages).
    case containment
    /// Every dropped write is accounted for: an SMMU event record, an ITS drop, a Pending bit.
    case noSilentLoss = "no-silent-loss"
    /// After any event the first invariant still holds, or the event that broke it is named.
    case stability

    public static func < (a: Invariant, b: Invariant) -> Bool {
        allCases.firstIndex(of: a) ?? 0 < allCases.firstIndex(of: b) ?? 0
    }

    /// The invariant in one or two sentences, as docs/strategies.md ("The five invariants")
    /// states it and `doorbell explain` prints it.
    public var statement: String {
        switch self {
        case .delivery:
            "Every fired, unmasked vector of an enabled device ends as exactly one guest LPI on the vCPU the guest targeted, or as a reported architected fault."
        case .isolation:
            "A device raises only LPIs mapped for its own DeviceID; a write with another device's DeviceID or a forged EventID raises nothing it should not."
        case .containment:
            "Device DMA reaches only what the host mapped in stage 2 (guest RAM, doorbell pages)."
        case .noSilentLoss:
            "Every dropped write is accounted for: an SMMU event record, an ITS drop, a pending bit."
        case .stability:
            "After any event the first invariant still holds, or the run names the event that broke it."
        }
    }
}

/// One violation: which invariant, at which script step (and after which event), and what was
/// observed instead.
public struct Violation: Hashable, Sendable, CustomStringConvertible {
    public var invariant: Invariant
    public var step: Int
    /// The event run at `step`, or the last event before the observation that failed.
    public var event: ScenarioEvent?
    public var detail: String

    public var description: String {
        "\(invariant.rawValue) at step \(step)\(event.map { " (after \($0.kind.rawValue))" } ?? ""): \(detail)"
    }
}

extension World {
    /// The invariants one fired vector's outcome must keep. `previousEvent` is the last
    /// non-fire event before it (for stability), `deliveredBefore` whether this vector was
    /// delivered when first fired (a strategy that never delivers breaks delivery, not
    /// stability).
    func check(_ o: VectorOutcome, previousEvent: ScenarioEvent?, deliveredBefore: Bool?) -> [Violation] {
        var violations: [Violation] = []
        func add(_ invariant: Invariant, _ detail: String) {
            violations.append(Violation(invariant: invariant, step: o.step, event: previousEvent, detail: detail))
        }
        let label = "device \(o.device) vector \(o.vector)"
        // Delivery / stability. An unplugged function has no MSIs to deliver; one without a
        // driver, or whose STE its own guest corrupted, need not deliver.
        if unplugged.contains(o.device) { return [] }
        switch exempt.contains(o.device) ? .delivered : o.verdict {
        case .delivered, .pending, .pendingInVPT:
            break
        case .failed(let point, let why):
            var where_ = "\(label) programmed \(o.programmedAddress.map { Hex.format($0) } ?? "nothing"): \(point.rawValue): \(why)"
            // The record that accounts for the loss, if any.
            if let record = o.smmuEvents.first {
                where_ += "; recorded as \(record.type?.name ?? Hex.format(UInt64(record.eventID), minDigits: 2)) StreamID \(Hex.format(UInt64(record.streamID.rawValue), minDigits: 1)) InputAddr \(Hex.format(record.inputAddress)) in the host's event queue"
            } else if case .dropped(let reason)? = o.its?.result {
                where_ += "; counted as an ITS drop (\(reason))"
            } else {
                where_ += "; no record"
            }
            if deliveredBefore == true, previousEvent != nil {
                add(.stability, where_)
            } else {
                add(.delivery, where_)
            }
        }
        // Isolation: handlers of other devices must not run; the physical ITS must see this
        // device's DeviceID.
        if let wrong = o.handled.first(where: { h in guestDevices.indices.contains(o.device) && !ownsGuestIRQ(o.device, h.irq) }) {
            add(.isolation, "\(label) raised guest irq \(wrong.irq) (LPI \(wrong.lpi)), which is not the device's")
        }
        if let its = o.its, let expected = hostDeviceID(o.device), its.deviceID != expected {
            add(.isolation, "\(label) reached the ITS with DeviceID \(Hex.format(UInt64(its.deviceID), minDigits: 1)), not \(Hex.format(UInt64(expected), minDigits: 1))")
        }
        // Containment: the write's physical address is a doorbell or guest RAM.
        if let pa = o.physicalAddress, !isDoorbell(pa), !isGuestRAM(pa) {
            add(.containment, "\(label): the MSI write reached PA \(Hex.format(pa)), neither a GITS_TRANSLATER nor the guest's RAM")
        }
        // No silent loss.
        if case .failed(let point, let why) = o.verdict {
            let accounted: Bool
            switch point {
            case .stage1, .stage2, .smmuConfiguration:
                accounted = !o.smmuEvents.isEmpty
            case .its:
                accounted = o.its != nil
            case .device, .setup:
                accounted = true
            case .host where exempt.contains(o.device):
                accounted = true
            case .host, .misrouted:
                accounted = false
            }
            if !accounted { add(.noSilentLoss, "\(label) was lost at \(point.rawValue) with no record: \(why)") }
        }
        return violations
    }

    /// Whether guest irq `irq` is one of device `d`'s vectors.
    func ownsGuestIRQ(_ d: Int, _ irq: Int) -> Bool {
        guard guestDevices.indices.contains(d) else { return false }
        // A multi-message MSI descriptor owns its first interrupt and the vectors after it
        // (`pci_irq_vector(dev, nr)` = the first + nr).
        let g = guestDevices[d]
        if g.msiEnabled {
            return (0..<scenario.devices[d].activeVectors).contains { (try? guest.pci.irqVector(g, $0)) == irq }
        }
        return g.device.msiDescriptors.contains { $0.irq == irq }
    }

    /// The DeviceID the host's msi-map gives device `d`.
    func hostDeviceID(_ d: Int) -> UInt32? {
        guard let pdev = hostDevice(d) else { return nil }
        return try? host.pci.msiDomain(of: pdev).deviceID
    }

    /// GITS_TRANSLATER of an ITS, or a slot of a SynQuacer / TI K3 pre-ITS window (every
    /// 4-byte slot there is a doorbell for one DeviceID).
    func isDoorbell(_ pa: UInt64) -> Bool {
        machine.its.contains { $0.translaterAddress.rawValue == pa & ~3 || $0.translaterAddress.rawValue == pa }
            || machine.preITS.contains { window in
                guard let window else { return false }
                return pa >= window.base.rawValue && pa - window.base.rawValue < window.size
            }
    }

    func isGuestRAM(_ pa: UInt64) -> Bool {
        vmm.vm.memorySlots.contains { slot in
            slot.windows.contains { pa >= $0.hostPhysical.rawValue && pa - $0.hostPhysical.rawValue < $0.size }
        }
    }
}
