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

    /// Fires one vector and follows it: the device's write, the SMMU's answer, the physical
    /// ITS, the host's interrupt handling (vfio_msihandler → eventfd → KVM irqfd), KVM's
    /// injection into the vITS, and the guest's handlers. With `trace`, every layer records its
    /// steps into it, and the software steps are added as records of their own.
    func fire(device: Int, vector: Int, step: Int, trace: TraceLog? = nil) -> VectorOutcome {
        let expected = expectedGuestInterrupt(device: device, vector: vector)
        var outcome = VectorOutcome(step: step, device: device, vector: vector,
                                    guestAddress: guestMessage(device: device, vector: vector)?.address,
                                    stage1: .notReached, stage2: .notReached, expected: expected, handled: [],
                                    verdict: .failed(.device, "not fired"), smmuEvents: [], cost: .init())
        if guestDevices.indices.contains(device), let irq = try? guest.pci.irqVector(guestDevices[device], vector),
           let desc = guest.irq.descriptor(irq), let msi = desc.msiDescriptor {
            let g = guestDevices[device]
            outcome.guestData = msi.message.data | UInt32(truncatingIfNeeded: g.msiEnabled ? irq - msi.irq : 0)
            outcome.guestRequesterID = g.requesterID
            outcome.guestDeviceID = g.msiDomain?.deviceID
        }
        guard functions.indices.contains(device) else {
            outcome.verdict = .failed(.device, "no device \(device)")
            return outcome
        }
        let function = functions[device]
        for its in machine.its { its.lastMSI = nil }
        let countersBefore = machine.smmus.map(\.translator.counters)
        let injectionsBefore = vmm.vm.injections.count
        _ = takeDeliveries()
        let vitsTrace = trace.map { _ in TraceLog() }
        if let trace {
            machine.trace = trace
            vmm.vm.vgic?.its?.trace = vitsTrace
        }
        let request = function.raise(vector: vector)
        machine.trace = nil

        // The SMMU's answer for this write, from the port it went through.
        if let transaction = request.transaction, let result = request.result {
            outcome.programmedAddress = transaction.address.rawValue
            outcome.programmedData = UInt32(truncatingIfNeeded: transaction.data)
            classifyTranslation(&outcome, transaction: transaction, result: result)
        }
        for (index, its) in machine.its.enumerated() {
            if let record = its.lastMSI {
                outcome.its = .init(index: index, deviceID: record.deviceID.rawValue, eventID: record.eventID.rawValue, result: record.result)
            }
        }
        for (before, smmu) in zip(countersBefore, machine.smmus) {
            outcome.cost.descriptorReads += smmu.translator.counters.totalReads - before.totalReads
            outcome.cost.tlbHits += smmu.translator.counters.tlbHits - before.tlbHits
            outcome.cost.tlbMisses += smmu.translator.counters.tlbMisses - before.tlbMisses
        }
        // The host takes its LPIs; VFIO's handler signals the eventfd, KVM's irqfd injects.
        var hostHandled = 0
        for cpu in 0..<host.irq.cpuCount { hostHandled += host.irq.handleInterrupts(cpu: cpu) }
        if vmm.vsmmu != nil { vmm.pollVirtualEvents() }
        for cpu in 0..<guest.irq.cpuCount { _ = guest.irq.handleInterrupts(cpu: cpu) }
        for driver in host.smmuDrivers {
            if let records = try? driver.serviceEventQueue() { outcome.smmuEvents += records }
        }
        vmm.vm.vgic?.its?.trace = nil
        let injections = Array(vmm.vm.injections.dropFirst(injectionsBefore))
        let handled = takeDeliveries().filter { $0.device == device }
        outcome.handled = handled.map { d in
            .init(irq: d.irq, lpi: guest.irq.descriptor(d.irq)?.hwirq ?? 0, cpu: d.cpu)
        }
        if let trace {
            traceSoftware(trace, outcome: outcome, hostHandled: hostHandled, injections: injections,
                          vits: vitsTrace?.records ?? [])
        }
        outcome.verdict = verdict(outcome, request: request, hostHandled: hostHandled, injections: injections)
        return outcome
    }

    /// Stage results from the SMMU's response (or its absence: an untranslated doorbell).
    func classifyTranslation(_ outcome: inout VectorOutcome, transaction: DeviceTransaction, result: TransactionResult) {
        let port = machine.translatedPorts.first { $0 != nil } ?? nil
        let input = transaction.address.rawValue
        // The guest's domain as it is now (the guest may have switched it at run time).
        let device = guestDevices.indices.contains(outcome.device) ? guestDevices[outcome.device].device : nil
        let identity = device.flatMap { guest.iommu.dmaDomain(for: $0) }?.type == .identity
        let nested = scenario.vm.viommu != .none && !identity
        let guestBypass = scenario.vm.viommu != .none && identity
        guard let port, let response = port.lastResponse else {
            outcome.stage1 = .untranslated
            outcome.stage2 = .untranslated
            outcome.physicalAddress = result.status == .aborted ? nil : input
            return
        }
        switch response {
        case .translated(let t):
            outcome.physicalAddress = t.output.rawValue
            if let ipa = t.intermediate {
                outcome.stage1 = .translated(from: input, to: ipa.rawValue)
                outcome.stage2 = .translated(from: ipa.rawValue, to: t.output.rawValue)
            } else {
                outcome.stage1 = nested ? .translated(from: input, to: t.output.rawValue) : (guestBypass ? .bypass : .absent)
                outcome.stage2 = .translated(from: input, to: t.output.rawValue)
            }
        case .terminated(let fault, _):
            guard let fault else {
                outcome.stage1 = .aborted
                outcome.stage2 = .aborted
                return
            }
            if fault.stage2 || !nested {
                outcome.stage1 = nested ? .notReached : (guestBypass ? .bypass : .absent)
                outcome.stage2 = .fault(fault)
                if nested, fault.faultClass == .input { outcome.stage1 = .notReached }
            } else {
                outcome.stage1 = .fault(fault)
                outcome.stage2 = .notReached
            }
        }
    }

    /// Where the MSI ended, from what each layer saw.
    func verdict(_ o: VectorOutcome, request: RequestOutcome, hostHandled: Int,
                 injections: [KVMInjectionRecord]) -> VectorOutcome.Verdict {
        switch request {
        case .pending:
            return .pending
        case .notSent(let why):
            return .failed(.device, "the device did not send it (\(why))")
        case .sent:
            break
        }
        if let expected = o.expected, o.handled == [expected] { return .delivered }
        if !o.handled.isEmpty {
            let got = o.handled.map { "LPI \($0.lpi) on vCPU \($0.cpu)" }.joined(separator: ", ")
            let want = o.expected.map { "LPI \($0.lpi) on vCPU \($0.cpu)" } ?? "nothing"
            return .failed(.misrouted, "the guest took \(got), expected \(want)")
        }
        for stage in [o.stage1, o.stage2] {
            if case .fault(let fault) = stage {
                let point: FailurePoint
                switch fault.type {
                case .fTranslation, .fAddrSize, .fAccess, .fPermission:
                    point = fault.faultClass == .cd ? .smmuConfiguration : (fault.stage2 ? .stage2 : .stage1)
                default:
                    point = .smmuConfiguration
                }
                return .failed(point, fault.reason.isEmpty ? "\(fault.type.name)" : fault.reason)
            }
        }
        if case .aborted = o.stage1 {
            return .failed(.smmuConfiguration, "the SMMU aborted the write without an event (an abort STE: no usable configuration was installed for the StreamID)")
        }
        if let its = o.its {
            if case .dropped(let reason) = its.result {
                return .failed(.its, "the physical ITS dropped DeviceID \(Hex.format(UInt64(its.deviceID), minDigits: 1)) EventID \(its.eventID): \(reason)")
            }
        } else if case .untranslated = o.stage2 {
            return .failed(.its, "the write reached no ITS")
        } else {
            return .failed(.its, "the write reached no ITS doorbell (\(o.programmedAddress.map { Hex.format($0) } ?? "?"))")
        }
        if hostHandled == 0 { return .failed(.host, "the host took no interrupt") }
        // The guest masked the vector: QEMU's handler (`vfio_msi_interrupt`) set the emulated
        // Pending bit instead of injecting; the unmask delivers it.
        if o.device == 0, o.vector < vmm.function.pendingBits.count, vmm.function.pendingBits[o.vector] {
            return .pending
        }
        if let injection = injections.last {
            switch injection.outcome {
            case .delivered: return .failed(.host, "KVM injected, but no guest handler ran")
            case .blocked(let reason): return .failed(.host, "the guest's vITS dropped the injection (\(reason))")
            case .failed(let errno): return .failed(.host, "KVM refused the injection (\(errno))")
            case .noRoute: return .failed(.host, "the irqfd's GSI has no route")
            }
        }
        return .failed(.host, "the host took the interrupt but signalled nothing for the guest")
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
        // The guest's vITS walks the guest's own tables in guest RAM (KVM's vgic-its).
        for record in vits where record.layer == .its {
            trace.append(TraceRecord(layer: .vits, step: record.step, address: record.address, value: record.value, detail: record.detail))
        }
        for h in outcome.handled {
            trace.append(.guest, "handler", value: UInt64(h.lpi), "vCPU \(h.cpu) acknowledges LPI \(h.lpi): irq \(h.irq) handled")
        }
    }
}
