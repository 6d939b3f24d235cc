import Bus

/// The Rockchip RK3399 PCIe controller (a Cadence core behind Rockchip's AXI wrapper, binding
/// `rockchip,rk3399-pcie`), as far as configuration access and the outbound windows go. It has
/// no ECAM window. Its two register spaces are the device tree's `reg-names`:
/// - `apb-base` (16 MiB): the client and core registers, with the root port's own type-1
///   configuration space at `rcConfigNormalBase` (PCIE_RC_CONFIG_NORMAL_BASE, 0x80_0000), and
///   the outbound address-translation descriptors at PCIE_CORE_AXI_CONF_BASE (0xC0_0000);
/// - `axi-base` (32 MiB): outbound region 0 (AXI_REGION_0_SIZE), which turns a CPU access at
///   offset bus << 20 | devfn << 12 | where (`PCIE_ECAM_OFFSET`) into a configuration request
///   of the type region 0's descriptor holds (AXI_WRAPPER_TYPE0_CFG 0xA or TYPE1_CFG 0xB; 25
///   address bits pass, RC_REGION_0_PASS_BITS, so buses 0…31).
/// Regions 1…32 (1 MiB each, AXI_REGION_SIZE) follow region 0 on the AXI side, at axi-base +
/// 32 MiB: that is where memory BARs are reached (`outboundRegionAddress`).
///
/// Facts from Linux `drivers/pci/controller/pcie-rockchip.h` (read at torvalds/linux 2bce6abecc03; register offsets and
/// sizes) and `pcie-rockchip.c` (`rockchip_pcie_cfg_configuration_accesses`: region 0's
/// DESC0 type field, bits 3:0, RC_REGION_0_TYPE_MASK). How a configuration request of each
/// type is claimed follows PCIe r6.0 §7.3.3: a Type 0 request is consumed by the function on
/// the link below the root port (bus = the root port's secondary bus); a Type 1 request is
/// forwarded by bridges to a bus inside their secondary…subordinate range below it; anything
/// else ends as an Unsupported Request, which reads all-ones and drops writes.
public final class RockchipPCIeController {
    /// PCIE_RC_CONFIG_NORMAL_BASE: the root port's configuration space within apb-base.
    public static let rcConfigNormalBase: UInt64 = 0x80_0000
    /// PCIE_CORE_AXI_CONF_BASE + 0x8 (PCIE_CORE_OB_REGION_DESC0) for region 0; region r's
    /// descriptors are r << OB_REG_SIZE_SHIFT (5) further.
    public static let outboundRegion0Desc0: UInt64 = 0xC0_0008
    /// RC_REGION_0_TYPE_MASK.
    public static let regionTypeMask: UInt32 = 0xF
    /// AXI_WRAPPER_TYPE0_CFG / AXI_WRAPPER_TYPE1_CFG.
    public static let type0Configuration: UInt32 = 0xA
    public static let type1Configuration: UInt32 = 0xB
    /// AXI_REGION_0_SIZE: the configuration region (32 MiB, "equal to sum of sizes of other
    /// regions").
    public static let region0Size: UInt64 = 32 << 20
    /// AXI_REGION_SIZE: each of regions 1…32.
    public static let regionSize: UInt64 = 1 << 20
    /// MAX_AXI_WRAPPER_REGION_NUM: `rockchip_pcie_prog_ob_atu` refuses region numbers from 33.
    public static let regionCount = 33
    /// ROCKCHIP_VENDOR_ID, which `rockchip_pcie_host_init_port` writes to
    /// PCIE_CORE_CONFIG_VENDOR: the root port's Vendor ID.
    public static let vendorID: UInt16 = 0x1D87
    /// The RK3399 root port's Device ID (PCI ID database: 1d87:0100 "RK3399 PCI Express Root
    /// Port").
    public static let rootPortDeviceID: UInt16 = 0x0100
    /// Bytes of apb-base the model decodes: the root port's 4 KiB configuration space and
    /// region 0's descriptors lie below this.
    public static let apbSpan: UInt64 = 0xC0_0010

    public let rootComplex: RootComplex
    /// The root port at devfn 0 of the root bus (its own config space is in apb-base).
    public let rootPort: PCIToPCIBridge
    /// Region 0's DESC0 register (only its type field matters here); reset value 0, which is
    /// neither configuration type until software programs it.
    public private(set) var region0Descriptor: UInt32 = 0
    /// Other apb-base registers software writes (client, core, outbound regions 1…32): kept so
    /// they read back; the model gives them no effect.
    private var registers: [UInt64: UInt32] = [:]

    /// The MMIO faces of the controller to put on the system bus (each holds the controller).
    public func makeAPB() -> APB { APB(controller: self) }
    public func makeConfigurationRegion() -> ConfigurationRegion { ConfigurationRegion(controller: self) }

    public init(rootComplex: RootComplex, rootPort: PCIToPCIBridge) {
        self.rootComplex = rootComplex
        self.rootPort = rootPort
    }

    /// The CPU offset from axi-base of outbound region `region` (1…32): region 0 takes the
    /// first 32 MiB, then 1 MiB per region.
    public static func outboundRegionOffset(_ region: Int) -> UInt64 {
        region0Size + UInt64(max(region - 1, 0)) * regionSize
    }

    /// What a configuration request through region 0 at `offset` reaches, given the region's
    /// current type: the function's Requester ID, or nil (Unsupported Request).
    public func claim(offset: UInt64) -> RequesterID? {
        guard offset < Self.region0Size else { return nil }
        let bus = UInt8(truncatingIfNeeded: offset >> 20)
        let devfn = UInt8(truncatingIfNeeded: offset >> 12)
        let secondary = UInt8(truncatingIfNeeded: rootPort.configRead(offset: ConfigRegister.secondaryBus, size: 1))
        let subordinate = UInt8(truncatingIfNeeded: rootPort.configRead(offset: ConfigRegister.subordinateBus, size: 1))
        switch region0Descriptor & Self.regionTypeMask {
        case Self.type0Configuration:
            guard bus == secondary, secondary != 0 else { return nil }
        case Self.type1Configuration:
            guard bus > secondary, bus <= subordinate else { return nil }
        default:
            return nil
        }
        return RequesterID(bus: bus, device: devfn >> 3, function: devfn & 7)
    }

    /// apb-base: the root port's configuration space and the controller's registers.
    public final class APB: MMIODevice {
        public let controller: RockchipPCIeController
        public var mmioName: String { "\(controller.rootComplex.name)-apb" }

        init(controller: RockchipPCIeController) { self.controller = controller }

        public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
            guard [1, 2, 4].contains(size) else { throw .badAccess(PhysicalAddress(offset), size: size) }
            let config = RockchipPCIeController.rcConfigNormalBase
            if offset >= config, offset - config < 0x1000 {
                return UInt64(controller.rootPort.configRead(offset: Int(offset - config), size: size))
            }
            let word = offset & ~3
            let value = word == RockchipPCIeController.outboundRegion0Desc0 ? controller.region0Descriptor : controller.registers[word] ?? 0
            return UInt64(value >> (8 * UInt32(offset & 3))) & UInt64.lowMask(8 * size)
        }

        public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
            guard [1, 2, 4].contains(size) else { throw .badAccess(PhysicalAddress(offset), size: size) }
            let config = RockchipPCIeController.rcConfigNormalBase
            if offset >= config, offset - config < 0x1000 {
                controller.rootPort.configWrite(offset: Int(offset - config), size: size, value: UInt32(truncatingIfNeeded: value))
                return
            }
            // The other registers are 32 bits wide; a narrower write merges into its word.
            let word = offset & ~3
            let shift = 8 * UInt32(offset & 3)
            let mask = UInt32(truncatingIfNeeded: UInt64.lowMask(8 * size)) << shift
            let old = word == RockchipPCIeController.outboundRegion0Desc0 ? controller.region0Descriptor : controller.registers[word] ?? 0
            let new = (old & ~mask) | (UInt32(truncatingIfNeeded: value) << shift & mask)
            if word == RockchipPCIeController.outboundRegion0Desc0 {
                controller.region0Descriptor = new
            } else {
                controller.registers[word] = new
            }
        }
    }

    /// axi-base, outbound region 0: configuration requests to the buses below the root port.
    /// Accesses of 1, 2 or 4 bytes; an Unsupported Request reads all-ones and drops a write.
    public final class ConfigurationRegion: MMIODevice {
        public let controller: RockchipPCIeController
        public var mmioName: String { "\(controller.rootComplex.name)-axi-config" }

        init(controller: RockchipPCIeController) { self.controller = controller }

        public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
            guard [1, 2, 4].contains(size) else { throw .badAccess(PhysicalAddress(offset), size: size) }
            guard let rid = controller.claim(offset: offset),
                  let value = controller.rootComplex.configRead(rid, offset: Int(offset & 0xFFF), size: size) else {
                return UInt64.lowMask(8 * size)
            }
            return UInt64(value)
        }

        public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
            guard [1, 2, 4].contains(size) else { throw .badAccess(PhysicalAddress(offset), size: size) }
            guard let rid = controller.claim(offset: offset) else { return }
            controller.rootComplex.configWrite(rid, offset: Int(offset & 0xFFF), size: size, value: UInt32(truncatingIfNeeded: value))
        }
    }
}

/// Copying for a forked world: the root complex through the map (so the root port is its copy),
/// and the registers software wrote.
extension RockchipPCIeController: WorldCloneable {
    public func clone(into map: inout CloneMap) -> RockchipPCIeController {
        let rc: RootComplex = map.clone(rootComplex)
        guard let port = map.copy(of: rootPort) else {
            preconditionFailure("RockchipPCIeController \(rootComplex.name): its root port is not attached to its root complex")
        }
        let copy = RockchipPCIeController(rootComplex: rc, rootPort: port)
        copy.region0Descriptor = region0Descriptor
        copy.registers = registers
        return copy
    }
}

extension RockchipPCIeController.APB: WorldCloneable {
    public func clone(into map: inout CloneMap) -> RockchipPCIeController.APB {
        RockchipPCIeController.APB(controller: map.clone(controller))
    }
}

extension RockchipPCIeController.ConfigurationRegion: WorldCloneable {
    public func clone(into map: inout CloneMap) -> RockchipPCIeController.ConfigurationRegion {
        RockchipPCIeController.ConfigurationRegion(controller: map.clone(controller))
    }
}
