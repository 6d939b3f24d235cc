import Bus
import PCI

extension PCISubsystem {
    /// `pci_save_state` (the part that matters here): the 16 header dwords and the PCI Express
    /// Device Control register.
    public func saveState(_ dev: PCIDevice) throws(Errno) {
        var saved: [UInt32] = []
        for i in 0..<16 { saved.append(try dev.readConfig32(i * 4)) }
        dev.savedConfig = saved
        if let pcie = dev.expressCapability { dev.savedDeviceControl = try dev.readConfig16(pcie + 8) }
    }

    /// `pci_restore_state`: Device Control (`pci_restore_pcie_state`), then the header
    /// (`pci_restore_config_space`: for a type-0 header dwords 10–15, then 4–9 — the BARs —
    /// then 0–3, the Command register last among them, each written only if it differs), then
    /// `pci_restore_msi_state`.
    public func restoreState(_ dev: PCIDevice) throws(Errno) {
        guard let saved = dev.savedConfig, saved.count == 16 else { return }
        if let pcie = dev.expressCapability, let control = dev.savedDeviceControl {
            try dev.writeConfig16(pcie + 8, control & ~PCIReset.initiateFLR)
        }
        let order = dev.isBridge ? Array(0..<16).reversed() : Array(10...15).reversed() + Array(4...9).reversed() + Array(0...3).reversed()
        for i in order where try dev.readConfig32(i * 4) != saved[i] {
            try dev.writeConfig32(i * 4, saved[i])
        }
        dev.savedConfig = nil
        try restoreMSIState(dev)
    }

    /// `pci_restore_msi_state` → `__pci_restore_msi_state` and `__pci_restore_msix_state`:
    /// after a reset the function's MSI/MSI-X registers are back at their reset values while the
    /// kernel still has its descriptors; the cached messages (`desc->msg`) are written back.
    ///
    /// MSI-X: Enable | Function Mask, `__pci_write_msi_msg(entry, &entry->msg)` for every
    /// descriptor (`arch_restore_msi_irqs` is true on arm64), then each entry's cached Vector
    /// Control (`pci_msix_write_vector_ctrl`), then clear Function Mask. MSI: Enable off, the
    /// message, the cached mask bits, then Multiple Message Enable and Enable.
    public func restoreMSIState(_ dev: PCIDevice) throws(Errno) {
        if dev.msixEnabled, let cap = dev.msixCapability {
            try dev.clearAndSet16(cap + 2, clear: 0, set: MSIXCapability.controlEnable | MSIXCapability.controlFunctionMask)
            for desc in dev.device.msiDescriptors {
                try writeMSIMessage(dev, desc, desc.message)
                try writeVectorControl(dev, desc.index, desc.masked ? 1 : 0)
            }
            try dev.clearAndSet16(cap + 2, clear: MSIXCapability.controlFunctionMask, set: 0)
        } else if dev.msiEnabled, let cap = dev.msiCapability, let desc = dev.device.msiDescriptors.first,
                  let attributes = dev.msiAttributes {
            try dev.clearAndSet16(cap + 2, clear: MSICapability.controlEnable, set: 0)
            try writeMSIMessage(dev, desc, desc.message)
            try writeMSIMask(dev, cap: cap, attributes.mask)
            let control = try dev.readConfig16(cap + 2)
            try dev.writeConfig16(cap + 2, (control & ~0x70) | UInt16(attributes.multiple << 4) | MSICapability.controlEnable)
        }
    }

    /// `pcie_reset_flr(dev, probe)` + `pcie_flr`: requires Device Capabilities.FLR
    /// (`PCI_EXP_DEVCAP_FLR`, bit 28; Linux returns -ENOTTY without it, reported here as
    /// EOPNOTSUPP since the model's Errno has no ENOTTY); waits for Device Status.Transactions
    /// Pending to clear (`pci_wait_for_pending_transaction`), sets Device Control.Initiate FLR
    /// (`PCI_EXP_DEVCTL_BCR_FLR`, bit 15), then (after Linux's 100 ms, which the model does not
    /// need) `pci_dev_wait`: polls PCI_COMMAND until it no longer reads all-ones.
    ///
    /// This resets the function and nothing else: its config space, BARs and MSI-X table are back
    /// at reset values. Callers normally want `resetFunction`, which saves and restores state
    /// around it.
    public func functionLevelReset(_ dev: PCIDevice) throws(Errno) {
        guard let pcie = dev.expressCapability else { throw .EOPNOTSUPP }
        let capabilities = try dev.readConfig32(pcie + 4)
        guard capabilities & PCIReset.flrCapable != 0 else { throw .EOPNOTSUPP }
        for _ in 0..<100 where try dev.readConfig16(pcie + 0xA) & PCIReset.transactionsPending != 0 {}
        try dev.clearAndSet16(pcie + 8, clear: 0, set: PCIReset.initiateFLR)
        var ready = false
        for _ in 0..<100 {
            if try dev.readConfig32(ConfigRegister.command) != 0xFFFF_FFFF { ready = true; break }
        }
        guard ready else { throw .ETIMEDOUT }
        kernel.log.log("pci", "\(dev.name): FLR done")
    }

    /// `pci_reset_function`: `pci_dev_save_and_disable` (save state, then PCI_COMMAND =
    /// INTx Disable only: no memory decoding, no bus mastering during the reset), the reset
    /// (FLR, the only method modelled), `pci_dev_restore` (`pci_restore_state`, which ends with
    /// `pci_restore_msi_state`).
    public func resetFunction(_ dev: PCIDevice) throws(Errno) {
        try saveState(dev)
        try dev.writeConfig16(ConfigRegister.command, ConfigRegister.commandINTxDisable)
        do {
            try functionLevelReset(dev)
        } catch {
            try restoreState(dev)
            throw error
        }
        try restoreState(dev)
    }
}

/// PCI Express Device Capabilities / Control / Status bits used for FLR (pci_regs.h).
enum PCIReset {
    /// `PCI_EXP_DEVCAP_FLR`.
    static let flrCapable: UInt32 = 1 << 28
    /// `PCI_EXP_DEVCTL_BCR_FLR`.
    static let initiateFLR: UInt16 = 1 << 15
    /// `PCI_EXP_DEVSTA_TRPND`.
    static let transactionsPending: UInt16 = 1 << 5
}
