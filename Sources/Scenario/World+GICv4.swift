import LinuxKernel

/// A fired vector: (device, vector).
struct VectorKey: Hashable, Sendable {
    var device: Int
    var vector: Int
}

extension World {
    /// On a GICv4.1 host with direct injection (`KVMVirtualMachine.hasDirectMSIs`), every vCPU
    /// enters the guest (KVM_RUN → `vgic_v4_load`): vCPU n on host CPU n mod the host's CPUs,
    /// in order, so its vPE is resident on that CPU's redistributor. A later vCPU on the same
    /// CPU preempts the earlier one (`vgic_v4_put` without a doorbell), as one CPU runs one
    /// vCPU at a time. Nothing without direct injection.
    func runVCPUs() throws(Errno) {
        let vm = vmm.vm
        guard vm.hasDirectMSIs else { return }
        let cpus = max(host.irq.redistributors.count, 1)
        for index in vm.vcpus.indices { try vm.loadVCPU(index, onCPU: index % cpus) }
    }

    /// The residency events (`vpe-migrate`, `vcpu-non-resident`, `vcpu-resident`); skipped
    /// without GICv4.1 direct injection, which is the only place a vCPU's residency shows.
    func performResidency(_ event: ScenarioEvent) -> EventResult {
        let vm = vmm.vm
        guard vm.hasDirectMSIs else { return .skipped("no GICv4.1 direct injection on this host (vgic_supports_direct_msis)") }
        let cpus = host.irq.redistributors.count
        do {
            switch event {
            case .vpeMigrate(let vcpu, let cpu):
                guard let vpe = vm.vpe(ofVCPU: vcpu) else { return .skipped("the VM has no vCPU \(vcpu)") }
                guard cpu < cpus else { return .skipped("the host has no CPU \(cpu)") }
                let from = vpe.residentCPU ?? vpe.cpu
                guard from != cpu || !vpe.resident else { return .skipped("vCPU \(vcpu) already runs on CPU \(cpu)") }
                try vm.putVCPU(vcpu, blocking: false)
                let moved = try vm.loadVCPU(vcpu, onCPU: cpu)
                return .done("vCPU \(vcpu) (vPE \(vpe.id)) moved CPU\(from) → CPU\(cpu): "
                             + (moved ? "VMOVP to redistributor \(cpu)" : "no VMOVP (the redistributors share a vPE table)") + ", resident there")
            case .vcpuNonResident(let vcpu):
                guard let vpe = vm.vpe(ofVCPU: vcpu) else { return .skipped("the VM has no vCPU \(vcpu)") }
                guard vpe.resident else { return .skipped("vCPU \(vcpu)'s vPE is not resident") }
                try vm.putVCPU(vcpu, blocking: true)
                return .done("vCPU \(vcpu) blocked (WFI): vPE \(vpe.id) not resident, doorbell LPI \(vpe.doorbellLPI) requested, PendingLast=\(vpe.pendingLast ? 1 : 0)")
            case .vcpuResident(let vcpu):
                guard let vpe = vm.vpe(ofVCPU: vcpu) else { return .skipped("the VM has no vCPU \(vcpu)") }
                guard !vpe.resident else { return .skipped("vCPU \(vcpu)'s vPE is already resident") }
                try vm.loadVCPU(vcpu, onCPU: vpe.cpu)
                return .done("vCPU \(vcpu) runs again on CPU\(vpe.cpu): vPE \(vpe.id) resident")
            default:
                return .skipped("not a residency event")
            }
        } catch {
            return .done("\(event.kind.rawValue) failed: \(error)")
        }
    }

    /// After each event: a fired vector left in a non-resident vPE's VPT is remembered; after
    /// `vcpu-resident` or `vpe-migrate` (both make the vCPU resident) every vector remembered
    /// for that vCPU must have reached the guest (`late`: the deliveries taken after the
    /// event), else it is a loss.
    func trackVPT(_ event: ScenarioEvent, _ result: EventResult, late: [GuestDelivery]) {
        if case .fired(let outcome) = result, case .pendingInVPT = outcome.verdict, let vcpu = outcome.expected?.cpu {
            vptPending[vcpu, default: []].insert(VectorKey(device: outcome.device, vector: outcome.vector))
            return
        }
        let vcpu: Int
        switch event {
        case .vcpuResident(let v), .vpeMigrate(let v, _): vcpu = v
        default: return
        }
        guard case .done = result else { return }
        let waiting = vptPending.removeValue(forKey: vcpu) ?? []
        residencyLosses = waiting.sorted { ($0.device, $0.vector) < ($1.device, $1.vector) }.compactMap { key in
            guard let irq = guestIRQ(key.device, key.vector) else { return nil }
            if late.contains(where: { $0.device == key.device && $0.irq == irq }) { return nil }
            return "device \(key.device) vector \(key.vector) was pending in vCPU \(vcpu)'s VPT but the guest did not take it when the vPE became resident"
        }
    }

    /// The residency invariant (part of delivery): what `vcpu-resident` left in a VPT.
    func residencyViolation(_ event: ScenarioEvent, step: Int) -> Violation? {
        switch event {
        case .vcpuResident, .vpeMigrate: break
        default: return nil
        }
        guard let first = residencyLosses.first else { return nil }
        residencyLosses = []
        return Violation(invariant: .delivery, step: step, event: event, detail: first)
    }
}
