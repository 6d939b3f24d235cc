import Bus
import LinuxKernel
import PCI

// MARK: device_del / device_add of a vfio-pci function

extension VirtualMachineMonitor {
    /// QEMU `device_del` of the passthrough function the guest sees at `rid`, on a PCIe slot
    /// (native hotplug, hw/pci/pcie.c `pcie_cap_slot_unplug_request_cb`: Attention Button
    /// Pressed; the guest's pciehp powers the slot off and QEMU then unplugs — "Hotunplug
    /// starts by triggering 'attention button pressed', then waits for the OS to power off the
    /// device and only then detaches it", QEMU commit 554f802d):
    /// 1. the guest releases the function (`releaseInGuest`): its driver's `.remove` and
    ///    pciehp's `pci_stop_and_remove_bus_device` — MSI-X off (which the VMM traps as
    ///    `vfio_msix_disable`), the ITS device unmapped in the vITS (MAPD V=0), the STE reset
    ///    with CFGI_STE (which the VMM installs as a nested HWPT like any other);
    /// 2. `pcie_unplug_device` → `unrealize`: `vfio_exitfn` and `vfio_pci_put_device`.
    ///
    /// Refusals, as QEMU's: a function on the root bus (guest bus 0) is a Root Complex
    /// Integrated Endpoint, and "Integrated Endpoints are not hot-pluggable" (docs/pcie.txt),
    /// so `qdev_unplug` answers "Bus 'pcie.0' does not support hotplugging"; a RID with no
    /// plugged passthrough function is "Device … not found".
    ///
    /// Without a booted guest nothing answers the Attention Button; the model then unplugs at
    /// once, as if the slot had been powered off.
    public func hotUnplug(guestRequesterID rid: RequesterID) throws(GuestError) {
        guard let index = devices.firstIndex(where: { $0.isPlugged && $0.guestRequesterID == rid }) else {
            throw .unsupported("Device at \(rid) not found")
        }
        try hotUnplug(deviceIndex: index)
    }

    /// `hotUnplug(guestRequesterID:)` for `devices[index]`.
    public func hotUnplug(deviceIndex index: Int) throws(GuestError) {
        guard devices.indices.contains(index), devices[index].isPlugged else {
            throw .unsupported("Device \(index) not found")
        }
        let device = devices[index]
        let rid = device.guestRequesterID
        guard rid.bus != 0 else { throw .unsupported("Bus 'pcie.0' does not support hotplugging") }
        // A pcie-pci-bridge hot-plugs through its SHPC, which is not emulated here.
        guard (configuration.guestBridges[rid.bus] ?? .rootPort) == .rootPort else {
            throw .unsupported("\(rid): hot-plug behind a pcie-pci-bridge (SHPC) is not modelled")
        }
        note("device_del \(rid): attention button")
        if let guest { releaseInGuest(guest, rid) }
        unrealize(device)
        note("device_del \(rid): unplugged")
    }

    /// QEMU `device_add vfio-pci,host=…` of the host function that was unplugged from `rid`,
    /// into the same slot: `realize` (open the cdev again, bind, attach to the container or a
    /// new one, IOAS_MAP_MSI as the plan says, vIOMMU if none is left, the vDEVICE), the
    /// function on the guest's bus, its current vSTE installed as a nested HWPT (see below),
    /// then `pcie_cap_slot_plug_cb`: Presence Detect Changed, on which the guest's pciehp runs
    /// `pciehp_configure_device` — here `PCISubsystem.rescanBus`, which enumerates the function
    /// again, assigns its BARs and lets the IOMMU core probe it (new default-domain attach,
    /// STE, CFGI_STE to the vSMMU). The guest driver's probe (enable, vectors, request_irq) is
    /// the caller's, as the driver is. Returns the new device.
    ///
    /// The vSTE at plug: the model installs the guest's current STE for the vSID at once, as
    /// its cold-plug path does; upstream `smmuv3_accel_set_iommu_device` leaves a device added
    /// to a live vIOMMU on its stage-2 HWPT until the guest's next CFGI_STE for it.
    @discardableResult
    public func hotPlug(guestRequesterID rid: RequesterID) throws(GuestError) -> PassthroughDevice {
        guard let index = devices.firstIndex(where: { !$0.isPlugged && $0.guestRequesterID == rid }) else {
            if devices.contains(where: { $0.isPlugged && $0.guestRequesterID == rid }) {
                throw .unsupported("slot \(rid) is occupied")
            }
            throw .unsupported("no passthrough function was unplugged from \(rid)")
        }
        return try hotPlug(deviceIndex: index)
    }

    /// `hotPlug(guestRequesterID:)` for `devices[index]`.
    @discardableResult
    public func hotPlug(deviceIndex index: Int) throws(GuestError) -> PassthroughDevice {
        guard devices.indices.contains(index), !devices[index].isPlugged else {
            throw .unsupported("device \(index) is not unplugged")
        }
        let device = try realize(slot(of: devices[index]))
        devices[index] = device
        bridge.plug(device.function)
        installGuestSTE(device)
        note("device_add \(device.guestRequesterID): presence detect")
        if let guest {
            do { try guest.pci.rescanBus() } catch { note("guest pciehp rescan: \(error)") }
        }
        return device
    }

    /// The guest side of the Attention Button (drivers/pci/hotplug/pciehp_ctrl.c
    /// `pciehp_disable_slot` → `pciehp_unconfigure_device`): the bound driver's `.remove` —
    /// the model's drivers are the callers' `request_irq`s, so every vector with a handler is
    /// `free_irq`'d, then `pci_free_irq_vectors` (masks, clears MSI-X/MSI Enable, frees the
    /// interrupts: the ITS driver's DISCARDs and MAPD V=0) and `pci_disable_device` — then
    /// `pci_stop_and_remove_bus_device` (the IOMMU core releases the device: STE reset and
    /// CFGI_STE). A function the guest never enumerated needs nothing; errors are logged, as
    /// pciehp carries on and powers the slot off anyway.
    func releaseInGuest(_ guest: LinuxKernel, _ rid: RequesterID) {
        guard let pdev = guest.pci.device(rid) else { return }
        var irqs: [Int] = []
        if pdev.msixEnabled {
            irqs = pdev.device.msiDescriptors.map(\.irq).filter { $0 != 0 }
        } else if pdev.msiEnabled {
            var n = 0
            while n < 32, let irq = try? guest.pci.irqVector(pdev, n) { irqs.append(irq); n += 1 }
        }
        for irq in irqs where guest.irq.descriptor(irq)?.action != nil {
            do { try guest.irq.freeIRQ(irq) } catch { note("guest free_irq(\(irq)): \(error)") }
        }
        do { try guest.pci.freeIRQVectors(pdev) } catch { note("guest pci_free_irq_vectors: \(error)") }
        if pdev.isEnabled {
            do { try guest.pci.disableDevice(pdev) } catch { note("guest pci_disable_device: \(error)") }
        }
        do { try guest.pci.stopAndRemoveBusDevice(pdev) } catch { note("guest pci_stop_and_remove_bus_device: \(error)") }
        note("guest released \(rid)")
    }
}
