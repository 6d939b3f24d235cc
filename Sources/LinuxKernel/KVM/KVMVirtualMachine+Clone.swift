import Bus
import GIC

/// Copying a KVM VM for a forked world: the VM's memory slots, routes, counters, injection
/// records and forwarding log are values; the guest bus, vCPUs and vGIC are copied through the
/// map; the host kernel and the VMM process are the copied world's (the VM holds the kernel
/// the way a VM fd pins `struct kvm`'s `mm` and its creator).
///
/// What KVM installed as closures is installed again on the copy, from copied objects, once
/// the rest of the world has been copied (`map.afterCloning`):
/// - every irqfd's wakeup on its (copied) eventfd (`kvm_irqfd_assign` → `irqfd_wakeup`);
/// - the vITS lists' `onChange`, KVM's GICv4 follow-ups, when `vgic_v4_init` had installed it.
extension KVMVirtualMachine: WorldCloneable {
    public func clone(into map: inout CloneMap) -> KVMVirtualMachine {
        let copy = KVMVirtualMachine(kernel: forkedCopy(kernel, &map), process: forkedCopy(process, &map), id: id,
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
        copy.itsVM = itsVM.map { forkedCopy($0, &map) }
        copy.forwardingLog = forwardingLog
        copy.routingGeneration = routingGeneration
        var irqfds: [ObjectIdentifier: KVMIRQFD] = [:]
        for (_, irqfd) in self.irqfds {
            let eventfd = forkedCopy(irqfd.eventfd, &map)
            irqfds[ObjectIdentifier(eventfd)] = KVMIRQFD(eventfd: eventfd, gsi: irqfd.gsi)
        }
        copy.irqfds = irqfds
        copy.counters = counters
        copy.injections = injections
        copy.recordsInjections = recordsInjections
        let followsVITS = vgic?.itsLists?.onChange != nil
        map.afterCloning { _ in
            for irqfd in copy.irqfds.values {
                let gsi = irqfd.gsi
                irqfd.eventfd.onSignal = { [weak copy] eventfd in copy?.irqfdWakeup(eventfd, gsi: gsi) }
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

/// The copy of an object whose class another part of the kernel model makes copyable.
private func forkedCopy<T: AnyObject>(_ object: T, _ map: inout CloneMap) -> T {
    guard let copy = map.cloneDynamic(object) as? T else {
        preconditionFailure("KVM: a \(T.self) cannot be copied into a forked world yet")
    }
    return copy
}
