import Bus
import Firmware
import PCI

/// Linux's `pci_ops` for the RK3399 host bridge (`rockchip_pcie_ops` in
/// `drivers/pci/controller/pcie-rockchip-host.c`, read at torvalds/linux 2bce6abecc03: the accessors as they
/// stand after the `pci_is_root_bus()` and PCIE_ECAM_OFFSET conversions; the model takes them to
/// be unchanged in v6.14–v7.0, which no `KernelBehaviour` distinguishes), as pure decisions a caller carries out with its
/// own MMIO: the host kernel's enumeration and bare-metal bring-up both use them.
///
/// - `rockchip_pcie_valid_device`: on the root bus and on the bus directly below it
///   (`pci_is_root_bus(bus) || pci_is_root_bus(bus->parent)`) only device 0 exists; any
///   other device is PCIBIOS_DEVICE_NOT_FOUND without touching the hardware, which
///   `pci_bus_read_config_*` turns into all-ones (PCI_SET_ERROR_RESPONSE).
/// - `rockchip_pcie_rd_own_conf` / `wr_own_conf`: the root bus is the root port's own space,
///   apb-base + PCIE_RC_CONFIG_NORMAL_BASE + where. A write narrower than 32 bits is a
///   read-modify-write of the aligned word ("the hardware doesn't support smaller writes").
/// - `rockchip_pcie_rd_other_conf` / `wr_other_conf`: any other bus is axi-base +
///   PCIE_ECAM_OFFSET(bus->number, devfn, where) — the absolute bus number, not its offset from
///   the first bus — after `rockchip_pcie_cfg_configuration_accesses` has set outbound region
///   0's type: AXI_WRAPPER_TYPE0_CFG on the bus directly below the root bus, TYPE1_CFG deeper.
/// - An access not aligned to its size is PCIBIOS_BAD_REGISTER_NUMBER (a read gives 0 from the
///   driver, then all-ones from `pci_bus_read_config_*`).
public enum RockchipPCIeHost {
    /// What one configuration access does.
    public enum Target: Hashable, Sendable {
        /// PCIBIOS_DEVICE_NOT_FOUND (`rockchip_pcie_valid_device`).
        case deviceNotFound
        /// PCIBIOS_BAD_REGISTER_NUMBER (`!IS_ALIGNED`).
        case badRegister
        /// The root port's own configuration space at this address (apb-base).
        case ownConfiguration(PhysicalAddress)
        /// Through outbound region 0 at this address (axi-base), after programming `type`.
        case otherConfiguration(PhysicalAddress, type: UInt32)
    }

    /// The access `rockchip_pcie_rd_conf` / `wr_conf` makes for `register` of `devfn` on
    /// `bus`; `rootBus` is the host bridge's first bus and `parentIsRoot` says whether the bus's
    /// parent is the root bus (the bus is the root port's secondary).
    public static func target(_ controller: RockchipRK3399PCIe, bus: UInt8, devfn: UInt8, register: Int, size: Int,
                              rootBus: UInt8, parentIsRoot: Bool) -> Target {
        let isRoot = bus == rootBus
        if (isRoot || parentIsRoot) && devfn >> 3 != 0 { return .deviceNotFound }
        guard register >= 0, register < 0x1000, [1, 2, 4].contains(size), register % size == 0 else { return .badRegister }
        // The reader keeps both regions inside the physical address space, so these sums only
        // fail for a description built in code with a region at the very top.
        if isRoot {
            guard let address = controller.apb.base.adding(RockchipRK3399PCIe.rcConfigNormalBase + UInt64(register)) else { return .badRegister }
            return .ownConfiguration(address)
        }
        let offset = UInt64(bus) << 20 | UInt64(devfn) << 12 | UInt64(register)
        guard let address = controller.axi.base.adding(offset) else { return .badRegister }
        return .otherConfiguration(address, type: parentIsRoot ? RockchipPCIeController.type0Configuration : RockchipPCIeController.type1Configuration)
    }

    /// `rockchip_pcie_cfg_configuration_accesses`: PCIE_RC_BAR_CONF 0, region 0's ADDR0 (25
    /// address bits pass, RC_REGION_0_PASS_BITS), ADDR1 0, DESC0 with its type field replaced by
    /// `type` and bit 23 set, DESC1 0; each a 32-bit write to apb-base.
    public static func programRegion0<E: Error>(_ controller: RockchipRK3399PCIe, type: UInt32,
                                                read: (PhysicalAddress, Int) throws(E) -> UInt64,
                                                write: (PhysicalAddress, Int, UInt64) throws(E) -> Void) throws(E) {
        let apb = controller.apb.base.rawValue
        try write(PhysicalAddress(apb &+ 0x90_0300), 4, 0)                    // PCIE_RC_BAR_CONF
        try write(PhysicalAddress(apb &+ 0xC0_0000), 4, 25 - 1)               // PCIE_CORE_OB_REGION_ADDR0
        try write(PhysicalAddress(apb &+ 0xC0_0004), 4, 0)                    // PCIE_CORE_OB_REGION_ADDR1
        let desc0 = PhysicalAddress(apb &+ RockchipPCIeController.outboundRegion0Desc0)
        var value = UInt32(truncatingIfNeeded: try read(desc0, 4))
        value &= ~RockchipPCIeController.regionTypeMask
        value |= type | 1 << 23
        try write(desc0, 4, UInt64(value))
        try write(PhysicalAddress(apb &+ 0xC0_000C), 4, 0)                    // PCIE_CORE_OB_REGION_DESC1
    }

    /// `pci_bus_read_config_*` through `rockchip_pcie_rd_conf`: all-ones on any failure.
    public static func read<E: Error>(_ controller: RockchipRK3399PCIe, _ target: Target, size: Int,
                                      read: (PhysicalAddress, Int) throws(E) -> UInt64,
                                      write: (PhysicalAddress, Int, UInt64) throws(E) -> Void) throws(E) -> UInt32 {
        switch target {
        case .deviceNotFound, .badRegister:
            return UInt32(truncatingIfNeeded: UInt64.lowMask(8 * min(max(size, 1), 4)))
        case .ownConfiguration(let address):
            return UInt32(truncatingIfNeeded: try read(address, size))
        case .otherConfiguration(let address, let type):
            try programRegion0(controller, type: type, read: read, write: write)
            return UInt32(truncatingIfNeeded: try read(address, size))
        }
    }

    /// `pci_bus_write_config_*` through `rockchip_pcie_wr_conf`; false when the driver refused.
    @discardableResult
    public static func write<E: Error>(_ controller: RockchipRK3399PCIe, _ target: Target, size: Int, value: UInt32,
                                       read: (PhysicalAddress, Int) throws(E) -> UInt64,
                                       write: (PhysicalAddress, Int, UInt64) throws(E) -> Void) throws(E) -> Bool {
        switch target {
        case .deviceNotFound, .badRegister:
            return false
        case .ownConfiguration(let address):
            guard size != 4 else {
                try write(address, 4, UInt64(value))
                return true
            }
            // rockchip_pcie_wr_own_conf: read the aligned word, merge, write it back.
            let word = PhysicalAddress(address.rawValue & ~3)
            let shift = UInt32(address.rawValue & 3) * 8
            let mask = ~(UInt32(truncatingIfNeeded: UInt64.lowMask(8 * size)) << shift)
            var merged = UInt32(truncatingIfNeeded: try read(word, 4)) & mask
            merged |= value << shift
            try write(word, 4, UInt64(merged))
            return true
        case .otherConfiguration(let address, let type):
            try programRegion0(controller, type: type, read: read, write: write)
            try write(address, size, UInt64(value))
            return true
        }
    }
}
