import Bus
import Firmware
import PCI

extension PCISubsystem {
    /// `pci_assign_unassigned_root_bus_resources` for one host bridge, simplified to what the
    /// modelled machines need and kept deterministic:
    /// - Windows come from the bridge's `ranges`: the non-prefetchable 32-bit memory window, and
    ///   the 64-bit one for prefetchable 64-bit BARs (`pbus_size_mem` puts a 64-bit prefetchable
    ///   BAR in the prefetchable window when one exists; every other memory BAR goes to the
    ///   non-prefetchable window, which is below 4 GiB).
    /// - On each bus the resources are sorted by alignment, largest first
    ///   (`__assign_resources_sorted` / `pdev_sort_resources`), ties in enumeration order, and
    ///   placed first-fit from the bottom of the window (`allocate_resource`), each naturally
    ///   aligned (a BAR's alignment is its size).
    /// - A bridge's memory window (PCI_MEMORY_BASE/LIMIT, 1 MiB granularity, PCI-to-PCI bridge
    ///   spec §3.2.5.8) is sized to hold its children, placed like a BAR of that size, then its
    ///   children are placed inside it.
    /// - BAR registers are written with the assigned bus address; `ranges` maps bus to CPU
    ///   address (identity on qemu-virt). A BAR that finds no room stays unassigned and is logged
    ///   ("can't assign; no space").
    func assignResources(_ found: [PCIDevice], bridge: PCIeHostBridge) {
        let memory32 = bridge.ranges.first { $0.space == .memory32 }
        let memory64 = bridge.ranges.first { $0.space == .memory64 }
        var low = memory32.map { Window(range: $0) }
        var high = memory64.map { Window(range: $0) }
        let roots = found.filter { $0.upstreamBridge == nil }
        assign(bus: roots, all: found, low: &low, high: &high)
    }

    struct Window {
        var cpuBase: UInt64
        var busBase: UInt64
        var size: UInt64
        var cursor: UInt64 = 0

        init(range: PCIRange) {
            cpuBase = range.cpuAddress.rawValue
            busBase = range.pciAddress
            size = range.size
        }

        init(cpuBase: UInt64, busBase: UInt64, size: UInt64) {
            self.cpuBase = cpuBase
            self.busBase = busBase
            self.size = size
        }

        /// First fit above the cursor, aligned to `align`; returns the offset into the window.
        mutating func take(_ bytes: UInt64, align: UInt64) -> UInt64? {
            guard bytes > 0, align > 0, align & (align &- 1) == 0 else { return nil }
            // `allocate_resource` aligns the resource's bus address, not its offset into the
            // window: a window that starts off alignment (TI J721E's at 0x1001_1000) puts the
            // first 16 KiB BAR at 0x1001_4000.
            let (here, o0) = busBase.addingReportingOverflow(cursor)
            let (bumped, o1) = here.addingReportingOverflow(align &- 1)
            guard !o0, !o1 else { return nil }
            let start = (bumped & ~(align &- 1)) &- busBase
            let (end, o2) = start.addingReportingOverflow(bytes)
            guard !o2, end <= size else { return nil }
            cursor = end
            return start
        }
    }

    /// One item to place on a bus: a device BAR or a bridge window.
    private struct Item {
        var device: PCIDevice
        var bar: Int?          // nil for a bridge window
        var size: UInt64
        var high: Bool
        var order: Int
    }

    /// Bytes a bridge's subtree needs in the non-prefetchable window, rounded to 1 MiB.
    private func windowSize(of bridge: PCIDevice, all: [PCIDevice]) -> UInt64 {
        let children = all.filter { $0.upstreamBridge === bridge }
        var total: UInt64 = 0
        var items: [(UInt64, UInt64)] = []
        for child in children {
            for r in child.resources { items.append((r.size, r.size)) }
            if child.isBridge {
                let w = windowSize(of: child, all: all)
                if w > 0 { items.append((w, 0x10_0000)) }
            }
        }
        for (size, align) in items.sorted(by: { $0.1 > $1.1 }) {
            total = (total &+ align &- 1) & ~(align &- 1)
            total = total &+ size
        }
        return total == 0 ? 0 : (total &+ 0xF_FFFF) & ~0xF_FFFF
    }

    private func assign(bus: [PCIDevice], all: [PCIDevice], low: inout Window?, high: inout Window?) {
        var items: [Item] = []
        for (order, device) in bus.enumerated() {
            for r in device.resources {
                items.append(Item(device: device, bar: r.bar, size: r.size, high: r.is64Bit && r.prefetchable && high != nil, order: order))
            }
            if device.isBridge {
                let size = windowSize(of: device, all: all)
                if size > 0 { items.append(Item(device: device, bar: nil, size: size, high: false, order: order)) }
            }
        }
        items.sort { a, b in
            let aa = a.bar == nil ? UInt64(0x10_0000) : a.size
            let ba = b.bar == nil ? UInt64(0x10_0000) : b.size
            return aa != ba ? aa > ba : (a.order, a.bar ?? 99) < (b.order, b.bar ?? 99)
        }
        for item in items {
            let align = item.bar == nil ? UInt64(0x10_0000) : item.size
            var placed: (cpu: UInt64, bus: UInt64)?
            if item.high, var w = high, let off = w.take(item.size, align: align) {
                high = w
                placed = (w.cpuBase &+ off, w.busBase &+ off)
            } else if var w = low, let off = w.take(item.size, align: align) {
                low = w
                placed = (w.cpuBase &+ off, w.busBase &+ off)
            }
            let device = item.device
            guard let placed else {
                kernel.log.log("pci", "\(device.name): \(item.bar.map { "BAR \($0)" } ?? "bridge window"): can't assign; no space")
                continue
            }
            if let bar = item.bar {
                let offset = ConfigRegister.bar0 + 4 * bar
                if let index = device.resources.firstIndex(where: { $0.bar == bar }) {
                    device.resources[index].address = PhysicalAddress(placed.cpu)
                    let flags = (try? device.readConfig32(offset)) ?? 0
                    try? device.writeConfig32(offset, UInt32(truncatingIfNeeded: placed.bus) | (flags & 0xF))
                    if device.resources[index].is64Bit {
                        try? device.writeConfig32(offset + 4, UInt32(truncatingIfNeeded: placed.bus >> 32))
                    }
                }
            } else {
                // PCI_MEMORY_BASE / PCI_MEMORY_LIMIT hold address bits 31:20 in bits 15:4.
                let end = placed.bus &+ item.size &- 1
                try? device.writeConfig16(ConfigRegister.memoryBase, UInt16(truncatingIfNeeded: (placed.bus >> 16) & 0xFFF0))
                try? device.writeConfig16(ConfigRegister.memoryLimit, UInt16(truncatingIfNeeded: (end >> 16) & 0xFFF0))
                var inner: Window? = Window(cpuBase: placed.cpu, busBase: placed.bus, size: item.size)
                var none: Window?
                let children = all.filter { $0.upstreamBridge === device }
                assign(bus: children, all: all, low: &inner, high: &none)
            }
        }
    }
}
