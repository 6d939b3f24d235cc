import Bus
import LinuxKernel

// MARK: vfio-pci MSI

extension VirtualMachineMonitor {
    /// QEMU `vfio_pci_write_config`, MSI branch: Enable 0 → 1 is `vfio_msi_enable`, 1 → 0
    /// `vfio_msi_disable`, any other write with Enable set `vfio_update_msi`.
    func msiChanged(_ device: PassthroughDevice) {
        let enabled = device.function.msiEnabled
        let wasEnabled = device.msiEnabledVectors > 0
        if !wasEnabled, enabled {
            msiEnable(device)
        } else if wasEnabled, !enabled {
            msiDisable(device)
        } else if wasEnabled {
            updateMSI(device)
        }
    }

    /// QEMU `vfio_msi_enable`: all vectors at once — `nr_vectors = msi_nr_vectors_allocated`
    /// (2^MME); per vector an eventfd and a KVM route from `msi_get_message` (doorbell as for
    /// MSI-X: the guest's address, or `msi-gpa` with the accelerated vSMMU) with its irqfd
    /// (`vfio_add_kvm_msi_virq`), the routes committed once, then one VFIO_DEVICE_SET_IRQS on
    /// VFIO_PCI_MSI_IRQ_INDEX with every eventfd (`vfio_enable_vectors(vdev, false)`). A positive
    /// answer is the count the host could give: everything is torn down and retried with that
    /// many ("Failed to enable %d MSI vectors, retry with %d"); an error leaves MSI off ("Failed
    /// to enable MSI"). MSI-X is never on at the same time (the guest's PCI core enables one or
    /// the other), so `vfio_disable_interrupts` has nothing to do here.
    func msiEnable(_ device: PassthroughDevice) {
        guard let msi = device.function.msi else { return }
        var count = msi.allocatedVectors
        while count > 0 {
            var fds: [Int32] = []
            for index in 0..<count {
                let message = msi.message(vector: index)
                let route = KVMMSIRoute(gsi: vectorGSI(device, index: index, data: message.data), address: routeDoorbell(message.address),
                                        data: message.data, devid: UInt32(requesterIDSeen(guestRequesterID: device.guestRequesterID).rawValue))
                let vector = makeVector(device, index: index, route: route, kind: "msi")
                device.vectors[index] = vector
                fds.append(vector.fd)
            }
            commitRoutes(device, 0..<count)
            for index in 0..<count {
                guard let v = device.vectors[index] else { continue }
                do { try vm.irqfd(eventfd: v.fd, gsi: v.gsi) } catch { note("\(device.guestRequesterID) MSI vector \(index) irqfd: \(error)") }
            }
            if configuration.msi.prepareGuestIOVAs {
                let iovas = (0..<count).map { msi.message(vector: $0).address }
                do { _ = try device.deviceFile.setIRQs(.prepare(index: VFIOIRQSet.msiIndex, start: 0, iovas: iovas)) } catch {
                    note("\(device.guestRequesterID) VFIO_IRQ_SET_ACTION_PREPARE(MSI): \(error)")
                }
            }
            let result: Int
            do {
                result = try device.deviceFile.setIRQs(.trigger(index: VFIOIRQSet.msiIndex, start: 0, eventfds: fds))
            } catch {
                note("\(device.guestRequesterID) vfio: Error: Failed to enable MSI: \(error)")
                releaseVectors(device)
                return
            }
            if result > 0, result < count {
                note("\(device.guestRequesterID) vfio: Error: Failed to enable \(count) MSI vectors, retry with \(result)")
                releaseVectors(device)
                count = result
                continue
            }
            device.msiEnabledVectors = count
            for index in 0..<count {
                if let v = device.vectors[index] { note("\(device.guestRequesterID) MSI vector \(index): gsi \(v.gsi) → \(v.route)") }
            }
            return
        }
    }

    /// QEMU `vfio_msi_disable`: VFIO's MSI index off (`vfio_disable_irqindex`), then every
    /// vector's irqfd, route and eventfds gone (`vfio_msi_disable_common`).
    func msiDisable(_ device: PassthroughDevice) {
        do { _ = try device.deviceFile.setIRQs(.disable(index: VFIOIRQSet.msiIndex)) } catch {
            note("\(device.guestRequesterID) VFIO_DEVICE_SET_IRQS(MSI off): \(error)")
        }
        releaseVectors(device)
        device.msiEnabledVectors = 0
        note("\(device.guestRequesterID) vfio_msi_disable")
    }

    /// QEMU `vfio_update_msi`: each vector's route recomputed from the current address and data
    /// (`vfio_update_kvm_msi_virq`); the vector count stays what enable set up, so a new Multiple
    /// Message Enable takes effect only at the next enable.
    func updateMSI(_ device: PassthroughDevice) {
        guard let msi = device.function.msi else { return }
        var changed: [Int] = []
        for index in device.vectors.keys.sorted() {
            guard var v = device.vectors[index] else { continue }
            let message = msi.message(vector: index)
            let route = KVMMSIRoute(gsi: v.gsi, address: routeDoorbell(message.address), data: message.data,
                                    devid: UInt32(requesterIDSeen(guestRequesterID: device.guestRequesterID).rawValue))
            if route != v.route {
                v.route = route
                device.vectors[index] = v
                changed.append(index)
            }
        }
        if !changed.isEmpty { commitRoutes(device, changed) }
    }
}
