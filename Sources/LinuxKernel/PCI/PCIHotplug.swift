import Bus
import Firmware
import PCI

/// PCI hot-removal and rescan (drivers/pci/remove.c, drivers/pci/probe.c): what the guest's
/// pciehp does when its slot is told to go (`pciehp_unconfigure_device` →
/// `pci_stop_and_remove_bus_device`) or a card appears (`pciehp_configure_device` →
/// `pci_scan_slot`, `pci_assign_unassigned_bridge_resources`, `pci_bus_add_devices`), and what
/// `echo 1 > /sys/bus/pci/rescan` does (`pci_rescan_bus` on every root bus).
///
/// Added for the VMM's hot-unplug / hot-plug events (`ScenarioEvent.hotUnplug`/`hotPlug`). The slot's own
/// registers (Attention Button, Power Controller, Presence Detect: PCIe r6.0 §7.5.3.10/11) are
/// not modelled: the caller plays pciehp and calls these directly.
extension PCISubsystem {
    /// `pci_stop_and_remove_bus_device(dev)`: functions below a bridge first (depth first,
    /// last found first, as `pci_stop_bus_device` / `pci_remove_bus_device` walk
    /// `bus->devices` in reverse), then the function itself:
    /// - `pci_stop_dev` → `device_release_driver`: the model has no driver objects, so the
    ///   caller must have done the driver's `.remove` already (free_irq,
    ///   `pci_free_irq_vectors`); MSI or MSI-X still on is EBUSY rather than a silent leak
    ///   (Linux would tear the vectors down from devres at `device_del` with a WARN for a
    ///   driver that left them);
    /// - `pci_destroy_dev` → `device_del` → the bus notifier's `iommu_release_device`
    ///   (`IOMMUSubsystem.releaseDevice`), then `pci_free_resources` and `list_del` from the
    ///   bus: the function is gone from `devices` and from the kernel's device list.
    /// ENODEV for a function this kernel does not list.
    public func stopAndRemoveBusDevice(_ dev: PCIDevice) throws(Errno) {
        guard devices.contains(where: { $0 === dev }) else { throw .ENODEV }
        let children = devices.filter { $0.upstreamBridge === dev }
        for child in children.reversed() { try stopAndRemoveBusDevice(child) }
        guard !dev.msiEnabled, !dev.msixEnabled, dev.device.msiDescriptors.isEmpty else { throw .EBUSY }
        dev.device.driverName = nil
        kernel.iommu.releaseDevice(dev.device)
        for index in dev.resources.indices { dev.resources[index].address = nil }
        dev.isEnabled = false
        dev.isBusMaster = false
        devices.removeAll { $0 === dev }
        kernel.devices.removeAll { $0 === dev.device }
        kernel.log.log("pci", "\(dev.name): removed")
    }

    /// `pci_rescan_bus` for every enabled host bridge with an ECAM window: `pci_scan_child_bus`
    /// finds functions that are not listed yet — a slot already holding a `pci_dev` is skipped
    /// without touching its config space (`pci_scan_single_device` returns the existing one
    /// from `pci_get_slot`), but the buses below known bridges are scanned too — then
    /// `pci_assign_unassigned_bus_resources` places only the new functions' BARs, then
    /// `pci_bus_add_devices` adds them (the IOMMU bus notifier probes each,
    /// `iommu_probe_device`). Returns the new functions in discovery order.
    @discardableResult
    public func rescanBus() throws(Errno) -> [PCIDevice] {
        var added: [PCIDevice] = []
        for (index, bridge) in kernel.topology.pcieHostBridges.enumerated() where bridge.enabled {
            guard let ecam = HostBridgeConfigAccess(bridge) else { continue }
            let domain = bridge.domain ?? UInt32(index)
            let first = bridge.busRange.lowerBound
            let last = min(bridge.busRange.upperBound, 255)
            guard first <= last else { continue }
            var found: [PCIDevice] = []
            var scanned = Set<UInt32>()
            scanBus(UInt32(first), parent: nil, hostBridge: index, domain: domain, ecam: ecam, busRange: first...last,
                    scanned: &scanned, depth: 0, into: &found, keepExisting: true)
            for device in found {
                device.dmaAliases = dmaAliases(of: device)
                devices.append(device)
            }
            for device in found { assignHotplugResources(device, bridge: bridge) }
            for device in found {
                kernel.addDevice(device.device)
                let bars = device.resources.map(\.description).joined(separator: ", ")
                kernel.log.log("pci", "\(device.name): [\(Hex.format(UInt64(device.vendorID), minDigits: 4)):\(Hex.format(UInt64(device.pciDeviceID), minDigits: 4))] type \(Hex.format(UInt64(device.headerType), minDigits: 2))\(bars.isEmpty ? "" : " " + bars) (rescan)")
                if kernel.configuration.has(.iommuProbeAtDeviceAdd) { try kernel.iommu.probeDevice(device.device) }
            }
            added += found
        }
        return added
    }

    /// `pci_assign_unassigned_bus_resources` for one new function: each BAR, largest first
    /// (ties by BAR number), goes first-fit from the bottom of its window into the lowest
    /// naturally aligned gap that no sibling on the same bus uses (`allocate_resource` →
    /// `find_resource`). The window is the upstream bridge's memory window as programmed
    /// (PCI_MEMORY_BASE/LIMIT, bits 31:20 in bits 15:4 — Linux does not resize a bridge window
    /// with live functions behind it), or on the root bus the host bridge's windows with the
    /// boot-time policy of `assignResources` (64-bit prefetchable BARs in the 64-bit window,
    /// everything else below 4 GiB). A BAR with no room stays unassigned ("can't assign; no
    /// space"). Bridge windows of a new bridge are not sized (hot-added bridges are not
    /// modelled).
    func assignHotplugResources(_ dev: PCIDevice, bridge: PCIeHostBridge) {
        let memory32 = bridge.ranges.first { $0.space == .memory32 }
        let memory64 = bridge.ranges.first { $0.space == .memory64 }
        // Windows in CPU addresses: [start, last].
        var lowWindow: ClosedRange<UInt64>?
        var highWindow: ClosedRange<UInt64>?
        if let upstream = dev.upstreamBridge {
            if let base = try? upstream.readConfig16(ConfigRegister.memoryBase),
               let limit = try? upstream.readConfig16(ConfigRegister.memoryLimit) {
                let busStart = UInt64(base & 0xFFF0) << 16
                let busLast = UInt64(limit & 0xFFF0) << 16 | 0xF_FFFF
                if busStart <= busLast, let range = memory32 {
                    let offset = range.cpuAddress.rawValue &- range.pciAddress
                    lowWindow = (busStart &+ offset)...(busLast &+ offset)
                }
            }
        } else {
            if let r = memory32, r.size > 0 { lowWindow = r.cpuAddress.rawValue...(r.cpuAddress.rawValue &+ (r.size &- 1)) }
            if let r = memory64, r.size > 0 { highWindow = r.cpuAddress.rawValue...(r.cpuAddress.rawValue &+ (r.size &- 1)) }
        }
        // What the siblings already occupy: their BARs and, for bridges, their windows.
        var used: [ClosedRange<UInt64>] = []
        for other in devices where other !== dev && other.hostBridge == dev.hostBridge && other.upstreamBridge === dev.upstreamBridge {
            for r in other.resources {
                if let a = r.address?.rawValue, r.size > 0 { used.append(a...(a &+ (r.size &- 1))) }
            }
            if other.isBridge, let base = try? other.readConfig16(ConfigRegister.memoryBase),
               let limit = try? other.readConfig16(ConfigRegister.memoryLimit), let range = memory32 {
                let start = UInt64(base & 0xFFF0) << 16, last = UInt64(limit & 0xFFF0) << 16 | 0xF_FFFF
                let offset = range.cpuAddress.rawValue &- range.pciAddress
                if start <= last { used.append((start &+ offset)...(last &+ offset)) }
            }
        }
        let order = dev.resources.indices.sorted { a, b in
            let (ra, rb) = (dev.resources[a], dev.resources[b])
            return ra.size != rb.size ? ra.size > rb.size : ra.bar < rb.bar
        }
        for index in order {
            let r = dev.resources[index]
            let window = (r.is64Bit && r.prefetchable && highWindow != nil) ? highWindow : lowWindow
            guard let window, let cpu = Self.firstFit(size: r.size, in: window, avoiding: used) else {
                kernel.log.log("pci", "\(dev.name): BAR \(r.bar): can't assign; no space")
                continue
            }
            used.append(cpu...(cpu &+ (r.size &- 1)))
            let range = (window == highWindow ? memory64 : memory32)
            let busAddress = cpu &- ((range?.cpuAddress.rawValue ?? 0) &- (range?.pciAddress ?? 0))
            dev.resources[index].address = PhysicalAddress(cpu)
            let offset = ConfigRegister.bar0 + 4 * r.bar
            let flags = (try? dev.readConfig32(offset)) ?? 0
            try? dev.writeConfig32(offset, UInt32(truncatingIfNeeded: busAddress) | (flags & 0xF))
            if r.is64Bit { try? dev.writeConfig32(offset + 4, UInt32(truncatingIfNeeded: busAddress >> 32)) }
        }
    }

    /// The lowest `size`-aligned start in `window` whose `size` bytes meet none of `used`.
    static func firstFit(size: UInt64, in window: ClosedRange<UInt64>, avoiding used: [ClosedRange<UInt64>]) -> UInt64? {
        guard size > 0, size & (size &- 1) == 0 else { return nil }
        func alignUp(_ x: UInt64) -> UInt64? {
            let (bumped, overflow) = x.addingReportingOverflow(size &- 1)
            return overflow ? nil : bumped & ~(size &- 1)
        }
        guard var candidate = alignUp(window.lowerBound) else { return nil }
        let sorted = used.sorted { $0.lowerBound < $1.lowerBound }
        while true {
            let (last, overflow) = candidate.addingReportingOverflow(size &- 1)
            guard !overflow, last <= window.upperBound else { return nil }
            guard let clash = sorted.first(where: { $0.lowerBound <= last && candidate <= $0.upperBound }) else { return candidate }
            guard clash.upperBound < .max, let next = alignUp(clash.upperBound &+ 1) else { return nil }
            candidate = next
        }
    }
}
