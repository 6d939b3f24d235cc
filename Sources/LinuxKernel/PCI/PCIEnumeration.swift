import Bus
import Firmware
import PCI

extension PCISubsystem {
    /// `pci_host_common_probe` → `pci_scan_root_bus_bridge` → `pci_scan_child_bus` for every
    /// enabled host bridge with an ECAM window, then `pci_assign_unassigned_bus_resources`, then
    /// `pci_bus_add_devices` (each function's `Device` registered with the kernel).
    ///
    /// Scanning (drivers/pci/probe.c): on each bus, devfn 0…255 in order; `pci_scan_slot` reads
    /// function 0's Vendor ID (0xFFFF = nothing there, `pci_bus_generic_read_dev_vendor_id`) and
    /// looks at functions 1–7 only when function 0's Header Type bit 7 (multi-function) is set.
    /// A type-1 header is a bridge. `pci_scan_child_bus_extend` first scans every slot of the
    /// bus, and only then, for each bridge on it in list order (`for_each_pci_bridge`,
    /// `pci_scan_bridge_extend` pass 0), the bridge's secondary bus, recursively. So the order
    /// is: the bus's functions by devfn, then each bridge's subtree in turn.
    /// `pci_bus_add_devices` adds devices in the same order (the bus's devices, then each child
    /// bus), and the IOMMU bus notifier probes each at `device_add` (`iommu_probe_device`), so
    /// this is also the order groups are numbered in.
    ///
    /// Bus numbers: the model keeps the numbers the bridges already hold (Linux's pass 0 of
    /// `pci_scan_bridge`, for bridges firmware configured) instead of renumbering with
    /// PCI_REASSIGN_ALL_BUS, because a function's Requester ID in the hardware model is fixed at
    /// construction. A bridge whose secondary bus is 0, or lies outside the host bridge's
    /// `bus-range`, or was already scanned, is not descended into.
    public func enumerate() throws(Errno) {
        for (index, bridge) in kernel.topology.pcieHostBridges.enumerated() where bridge.enabled {
            guard let ecam = HostBridgeConfigAccess(bridge) else {
                kernel.log.log("pci-host-generic", "\(bridge.path): no ECAM window, skipped")
                continue
            }
            let domain = bridge.domain ?? UInt32(index)
            let first = bridge.busRange.lowerBound
            let last = min(bridge.busRange.upperBound, 255)
            guard first <= last else { continue }
            switch ecam {
            case .ecam(let window):
                kernel.log.log("pci-host-generic", "\(bridge.path): ECAM at \(window.base) for bus \(first)-\(last)")
            case .rockchipRK3399(let controller):
                kernel.log.log("rockchip-pcie", "\(bridge.path): root port at \(controller.apb.base) + 0x80_0000, buses \(first + 1)-\(last) through axi-base \(controller.axi.base)")
            }
            var scanned = Set<UInt32>()
            var found: [PCIDevice] = []
            scanBus(UInt32(first), parent: nil, hostBridge: index, domain: domain, ecam: ecam, busRange: first...last,
                    scanned: &scanned, depth: 0, into: &found)
            assignResources(found, bridge: bridge)
            // pci_device_add per function in scan order: pci_init_capabilities (ACS), then
            // device_add, whose bus notifier probes the IOMMU from v6.15.
            for device in found {
                device.dmaAliases = dmaAliases(of: device)
                initACS(device)
                devices.append(device)
                kernel.addDevice(device.device)
                let bars = device.resources.map(\.description).joined(separator: ", ")
                kernel.log.log("pci", "\(device.name): [\(Hex.format(UInt64(device.vendorID), minDigits: 4)):\(Hex.format(UInt64(device.pciDeviceID), minDigits: 4))] type \(Hex.format(UInt64(device.headerType), minDigits: 2))\(bars.isEmpty ? "" : " " + bars)")
                if kernel.configuration.has(.iommuProbeAtDeviceAdd) { try kernel.iommu.probeDevice(device.device) }
            }
        }
    }

    /// `pci_scan_child_bus` for one bus number. At boot every function found is new; a rescan
    /// (`pci_rescan_bus`, `keepExisting`) keeps a function already listed as it is and only
    /// sets up the new ones, still walking the secondary bus of every bridge.
    func scanBus(_ bus: UInt32, parent: PCIDevice?, hostBridge: Int, domain: UInt32, ecam: HostBridgeConfigAccess,
                 busRange: ClosedRange<UInt32>, scanned: inout Set<UInt32>, depth: Int, into found: inout [PCIDevice],
                 keepExisting: Bool = false) {
        guard busRange.contains(bus), !scanned.contains(bus), depth < 32 else { return }
        scanned.insert(bus)
        var bridges: [PCIDevice] = []
        for device in 0..<32 {
            var multifunction = false
            for function in 0..<8 {
                if function > 0 && !multifunction { break }
                let rid = RequesterID(bus: UInt8(truncatingIfNeeded: bus), device: UInt8(device), function: UInt8(function))
                let pdev: PCIDevice
                if keepExisting, let existing = self.device(rid, hostBridge: hostBridge) {
                    pdev = existing
                } else {
                    // pci_is_root_bus(bus->parent): the bus's bridge sits on the root bus.
                    let parentIsRoot = parent.map { UInt32($0.requesterID.bus) == busRange.lowerBound } ?? false
                    guard let access = ecam.access(rid, busRange: busRange, parentIsRoot: parentIsRoot) else { continue }
                    guard let vendor = try? access.read(rid, register: ConfigRegister.vendorID, size: 2, mmio: kernel.mmio),
                          vendor != 0xFFFF, vendor != 0 else { continue }
                    let dev = Device(name: "\(Hex.digits(UInt64(domain), width: 4)):\(rid.description)")
                    pdev = PCIDevice(device: dev, requesterID: rid, hostBridge: hostBridge)
                    pdev.kernel = kernel
                    pdev.configAccess = access
                    pdev.upstreamBridge = parent
                    dev.pci = pdev
                    setupDevice(pdev)
                    found.append(pdev)
                }
                if function == 0 { multifunction = pdev.isMultifunction }
                if pdev.isBridge { bridges.append(pdev) }
            }
        }
        for bridge in bridges {
            guard let secondary = bridge.secondaryBus, secondary != 0 else { continue }
            scanBus(UInt32(secondary), parent: bridge, hostBridge: hostBridge, domain: domain, ecam: ecam,
                    busRange: busRange, scanned: &scanned, depth: depth + 1, into: &found, keepExisting: keepExisting)
        }
    }

    /// `pci_setup_device`: identity, header type, capabilities (`pci_find_capability`: the list
    /// from PCI_CAPABILITY_LIST, next pointers with bits 1:0 ignored, at most 48 hops,
    /// `PCI_FIND_CAP_TTL`), BAR sizing (`pci_read_bases`), bridge bus numbers.
    func setupDevice(_ dev: PCIDevice) {
        // pci_setup_device: "Assume 32-bit PCI; let 64-bit PCI cards (which are far rarer) set
        // this higher" — dev->dma_mask = 0xffffffff until a driver calls dma_set_mask.
        dev.device.dmaMask = dmaBitMask(32)
        dev.vendorID = UInt16(truncatingIfNeeded: (try? dev.readConfig(ConfigRegister.vendorID, size: 2)) ?? 0xFFFF)
        dev.pciDeviceID = UInt16(truncatingIfNeeded: (try? dev.readConfig(ConfigRegister.deviceID, size: 2)) ?? 0xFFFF)
        dev.classCode = ((try? dev.readConfig32(ConfigRegister.revisionID)) ?? 0) >> 8
        let header = UInt8(truncatingIfNeeded: (try? dev.readConfig(ConfigRegister.headerType, size: 1)) ?? 0)
        dev.headerType = header & 0x7F
        dev.isMultifunction = header & 0x80 != 0
        let status = (try? dev.readConfig16(ConfigRegister.status)) ?? 0
        if status & ConfigRegister.statusCapabilitiesList != 0 {
            var position = Int((try? dev.readConfig(ConfigRegister.capabilitiesPointer, size: 1)) ?? 0)
            var ttl = 48
            while ttl > 0, position >= 0x40 {
                ttl -= 1
                position &= ~3
                guard let header = try? dev.readConfig16(position) else { break }
                let id = UInt8(truncatingIfNeeded: header)
                if id == 0xFF { break }
                switch id {
                case CapabilityID.msi where dev.msiCapability == nil: dev.msiCapability = position
                case CapabilityID.msix where dev.msixCapability == nil: dev.msixCapability = position
                case CapabilityID.pciExpress where dev.expressCapability == nil:
                    dev.expressCapability = position
                    let flags = (try? dev.readConfig16(position + 2)) ?? 0
                    dev.expressPortType = UInt8(truncatingIfNeeded: (flags >> 4) & 0xF)
                default: break
                }
                position = Int(header >> 8)
            }
        }
        if dev.isBridge {
            dev.secondaryBus = UInt8(truncatingIfNeeded: (try? dev.readConfig(ConfigRegister.secondaryBus, size: 1)) ?? 0)
            dev.subordinateBus = UInt8(truncatingIfNeeded: (try? dev.readConfig(ConfigRegister.subordinateBus, size: 1)) ?? 0)
        }
        dev.resources = readBases(dev, count: dev.isBridge ? 2 : 6)
    }

    /// `pci_read_bases` / `__pci_read_base`: with memory decoding off (`PCI_COMMAND_MEMORY`
    /// cleared around the probe, as `__pci_read_base` does), write all-ones, read back, restore.
    /// A 64-bit BAR (type bits 2:1 = 0b10) takes the next register as
    /// the upper half. The size is the lowest set address bit of the read-back mask
    /// (`pci_size`), so a broken mask cannot yield a size that is not a power of two. I/O BARs
    /// (bit 0) are skipped: nothing here has one.
    func readBases(_ dev: PCIDevice, count: Int) -> [PCIResource] {
        var resources: [PCIResource] = []
        guard let command = try? dev.readConfig16(ConfigRegister.command) else { return [] }
        try? dev.writeConfig16(ConfigRegister.command, command & ~ConfigRegister.commandMemorySpace)
        defer { try? dev.writeConfig16(ConfigRegister.command, command) }
        var index = 0
        while index < count {
            let offset = ConfigRegister.bar0 + 4 * index
            guard let original = try? dev.readConfig32(offset) else { break }
            if original & 1 != 0 { index += 1; continue }
            let is64 = (original >> 1) & 3 == 2
            try? dev.writeConfig32(offset, 0xFFFF_FFFF)
            var mask = UInt64((try? dev.readConfig32(offset)) ?? 0)
            try? dev.writeConfig32(offset, original)
            if is64, index + 1 < count {
                let upperOriginal = (try? dev.readConfig32(offset + 4)) ?? 0
                try? dev.writeConfig32(offset + 4, 0xFFFF_FFFF)
                let upper = UInt64((try? dev.readConfig32(offset + 4)) ?? 0)
                try? dev.writeConfig32(offset + 4, upperOriginal)
                mask |= upper << 32
            }
            // pci_size: the decode size is the lowest writable address bit ("Get the lowest of
            // them to find the decode size"), so a mask with holes still gives a power of two.
            let addressMask = mask & ~0xF
            if addressMask != 0 {
                let size = addressMask & (~addressMask &+ 1)
                resources.append(PCIResource(bar: index, size: size, is64Bit: is64, prefetchable: original & 0x8 != 0))
            }
            index += is64 ? 2 : 1
        }
        return resources
    }

    /// `pci_for_each_dma_alias` (drivers/pci/search.c): the function's own RID, then for each
    /// bridge on the path to the root bus: PCIe root and switch ports add nothing; a PCIe-to-PCI
    /// bridge (`PCI_EXP_TYPE_PCI_BRIDGE`) adds (its subordinate bus, devfn 0); a PCI-to-PCIe
    /// bridge (`PCI_EXP_TYPE_PCIE_BRIDGE`) and a conventional bridge (no PCIe capability) add
    /// their own RID. Read from config space (PCIe capability port type, secondary bus number).
    func dmaAliases(of dev: PCIDevice) -> [RequesterID] {
        var aliases = [dev.requesterID]
        var bridge = dev.upstreamBridge
        var hops = 0
        while let b = bridge, hops < 256 {
            hops += 1
            bridge = b.upstreamBridge
            guard let type = b.expressPortType else {
                aliases.append(b.requesterID)
                continue
            }
            switch type {
            case 0x4, 0x5, 0x6: continue
            case 0x7: aliases.append(RequesterID(bus: b.secondaryBus ?? 0, devfn: 0))
            case 0x8: aliases.append(b.requesterID)
            default: continue
            }
        }
        return aliases
    }
}

extension Hex {
    /// Lower-case hex with exactly `width` digits (zero padded), as Linux's "%04x".
    static func digits(_ value: UInt64, width: Int) -> String {
        let s = String(value, radix: 16)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}
