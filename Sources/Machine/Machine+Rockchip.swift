import Bus
import Firmware
import PCI

/// Why an RK3399 host bridge's outbound windows cannot be set up from its `ranges`, as Linux's
/// `rockchip_pcie_cfg_atu` (`drivers/pci/controller/pcie-rockchip-host.c`, read at torvalds/linux 2bce6abecc03) would
/// find it.
public enum RockchipOutboundProblem: Error, Hashable, Sendable {
    /// No memory window: `resource_list_first_type(IORESOURCE_MEM)` is NULL, -ENODEV.
    case noMemoryWindow
    /// Less than 1 MiB of memory window: no outbound region maps any of it.
    case memoryWindowTooSmall(UInt64)
    /// No I/O window: the second `resource_list_first_type(IORESOURCE_IO)` is NULL, -ENODEV.
    case noIOWindow
    /// More 1 MiB regions than MAX_AXI_WRAPPER_REGION_NUM allows: `rockchip_pcie_prog_ob_atu`
    /// returns -EINVAL ("program RC mem/io outbound ATU failed").
    case tooManyRegions(memory: Int, io: Int)
    /// `ranges` puts the memory window at a CPU address other than outbound region 1's.
    case cpuAddressMismatch(described: UInt64, decoded: UInt64)

    public var sentence: String {
        switch self {
        case .noMemoryWindow:
            "ranges has no memory window, so rockchip_pcie_cfg_atu fails with -ENODEV"
        case .memoryWindowTooSmall(let size):
            "the memory window in ranges is \(Hex.format(size, minDigits: 1)) bytes, less than the 1 MiB one outbound region maps"
        case .noIOWindow:
            "ranges has no I/O window, so rockchip_pcie_cfg_atu fails with -ENODEV"
        case .tooManyRegions(let memory, let io):
            "ranges needs \(memory) memory and \(io) I/O outbound regions of 1 MiB; regions 1…32 exist (MAX_AXI_WRAPPER_REGION_NUM), so rockchip_pcie_prog_ob_atu fails with -EINVAL"
        case .cpuAddressMismatch(let described, let decoded):
            "ranges puts the memory window at \(Hex.format(described)), but outbound region 1 decodes \(Hex.format(decoded)) (axi-base + 32 MiB), where its BARs would be reached"
        }
    }
}

extension Machine {
    /// The memory window BARs are reached through on an RK3399 host bridge, from the outbound
    /// regions `rockchip_pcie_cfg_atu` programs: the first memory window of `ranges` (`bridge->
    /// windows` keeps ranges' order) is cut into size >> 20 regions of 1 MiB, numbered from 1,
    /// region n mapping CPU address axi-base + 32 MiB + (n − 1) MiB (AXI_REGION_0_SIZE, then
    /// AXI_REGION_SIZE each) onto PCI address pci + (n − 1) MiB (20 address bits pass); the
    /// first I/O window takes the next regions, and one message region follows. So the
    /// window's CPU base is fixed by the controller, its PCI base is ranges', and its size is
    /// whole MiB. Failure when the driver's probe would fail, or when ranges names a CPU
    /// address the regions do not decode.
    public static func rockchipOutboundWindow(_ description: RockchipRK3399PCIe, ranges: [PCIRange])
        -> Result<MemoryWindow, RockchipOutboundProblem> {
        guard let memory = ranges.first(where: { $0.space == .memory32 || $0.space == .memory64 }) else { return .failure(.noMemoryWindow) }
        guard let io = ranges.first(where: { $0.space == .io }) else { return .failure(.noIOWindow) }
        let memoryRegions = memory.size >> 20
        let ioRegions = io.size >> 20
        guard memoryRegions > 0 else { return .failure(.memoryWindowTooSmall(memory.size)) }
        // rockchip_pcie_prog_ob_atu: region_no >= MAX_AXI_WRAPPER_REGION_NUM is -EINVAL, for
        // the memory regions 1…n and the I/O regions n + 1….
        guard memoryRegions + ioRegions < UInt64(RockchipPCIeController.regionCount) else {
            return .failure(.tooManyRegions(memory: Int(clamping: memoryRegions), io: Int(clamping: ioRegions)))
        }
        let (decoded, overflow) = description.axi.base.rawValue.addingReportingOverflow(RockchipPCIeController.outboundRegionOffset(1))
        guard !overflow, memory.cpuAddress.rawValue == decoded else {
            return .failure(.cpuAddressMismatch(described: memory.cpuAddress.rawValue, decoded: decoded))
        }
        return .success(MemoryWindow(cpuAddress: decoded, pciAddress: memory.pciAddress, size: memoryRegions << 20, chosen: false))
    }

    /// The RK3399 controller of root complex `rc`: its root port at devfn 0 of the first bus
    /// (Vendor ID ROCKCHIP_VENDOR_ID, class PCI-to-PCI bridge, as `rockchip_pcie_host_init_port`
    /// leaves it), with the buses after it below, and apb-base and axi-base region 0 on the bus.
    static func rockchipController(_ rc: RootComplex, _ description: RockchipRK3399PCIe, bridge: PCIeHostBridge,
                                   bus: SystemBus) throws(MachineError) -> RockchipPCIeController {
        let first = rc.busRange.lowerBound
        let port: PCIToPCIBridge
        do {
            port = try PCIToPCIBridge(name: "\(bridge.path) root port", requesterID: RequesterID(bus: first, device: 0, function: 0),
                                      kind: .rootPort, vendorID: RockchipPCIeController.vendorID,
                                      deviceID: RockchipPCIeController.rootPortDeviceID,
                                      secondaryBus: first + 1, subordinateBus: rc.busRange.upperBound)
            try rc.attach(port)
        } catch { throw .pci("\(bridge.path): \(error)") }
        let controller = RockchipPCIeController(rootComplex: rc, rootPort: port)
        do {
            try bus.addDevice(controller.makeAPB(), base: description.apb.base, size: description.apb.size, name: "\(bridge.path) apb-base")
            try bus.addDevice(controller.makeConfigurationRegion(), base: description.axi.base,
                              size: min(description.axi.size, RockchipPCIeController.region0Size), name: "\(bridge.path) axi-base")
        } catch { throw .bus(error) }
        return controller
    }

    /// The root port a function at `rid` sits behind on root complex `rc`: the RK3399
    /// controller's, when `rid`'s bus lies in its secondary…subordinate range; nil elsewhere.
    public func rootPort(above rid: RequesterID, rootComplex rc: Int) -> PCIToPCIBridge? {
        guard rc >= 0, rc < rockchipControllers.count, let controller = rockchipControllers[rc] else { return nil }
        let port = controller.rootPort
        let secondary = UInt8(truncatingIfNeeded: port.configRead(offset: ConfigRegister.secondaryBus, size: 1))
        let subordinate = UInt8(truncatingIfNeeded: port.configRead(offset: ConfigRegister.subordinateBus, size: 1))
        return (secondary...max(secondary, subordinate)).contains(rid.bus) ? port : nil
    }
}
