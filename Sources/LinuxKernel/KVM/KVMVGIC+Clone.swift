import Bus
import GIC

/// Copying KVM's in-kernel interrupt controller for a forked world. The vGIC is the GIC
/// module's `GICv3` (and its `ITS`) on the VM's guest bus, so the GIC's own clone copies the
/// registers, pending state and ITS caches; what KVM adds is where the vITS keeps its
/// translations, `KVMITSLists` (`its->device_list`, each device's `itt_head`,
/// `its->collection_list`), which the GIC's ITS clone reaches as its entry storage
/// (`map.cloneDynamic`) and this file makes copyable. The lists are values, so the copy
/// translates exactly as the original until either executes another command.
extension KVMITSLists: WorldCloneable {
    /// The lists and the copied guest bus. `onChange` (KVM's GICv4 follow-ups, installed by
    /// `vgicV4Init`) is a closure over the original VM: the VM's clone installs it again on the
    /// copy when the original had one.
    public func clone(into map: inout CloneMap) -> KVMITSLists {
        let copy = KVMITSLists(guestBus: map.clone(guestBus))
        copy.devices = devices
        copy.collections = collections
        return copy
    }
}

extension KVMVGIC: WorldCloneable {
    /// The copied GIC (with its ITS, whose entry storage is the copied lists), the copied
    /// guest bus, and the vGICv2 CPU interface frame when there is one; the frame addresses
    /// and vCPU count are values.
    public func clone(into map: inout CloneMap) -> KVMVGIC {
        let gicCopy = map.clone(gic)
        let copy = KVMVGIC(gic: gicCopy, its: map.clone(its), itsLists: map.clone(itsLists), guestBus: map.clone(guestBus),
                           vcpuCount: vcpuCount, distributorBase: distributorBase, redistributorBase: redistributorBase,
                           itsBase: itsBase)
        copy.cpuInterfaceBase = cpuInterfaceBase
        copy.cpuInterfaceFrame = map.clone(cpuInterfaceFrame)
        return copy
    }
}

extension KVMVCPU: WorldCloneable {
    /// A vCPU is its id (its affinity is computed from it).
    public func clone(into map: inout CloneMap) -> KVMVCPU { KVMVCPU(id: id) }
}
