import Bus
import LinuxKernel

// MARK: vfio-pci MSI-X

extension VirtualMachineMonitor {
    /// Re-evaluates `device`'s vMSI-X state after a trapped write (QEMU `vfio_msix_enable`,
    /// `vfio_msix_vector_do_use`, `vfio_update_kvm_msi_virq`): on MSI-X enable, SET_IRQS with one
    /// vector and no eventfd (`vfio_enable_msix_no_vec`); per unmasked vector with an address an
    /// eventfd, a KVM MSI route at `gsiBase + vector`, KVM_IRQFD and SET_IRQS for that vector
    /// (`vfio_msix_vector_use`); on disable everything torn down (`vfio_msix_disable`).
    func msixChanged(_ device: PassthroughDevice) {
        let f = device.function
        let file = device.deviceFile
        let prepare = configuration.msi.prepareGuestIOVAs
        if f.msixEnabled && file.vdev.irqType != VFIOIRQSet.msixIndex && !prepare {
            do {
                try file.setIRQs(.trigger(start: 0, eventfds: [-1]))
                note("\(device.guestRequesterID) vfio_msix_enable: MSI-X on, no vector yet")
            } catch { note("\(device.guestRequesterID) VFIO_DEVICE_SET_IRQS(enable): \(error)") }
        } else if !f.msixEnabled && file.vdev.irqType == VFIOIRQSet.msixIndex {
            releaseVectors(device)
            _ = try? file.setIRQs(.disable())
            note("\(device.guestRequesterID) vfio_msix_disable")
            return
        }
        guard f.msixEnabled else { return }
        // A table write changes one entry: when every other vector already matches its entry
        // (`msixNeedsFullScan` false), only that one is re-evaluated — O(1) per write instead
        // of a rescan of the whole table, with the same calls and the same result.
        let scanned: [Int]
        let fullScan: Bool
        if let entry = f.changedEntry, !device.msixNeedsFullScan {
            scanned = entry < f.entries.count ? [entry] : []
            fullScan = false
        } else {
            scanned = Array(f.entries.indices)
            fullScan = true
        }
        var changedRoutes: [Int] = []
        var newVectors: [Int] = []
        for index in scanned {
            let entry = f.entries[index]
            let gsi = device.vectors[index]?.gsi ?? vectorGSI(device, index: index, data: entry.data)
            let route = KVMMSIRoute(gsi: gsi, address: routeDoorbell(entry.address), data: entry.data,
                                    devid: UInt32(requesterIDSeen(guestRequesterID: device.guestRequesterID).rawValue))
            if var existing = device.vectors[index] {
                if existing.route != route, entry.address != 0 { existing.route = route; changedRoutes.append(index) }
                device.vectors[index] = existing
            } else if !f.isMasked(index), entry.address != 0 {
                device.vectors[index] = makeVector(device, index: index, route: route, kind: "msix")
                changedRoutes.append(index)
                newVectors.append(index)
            }
        }
        if !changedRoutes.isEmpty { commitRoutes(device, changedRoutes) }
        if prepare, !changedRoutes.isEmpty { prepareIOVAs(device) }
        for index in newVectors {
            guard let v = device.vectors[index] else { continue }
            do {
                try vm.irqfd(eventfd: v.fd, gsi: v.gsi)
                try file.setIRQs(.trigger(start: UInt32(index), eventfds: [v.fd]))
                note("\(device.guestRequesterID) vector \(index): gsi \(v.gsi) → \(v.route)")
            } catch { note("\(device.guestRequesterID) vector \(index): \(error)") }
        }
        // Mask/unmask (QEMU `vfio_msix_vector_release` / `_use`): a masked vector's trigger is
        // switched to the VMM's own eventfd, whose handler (`vfio_msi_interrupt`) sets the
        // Pending bit instead of injecting; unmasking switches back to the irqfd and delivers a
        // pending interrupt (`msix_handle_mask_update` → `msix_notify`).
        var maskSwitchFailed = false
        for index in fullScan ? device.vectors.keys.sorted() : scanned {
            guard var v = device.vectors[index], !newVectors.contains(index) else { continue }
            let masked = f.isMasked(index)
            guard masked != v.maskedByGuest else { continue }
            do {
                try file.setIRQs(.trigger(start: UInt32(index), eventfds: [masked ? v.userspaceFD : v.fd]))
                v.maskedByGuest = masked
                device.vectors[index] = v
            } catch {
                maskSwitchFailed = true
                note("\(device.guestRequesterID) vector \(index) \(masked ? "mask" : "unmask"): \(error)")
            }
            if !masked, index < f.pendingBits.count, f.pendingBits[index] {
                f.pendingBits[index] = false
                deliverFromUserspace(v)
            }
        }
        // A failed mask switch is retried by the next change, whichever entry it writes.
        if maskSwitchFailed { device.msixNeedsFullScan = true } else if fullScan { device.msixNeedsFullScan = false }
    }

    /// VFIO_IRQ_SET_ACTION_PREPARE | DATA_MSI_IOVA with every vMSI-X entry's address (0 for an
    /// entry the guest has not programmed: "no IOVA"), before the SET_IRQS that uses them.
    func prepareIOVAs(_ device: PassthroughDevice) {
        let iovas = device.function.entries.map(\.address)
        guard !iovas.isEmpty else { return }
        do {
            _ = try device.deviceFile.setIRQs(.prepare(start: 0, iovas: iovas))
            note("\(device.guestRequesterID) VFIO_IRQ_SET_ACTION_PREPARE: \(iovas.count) IOVAs")
        } catch { note("\(device.guestRequesterID) VFIO_IRQ_SET_ACTION_PREPARE: \(error)") }
    }

    /// A vector's two eventfds: the one KVM's irqfd listens on and the VMM's own, whose handler
    /// is QEMU's `vfio_msi_interrupt`.
    func makeVector(_ device: PassthroughDevice, index: Int, route: KVMMSIRoute, kind: String) -> Vector {
        let (fd, _) = process.eventfd(name: "vfio-\(kind)[\(index)] \(device.guestRequesterID) kvm")
        let (userFD, user) = process.eventfd(name: "vfio-\(kind)[\(index)] \(device.guestRequesterID) qemu")
        installUserspaceHandler(on: user, device, index: index)
        return Vector(gsi: route.gsi, fd: fd, userspaceFD: userFD, route: route)
    }

    /// QEMU's read handler on the VMM's own eventfd of vector `index` (`vfio_msi_interrupt`).
    func installUserspaceHandler(on eventfd: EventFD, _ device: PassthroughDevice, index: Int) {
        eventfd.onSignal = { [weak self, weak device] eventfd in
            _ = eventfd.read()
            if let device { self?.userspaceInterrupt(device, index) }
        }
    }

    /// Every vector of `device` torn down: irqfds deassigned, eventfds closed, its routes gone
    /// from KVM's table.
    func releaseVectors(_ device: PassthroughDevice) {
        let released = device.vectors.keys.sorted()
        for index in released {
            guard let v = device.vectors[index] else { continue }
            if let e = try? process.eventfdContext(v.fd) { try? vm.irqfd(eventfd: e, gsi: v.gsi, deassign: true) }
            try? process.close(v.fd)
            try? process.close(v.userspaceFD)
        }
        device.vectors = [:]
        device.msixNeedsFullScan = true
        commitRoutes(device, released)
    }

    /// QEMU `vfio_msi_interrupt`: the VFIO trigger fired on the VMM's eventfd (the vector is
    /// masked by the guest, or was when the trigger was switched): set the Pending bit while
    /// masked, else deliver through KVM_SIGNAL_MSI.
    func userspaceInterrupt(_ device: PassthroughDevice, _ index: Int) {
        guard let v = device.vectors[index] else { return }
        let f = device.function
        if f.msixEnabled {
            if f.isMasked(index) {
                if index < f.pendingBits.count {
                    f.pendingBits[index] = true
                    if let journal, let d = devices.firstIndex(where: { $0 === device }) {
                        journal.append(.pendingBitSet(device: d, vector: index))
                    }
                }
                return
            }
        } else if f.msiEnabled, f.isMSIMasked(index) {
            f.setMSIPending(index, true)
            return
        }
        deliverFromUserspace(v)
    }
}

extension KVMMSIRoute {
    /// A route to a 64-bit doorbell address.
    init(gsi: UInt32, address: UInt64, data: UInt32, devid: UInt32) {
        self.init(gsi: gsi, addressLo: UInt32(truncatingIfNeeded: address), addressHi: UInt32(truncatingIfNeeded: address >> 32),
                  data: data, devid: devid)
    }
}
