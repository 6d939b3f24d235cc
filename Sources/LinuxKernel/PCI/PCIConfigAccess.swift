import Bus
import Firmware
import PCI

/// How the kernel's `pci_ops` reach a host bridge's configuration space: the generic ECAM
/// accessors (`pci_generic_config_read` on `pci_ecam_map_bus`, which DesignWare's "config"
/// window is read as too), or the RK3399's `rockchip_pcie_ops` (`RockchipPCIeHost`).
public enum HostBridgeConfigAccess: Hashable, Sendable {
    case ecam(MemoryRange)
    case rockchipRK3399(RockchipRK3399PCIe)

    /// The access of `bridge`, or nil when it has none (no ECAM window, no known layout).
    public init?(_ bridge: PCIeHostBridge) {
        switch bridge.kind {
        case .rockchipRK3399(let controller): self = .rockchipRK3399(controller)
        case .generic:
            guard let window = bridge.configSpace else { return nil }
            self = .ecam(window)
        }
    }

    /// One function's access: its ECAM address ((bus − first) << 20 | devfn << 12, PCIe r6.0
    /// §7.2.2; nil beyond the window), or the RK3399's accessors with the facts they test.
    public func access(_ rid: RequesterID, busRange: ClosedRange<UInt32>, parentIsRoot: Bool) -> PCIConfigAccess? {
        switch self {
        case .ecam(let window):
            let offset = UInt64(UInt32(rid.bus) &- busRange.lowerBound) << 20 | UInt64(rid.devfn) << 12
            guard UInt32(rid.bus) >= busRange.lowerBound, offset < window.size, let base = window.base.adding(offset) else { return nil }
            return .ecam(base)
        case .rockchipRK3399(let controller):
            return .rockchipRK3399(controller, rootBus: UInt8(truncatingIfNeeded: busRange.lowerBound), parentIsRoot: parentIsRoot)
        }
    }
}

/// One function's configuration access (`PCIDevice.configAccess`).
public enum PCIConfigAccess: Hashable, Sendable {
    /// The function's ECAM address: register r is at base + r.
    case ecam(PhysicalAddress)
    /// Through `rockchip_pcie_rd_conf` / `wr_conf`: `rootBus` is the host bridge's first bus,
    /// `parentIsRoot` whether the function's bus hangs directly below it.
    case rockchipRK3399(RockchipRK3399PCIe, rootBus: UInt8, parentIsRoot: Bool)
}

extension PCIConfigAccess {
    /// `pci_bus_read_config_*` of `register` of the function at `rid` through `mmio`.
    func read(_ rid: RequesterID, register: Int, size: Int, mmio: MMIOAccess) throws(Errno) -> UInt32 {
        guard register >= 0, register < 4096, [1, 2, 4].contains(size) else { throw .EINVAL }
        switch self {
        case .ecam(let base):
            guard let address = base.adding(UInt64(register)) else { throw .EINVAL }
            return UInt32(truncatingIfNeeded: try mmio.read(address, size: size))
        case .rockchipRK3399(let controller, let rootBus, let parentIsRoot):
            let target = RockchipPCIeHost.target(controller, bus: rid.bus, devfn: rid.devfn, register: register, size: size,
                                                 rootBus: rootBus, parentIsRoot: parentIsRoot)
            return try RockchipPCIeHost.read(controller, target, size: size,
                                             read: { (a, n) throws(Errno) in try mmio.read(a, size: n) },
                                             write: { (a, n, v) throws(Errno) in try mmio.write(a, size: n, v) })
        }
    }

    /// `pci_bus_write_config_*` of `register` of the function at `rid` through `mmio`.
    func write(_ rid: RequesterID, register: Int, size: Int, value: UInt32, mmio: MMIOAccess) throws(Errno) {
        guard register >= 0, register < 4096, [1, 2, 4].contains(size) else { throw .EINVAL }
        switch self {
        case .ecam(let base):
            guard let address = base.adding(UInt64(register)) else { throw .EINVAL }
            try mmio.write(address, size: size, UInt64(value))
        case .rockchipRK3399(let controller, let rootBus, let parentIsRoot):
            let target = RockchipPCIeHost.target(controller, bus: rid.bus, devfn: rid.devfn, register: register, size: size,
                                                 rootBus: rootBus, parentIsRoot: parentIsRoot)
            try RockchipPCIeHost.write(controller, target, size: size, value: value,
                                       read: { (a, n) throws(Errno) in try mmio.read(a, size: n) },
                                       write: { (a, n, v) throws(Errno) in try mmio.write(a, size: n, v) })
        }
    }
}
