import Bus
import GIC
import LinuxKernel
import PCI
import SMMUv3

extension World {
    /// The guest interrupt the guest kernel expects for a vector: its irq, LPI and target vCPU.
    func expectedGuestInterrupt(device: Int, vector: Int) -> VectorOutcome.GuestInterrupt? {
        guard guestDevices.indices.contains(device), let irq = try? guest.pci.irqVector(guestDevices[device], vector),
              let desc = guest.irq.descriptor(irq) else { return nil }
        return .init(irq: irq, lpi: desc.hwirq, cpu: desc.effectiveCPU)
    }

    /// The guest's message for a vector, as the guest composed it (its cached msi_msg).
    func guestMessage(device: Int, vector: Int) -> MSIMessage? {
        guard guestDevices.indices.contains(device), let irq = try? guest.pci.irqVector(guestDevices[device], vector) else { return nil }
        return guest.irq.descriptor(irq)?.msiDescriptor?.message
    }

    /// The guest's Linux irqs of a device's vectors: the handlers that count as this device's.
    func guestIRQs(device: Int) -> Set<Int> {
        guard guestDevices.indices.contains(device) else { return [] }
        let g = guestDevices[device]
        if g.msixEnabled { return Set(g.device.msiDescriptors.map(\.irq).filter { $0 != 0 }) }
        var irqs: Set<Int> = []
        var vector = 0
        // MSI: at most 32 vectors (PCI Local Bus 3.0 §6.8.1.3, Multiple Message Enable).
        while vector < 32, let irq = try? guest.pci.irqVector(g, vector) {
            irqs.insert(irq)
            vector += 1
        }
        return irqs
    }

    /// Fires one vector and follows it: the device's write, the SMMU's answer, the physical
    /// ITS, the host's interrupt handling (vfio_msihandler → eventfd → KVM irqfd), KVM's
    /// injection into the vITS, and the guest's handlers. One `Journal` is attached for this
    /// MSI to the machine, the host kernel (its IRQ core, eventfd_signal, KVM), the guest kernel
    /// (its IRQ core) and the VMM; every layer appends what it did, and the outcome is the fold
    /// of that journal (`VectorOutcome(step:device:vector:journal:expectation:)`). With `trace`,
    /// every layer also records its steps into it, and the software steps are added as records
    /// of their own.
    func fire(device: Int, vector: Int, step: Int, trace: TraceLog? = nil) -> VectorOutcome {
        let journal = Journal()
        let expectation = VectorOutcome.Expectation(interrupt: expectedGuestInterrupt(device: device, vector: vector),
                                                    guestIRQs: guestIRQs(device: device))
        guard functions.indices.contains(device) else {
            var outcome = fold(journal, device: device, vector: vector, step: step, expectation: expectation)
            outcome.verdict = .failed(.device, "no device \(device)")
            return outcome
        }
        let function = functions[device]
        let injectionsBefore = vmm.vm.injections.count
        deliveries.removeAll()
        let vitsTrace = trace.map { _ in TraceLog() }
        if let trace {
            machine.trace = trace
            vmm.vm.vgic?.its?.trace = vitsTrace
        }
        machine.journal = journal
        host.journal = journal
        guest.journal = journal
        vmm.journal = journal
        defer {
            host.journal = nil
            guest.journal = nil
            vmm.journal = nil
        }
        let request = function.raise(vector: vector)
        machine.journal = nil
        machine.trace = nil
        switch request {
        case .sent(let transaction, let result):
            journal.append(.messageSent(address: transaction.address.rawValue, data: UInt32(truncatingIfNeeded: transaction.data),
                                        aborted: result.status == .aborted))
        case .pending:
            journal.append(.messageLatched)
        case .notSent(let why):
            journal.append(.messageNotSent("\(why)"))
        }
        // The host takes its LPIs; VFIO's handler signals the eventfd, KVM's irqfd injects; the
        // guest takes what its vITS made pending. Each appends to the journal as it acts.
        for cpu in 0..<host.irq.cpuCount { _ = host.irq.handleInterrupts(cpu: cpu) }
        if vmm.vsmmu != nil { vmm.pollVirtualEvents() }
        for cpu in 0..<guest.irq.cpuCount { _ = guest.irq.handleInterrupts(cpu: cpu) }
        var smmuEvents: [EventRecord] = []
        for driver in host.smmuDrivers {
            if let records = try? driver.serviceEventQueue() { smmuEvents += records }
        }
        vmm.vm.vgic?.its?.trace = nil
        // The injections of this MSI (at most a few, well within the log's ring).
        let injections = trace == nil ? [] : vmm.vm.injections.since(injectionsBefore)
        deliveries.removeAll()
        var outcome = fold(journal, device: device, vector: vector, step: step, expectation: expectation)
        outcome.smmuEvents = smmuEvents
        if let trace {
            trace.journal = journal.entries
            let hostHandled = journal.entries.reduce(0) { if case .hostInterrupt = $1 { $0 + 1 } else { $0 } }
            traceSoftware(trace, outcome: outcome, hostHandled: hostHandled, injections: injections,
                          vits: vitsTrace?.records ?? [])
        }
        return outcome
    }

    /// The fold of a journal, with the guest's side of the vector (its message as it composed
    /// it) filled in.
    func fold(_ journal: Journal, device: Int, vector: Int, step: Int, expectation: VectorOutcome.Expectation) -> VectorOutcome {
        var outcome = VectorOutcome(step: step, device: device, vector: vector, journal: journal.entries, expectation: expectation)
        outcome.guestAddress = guestMessage(device: device, vector: vector)?.address
        if guestDevices.indices.contains(device), let irq = try? guest.pci.irqVector(guestDevices[device], vector),
           let desc = guest.irq.descriptor(irq), let msi = desc.msiDescriptor {
            let g = guestDevices[device]
            outcome.guestData = msi.message.data | UInt32(truncatingIfNeeded: g.msiEnabled ? irq - msi.irq : 0)
            outcome.guestRequesterID = g.requesterID
            outcome.guestDeviceID = g.msiDomain?.deviceID
        }
        if case .aborted = outcome.stage1, vmm.devices.indices.contains(device) {
            outcome.cause = vmm.devices[device].nestedAttachRefusal
        }
        if case .failed(let point, _) = outcome.verdict, point == .stage1 || point == .stage2, vmm.devices.indices.contains(device) {
            // A multi-message MSI has one descriptor (index 0) for all its vectors.
            let descriptors = vmm.devices[device].hostDevice.msiDescriptors
            outcome.programmedBy = (descriptors.first { $0.index == vector } ?? descriptors.first)?.addressSource
        }
        return outcome
    }

    /// The software half of a trace: the host's LPI, VFIO's handler, KVM's injection and the
    /// guest's handler, after the hardware records the layers wrote.
    func traceSoftware(_ trace: TraceLog, outcome: VectorOutcome, hostHandled: Int, injections: [KVMInjectionRecord],
                       vits: [TraceRecord]) {
        if case .delivered(let intid, let cpu, _)? = outcome.its?.result {
            let irq = host.irq.descriptor(hwirq: intid.rawValue)
            trace.append(.hostKernel, "LPI taken", value: UInt64(intid.rawValue),
                         "CPU \(cpu): irq \(irq?.irq ?? -1) \(irq?.action?.name ?? "(no handler)") → vfio_msihandler → eventfd_signal")
        }
        for injection in injections {
            trace.append(.kvm, "irqfd injection", address: injection.msi.map { UInt64($0.addressHi) << 32 | UInt64($0.addressLo) },
                         value: injection.msi.map { UInt64($0.data) }, injection.description)
        }
        // The guest's vITS walks the guest's own tables in guest RAM (KVM's vgic-its); a GICv2m
        // guest's frame (QEMU's arm_gicv2m.c) keeps its own layer.
        for record in vits {
            if record.layer == .its {
                trace.append(TraceRecord(layer: .vits, step: record.step, address: record.address, value: record.value, detail: record.detail))
            } else if record.layer == .v2m {
                trace.append(record)
            }
        }
        for h in outcome.handled {
            trace.append(.guest, "handler", value: UInt64(h.lpi), "vCPU \(h.cpu) acknowledges \(h.intidName): irq \(h.irq) handled")
        }
    }
}
