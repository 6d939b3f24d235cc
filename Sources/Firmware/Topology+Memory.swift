import Bus

extension Topology {
    /// RAM that software may allocate from: every `memory` range minus the `/reserved-memory`
    /// children marked `no-map` and the DTB's `/memreserve/` entries, sorted by base, empty
    /// pieces dropped. This is what Linux's early memblock setup leaves to the page allocator
    /// (`early_init_fdt_scan_reserved_mem` → `memblock_reserve` for `/memreserve/`,
    /// `__reserved_mem_reserve_reg` → `memblock_mark_nomap`/`memblock_remove` for `no-map`).
    /// Reserved regions without `no-map` stay usable here: Linux keeps them mapped and hands
    /// them to their owner, which never includes the page allocator's early users this model
    /// has, so the difference does not show.
    public var usableMemory: [MemoryRange] {
        var holes: [MemoryRange] = memoryReservations
        for region in reservedMemory where region.noMap { holes.append(contentsOf: region.ranges) }
        return memory.flatMap { MemoryRange.subtract(holes, from: $0) }.sorted()
    }

    /// Every MMIO range the description names: GIC frames, ITSs, v2m frames, SMMUs and other
    /// IOMMUs, host bridge registers, ECAM windows and their memory windows. A RAM map chosen
    /// for the platform must overlap none of them.
    public var describedDeviceRegions: [MemoryRange] {
        var regions: [MemoryRange] = []
        if let gic {
            regions.append(gic.distributor)
            regions += gic.redistributorRegions + gic.cpuInterfaceRegions
            regions += gic.its.map(\.region) + gic.v2mFrames.map(\.region)
        }
        regions += smmus.map(\.region)
        regions += otherIOMMUs.flatMap(\.regions)
        for bridge in pcieHostBridges {
            regions += bridge.regions
            if let config = bridge.configSpace { regions.append(config) }
            regions += bridge.ranges.filter { $0.space == .memory32 || $0.space == .memory64 }
                .map { MemoryRange(base: $0.cpuAddress, size: $0.size) }
        }
        return regions.filter { $0.size > 0 }.sorted()
    }

    /// Where the conventional arm64 platforms put DRAM, in the order tried by `defaultRAM`:
    /// QEMU `virt` (hw/arm/virt.c `VIRT_MEM`, 0x4000_0000), Arm's Base System Architecture
    /// map used by FVP, Juno, N1SDP and most SoCs (DRAM0 at 0x8000_0000, DRAM1 at
    /// 0x8_8000_0000), and the high DRAM of SBSA servers (0x80_0000_0000).
    public static let conventionalRAMBases: [UInt64] = [0x4000_0000, 0x8000_0000, 0x8_8000_0000, 0x80_0000_0000]

    /// A RAM window of `size` bytes for a description that gives no usable memory (an ACPI table
    /// set, where RAM is in the UEFI memory map that the tables do not carry, or a device tree
    /// whose `memory` node the boot loader fills in, size 0 in the blob): the first
    /// conventional base whose window overlaps nothing the description names. Nil when every
    /// candidate collides.
    public func defaultRAM(size: UInt64 = 0x4000_0000) -> MemoryRange? {
        let taken = describedDeviceRegions + memoryReservations + reservedMemory.flatMap(\.ranges)
        for base in Topology.conventionalRAMBases {
            let candidate = MemoryRange(base: PhysicalAddress(base), size: size)
            if !taken.contains(where: { $0.overlaps(candidate) }) { return candidate }
        }
        return nil
    }
}

extension Topology {
    /// This topology, or, when it has less usable RAM than `minimum`, a copy whose `memory` is
    /// `defaultRAM()` and whose `memoryIsDefault` is set. Unchanged when no default fits.
    public func withDefaultMemory(minimum: UInt64 = 0x100_0000) -> Topology {
        let usable = usableMemory.reduce(UInt64(0)) { $0 &+ $1.size }
        guard usable < minimum, let ram = defaultRAM() else { return self }
        var copy = self
        copy.memory = [ram]
        copy.memoryIsDefault = true
        return copy
    }
}

extension MemoryRange {
    /// Whether the two ranges share a byte (ranges that run past 2^64 end there).
    public func overlaps(_ other: MemoryRange) -> Bool {
        guard size > 0, other.size > 0 else { return false }
        let lastSelf = base.rawValue.addingReportingOverflow(size - 1)
        let lastOther = other.base.rawValue.addingReportingOverflow(other.size - 1)
        let endSelf = lastSelf.overflow ? UInt64.max : lastSelf.partialValue
        let endOther = lastOther.overflow ? UInt64.max : lastOther.partialValue
        return base.rawValue <= endOther && other.base.rawValue <= endSelf
    }

    /// `range` with every hole removed: zero, one or several pieces, in address order.
    public static func subtract(_ holes: [MemoryRange], from range: MemoryRange) -> [MemoryRange] {
        var pieces = [range]
        for hole in holes where hole.size > 0 {
            var next: [MemoryRange] = []
            for piece in pieces {
                guard piece.overlaps(hole) else { next.append(piece); continue }
                if hole.base > piece.base {
                    next.append(MemoryRange(base: piece.base, size: hole.base.rawValue - piece.base.rawValue))
                }
                let holeEnd = hole.base.rawValue.addingReportingOverflow(hole.size)
                let pieceEnd = piece.base.rawValue.addingReportingOverflow(piece.size)
                // A hole that runs to 2^64 leaves nothing above it.
                if !holeEnd.overflow, pieceEnd.overflow || holeEnd.partialValue < pieceEnd.partialValue {
                    let top = pieceEnd.overflow ? UInt64.max - holeEnd.partialValue + 1 : pieceEnd.partialValue - holeEnd.partialValue
                    if top > 0 { next.append(MemoryRange(base: PhysicalAddress(holeEnd.partialValue), size: top)) }
                }
            }
            pieces = next
        }
        return pieces.filter { $0.size > 0 }
    }
}
