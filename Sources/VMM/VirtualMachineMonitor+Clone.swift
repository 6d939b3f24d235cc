import Bus
import LinuxKernel

/// Copying the VMM for a forked world: the values it keeps (configuration, ids, the guest's
/// firmware tables and topology, its log and GSI routing table) are the original's; the host
/// and guest kernels, the VMM process, its iommufd, the KVM VM, the passthrough devices, the
/// vSMMU and the host bridge are the copied world's. The journal is an observer and starts
/// detached.
///
/// The closures the VMM installed are installed again on the copies, from copied objects:
/// - each plugged function's `onMSIXChange` / `onMSIChange` (realize; an unplugged function
///   has none, as `unrealize` cleared them);
/// - the vSMMU's backend and `onTranslationEnableChange`;
/// - the read handler on the VMM's own eventfd of every wired vector (`vfio_msi_interrupt`),
///   once the copied process's descriptor table is complete (`map.afterCloning`).
extension VirtualMachineMonitor: WorldCloneable {
    public func clone(into map: inout CloneMap) -> VirtualMachineMonitor {
        let copy = VirtualMachineMonitor(copying: self, host: map.clone(host), process: map.clone(process),
                                         vm: map.clone(vm), iommufd: map.clone(iommufd), devices: map.clone(devices),
                                         vsmmu: map.clone(vsmmu), bridge: map.clone(bridge),
                                         guest: map.clone(guest))
        map.record(self, as: copy)
        for (original, twin) in zip(devices, copy.devices) where original.function.onMSIXChange != nil {
            copy.installChangeHandlers(twin)
        }
        if let vsmmu, let twin = copy.vsmmu, vsmmu.backend === self { copy.installVSMMUHandlers(twin) }
        map.afterCloning { _ in
            for device in copy.devices {
                for index in device.vectors.keys.sorted() {
                    guard let vector = device.vectors[index], let eventfd = try? copy.process.eventfdContext(vector.userspaceFD) else { continue }
                    copy.installUserspaceHandler(on: eventfd, device, index: index)
                }
            }
        }
        return copy
    }
}

extension PassthroughDevice: WorldCloneable {
    /// The ids, GSI range, wired vectors and plug state are values; the host device, the VFIO
    /// cdev file and the emulated function are the copied world's.
    public func clone(into map: inout CloneMap) -> PassthroughDevice {
        let copy = PassthroughDevice(hostDevice: map.clone(hostDevice), deviceFile: map.clone(deviceFile),
                                     iommufdDeviceID: iommufdDeviceID, stage2HWPTID: stage2HWPTID,
                                     function: map.clone(function), gsiBase: gsiBase)
        copy.vdeviceID = vdeviceID
        copy.nestedHWPTID = nestedHWPTID
        copy.nestedAttachRefusal = nestedAttachRefusal
        copy.vectors = vectors
        copy.msixNeedsFullScan = msixNeedsFullScan
        copy.msiEnabledVectors = msiEnabledVectors
        copy.isPlugged = isPlugged
        return copy
    }
}

extension PassthroughFunction: WorldCloneable {
    /// The emulated configuration space, BARs and vMSI-X/MSI state are values over the copied
    /// VFIO file. The change callbacks are the VMM's (`VirtualMachineMonitor`'s clone).
    public func clone(into map: inout CloneMap) -> PassthroughFunction {
        PassthroughFunction(copying: self, file: map.clone(file))
    }
}

extension VirtualSMMU: WorldCloneable {
    /// The register file is copied (`SMMURegisterFile`'s clone), the counters and consumed
    /// commands are values, the guest bus is the copied one. The backend (a weak reference to
    /// the VMM) and `onTranslationEnableChange` are installed by the VMM's clone.
    public func clone(into map: inout CloneMap) -> VirtualSMMU {
        VirtualSMMU(copying: self, guestBus: map.clone(guestBus), registerFile: map.clone(registerFile))
    }
}

extension GuestHostBridge: WorldCloneable {
    /// The plugged functions and root ports in plug order, and the RID lookups over the copies.
    /// The ECAM and memory windows are devices of the guest bus, which copies them; each takes
    /// this copy as its bridge.
    public func clone(into map: inout CloneMap) -> GuestHostBridge {
        let copy = GuestHostBridge()
        map.record(self, as: copy)
        copy.functions = map.clone(functions)
        copy.rootPorts = map.clone(rootPorts)
        copy.functionsByRID = functionsByRID.mapValues { map.clone($0) }
        copy.rootPortsByRID = rootPortsByRID.mapValues { map.clone($0) }
        return copy
    }
}

extension GuestHostBridge.ECAM: WorldCloneable {
    public func clone(into map: inout CloneMap) -> GuestHostBridge.ECAM {
        GuestHostBridge.ECAM(bridge: map.clone(bridge))
    }
}

extension GuestHostBridge.Window: WorldCloneable {
    public func clone(into map: inout CloneMap) -> GuestHostBridge.Window {
        GuestHostBridge.Window(bridge: map.clone(bridge), base: base, name: mmioName)
    }
}
