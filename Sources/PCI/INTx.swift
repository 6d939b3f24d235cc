extension ConfigRegister {
    /// PCI_INTERRUPT_PIN (PCI Local Bus 3.0 §6.2.4): 0 none, 1…4 INTA#…INTD#. Read-only.
    public static let interruptPin = 0x3D
    /// PCI_COMMAND_INTX_DISABLE (Command bit 10).
    public static let commandInterruptDisable: UInt16 = 0x0400
    /// PCI_STATUS_INTERRUPT (Status bit 3, read-only): the function's interrupt condition
    /// (PCI Local Bus 3.0 §6.2.3).
    public static let statusInterrupt: UInt16 = 0x0008
}

extension PCIToPCIBridge {
    /// The pin a bridge drives on its primary side for `pin` (1…4) of the device numbered
    /// `device` on its secondary bus: PCI-to-PCI Bridge Architecture 1.2 §9.1, Table 9-1,
    /// ((pin − 1 + device) mod 4) + 1 — what Linux's `pci_swizzle_interrupt_pin` computes.
    public static func swizzle(pin: UInt8, device: UInt8) -> UInt8 {
        guard (1...4).contains(pin) else { return pin }
        return UInt8((Int(pin) - 1 + Int(device)) % 4 + 1)
    }
}

extension PCIFunction {
    /// The Interrupt Pin register.
    public var interruptPin: UInt8 { UInt8(truncatingIfNeeded: config.read(offset: ConfigRegister.interruptPin, size: 1)) }

    /// Where the function's INTx wire arrives at the root complex: the devfn of the root-bus
    /// device it enters through and the pin there, swizzled at each bridge on the way; nil
    /// without an Interrupt Pin.
    public var intxRoute: (rootDevfn: UInt8, pin: UInt8)? {
        var pin = interruptPin
        guard (1...4).contains(pin) else { return nil }
        var devfn = requesterID.devfn
        var bridge = parentBridge
        var hops = 0
        while let b = bridge, hops < 256 {
            pin = PCIToPCIBridge.swizzle(pin: pin, device: devfn >> 3)
            devfn = b.requesterID.devfn
            bridge = b.parentBridge
            hops += 1
        }
        return (devfn, pin)
    }

    /// Whether the function has an interrupt condition: Status.Interrupt Status (PCI Local Bus
    /// 3.0 §6.2.3).
    public var interruptStatus: Bool { config.status & ConfigRegister.statusInterrupt != 0 }

    /// Raises (true) or clears (false) the function's interrupt condition. Status.Interrupt
    /// Status follows it, and the INTx wire (level-sensitive, PCI Local Bus 3.0 §2.2.6) is
    /// asserted while the condition holds and Command.Interrupt Disable is clear (§6.2.2,
    /// §6.2.3). Clearing stands in for the device-specific acknowledgement a driver's handler
    /// performs (for example reading a virtio-pci device's ISR status, which resets it and
    /// deasserts INTx, virtio 1.2 §4.1.4.5). The level travels to the root complex's
    /// `intxSink`, which the machine wires to the interrupt controller. Returns whether the
    /// wire is asserted.
    @discardableResult
    public func setINTx(_ asserted: Bool) -> Bool {
        guard (1...4).contains(interruptPin) else { return false }
        setInterruptStatusBit(asserted)
        return driveINTx()
    }

    /// Drives the wire from Interrupt Status and Interrupt Disable.
    @discardableResult
    func driveINTx() -> Bool {
        let disabled = UInt16(truncatingIfNeeded: config.read(offset: ConfigRegister.command, size: 2)) & ConfigRegister.commandInterruptDisable != 0
        let level = interruptStatus && !disabled
        guard let route = intxRoute, let rootComplex else { return false }
        rootComplex.intxSink?(route.rootDevfn, route.pin, level)
        return level
    }
}
