import Bus
import Firmware

extension IOMMUSubsystem {
    /// `pci_set_of_node(dev)` → `of_pci_find_child_device(bus->dev.of_node, devfn)`: a function
    /// on the root bus gets the host-bridge child whose `reg` phys.hi devfn (bits 15:8,
    /// `of_pci_get_devfn`) equals its own; the bus number in phys.hi is not compared, since the
    /// parent node already is the bus. Functions behind a bridge would look among the bridge
    /// node's children; the topology records root-bus nodes only, so they get none.
    public func deviceTreeNode(of device: Device) -> PCIFunctionNode? {
        guard let pci = device.pci, pci.hostBridge >= 0, pci.hostBridge < kernel.topology.pcieHostBridges.count else { return nil }
        let devfn = UInt8(truncatingIfNeeded: pci.requesterID.rawValue)
        // `pci_set_of_node`: the bus's node is its bridge's node, so the chain of bridge devfns
        // from the root bus down must match the node's (`of_pci_find_child_device` per level).
        var chain: [UInt8] = []
        var bridge = pci.upstreamBridge
        var depth = 0
        while let b = bridge, depth < 256 {
            chain.insert(UInt8(truncatingIfNeeded: b.requesterID.rawValue), at: 0)
            bridge = b.upstreamBridge
            depth += 1
        }
        return kernel.topology.pcieHostBridges[pci.hostBridge].functionNodes.first { $0.devfn == devfn && $0.upstream == chain }
    }

    /// `of_iommu_get_resv_regions(dev, list)` (drivers/iommu/of_iommu.c, v6.3+; called from
    /// `iommu_dma_get_resv_regions` when `dev->of_node`), read in a v6.x tree: for each
    /// `memory-region` phandle, the node's first `reg` range is the physical resource (none
    /// without `reg`), and each `iommu-addresses` entry naming this device's node becomes a
    /// region with prot IOMMU_READ | IOMMU_WRITE, plus IOMMU_CACHE when `of_dma_is_coherent`.
    /// The type is `iommu_resv_region_get_type`'s: no physical resource (or `start >= end`) →
    /// IOMMU_RESV_RESERVED; IOVA range equal to the physical range → IOMMU_RESV_DIRECT (Linux
    /// never picks DIRECT_RELAXABLE here: "may be IOMMU_RESV_DIRECT_RELAXABLE for certain cases"
    /// is a comment only); otherwise RESERVED with the warning "treating non-direct mapping …
    /// as reservation". A zero-length entry is skipped ("Cannot reserve IOVA region of 0 size").
    ///
    /// One divergence, on purpose: Linux's loop advances past an entry's address and size only
    /// when the entry names this device, so an entry for another device is re-read from its
    /// address cells as if they were a phandle. The topology parses every entry at its own
    /// width (the binding's shape) and the model takes the entries naming this device from it.
    /// `memory-region` phandles that name something other than a /reserved-memory child are
    /// not in the topology and are skipped.
    public func deviceTreeReservedRegions(for device: Device) -> [ReservedRegion] {
        guard let node = deviceTreeNode(of: device) else { return [] }
        var out: [ReservedRegion] = []
        for phandle in node.memoryRegions {
            guard let memory = kernel.topology.reservedMemory.first(where: { $0.phandle == phandle }) else { continue }
            // of_address_to_resource(it.node, 0): [start, end] inclusive.
            let physical: (start: UInt64, end: UInt64)?
            if let range = memory.ranges.first, range.size > 0 {
                physical = (range.base.rawValue, range.base.rawValue &+ (range.size &- 1))
            } else {
                physical = nil
            }
            for entry in memory.iommuAddresses where entry.devicePath == node.path {
                var prot: IOMMUProtection = [.read, .write]
                if node.dmaCoherent { prot.insert(.cache) }
                guard entry.size > 0 else {
                    kernel.log.log(device.name, "Cannot reserve IOVA region of 0 size")
                    continue
                }
                let end = entry.iova &+ (entry.size &- 1)
                let type: ReservedRegionType
                if let phys = physical, phys.start < phys.end {
                    if entry.iova == phys.start && end == phys.end {
                        type = .direct
                    } else {
                        kernel.log.log(device.name, "treating non-direct mapping [mem 0x\(hex16(phys.start))-0x\(hex16(phys.end))] -> [0x\(hex16(entry.iova))-0x\(hex16(end))] as reservation")
                        type = .reserved
                    }
                } else {
                    type = .reserved
                }
                out.append(ReservedRegion(start: entry.iova, length: entry.size, protection: prot, type: type))
            }
        }
        return out
    }
}
