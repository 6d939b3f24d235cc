import Bus
import LinuxKernel

// MARK: Save/restore (migration to the same host)

/// The guest-visible state of one vfio-pci function that QEMU's device state carries
/// (`vfio_pci_save_config` → `vmstate_vfio_pci_config`: the PCI config space — BARs and
/// Command included — the MSI state, and the MSI-X table and PBA with Enable / Function Mask,
/// `vmstate_msix`).
struct SavedFunctionState {
    var bars: [PassthroughFunction.BAR]
    var command: UInt16
    var msi: VirtualMSICapability?
    var msixEnabled: Bool
    var msixFunctionMasked: Bool
    var entries: [VirtualMSIXEntry]
    var pendingBits: [Bool]

    init(_ f: PassthroughFunction) {
        bars = f.bars
        command = f.command
        msi = f.msi
        msixEnabled = f.msixEnabled
        msixFunctionMasked = f.msixFunctionMasked
        entries = f.entries
        pendingBits = f.pendingBits
    }
}

extension VirtualMachineMonitor {
    /// Why upstream QEMU would refuse to migrate this VM, in the order `vfio_migration_realize`
    /// checks (hw/vfio/migration.c, read for this), one line per plugged function:
    /// VFIO_DEVICE_FEATURE(GET | MIGRATION) is ENOTTY for plain vfio-pci (no `mig_ops`; only
    /// variant drivers migrate), "VFIO migration is not supported in kernel"; and were it
    /// supported, `vfio_viommu_preset` — the accelerated vSMMU gives VFIO its own
    /// `shared_as_sysmem` address space, not `address_space_memory` — adds "Migration is
    /// currently not supported with vIOMMU enabled" (read, not run). QEMU registers the first
    /// as a migration blocker; `saveAndRestore` models what a destination would rebuild if
    /// neither applied.
    public var migrationBlockers: [String] {
        var reasons: [String] = []
        for device in devices where device.isPlugged {
            reasons.append("\(device.hostDevice.name): VFIO migration is not supported in kernel")
            if vsmmu != nil { reasons.append("\(device.hostDevice.name): Migration is currently not supported with vIOMMU enabled") }
        }
        return reasons
    }

    /// A save and restore of the VM on the same host (`migrate` to a file or to a second QEMU
    /// on this host). The guest kernel, guest RAM, the KVM VM with its vGIC/vITS state (KVM
    /// saves the ITS tables into guest RAM and restores them: KVM_DEV_ARM_ITS_SAVE_TABLES /
    /// RESTORE_TABLES, so keeping the VM is the same) and the vSMMU's registers stay as they
    /// are; the guest is not told. What a destination QEMU cannot inherit is rebuilt:
    ///
    /// Source side, every plugged function `unrealize`d (no guest involvement): SET_IRQS
    /// disable, irqfds and KVM routes gone, nested HWPT and vDEVICE freed, vIOMMU, nest
    /// parent and IOAS freed with the last one, cdevs closed.
    ///
    /// Destination side, in configuration order: each function `realize`d (cdev, bind,
    /// container and nest parent, IOAS_MAP of RAM, IOAS_MAP_MSI and SW_MSI options as the plan
    /// says, vIOMMU/vEVENTQ, vDEVICE), then the loaded state in the order QEMU loads it on
    /// Arm: the vSMMU's state first (`vmstate_smmuv3` has MIG_PRI_IOMMU, so it precedes
    /// ordinary devices) — its accel re-install of every device's vSTE from the guest's
    /// stream table as a nested HWPT (what `smmuv3_accel_install_ste` does for a CFGI_STE;
    /// upstream has no accel post_load, VFIO migration being blocked with a vIOMMU) — then each
    /// function's config, which QEMU ≥ 10.1 loads after the iterables on aarch64
    /// (`x-migration-load-config-after-iter`, so that the interrupt controller is restored
    /// first): `loadConfig`.
    ///
    /// A failure part-way throws, leaving the functions realized so far, as a failed incoming
    /// migration leaves a destination that is then discarded.
    public func saveAndRestore() throws(GuestError) {
        let plugged = devices.indices.filter { devices[$0].isPlugged }
        let saved = plugged.map { (index: $0, slot: slot(of: devices[$0]), state: SavedFunctionState(devices[$0].function)) }
        note("migration: saving \(saved.count) vfio-pci function(s)")
        for index in plugged.reversed() { unrealize(devices[index]) }
        var restored: [(device: PassthroughDevice, state: SavedFunctionState)] = []
        for entry in saved {
            let device = try realize(entry.slot)
            devices[entry.index] = device
            bridge.plug(device.function)
            restored.append((device, entry.state))
        }
        for entry in restored { installGuestSTE(entry.device) }
        for entry in restored { loadConfig(entry.device, entry.state) }
        note("migration: restored \(restored.count) vfio-pci function(s)")
    }

    /// QEMU `vfio_pci_load_config`: `vmstate_load_state(vmstate_vfio_pci_config)` puts the
    /// emulated registers back as saved (BARs, MSI capability, MSI-X table, PBA, Enable and
    /// Function Mask) without the write side effects a guest access would have; the Command
    /// register goes through VFIO as a guest write does — it stands for the device's own state
    /// transfer (VFIO_DEVICE_STATE_RESUMING restores the function, Bus Master included, after
    /// the reopen's `vfio_pci_core_disable` cleared it). Then, as its tail:
    /// MSI on → `vfio_msi_enable`; MSI-X on → `vfio_msix_enable` (`msixEnableOnLoad`).
    func loadConfig(_ device: PassthroughDevice, _ state: SavedFunctionState) {
        let f = device.function
        f.bars = state.bars
        f.msi = state.msi
        f.entries = state.entries
        f.pendingBits = state.pendingBits
        f.msixEnabled = state.msixEnabled
        f.msixFunctionMasked = state.msixFunctionMasked
        f.writeConfig(0x04, size: 2, value: UInt32(state.command))
        if f.msiEnabled {
            msiEnable(device)
        } else if f.msixEnabled {
            msixEnableOnLoad(device)
        }
    }

    /// QEMU `vfio_msix_enable` with its KVM batch (hw/vfio/pci.c: `vfio_pci_prepare_kvm_msi_virq_batch`,
    /// `msix_set_vector_notifiers`, `vfio_pci_commit_kvm_msi_virq_batch`, `vfio_enable_vectors`):
    /// `msix_set_vector_notifiers` calls `vfio_msix_vector_use` only for vectors that are not
    /// masked (`msix_set_notifier_for_vector`; the Function Mask masks all), each getting its
    /// eventfds and a KVM route (msi-gpa with the accelerated vSMMU) in the batch; the batch
    /// commits the routes once and connects every irqfd; then one VFIO_DEVICE_SET_IRQS for
    /// vectors 0…n−1 (n = highest used + 1, −1 for the ones between that are not used), or —
    /// none used — `vfio_enable_msix_no_vec`. A vector masked at save time gets nothing until
    /// the guest unmasks it (then `msixChanged` sets it up, as `vfio_msix_vector_use` would).
    /// A vector with address 0 is skipped, as `msixChanged` skips it.
    ///
    /// The plan: with `prepareGuestIOVAs` the guest IOVAs are PREPAREd again before the
    /// SET_IRQS that allocates the vectors (the reopened device's `msi_iovas` is empty), and the
    /// no-vector enable is not done (`MSIPlan.prepareGuestIOVAs`).
    func msixEnableOnLoad(_ device: PassthroughDevice) {
        let f = device.function
        let file = device.deviceFile
        let rid = device.guestRequesterID
        var used: [Int] = []
        for (index, entry) in f.entries.enumerated() where !f.isMasked(index) && entry.address != 0 {
            let route = KVMMSIRoute(gsi: device.gsiBase &+ UInt32(index), address: routeDoorbell(entry.address), data: entry.data,
                                    devid: UInt32(requesterIDSeen(guestRequesterID: rid).rawValue))
            device.vectors[index] = makeVector(device, index: index, route: route, kind: "msix")
            used.append(index)
        }
        let prepare = configuration.msi.prepareGuestIOVAs
        guard let last = used.last else {
            if !prepare {
                do { try file.setIRQs(.trigger(start: 0, eventfds: [-1])) } catch { note("\(rid) vfio_enable_msix_no_vec: \(error)") }
            }
            note("\(rid) vfio_msix_enable (load): no vector")
            return
        }
        commitRoutes()
        for index in used {
            guard let v = device.vectors[index] else { continue }
            do { try vm.irqfd(eventfd: v.fd, gsi: v.gsi) } catch { note("\(rid) vector \(index) irqfd: \(error)") }
        }
        if prepare { prepareIOVAs(device) }
        let fds = (0...last).map { device.vectors[$0]?.fd ?? -1 }
        do {
            try file.setIRQs(.trigger(start: 0, eventfds: fds))
            note("\(rid) vfio_msix_enable (load): vectors \(used) on one SET_IRQS")
        } catch {
            note("\(rid) vfio: failed to enable vectors, \(error)")
        }
    }
}
