extension IOMMUSubsystem {
    /// `iommu_get_resv_regions(dev)`: the driver's `get_resv_regions` (for arm-smmu-v3 the
    /// SW_MSI window, then `iommu_dma_get_resv_regions`' firmware regions).
    public func reservedRegions(for device: Device) -> [ReservedRegion] {
        ops(for: device)?.reservedRegions(for: device) ?? []
    }

    /// `iommu_get_group_resv_regions(group)`: every device's regions inserted one by one with
    /// `iommu_insert_resv_region`, which keeps the list sorted by start (then type) and merges
    /// overlapping or adjacent regions of the same type only.
    public func reservedRegions(group: IOMMUGroup) -> [ReservedRegion] {
        var list: [ReservedRegion] = []
        for device in group.devices {
            for region in reservedRegions(for: device) {
                Self.insertReservedRegion(region, into: &list)
            }
        }
        return list
    }

    /// The file `/sys/kernel/iommu_groups/N/reserved_regions` (`iommu_group_show_resv_regions`):
    /// one "0x%016llx 0x%016llx %s" line per region, start and last byte.
    public func reservedRegionsSysfs(group: IOMMUGroup) -> String {
        reservedRegions(group: group).map { $0.description + "\n" }.joined()
    }

    /// `enum iommu_resv_type` order (DIRECT, DIRECT_RELAXABLE, RESERVED, MSI, SW_MSI): the
    /// tie-break when two regions start at the same address.
    static func typeOrder(_ type: ReservedRegionType) -> Int {
        switch type {
        case .direct: 0
        case .directRelaxable: 1
        case .reserved: 2
        case .msi: 3
        case .swMSI: 4
        }
    }

    /// `iommu_insert_resv_region(new, regions)`: insert before the first region that starts
    /// later (or at the same start with a type not lower), then walk the list once moving each
    /// region onto a stack; a region of the new region's type that overlaps or touches the last
    /// stacked region of that type is merged into it.
    static func insertReservedRegion(_ new: ReservedRegion, into regions: inout [ReservedRegion]) {
        let position = regions.firstIndex {
            new.start < $0.start || (new.start == $0.start && typeOrder(new.type) <= typeOrder($0.type))
        } ?? regions.count
        regions.insert(new, at: position)
        var stack: [ReservedRegion] = []
        for region in regions {
            guard region.type == new.type,
                  let top = stack.lastIndex(where: { $0.type == region.type }) else {
                stack.append(region)
                continue
            }
            let topEnd = stack[top].end
            let (topEndPlusOne, overflow) = topEnd.addingReportingOverflow(1)
            if !overflow && region.start > topEndPlusOne {
                stack.append(region)
            } else {
                stack[top].length = max(topEnd, region.end) &- stack[top].start &+ 1
            }
        }
        regions = stack
    }
}
