import Bus
import Firmware

extension ArmSMMUv3Driver {
    /// `iort_iommu_rmr_get_resv_regions` → `iort_find_rmrs(iommu, dev)`: the reserved memory
    /// ranges (DEN 0049E.f §3.1.1.9, RMR nodes) whose StreamIDs include one of the device's.
    /// Nothing for a table below revision 5 (Linux: "Only supports ARM DEN 0049E.d onwards").
    /// For each RMR node in table order, `iort_node_get_rmr_info`:
    /// - no ID mappings → "Invalid ID mapping, skipping RMR node" (firmware bug);
    /// - no memory range descriptors → skipped;
    /// - a mapping counts when its output node is the device's SMMU node and, for a PCI device,
    ///   `iort_rmr_has_dev`: the host bridge has `preserve_config` (the RMR's StreamIDs are
    ///   only valid while the firmware's bus numbering stands, DEN 0049E.d §3.1.1.5) and some
    ///   fwspec ID lies in [output_base, output_base + id_count] (inclusive, 32-bit sum);
    /// - when any mapping counts, every descriptor becomes a region (`iort_get_rmrs`).
    func iortRMRReservedRegions(_ walker: IORTWalker, smmu: Int, device: Device, ids: [UInt32]) -> [ReservedRegion] {
        let iort = walker.iort
        guard iort.header.revision >= 5 else { return [] }
        var regions: [ReservedRegion] = []
        for node in iort.nodes {
            guard case .rmr(let rmr) = node.kind else { continue }
            guard !node.mappings.isEmpty else {
                walker.fwBug("Invalid ID mapping, skipping RMR node \(iortHex(node.offset))")
                continue
            }
            guard !rmr.ranges.isEmpty else { continue }
            let matches = node.mappings.contains { map in
                map.outputNode == smmu && rmrHasDevice(device, ids: ids, start: map.outputBase, count: map.numberOfIDsMinusOne)
            }
            if matches { regions += iortRMRRegions(walker, rmr) }
        }
        return regions
    }

    /// `iort_rmr_has_dev(dev, id_start, id_count)`.
    func rmrHasDevice(_ device: Device, ids: [UInt32], start: UInt32, count: UInt32) -> Bool {
        if let pci = device.pci {
            guard kernel.topology.pcieHostBridges.indices.contains(pci.hostBridge),
                  kernel.topology.pcieHostBridges[pci.hostBridge].preserveBootConfiguration else { return false }
        }
        let last = start &+ count
        return ids.contains { $0 >= start && $0 <= last }
    }

    /// `iort_get_rmrs` for one RMR node: `iort_rmr_desc_check_overlap` first (a zero-length
    /// descriptor: "RMR descriptor[…] with zero length, continue anyway"; two overlapping:
    /// "RMR descriptor[… - …] overlaps, continue anyway"), then per descriptor (Table 19):
    /// - type IOMMU_RESV_DIRECT_RELAXABLE with flags bit 0 (remapping permitted), else
    ///   IOMMU_RESV_DIRECT;
    /// - prot IOMMU_READ | IOMMU_WRITE, + IOMMU_PRIV with flags bit 1 (access privileged);
    ///   memory access attributes (flags bits 9:2): 0x00…0x03 (device nGnRnE … GRE) +
    ///   IOMMU_MMIO, 0x05 (normal inner/outer write-back) + IOMMU_CACHE, others nothing more;
    /// - `iort_rmr_alloc`: a base or length not 64 KiB aligned is rounded to the kernel's pages
    ///   (base &= PAGE_MASK, length = PAGE_ALIGN(length + offset_in_page(base))) with "RMR
    ///   descriptor[…] not aligned to 64K, continue with […]". 64-bit sums wrap as Linux's.
    func iortRMRRegions(_ walker: IORTWalker, _ rmr: IORTRMR) -> [ReservedRegion] {
        let ranges = rmr.ranges
        for (i, range) in ranges.enumerated() {
            guard range.length != 0 else {
                walker.fwBug("RMR descriptor[\(iortHex(range.base))] with zero length, continue anyway")
                continue
            }
            let end = range.base &+ range.length &- 1
            for other in ranges[(i + 1)...] {
                let otherEnd = other.base &+ other.length &- 1
                if range.base <= otherEnd && end >= other.base {
                    walker.fwBug("RMR descriptor[\(iortHex(range.base)) - \(iortHex(end))] overlaps, continue anyway")
                }
            }
        }
        let type: ReservedRegionType = rmr.remappingPermitted ? .directRelaxable : .direct
        var prot: IOMMUProtection = [.read, .write]
        if rmr.accessPrivileged { prot.insert(.priv) }
        let attributes = rmr.memoryAccessAttributes
        if attributes <= 0x03 { prot.insert(.mmio) } else if attributes == 0x05 { prot.insert(.cache) }
        let pageSize = kernel.pageSize
        let pageMask = ~(pageSize &- 1)
        return ranges.map { range in
            var start = range.base, length = range.length
            if range.base % 0x1_0000 != 0 || range.length % 0x1_0000 != 0 {
                start = range.base & pageMask
                length = (range.length &+ (range.base & (pageSize &- 1)) &+ pageSize &- 1) & pageMask
                walker.fwBug("RMR descriptor[\(iortHex(range.base)) - \(iortHex(range.base &+ range.length &- 1))] not aligned to 64K, continue with [\(iortHex(start)) - \(iortHex(start &+ length &- 1))]")
            }
            return ReservedRegion(start: start, length: length, protection: prot, type: type)
        }
    }
}
