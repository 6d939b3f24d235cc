import Bus

/// A forked world's `struct its_vm`: its vPEs (each copied once, whether reached from here, a
/// vLPI map or KVM's vCPUs), its `vprop_page` address and doorbell block. The page itself is
/// RAM, which the machine's copy carries.
extension ITSVM: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ITSVM {
        let copy = ITSVM(propertyTable: propertyTable, doorbellBase: doorbellBase, doorbellCount: doorbellCount)
        map.record(self, as: copy)
        copy.vpes = map.clone(vpes)
        return copy
    }
}

/// A forked world's `struct its_vpe`: every field is a value (its VPT is RAM the machine's copy
/// carries; residency is what the copied redistributor's GICR_VPENDBASER holds).
extension ITSVPE: WorldCloneable {
    public func clone(into map: inout CloneMap) -> ITSVPE {
        let copy = ITSVPE(id: id, index: index, pendingTable: pendingTable, doorbellLPI: doorbellLPI)
        copy.irq = irq
        copy.cpu = cpu
        copy.resident = resident
        copy.residentCPU = residentCPU
        copy.pendingLast = pendingLast
        copy.vmappCount = vmappCount
        copy.vlpiCount = vlpiCount
        copy.doorbellsTaken = doorbellsTaken
        return copy
    }
}

extension ITSVLPIMap {
    /// The same map in a forked world: the copied VM and vPE.
    func cloned(into map: inout CloneMap) -> ITSVLPIMap {
        ITSVLPIMap(vm: map.clone(vm), vpe: map.clone(vpe), vintid: vintid, properties: properties, doorbellEnabled: doorbellEnabled)
    }
}

extension IRQSubsystem {
    /// For a forked world: installs again, on the copy of `vm` (one of this subsystem's
    /// `itsVMs`), the doorbell handlers `allocateVCPUIRQs` installed on the original, with
    /// `onDoorbell` built by the caller (KVM's vGIC) from copied objects. The doorbells' state
    /// (activation, VMAPP, enable) was copied; nothing is sent. EINVAL when `vm` is not this
    /// kernel's or a doorbell has no descriptor.
    public func reinstallVPEDoorbellHandlers(_ vm: ITSVM, onDoorbell: @escaping (ITSVPE, Int) -> Void) throws(Errno) {
        guard itsVMs.contains(where: { $0 === vm }) else { throw .EINVAL }
        for vpe in vm.vpes {
            guard let action = descriptors[vpe.irq]?.action else { throw .EINVAL }
            action.reinstall(handler: vpeDoorbellHandler(vpe, vm: vm, onDoorbell: onDoorbell))
        }
    }

    /// For a forked world: installs again the handler a driver passed to `request_irq` for
    /// `irq` on the original, built by the caller from copied objects (see `IRQAction`'s
    /// `WorldCloneable` conformance). The action and the interrupt's state were copied; nothing
    /// is requested, activated or unmasked. EINVAL for an unknown number or an interrupt whose
    /// action is not a driver handler (VFIO's eventfd action is copied whole).
    public func reinstallHandler(irq: Int, handler: @escaping (_ irq: Int, _ cpu: Int) -> IRQReturn) throws(Errno) {
        guard let action = descriptors[irq]?.action, case .handler = action.kind else { throw .EINVAL }
        action.reinstall(handler: handler)
    }

    /// Interrupts whose driver handler has not been installed again since the fork, in number
    /// order: empty once every owner's `afterCloning` ran.
    public var irqsAwaitingHandler: [Int] { sortedDescriptors.filter { $0.action?.awaitsHandler == true }.map(\.irq) }
}
