/// One step of a scenario's event script. Devices are indexes into the scenario's device list;
/// vectors are MSI-X/MSI vector numbers of that device. Each event runs the kernel or VMM code
/// path its doc comment names; nothing here decides whether an MSI survives it.
public enum ScenarioEvent: Hashable, Sendable {
    /// The device signals a vector (the observation step).
    case fire(device: Int, vector: Int)
    /// The guest masks / unmasks a vector (`pci_msix_mask` / `pci_msix_unmask` through its
    /// irqchip's mask callbacks; QEMU traps the vMSI-X Vector Control write).
    case guestMask(device: Int, vector: Int)
    case guestUnmask(device: Int, vector: Int)
    /// The guest recomposes and rewrites the vector's vMSI-X entry (`irq_domain_deactivate_irq`
    /// + `irq_domain_activate_irq` → `msi_domain_activate` → `pci_msi_domain_write_msg`).
    case guestRewrite(device: Int, vector: Int)
    /// The guest moves the vector to another vCPU (`irq_set_affinity` → `its_set_affinity`: a
    /// vITS MOVI).
    case guestAffinity(device: Int, vector: Int, cpu: Int)
    /// The host moves the physical IRQ (`/proc/irq/N/smp_affinity` → `irq_set_affinity` →
    /// `msi_domain_set_affinity` → `its_set_affinity`).
    case hostAffinity(device: Int, vector: Int, cpu: Int)
    /// The guest turns MSI-X off and on again; QEMU answers with `vfio_msix_disable` and
    /// `vfio_msix_enable` (VFIO_DEVICE_SET_IRQS disable, then enable and one trigger per vector).
    case msixReenable(device: Int)
    /// The guest allocates one more vector at run time (`pci_msix_alloc_irq_at`); QEMU adds it
    /// with SET_IRQS for that vector (VFIO's dynamic MSI-X, `vfio_msi_alloc_irq`).
    case addVector(device: Int)
    /// VFIO_DEVICE_RESET → `pci_try_reset_function`: FLR with `pci_save_state` /
    /// `pci_restore_state` (MSI-X restored from the cached messages, `pci_restore_msi_state`).
    case functionLevelReset(device: Int)
    /// Host PM suspend and resume of the function (`pci_pm_suspend` / `pci_pm_resume`: D3hot,
    /// then D0 and `pci_restore_state`).
    case suspendResume(device: Int)
    /// The host IRQ is deactivated and re-activated (`irq_domain_deactivate_irq` /
    /// `irq_domain_activate_irq`): the irqchip recomposes the message and writes it.
    case hostReactivate(device: Int, vector: Int)
    /// The guest changes the device's domain (`iommu_group` type through sysfs, or detach).
    case guestDomain(device: Int, domain: GuestDomainChange)
    /// QEMU `device_del` and `device_add` of the passthrough function.
    case hotUnplug(device: Int)
    case hotPlug(device: Int)
    /// The VM is saved and restored (QEMU migration to the same host: the vGIC's ITS tables and
    /// LPI pending bits travel in guest RAM and a new vGIC is restored from them; the
    /// destination VMM rebuilds VFIO and KVM state from the saved vMSI-X and vSMMU state).
    case saveRestore
    /// Adversarial: the device writes the doorbell it was programmed with, carrying an EventID
    /// it was not given.
    case forgedEventID(device: Int, eventID: UInt32)
    /// Adversarial: the guest maps a stage-1 IOVA to an IPA outside its RAM and the device
    /// writes there.
    case guestMapOutsideRAM(device: Int, ipa: UInt64)
    /// Adversarial: the guest rewrites the device's STE (or CD) with garbage mid-flight and
    /// invalidates it.
    case guestCorruptSTE(device: Int)
    /// GICv4.1 hosts: vCPU `vcpu`'s thread moves to host CPU `cpu` (`vgic_v4_put`, then
    /// `vgic_v4_load` there: `its_vpe_set_affinity`, VMOVP unless the redistributors share a
    /// vPE table, and the vPE resident on `cpu`'s redistributor).
    case vpeMigrate(vcpu: Int, cpu: Int)
    /// GICv4.1 hosts: vCPU `vcpu` blocks in WFI (`vgic_v4_put(vcpu, need_db)`): its vPE is made
    /// non-resident with a doorbell requested.
    case vcpuNonResident(vcpu: Int)
    /// GICv4.1 hosts: vCPU `vcpu` runs again on the CPU its vPE is mapped to (`vgic_v4_load`);
    /// what its VPT held is taken by the guest.
    case vcpuResident(vcpu: Int)

    /// The event's kind: its name in scenario files and tables.
    public var kind: EventKind {
        switch self {
        case .fire: .fire
        case .guestMask: .guestMask
        case .guestUnmask: .guestUnmask
        case .guestRewrite: .guestRewrite
        case .guestAffinity: .guestAffinity
        case .hostAffinity: .hostAffinity
        case .msixReenable: .msixReenable
        case .addVector: .addVector
        case .functionLevelReset: .functionLevelReset
        case .suspendResume: .suspendResume
        case .hostReactivate: .hostReactivate
        case .guestDomain: .guestDomain
        case .hotUnplug: .hotUnplug
        case .hotPlug: .hotPlug
        case .saveRestore: .saveRestore
        case .forgedEventID: .forgedEventID
        case .guestMapOutsideRAM: .guestMapOutsideRAM
        case .guestCorruptSTE: .guestCorruptSTE
        case .vpeMigrate: .vpeMigrate
        case .vcpuNonResident: .vcpuNonResident
        case .vcpuResident: .vcpuResident
        }
    }

    /// The device the event acts on, if any.
    public var device: Int? {
        switch self {
        case .fire(let d, _), .guestMask(let d, _), .guestUnmask(let d, _), .guestRewrite(let d, _),
             .guestAffinity(let d, _, _), .hostAffinity(let d, _, _), .msixReenable(let d), .addVector(let d),
             .functionLevelReset(let d), .suspendResume(let d), .hostReactivate(let d, _), .guestDomain(let d, _),
             .hotUnplug(let d), .hotPlug(let d), .forgedEventID(let d, _), .guestMapOutsideRAM(let d, _),
             .guestCorruptSTE(let d):
            d
        case .saveRestore, .vpeMigrate, .vcpuNonResident, .vcpuResident:
            nil
        }
    }
}

/// A guest domain change.
public enum GuestDomainChange: String, Hashable, Sendable, CaseIterable {
    case identity
    case dma
    /// The guest unbinds the driver and the group goes to its blocking domain.
    case detach
}

/// The names of the events, as written in scenario files.
public enum EventKind: String, Hashable, Sendable, CaseIterable {
    case fire
    case guestMask = "guest-mask"
    case guestUnmask = "guest-unmask"
    case guestRewrite = "guest-rewrite"
    case guestAffinity = "guest-affinity"
    case hostAffinity = "host-affinity"
    case msixReenable = "msix-reenable"
    case addVector = "add-vector"
    case functionLevelReset = "flr"
    case suspendResume = "suspend-resume"
    case hostReactivate = "host-reactivate"
    case guestDomain = "guest-domain"
    case hotUnplug = "hot-unplug"
    case hotPlug = "hot-plug"
    case saveRestore = "save-restore"
    case forgedEventID = "forged-event-id"
    case guestMapOutsideRAM = "guest-map-outside-ram"
    case guestCorruptSTE = "guest-corrupt-ste"
    case vpeMigrate = "vpe-migrate"
    case vcpuNonResident = "vcpu-non-resident"
    case vcpuResident = "vcpu-resident"

    /// The fields an event of this kind takes in a scenario file, besides `event`.
    public var fields: [String] {
        switch self {
        case .fire, .guestMask, .guestUnmask, .guestRewrite, .hostReactivate: ["device", "vector"]
        case .guestAffinity, .hostAffinity: ["device", "vector", "cpu"]
        case .msixReenable, .addVector, .functionLevelReset, .suspendResume, .hotUnplug, .hotPlug, .guestCorruptSTE: ["device"]
        case .guestDomain: ["device", "domain"]
        case .saveRestore: []
        case .forgedEventID: ["device", "event-id"]
        case .guestMapOutsideRAM: ["device", "ipa"]
        case .vpeMigrate: ["vcpu", "cpu"]
        case .vcpuNonResident, .vcpuResident: ["vcpu"]
        }
    }
}
