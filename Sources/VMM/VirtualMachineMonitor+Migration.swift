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

/// What travels from the outgoing VMM to the incoming one besides guest RAM: the migration
/// stream's device state — each plugged function's config (`vmstate_vfio_pci_config`) and the
/// vGIC/vITS registers (`vmstate_gicv3`, `vmstate_its`).
public struct MigrationImage {
    struct Function {
        var index: Int
        var slot: FunctionSlot
        var state: SavedFunctionState
    }
    var functions: [Function]
    public var interruptController: KVMVGICState
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
    /// on this host). The guest kernel and guest RAM stay as they are and the guest is not told;
    /// the vSMMU's registers stay too. What a destination QEMU cannot inherit is rebuilt.
    ///
    /// Source side, when the VM stops: the interrupt controller flushes its state into guest RAM
    /// — KVM_DEV_ARM_ITS_SAVE_TABLES (hw/intc/arm_gicv3_its_kvm.c `vm_change_state_handler`) and
    /// KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES (hw/intc/arm_gicv3_kvm.c `vm_change_state_handler`);
    /// QEMU only reports a failure of either (`error_report_err`), so does this — then its
    /// registers are read (`kvm_arm_gicv3_get`, `kvm_arm_its_pre_save`). Every plugged function
    /// is `unrealize`d (no guest involvement): SET_IRQS disable, irqfds and KVM routes gone,
    /// nested HWPT and vDEVICE freed, vIOMMU, nest parent and IOAS freed with the last one,
    /// cdevs closed. The source VM's vGIC goes with it (`KVMVirtualMachine.destroyVGIC`).
    ///
    /// Destination side: the machine's vGIC is created (KVM_CREATE_DEVICE vgic-v3 and its — or
    /// vgic-v2 and QEMU's v2m frame for a GICv2m guest, whose GICD_ITARGETSR and GICC_CTLR travel
    /// in the saved state — at
    /// the same addresses); guest RAM arrives (on one host, the same bytes: the model keeps the
    /// pages); each function is `realize`d in configuration order (cdev, bind, container and
    /// nest parent, IOAS_MAP of RAM, IOAS_MAP_MSI and SW_MSI options as the plan says,
    /// vIOMMU/vEVENTQ, vDEVICE). Then the loaded state in the order QEMU loads it on Arm, by
    /// migration priority: the GICv3 (MIG_PRI_GICV3: `kvm_arm_gicv3_put`, redistributors with
    /// PROPBASER/PENDBASER before EnableLPIs), the ITS (MIG_PRI_GICV3_ITS:
    /// `kvm_arm_its_post_load` — GITS_IIDR, CBASER, CREADR, CWRITER, BASER<n>,
    /// KVM_DEV_ARM_ITS_RESTORE_TABLES from the tables in guest RAM, GITS_CTLR last; QEMU uses
    /// `&error_abort`, so a failure here throws), the vSMMU (MIG_PRI_IOMMU: its accel
    /// re-install of every device's vSTE from the guest's stream table as a nested HWPT — what
    /// `smmuv3_accel_install_ste` does for a CFGI_STE; upstream has no accel post_load, VFIO
    /// migration being blocked with a vIOMMU), then each function's config, which QEMU ≥ 10.1
    /// loads after the iterables on aarch64 (`x-migration-load-config-after-iter`, so that the
    /// interrupt controller is restored first): `loadConfig`.
    ///
    /// A failure part-way throws, leaving the functions realized so far, as a failed incoming
    /// migration leaves a destination that is then discarded.
    public func saveAndRestore() throws(GuestError) {
        try restoreFromMigration(try saveForMigration())
    }

    /// The outgoing half of `saveAndRestore`: VM stop flushes, register state, the functions'
    /// state, the source's teardown. Guest RAM (with the flushed ITS tables and pending bits)
    /// stays where it is until `restoreFromMigration`.
    public func saveForMigration() throws(GuestError) -> MigrationImage {
        let plugged = devices.indices.filter { devices[$0].isPlugged }
        let saved = plugged.map { MigrationImage.Function(index: $0, slot: slot(of: devices[$0]), state: SavedFunctionState(devices[$0].function)) }
        let gicState = try saveInterruptController()
        note("migration: saving \(saved.count) vfio-pci function(s)")
        for index in plugged.reversed() { unrealize(devices[index]) }
        vm.destroyVGIC()
        return MigrationImage(functions: saved, interruptController: gicState)
    }

    /// The incoming half of `saveAndRestore`.
    public func restoreFromMigration(_ image: MigrationImage) throws(GuestError) {
        try Self.createGuestGIC(vm, configuration)
        var restored: [(device: PassthroughDevice, state: SavedFunctionState)] = []
        for entry in image.functions {
            let device = try realize(entry.slot)
            devices[entry.index] = device
            bridge.plug(device.function)
            restored.append((device, entry.state))
        }
        try restoreInterruptController(image.interruptController)
        for entry in restored { installGuestSTE(entry.device) }
        for entry in restored { loadConfig(entry.device, entry.state) }
        note("migration: restored \(restored.count) vfio-pci function(s)")
    }

    /// Source: the VM-stop flushes into guest RAM, then the register state.
    func saveInterruptController() throws(GuestError) -> KVMVGICState {
        guard let vgic = vm.vgic else { throw .hostState("KVM_DEV_ARM_VGIC_GRP_CTRL", "no vGIC") }
        if vgic.its != nil {
            do {
                try vgic.saveITSTables()
                note("migration: KVM_DEV_ARM_ITS_SAVE_TABLES: \(vgic.itsLists?.devices.count ?? 0) device(s), \(vgic.itsLists?.collections.count ?? 0) collection(s) in guest RAM")
            } catch {
                note("migration: KVM_DEV_ARM_ITS_SAVE_TABLES failed: \(error)")
            }
        }
        do {
            try vgic.savePendingTables()
        } catch {
            note("migration: KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES failed: \(error)")
        }
        return vgic.saveState()
    }

    /// Destination: `kvm_arm_gicv3_put`, then `kvm_arm_its_post_load`.
    func restoreInterruptController(_ state: KVMVGICState) throws(GuestError) {
        guard let vgic = vm.vgic else { throw .hostState("KVM_DEV_ARM_VGIC_GRP_CTRL", "no vGIC") }
        vgic.restoreGICv3(state)
        guard let registers = state.its else { return }
        do {
            try vgic.restoreITS(registers)
        } catch {
            throw .hostCall("KVM_DEV_ARM_ITS_RESTORE_TABLES", error)
        }
        note("migration: vITS restored from guest RAM: \(vgic.itsLists?.devices.count ?? 0) device(s), \(vgic.itsLists?.collections.count ?? 0) collection(s)")
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
        device.msixNeedsFullScan = true
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
            let route = KVMMSIRoute(gsi: vectorGSI(device, index: index, data: entry.data), address: routeDoorbell(entry.address), data: entry.data,
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
        commitRoutes(device, used)
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
