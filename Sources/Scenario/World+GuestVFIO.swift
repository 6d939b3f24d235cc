import Bus
import LinuxKernel
import PCI

/// A guest user process that owns a passthrough function through the guest's own VFIO (DPDK,
/// or a VMM nested in the guest): the guest kernel binds vfio-pci to the function and the
/// process enables its interrupts with `VFIO_DEVICE_SET_IRQS`, one eventfd per vector.
final class GuestVFIOUser {
    let process: UserProcess
    /// The legacy path: `/dev/vfio/vfio` and `/dev/vfio/$GROUP`.
    var container: VFIOContainer?
    var group: VFIOGroupFile?
    /// The cdev path: `/dev/iommu` and the IOAS the device is attached to.
    var iommufd: IOMMUFD?
    var ioasID: UInt32?
    let file: VFIODeviceFile
    /// The eventfd of each vector, by vector (the ones passed to SET_IRQS).
    var eventfds: [EventFD]

    init(process: UserProcess, file: VFIODeviceFile, eventfds: [EventFD]) {
        self.process = process
        self.file = file
        self.eventfds = eventfds
    }
}

/// A guest VFIO user's call that failed: the uAPI call, as the user would report it, and the
/// guest kernel's errno.
struct GuestVFIOCallError: Error, CustomStringConvertible {
    var call: String
    var errno: Errno
    var description: String { "\(call): \(errno)" }
}

extension World {
    /// The events that need a guest kernel driver (they unbind, re-probe or re-allocate
    /// through the driver's own calls, or map into its default domain): a guest whose functions
    /// a VFIO user owns refuses them at build time.
    static let guestDriverEvents: Set<EventKind> = [.msixReenable, .addVector, .guestDomain, .hotUnplug, .hotPlug, .guestMapOutsideRAM]

    /// Why the scenario cannot run with a guest VFIO user, or nil.
    static func checkGuestOwner(_ scenario: ScenarioDescription) -> String? {
        guard scenario.vm.guestOwner != .driver else { return nil }
        if let event = scenario.events.first(where: { guestDriverEvents.contains($0.kind) }) {
            return "the event \(event.kind.rawValue) needs a guest kernel driver (guest-owner: driver), not \(scenario.vm.guestOwner.rawValue)"
        }
        if let index = scenario.devices.firstIndex(where: { $0.affinity == .managed }) {
            return "device \(index): affinity: managed is a kernel driver's (pci_alloc_irq_vectors_affinity); a VFIO user's vectors are not managed"
        }
        return nil
    }

    /// What a guest VFIO user does with function `index`, in the order DPDK's vfio bus driver
    /// (or a VMM's `vfio_realize`) does it, on the guest kernel's uAPI:
    ///
    /// 1. `driver_override` + bind: `vfio_pci_probe` → `vfio_pci_core_register_device`
    ///    (EINVAL without an IOMMU group: a guest without a vIOMMU has none, and no-IOMMU mode
    ///    is not modelled). vfio-pci sets `driver_managed_dma`, so the probe claims no domain.
    /// 2. `vfio-type1`: open the container and the group, `VFIO_GROUP_SET_CONTAINER`
    ///    (`iommu_group_claim_dma_owner`: the group's blocking domain — refused with EINVAL for
    ///    a device whose firmware gave it an IOMMU_RESV_DIRECT region, `__iommu_device_set_domain`'s
    ///    `require_direct` check), `VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU)` →
    ///    `vfio_iommu_type1_attach_group`: an unmanaged paging domain, the reserved regions cut
    ///    out of the IOVA list (DIRECT too: only DIRECT_RELAXABLE stays usable), and with the
    ///    SMMU's SW_MSI region `iommu_get_msi_cookie(domain, 0x0800_0000)`; an unmanaged domain
    ///    gets no direct mappings (`iommu_create_device_direct_mappings` runs for default
    ///    domains only). Then `VFIO_GROUP_GET_DEVICE_FD`.
    ///    `vfio-iommufd`: open `/dev/iommu` and the cdev, `VFIO_DEVICE_BIND_IOMMUFD`,
    ///    `IOMMU_IOAS_ALLOC`, `VFIO_DEVICE_ATTACH_IOMMUFD_PT(ioas)` (an auto paging domain with
    ///    iommufd's SW_MSI handling).
    /// 3. Bus Master and Memory Space through the config region (`rte_pci_set_bus_master`).
    /// 4. One eventfd per vector and `VFIO_DEVICE_SET_IRQS(ACTION_TRIGGER | DATA_EVENTFD)` on the
    ///    MSI-X (or MSI) index for all of them at once: `vfio_msi_enable` →
    ///    `pci_alloc_irq_vectors` in the guest (the guest ITS driver's `iommu_dma_prepare_msi`
    ///    maps the vITS doorbell page at the cookie's IOVA; the guest writes its vMSI-X
    ///    entries, which the VMM traps), then `request_irq(vfio_msihandler)` per vector.
    ///
    /// The user's "handler" is its read of the eventfd: each signal is recorded as a delivery
    /// on the guest irq and vCPU whose `vfio_msihandler` signalled it, so `fire` checks that the
    /// guest eventfd of the vector was signalled by the vector's own interrupt.
    func bindGuestVFIO(_ index: Int, _ g: PCIDevice) throws(GuestVFIOCallError) {
        func call<T>(_ name: String, _ body: () throws(Errno) -> T) throws(GuestVFIOCallError) -> T {
            do { return try body() } catch { throw GuestVFIOCallError(call: name, errno: error) }
        }
        guard guestVFIOUsers[index] == nil else { throw GuestVFIOCallError(call: "vfio-pci bind", errno: .EBUSY) }
        let description = scenario.devices[index]
        let guest = self.guest
        let vdev = try call("vfio-pci bind") { () throws(Errno) in try guest.vfio.bindVFIOPCI(g.device) }
        let process = UserProcess(kernel: guest, name: "guest-vfio-user\(index)")
        let file: VFIODeviceFile
        var container: VFIOContainer?
        var groupFile: VFIOGroupFile?
        var iommufd: IOMMUFD?
        var ioasID: UInt32?
        switch scenario.vm.guestOwner {
        case .driver:
            throw GuestVFIOCallError(call: "guest-owner", errno: .EINVAL)
        case .vfioType1:
            guard let groupID = g.device.iommu?.group?.id else { throw GuestVFIOCallError(call: "iommu_group", errno: .EINVAL) }
            let c = guest.vfio.openContainer(process: process)
            let group = try call("open /dev/vfio/\(groupID)") { () throws(Errno) in try guest.vfio.openGroup(groupID) }
            try call("VFIO_GROUP_SET_CONTAINER") { () throws(Errno) in try group.setContainer(c) }
            try call("VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU)") { () throws(Errno) in try c.setIOMMU(VFIOContainer.type1v2IOMMU) }
            file = try call("VFIO_GROUP_GET_DEVICE_FD") { () throws(Errno) in try group.getDeviceFD(g.device.name) }
            container = c
            groupFile = group
        case .vfioIOMMUFD:
            let ictx = guest.openIOMMUFD()
            ictx.process = process
            let cdev = try call("open /dev/vfio/devices/\(vdev.cdevName)") { () throws(Errno) in
                try guest.vfio.openDevice(vdev.cdevName, process: process)
            }
            _ = try call("VFIO_DEVICE_BIND_IOMMUFD") { () throws(Errno) in try cdev.bindIOMMUFD(ictx) }
            let ioas = try call("IOMMU_IOAS_ALLOC") { () throws(Errno) in try ictx.ioasAlloc() }
            _ = try call("VFIO_DEVICE_ATTACH_IOMMUFD_PT") { () throws(Errno) in try cdev.attachIOMMUFDPT(ioas) }
            file = cdev
            iommufd = ictx
            ioasID = ioas
        }
        // PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER.
        try call("config write (Command)") { () throws(Errno) in try file.writeCommand(0x0006) }
        var fds: [Int32] = []
        var eventfds: [EventFD] = []
        for vector in 0..<description.activeVectors {
            let (fd, eventfd) = process.eventfd(name: "guest-vfio-user\(index)[\(vector)]")
            installGuestVFIOHandler(on: eventfd, index)
            fds.append(fd)
            eventfds.append(eventfd)
        }
        let msix = description.interrupts == .msix
        let irqIndex = msix ? VFIOIRQSet.msixIndex : VFIOIRQSet.msiIndex
        let setIRQs = "VFIO_DEVICE_SET_IRQS(\(msix ? "MSI-X" : "MSI"), ACTION_TRIGGER | DATA_EVENTFD, \(fds.count))"
        let short = try call(setIRQs) { () throws(Errno) in try file.setIRQs(.trigger(index: irqIndex, start: 0, eventfds: fds)) }
        // vfio_msi_enable returns how many vectors the platform could give when fewer.
        if short != 0 { throw GuestVFIOCallError(call: "\(setIRQs) gave only \(short)", errno: .ENOSPC) }
        let user = GuestVFIOUser(process: process, file: file, eventfds: eventfds)
        user.container = container
        user.group = groupFile
        user.iommufd = iommufd
        user.ioasID = ioasID
        guestVFIOUsers[index] = user
    }

    /// The guest VFIO user's read of vector eventfd of device `index`: the guest interrupt's
    /// delivery, recorded with the interrupt and CPU that signalled it.
    func installGuestVFIOHandler(on eventfd: EventFD, _ index: Int) {
        eventfd.onSignal = { [weak self] e in
            _ = e.read()
            guard let signal = e.signals.last else { return }
            self?.deliveries.append(GuestDelivery(device: index, irq: signal.irq ?? -1, cpu: signal.cpu ?? -1))
        }
    }
}
