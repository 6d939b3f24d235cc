import Bus
import Firmware
import LinuxKernel
import Machine
import PCI

/// PCI enumeration the way firmware or Linux's `pci_assign_resource` + `pci_enable_device` +
/// `__pci_write_msi_msg` leave a function: BAR assigned through ECAM, Memory Space and Bus
/// Master enabled, MSI-X enabled, table entries written through the BAR.
extension BareMetal {
    /// Creates an MSI-X endpoint at `requesterID` on root complex `rc`, with its table and PBA in
    /// a 16 KiB 64-bit BAR 0 (table at 0, PBA at 0x800), and enumerates it: BAR 0 placed at
    /// `barAddress` (a PCI bus address inside the host bridge's memory window), Memory Space and
    /// Bus Master on, MSI-X enabled with every vector masked (its reset state).
    public func addMSIXEndpoint(requesterID: RequesterID, vectors: Int, barAddress: UInt64, rootComplex rc: Int = 0,
                                name: String = "endpoint") throws(Failure) -> PCIFunction {
        guard rc < machine.rootComplexes.count else { throw .noSuchComponent("root complex \(rc)") }
        let root = machine.rootComplexes[rc]
        let function: PCIFunction
        do {
            function = try PCIFunction(name: name, requesterID: requesterID, vendorID: 0x1AF4, deviceID: 0x1041,
                                       bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                       msix: MSIXConfiguration(tableSize: vectors))
            try root.attach(function, behind: machine.rootPort(above: requesterID, rootComplex: rc))
        } catch { throw .pci("\(error)") }
        // pci_enable_device → pci_enable_bridge: the root port in front forwards the
        // function's memory requests only with Memory Space and Bus Master on.
        if let port = machine.rootPort(above: requesterID, rootComplex: rc) {
            try configWrite(port.requesterID, offset: 0x04, size: 2, value: 0x0006, rootComplex: rc)
        }
        function.trace = root.trace
        try configWrite(requesterID, offset: 0x10, size: 4, value: UInt32(truncatingIfNeeded: barAddress), rootComplex: rc)
        try configWrite(requesterID, offset: 0x14, size: 4, value: UInt32(truncatingIfNeeded: barAddress >> 32), rootComplex: rc)
        try configWrite(requesterID, offset: 0x04, size: 2, value: 0x0006, rootComplex: rc)      // MEM | MASTER
        if let msix = function.msix {
            try configWrite(requesterID, offset: msix.controlOffset, size: 2, value: UInt32(MSIXCapability.controlEnable), rootComplex: rc)
        }
        return function
    }

    /// Writes an MSI-X table entry through the function's BAR, as `__pci_write_msi_msg` does:
    /// address low/high and data, then Vector Control (Mask[0]) last.
    public func writeMSIXEntry(_ function: PCIFunction, vector: Int, address: UInt64, data: UInt32, masked: Bool = false) throws(Failure) {
        guard let msix = function.msix, vector >= 0, vector < msix.tableSize,
              let window = windowAddress(of: function, bar: msix.tableBAR) else { throw .noSuchComponent("MSI-X vector \(vector)") }
        let entry = window &+ msix.tableOffset &+ UInt64(vector) * 16
        try write(PhysicalAddress(entry), 4, address & 0xFFFF_FFFF)
        try write(PhysicalAddress(entry &+ 4), 4, address >> 32)
        try write(PhysicalAddress(entry &+ 8), 4, UInt64(data))
        try write(PhysicalAddress(entry &+ 12), 4, masked ? 1 : 0)
    }

    /// A configuration write through the ECAM window: bus << 20 | device << 15 | function << 12
    /// | register (PCIe r6.0 §7.2.2).
    /// On an RK3399 host bridge the write goes the way Linux's `rockchip_pcie_wr_conf` sends it
    /// (`RockchipPCIeHost`): the root port's own space in apb-base, other buses through
    /// axi-base after outbound region 0's type is set; a device other than 0 on the first two
    /// buses is refused (`Failure.pci`).
    public func configWrite(_ rid: RequesterID, offset: Int, size: Int, value: UInt32, rootComplex rc: Int = 0) throws(Failure) {
        if let (description, target) = rockchipTarget(rid, offset: offset, size: size, rootComplex: rc) {
            let done = try RockchipPCIeHost.write(description, target, size: size, value: value,
                                                  read: { (a, n) throws(Failure) in try read(a, n) },
                                                  write: { (a, n, v) throws(Failure) in try write(a, n, v) })
            guard done else { throw .pci("rockchip_pcie_wr_conf refuses \(rid) register \(Hex.format(UInt64(offset), minDigits: 1)): \(target)") }
            return
        }
        guard let ecam = ecamBase(rc) else { throw .noSuchComponent("ECAM of root complex \(rc)") }
        let busOffset = UInt64(rid.bus) &- UInt64(machine.rootComplexes[rc].busRange.lowerBound)
        let address = ecam &+ (busOffset << 20 | UInt64(rid.devfn) << 12 | UInt64(offset))
        try write(PhysicalAddress(address), size, UInt64(value))
    }

    /// A configuration read as `pci_bus_read_config_*` makes it: through ECAM, or on an RK3399
    /// through `rockchip_pcie_rd_conf` (all-ones for a device `rockchip_pcie_valid_device`
    /// rejects, without touching the hardware).
    public func configRead(_ rid: RequesterID, offset: Int, size: Int, rootComplex rc: Int = 0) throws(Failure) -> UInt32 {
        if let (description, target) = rockchipTarget(rid, offset: offset, size: size, rootComplex: rc) {
            return try RockchipPCIeHost.read(description, target, size: size,
                                             read: { (a, n) throws(Failure) in try read(a, n) },
                                             write: { (a, n, v) throws(Failure) in try write(a, n, v) })
        }
        guard let ecam = ecamBase(rc) else { throw .noSuchComponent("ECAM of root complex \(rc)") }
        let busOffset = UInt64(rid.bus) &- UInt64(machine.rootComplexes[rc].busRange.lowerBound)
        let address = ecam &+ (busOffset << 20 | UInt64(rid.devfn) << 12 | UInt64(offset))
        return UInt32(truncatingIfNeeded: try read(PhysicalAddress(address), size))
    }

    /// The RK3399 description of root complex `rc` and the access Linux makes for `rid`, or nil
    /// when the host bridge is not an RK3399.
    func rockchipTarget(_ rid: RequesterID, offset: Int, size: Int, rootComplex rc: Int) -> (RockchipRK3399PCIe, RockchipPCIeHost.Target)? {
        guard rc >= 0, rc < machine.rockchipControllers.count, let controller = machine.rockchipControllers[rc],
              case .rockchipRK3399(let description) = machine.topology.pcieHostBridges[machine.hostBridgeIndices[rc]].kind else { return nil }
        let rootBus = machine.rootComplexes[rc].busRange.lowerBound
        let secondary = UInt8(truncatingIfNeeded: controller.rootPort.configRead(offset: ConfigRegister.secondaryBus, size: 1))
        let target = RockchipPCIeHost.target(description, bus: rid.bus, devfn: rid.devfn, register: offset, size: size,
                                             rootBus: rootBus, parentIsRoot: rid.bus == secondary && rid.bus != rootBus)
        return (description, target)
    }

    /// The CPU physical address of a function's BAR: its PCI bus address moved by the host
    /// bridge's memory window (`ranges`: CPU address − PCI address).
    func windowAddress(of function: PCIFunction, bar: Int) -> UInt64? {
        guard let busAddress = function.config.barAddress(bar) else { return nil }
        for window in machine.memoryWindows.compactMap({ $0 }) {
            if let cpu = window.cpuAddress(ofBus: busAddress) { return cpu }
        }
        return nil
    }

    func ecamBase(_ rc: Int) -> UInt64? {
        guard rc >= 0, rc < machine.hostBridgeIndices.count else { return nil }
        return machine.topology.pcieHostBridges[machine.hostBridgeIndices[rc]].configSpace?.base.rawValue
    }
}
