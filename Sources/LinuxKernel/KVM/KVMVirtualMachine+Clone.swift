import Bus
import GIC

/// Copying a KVM VM for a forked world: the VM's memory slots, routes, counters, injection
/// records and forwarding log are values; the guest bus, vCPUs and vGIC are copied through the
/// map; the host kernel and the VMM process are the copied world's (the VM holds the kernel
/// the way a VM fd pins `struct kvm`'s `mm` and its creator).
///
/// What KVM installed as closures is installed again on the copy, from copied objects, once
/// the rest of the world has been copied (`map.afterCloning`):
/// - every irqfd's wakeup on its (copied) eventfd (`kvm_irqfd_assign` → `irqfd_wakeup`), and
///   its irqbypass consumer where the original had one registered (`reinstallConsumer`: the
///   vLPI pairing it made is already in the copied state, so nothing connects again);
/// - the vPE doorbell handlers' KVM side (`vgic_v4_doorbell_handler` kicking the vCPU,
///   `reinstallVPEDoorbellHandlers`) when `vgic_v4_init` had allocated the vPEs;
/// - the vITS lists' `onChange`, KVM's GICv4 follow-ups, when `vgic_v4_init` had installed it.
extension KVMVirtualMachine: WorldCloneable {
    public func clone(into map: inout CloneMap) -> KVMVirtualMachine {
        let copy = KVMVirtualMachine(kernel: map.clone(kernel), process: map.clone(process), id: id,
                                     guestBus: map.clone(guestBus))
        map.record(self, as: copy)
        map.record(cpuInterface, as: copy.cpuInterface)
        copy.cpuInterface.directlyAcknowledged = cpuInterface.directlyAcknowledged
        copy.memorySlots = memorySlots
        copy.vcpus = map.clone(vcpus)
        copy.vgic = map.clone(vgic)
        copy.routes = routes
        copy.irqchipRoutes = irqchipRoutes
        copy.forwardedVLPIs = forwardedVLPIs
        copy.itsVM = map.clone(itsVM)
        copy.forwardingLog = forwardingLog
        copy.routingGeneration = routingGeneration
        var irqfds: [ObjectIdentifier: KVMIRQFD] = [:]
        for (_, irqfd) in self.irqfds {
            let eventfd = map.clone(irqfd.eventfd)
            irqfds[ObjectIdentifier(eventfd)] = KVMIRQFD(eventfd: eventfd, gsi: irqfd.gsi)
        }
        copy.irqfds = irqfds
        copy.counters = counters
        copy.injections = injections
        copy.recordsInjections = recordsInjections
        let followsVITS = vgic?.itsLists?.onChange != nil
        let consumed = Set(self.irqfds.values.filter { kernel.irqBypass.hasConsumer(token: $0.eventfd) }.map(\.gsi))
        map.afterCloning { _ in
            for irqfd in copy.irqfds.values.sorted(by: { $0.gsi < $1.gsi }) {
                let gsi = irqfd.gsi
                irqfd.eventfd.onSignal = { [weak copy] eventfd in copy?.irqfdWakeup(eventfd, gsi: gsi) }
                if consumed.contains(gsi) { copy.kernel.irqBypass.reinstallConsumer(token: irqfd.eventfd, copy.bypassConsumer(gsi: gsi)) }
            }
            if let itsVM = copy.itsVM {
                do { try copy.kernel.irq.reinstallVPEDoorbellHandlers(itsVM, onDoorbell: copy.vpeDoorbell) } catch {
                    preconditionFailure("KVM VM \(copy.id): the copied host kernel has no doorbells for its vPEs (\(error))")
                }
            }
            if followsVITS { copy.vgic?.itsLists?.onChange = { [weak copy] in copy?.followVITSChanges() } }
        }
        return copy
    }
}

extension KVMVCPUInterface: WorldCloneable {
    /// The VM's: a VM creates its CPU interface and records its copy.
    public func clone(into map: inout CloneMap) -> KVMVCPUInterface {
        let _: KVMVirtualMachine = map.clone(vm)
        guard let done = map.copy(of: self) else { preconditionFailure("KVMVCPUInterface: its VM did not record a copy") }
        return done
    }
}
