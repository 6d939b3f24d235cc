import Bus
import PCI

extension PCISubsystem {
    /// `pci_enable_device` (drivers/pci/pci.c): enable the upstream bridges first
    /// (`pci_enable_bridge`, which also sets their Bus Master Enable so requests are forwarded),
    /// bring the function to D0 (`current_state = PCI_D0`, which `__pci_enable_msi{,x}_range`
    /// requires) and set PCI_COMMAND_MEMORY when it has memory BARs (`pci_enable_resources`).
    public func enableDevice(_ dev: PCIDevice) throws(Errno) {
        if let bridge = dev.upstreamBridge, !bridge.isEnabled {
            try enableDevice(bridge)
            try setMaster(bridge)
        }
        if !dev.resources.isEmpty || dev.isBridge {
            try dev.clearAndSet16(ConfigRegister.command, clear: 0, set: ConfigRegister.commandMemorySpace)
        }
        dev.isEnabled = true
    }

    /// `pci_disable_device`: clears Bus Master Enable (`do_pci_disable_device`).
    public func disableDevice(_ dev: PCIDevice) throws(Errno) {
        try dev.clearAndSet16(ConfigRegister.command, clear: ConfigRegister.commandBusMaster, set: 0)
        dev.isBusMaster = false
        dev.isEnabled = false
    }

    /// `pci_set_master`: PCI_COMMAND_MASTER, without which the function sends no DMA and no MSI.
    public func setMaster(_ dev: PCIDevice) throws(Errno) {
        try dev.clearAndSet16(ConfigRegister.command, clear: 0, set: ConfigRegister.commandBusMaster)
        dev.isBusMaster = true
    }

    /// `pci_clear_master`.
    public func clearMaster(_ dev: PCIDevice) throws(Errno) {
        try dev.clearAndSet16(ConfigRegister.command, clear: ConfigRegister.commandBusMaster, set: 0)
        dev.isBusMaster = false
    }

    /// Binds a DMA-API driver whose probe does `pci_enable_device` + `pci_set_master` and
    /// nothing else (`probeDriver`: the driver core takes the default domain first,
    /// `iommu_device_use_default_domain`). A device bound already keeps its driver (Linux's
    /// `__driver_probe_device` returns -EBUSY; callers here only ever meant "make sure a
    /// driver is bound").
    public func bindDriver(_ dev: PCIDevice, name: String) throws(Errno) {
        guard !isDriverBound(dev) else { return }
        try probeDriver(dev, name: name) { () throws(Errno) in
            try enableDevice(dev)
            try setMaster(dev)
        }
    }
}
