import Bus
import Firmware
import PCI

extension PCISubsystem {
    /// `pci_assign_irq` (drivers/pci/setup-irq.c, from `pci_device_probe`): the Interrupt Pin
    /// (0 = none; above 4 taken as 1), the host bridge's `swizzle_irq` = `pci_common_swizzle`
    /// and `map_irq` = `of_irq_parse_and_map_pci` (`devm_of_pci_bridge_init`), then
    /// `dev->irq` and PCI_INTERRUPT_LINE. Without a mapping `dev->irq` stays 0.
    func assignIRQ(_ dev: PCIDevice) {
        guard let route = intxRoute(dev) else { return }
        dev.intxRoute = route
        dev.irq = kernel.irq.mapSPI(intid: route.intid, device: dev.device)
        try? dev.writeConfig(ConfigRegister.interruptLine, size: 1, UInt32(dev.irq & 0xFF))
    }

    /// `of_irq_parse_pci`: walking up from the function, each bridge without a device-tree node
    /// swizzles the pin (`pci_swizzle_interrupt_pin`: ((pin − 1 + slot) mod 4) + 1 with the
    /// slot of the device below it); at the root bus the host bridge's `interrupt-map` is
    /// searched (`of_irq_parse_raw`) with the unit address (bus << 16 | devfn << 8, 0, 0) of the
    /// root-bus device and the pin. The entry's parent must be the GIC with <0 (SPI) n …>: INTID
    /// 32 + n. The model's bridges have no device-tree nodes (a bridge with one would stop the
    /// walk at its node, not modelled).
    public func intxRoute(_ dev: PCIDevice) -> (rootDevfn: UInt8, pin: UInt8, intid: UInt32)? {
        guard let raw = try? dev.readConfig(ConfigRegister.interruptPin, size: 1), raw != 0 else { return nil }
        var pin = UInt8(truncatingIfNeeded: raw)
        if pin > 4 { pin = 1 }
        var current = dev
        var hops = 0
        while let bridge = current.upstreamBridge, hops < 256 {
            pin = PCIToPCIBridge.swizzle(pin: pin, device: current.requesterID.device)
            current = bridge
            hops += 1
        }
        let bridges = kernel.topology.pcieHostBridges
        guard bridges.indices.contains(dev.hostBridge), let map = bridges[dev.hostBridge].interruptMap,
              let gic = kernel.topology.gic?.phandle else { return nil }
        let address = UInt32(current.requesterID.bus) << 16 | UInt32(current.requesterID.devfn) << 8
        guard let entry = map.lookup(address: [address, 0, 0], pin: UInt32(pin)), entry.parentPhandle == gic,
              entry.parentSpecifier.count >= 2, entry.parentSpecifier[0] == 0, entry.parentSpecifier[1] < 988 else {
            kernel.log.log(dev.name, "no INTx mapping for pin \(pin)")
            return nil
        }
        return (current.requesterID.devfn, pin, 32 + entry.parentSpecifier[1])
    }
}
