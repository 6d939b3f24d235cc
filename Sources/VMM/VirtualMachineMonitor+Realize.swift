import Bus
import LinuxKernel
import PCI

// MARK: One vfio-pci function's realize and unrealize after boot

/// What stays of a function across its unrealize: enough to realize the same host function at
/// the same guest RID again (QEMU's `-device vfio-pci,host=…,bus=…,addr=…` arguments).
struct FunctionSlot {
    var hostDevice: Device
    var cdevName: String
    var guestRequesterID: RequesterID
    var gsiBase: UInt32
}

extension VirtualMachineMonitor {
    /// QEMU's `object_unparent` of a vfio-pci device, in its order — `vfio_exitfn`, then
    /// `vfio_pci_finalize` → `vfio_pci_put_device` (hw/vfio/pci.c, read for this):
    /// 1. `vfio_disable_interrupts`: MSI-X → `vfio_msix_disable` (every vector's irqfd
    ///    deassigned and route dropped, eventfds closed, VFIO_DEVICE_SET_IRQS DATA_NONE |
    ///    ACTION_TRIGGER with count 0 on the MSI-X index); MSI → `vfio_msi_disable`;
    /// 2. `pci_device_unset_iommu_device` → `smmuv3_accel_unset_iommu_device`
    ///    (hw/arm/smmuv3-accel.c, read for this): the device re-attached to its stage-2 HWPT
    ///    ("Re-attach the default s2 hwpt id"), its nested HWPT freed, its vDEVICE freed, and —
    ///    the vSMMU's device list now empty — `smmuv3_accel_free_viommu` (vEVENTQ, vIOMMU);
    /// 3. off the guest's bus (`pcie_unplug_device` → `object_unparent`);
    /// 4. `vfio_device_detach` → `iommufd_cdev_detach` (hw/vfio/iommufd.c, read for this):
    ///    VFIO_DEVICE_DETACH_IOMMUFD_PT; `iommufd_cdev_autodomains_put` frees the HWPT when no
    ///    device of the container uses it any more (the nest parent; without a vIOMMU the
    ///    IOAS auto domain, which the kernel destroys itself at the last detach);
    ///    `iommufd_cdev_container_destroy` for the last device (the memory listener's
    ///    unregister unmaps guest RAM: IOMMU_IOAS_UNMAP; IOMMU_DESTROY of the IOAS);
    ///    `iommufd_cdev_unbind_and_disconnect` and `close(fd)` (the cdev close unbinds).
    ///
    /// `iommufd_backend_disconnect` closes /dev/iommu when its last user goes; the kernel model
    /// has no release for an iommufd file, so the VMM keeps its context, now empty, and the
    /// next device allocates in it — ids are the lowest free (`xa_alloc`), as in a new file.
    func unrealize(_ device: PassthroughDevice) {
        let rid = device.guestRequesterID
        device.isPlugged = false
        disableInterrupts(device)
        if vsmmu != nil { unsetIOMMUDevice(device) }
        bridge.unplug(requesterID: rid)
        device.function.onMSIXChange = nil
        device.function.onMSIChange = nil
        detachDevice(device)
        note("\(rid) unrealized: cdev /dev/vfio/devices/\(device.deviceFile.vdev.cdevName) closed")
    }

    /// QEMU `vfio_disable_interrupts` for the interrupt type the VMM has on.
    func disableInterrupts(_ device: PassthroughDevice) {
        let file = device.deviceFile
        if device.msiEnabledVectors > 0 {
            msiDisable(device)
        } else if device.function.msixEnabled || file.vdev.irqType == VFIOIRQSet.msixIndex || !device.vectors.isEmpty {
            releaseVectors(device)
            if file.vdev.irqType == VFIOIRQSet.msixIndex {
                do { try file.setIRQs(.disable()) } catch { note("\(device.guestRequesterID) VFIO_DEVICE_SET_IRQS(disable): \(error)") }
            }
            note("\(device.guestRequesterID) vfio_msix_disable")
        }
    }

    /// `smmuv3_accel_unset_iommu_device` (see `unrealize`).
    func unsetIOMMUDevice(_ device: PassthroughDevice) {
        let rid = device.guestRequesterID
        do { _ = try device.deviceFile.attachIOMMUFDPT(device.stage2HWPTID) } catch {
            note("\(rid) Unable to attach the default HW pagetable: \(error)")
        }
        if let nested = device.nestedHWPTID {
            do { try iommufd.destroy(nested) } catch { note("\(rid) IOMMU_DESTROY(nested hwpt \(nested)): \(error)") }
            device.nestedHWPTID = nil
        }
        if let vdevice = device.vdeviceID {
            do { try iommufd.destroy(vdevice) } catch { note("\(rid) IOMMU_DESTROY(vdevice \(vdevice)): \(error)") }
            device.vdeviceID = nil
        }
        guard !devices.contains(where: \.isPlugged) else { return }
        if let veventq = veventqID {
            do { try iommufd.destroy(veventq) } catch { note("IOMMU_DESTROY(veventq \(veventq)): \(error)") }
            veventqID = nil
        }
        if let viommu = viommuID {
            do { try iommufd.destroy(viommu) } catch { note("IOMMU_DESTROY(viommu \(viommu)): \(error)") }
            viommuID = nil
        }
        note("vSMMU: last device gone, vIOMMU freed")
    }

    /// `iommufd_cdev_detach` (see `unrealize`).
    func detachDevice(_ device: PassthroughDevice) {
        let file = device.deviceFile
        let rid = device.guestRequesterID
        do { try file.detachIOMMUFDPT() } catch { note("\(rid) VFIO_DEVICE_DETACH_IOMMUFD_PT: \(error)") }
        let others = devices.filter(\.isPlugged)
        if vsmmu != nil, !others.contains(where: { $0.stage2HWPTID == device.stage2HWPTID }) {
            do { try iommufd.destroy(device.stage2HWPTID) } catch { note("IOMMU_DESTROY(hwpt \(device.stage2HWPTID)): \(error)") }
        }
        if others.isEmpty {
            let M = configuration.layout
            do { _ = try iommufd.ioasUnmap(ioasID: ioasID, iova: M.ramBase, length: configuration.ramSize) } catch {
                note("IOMMU_IOAS_UNMAP: \(error)")
            }
            do { try iommufd.destroy(ioasID) } catch { note("IOMMU_DESTROY(ioas \(ioasID)): \(error)") }
            note("container destroyed (ioas \(ioasID))")
        }
        file.close()
    }

    /// QEMU `vfio_realize` of one function after boot, the same uAPI sequence as the cold-plug
    /// path in `init` for a single device: open the cdev and VFIO_DEVICE_BIND_IOMMUFD
    /// (`iommufd_cdev_connect_and_bind`); the plan's IOMMU_OPTION SW_MSI window before the
    /// attach; "try to attach to an existing container in this space" — another plugged
    /// device's nest parent, or the IOAS (auto domain) without a vIOMMU — else a new
    /// container: IOMMU_IOAS_ALLOC, the attach (a NEST_PARENT HWPT first with the accelerated
    /// vSMMU) and IOMMU_IOAS_MAP of guest RAM (the listener registers after the attach); the
    /// plan's IOMMUFD_CMD_IOAS_MAP_MSI; `smmuv3_accel_set_iommu_device` (a vIOMMU and vEVENTQ
    /// when none is left, as `smmuv3_accel_alloc_viommu`) and the vDEVICE (virt_id = guest
    /// RID); then the emulated function (`vfio_pci_config_setup`, `vfio_msix_early_setup`).
    /// The device is neither on the guest bus nor behind a vSTE yet: the caller plugs it.
    /// On failure everything this call allocated is freed again, newest first, and the cdev
    /// closed (QEMU's realize error path: `err_attach_container` →
    /// `iommufd_cdev_container_destroy`, the accel `free_viommu` of a vIOMMU it allocated).
    func realize(_ slot: FunctionSlot) throws(GuestError) -> PassthroughDevice {
        func call<T>(_ name: String, _ body: () throws(Errno) -> T) throws(GuestError) -> T {
            do { return try body() } catch { throw .hostCall(name, error) }
        }
        let host = self.host, process = self.process, iommufd = self.iommufd
        let M = configuration.layout
        let file = try call("open vfio cdev") { () throws(Errno) in try host.vfio.openDevice(slot.cdevName, process: process) }
        // Objects this call allocates: the vIOMMU side (freed before the cdev closes) and the
        // container side (freed after: the attached device holds its HWPT).
        var viommuSide: [UInt32] = []
        var containerSide: [UInt32] = []
        do {
            let devID = try call("VFIO_DEVICE_BIND_IOMMUFD") { () throws(Errno) in try file.bindIOMMUFD(iommufd) }
            if let window = configuration.msi.swMSIWindow {
                try call("IOMMU_OPTION(SW_MSI_START)") { () throws(Errno) in
                    try iommufd.setOption(.swMSIStart, objectID: devID, value: window.base)
                }
                try call("IOMMU_OPTION(SW_MSI_SIZE)") { () throws(Errno) in
                    try iommufd.setOption(.swMSISize, objectID: devID, value: max(window.size >> 20, 1))
                }
            }
            let live = devices.filter(\.isPlugged)
            let newContainer = live.isEmpty
            if newContainer {
                ioasID = try call("IOMMU_IOAS_ALLOC") { () throws(Errno) in try iommufd.ioasAlloc() }
                containerSide.append(ioasID)
            }
            let ioas = ioasID
            let hwpt: UInt32
            switch configuration.viommu {
            case .none:
                hwpt = try call("VFIO_DEVICE_ATTACH_IOMMUFD_PT") { () throws(Errno) in try file.attachIOMMUFDPT(ioas) }
            case .acceleratedSMMUv3:
                let parent: UInt32
                if let existing = live.first?.stage2HWPTID { parent = existing } else {
                    parent = try call("IOMMU_HWPT_ALLOC(NEST_PARENT)") { () throws(Errno) in
                        try iommufd.hwptAlloc(deviceID: devID, ptID: ioas, flags: .nestParent)
                    }
                    containerSide.append(parent)
                }
                _ = try call("VFIO_DEVICE_ATTACH_IOMMUFD_PT(parent)") { () throws(Errno) in try file.attachIOMMUFDPT(parent) }
                hwpt = parent
            }
            if newContainer {
                let ramVA = guestRAMUserVA, ram = configuration.ramSize
                _ = try call("IOMMU_IOAS_MAP") { () throws(Errno) in
                    try iommufd.ioasMap(ioasID: ioas, flags: [.fixedIOVA, .readable, .writeable], userVA: ramVA, length: ram, iova: M.ramBase)
                }
            }
            if configuration.msi.mapVITSDoorbell {
                let page = configuration.guestGIC.msiGPA(M) & ~(host.pageSize &- 1)
                try call("IOMMUFD_CMD_IOAS_MAP_MSI(\(Hex.format(page)))") { () throws(Errno) in
                    try iommufd.ioasMapMSI(ioasID: ioas, deviceID: devID, iova: page)
                }
            }
            var vdeviceID: UInt32?
            if vsmmu != nil {
                try Self.checkHostSMMU(iommufd, deviceID: devID, properties: configuration.vsmmu)
                let viommu: UInt32
                if let existing = viommuID { viommu = existing } else {
                    viommu = try call("IOMMU_VIOMMU_ALLOC") { () throws(Errno) in try iommufd.viommuAlloc(deviceID: devID, hwptID: hwpt) }
                    viommuID = viommu
                    viommuSide.append(viommu)
                    let veventq = try call("IOMMU_VEVENTQ_ALLOC") { () throws(Errno) in try iommufd.veventqAlloc(viommuID: viommu).id }
                    veventqID = veventq
                    viommuSide.append(veventq)
                }
                let vdevice = try call("IOMMU_VDEVICE_ALLOC") { () throws(Errno) in
                    try iommufd.vdeviceAlloc(viommuID: viommu, deviceID: devID, virtualID: UInt64(requesterIDSeen(guestRequesterID: slot.guestRequesterID).rawValue))
                }
                vdeviceID = vdevice
                viommuSide.append(vdevice)
            }
            let function = try call("vfio-pci config") { () throws(Errno) in
                try PassthroughFunction(file: file, guestRequesterID: slot.guestRequesterID)
            }
            let device = PassthroughDevice(hostDevice: slot.hostDevice, deviceFile: file, iommufdDeviceID: devID,
                                           stage2HWPTID: hwpt, function: function, gsiBase: slot.gsiBase)
            device.vdeviceID = vdeviceID
            installChangeHandlers(device)
            note("\(slot.guestRequesterID) realized: \(slot.hostDevice.name), iommufd device \(devID), hwpt \(hwpt)\(vdeviceID.map { ", vdevice \($0)" } ?? "")")
            return device
        } catch {
            for id in viommuSide.reversed() { try? iommufd.destroy(id) }
            if viommuSide.contains(where: { $0 == viommuID }) {
                viommuID = nil
                veventqID = nil
            }
            file.close()
            for id in containerSide.reversed() { try? iommufd.destroy(id) }
            note("\(slot.guestRequesterID) realize failed: \(error)")
            throw error
        }
    }

    /// The realize arguments of the function in slot `index` (its host device and cdev, its
    /// guest RID, its GSI range).
    func slot(of device: PassthroughDevice) -> FunctionSlot {
        FunctionSlot(hostDevice: device.hostDevice, cdevName: device.deviceFile.vdev.cdevName,
                     guestRequesterID: device.guestRequesterID, gsiBase: device.gsiBase)
    }
}
