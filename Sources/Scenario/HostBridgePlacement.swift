import PCI

/// Where a host function off bus 0 goes: behind a bridge on bus 0 whose secondary bus is the
/// function's bus, one bridge per bus, placed at 00:1f.0, 00:1e.0, … in order of first use (a
/// root port, QEMU's `pcie-root-port` 1b36:000c, or a PCIe-to-PCI bridge, `pcie-pci-bridge`
/// 1b36:000e). Scenario worlds and `doorbell host` place functions the same way.
public struct HostBridgePlacement {
    public private(set) var bridges: [UInt8: PCIToPCIBridge] = [:]
    /// The bridges in the order they were created.
    public private(set) var created: [PCIToPCIBridge] = []

    public init() {}

    /// Attaches `function` to `rootComplex`: on bus 0 directly, else behind the bridge of its
    /// bus (`bridge`, nil meaning a root port), created on first use. A bus already behind a
    /// bridge of the other kind, or a 32nd bridge, is refused.
    public mutating func attach(_ function: PCIFunction, bridge: DeviceDescription.Bridge?,
                                to rootComplex: RootComplex) throws(PCIConfigurationError) {
        let bus = function.requesterID.bus
        guard bus != 0 else {
            try rootComplex.attach(function)
            return
        }
        let kind = (bridge ?? .rootPort).kind
        let port: PCIToPCIBridge
        if let existing = bridges[bus] {
            guard existing.kind == kind else {
                throw PCIConfigurationError.invalidCapability("bus \(bus) already sits behind a \(existing.kind) bridge")
            }
            port = existing
        } else {
            guard bridges.count < 31 else { throw PCIConfigurationError.invalidCapability("more than 31 host bridges on bus 0") }
            let pcieToPCI = kind == .pcieToPCI
            port = try PCIToPCIBridge(name: pcieToPCI ? "pcie-pci-bridge" : "root-port",
                                      requesterID: RequesterID(bus: 0, device: UInt8(0x1F &- bridges.count), function: 0),
                                      kind: kind, deviceID: pcieToPCI ? 0x000E : 0x000C, secondaryBus: bus)
            try rootComplex.attach(port)
            bridges[bus] = port
            created.append(port)
        }
        try rootComplex.attach(function, behind: port)
    }
}
