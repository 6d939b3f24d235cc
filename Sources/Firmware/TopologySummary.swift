import Bus

extension Topology {
    /// A deterministic text rendering for the CLI and for golden tests: one line per unit, in
    /// topology order (device tree order; memory sorted by address), addresses in `Hex.format`.
    public var summary: String {
        var lines: [String] = []
        lines.append("model: \(model ?? "-")")
        lines.append("compatible: \(compatible.joined(separator: ", "))")
        lines.append("cpus: \(cpus.count) (mpidr \(cpus.map { Hex.format($0.mpidr, minDigits: 1) }.joined(separator: " ")))")
        for range in memory { lines.append("memory: \(range)\(memoryIsDefault ? " (default: the description gives no usable RAM)" : "")") }
        for range in memoryReservations { lines.append("reservation: \(range)") }
        for region in reservedMemory {
            let ranges = region.ranges.map(\.description).joined(separator: ", ")
            lines.append("reserved-memory: \(region.path) \(ranges.isEmpty ? "(dynamic)" : ranges)\(region.noMap ? " no-map" : "")")
        }
        if let gic {
            lines.append("gic: \(gic.architecture.rawValue) \(gic.path) distributor \(gic.distributor)")
            for region in gic.redistributorRegions { lines.append("  redistributors: \(region)") }
            if let stride = gic.redistributorStride { lines.append("  redistributor-stride: \(Hex.format(stride, minDigits: 1))") }
            for region in gic.cpuInterfaceRegions { lines.append("  cpu interface/virtualization: \(region)") }
            if gic.maintenanceInterrupt != nil { lines.append("  maintenance interrupt: yes") }
            if gic.isMSIController { lines.append("  msi-controller (MBI)") }
            for (i, its) in gic.its.enumerated() {
                lines.append("  its[\(i)]: \(its.path) \(its.region)\(its.phandle.map { " phandle \(Hex.format(UInt64($0), minDigits: 1))" } ?? "")\(its.enabled ? "" : " disabled")")
                if let window = its.preITSWindow {
                    lines.append("    \(window): MSIs name their DeviceID by address (\(Hex.format(window.slots, minDigits: 1)) 4-byte slots), so the ITS cannot isolate them")
                }
            }
            for (i, frame) in gic.v2mFrames.enumerated() {
                lines.append("  v2m[\(i)]: \(frame.path) \(frame.region)\(frame.enabled ? "" : " disabled")")
            }
        } else {
            lines.append("gic: none")
        }
        for (i, smmu) in smmus.enumerated() {
            let parent = smmu.msiParent.map { "\($0.target)" }.joined(separator: ", ")
            lines.append("smmu[\(i)]: \(smmu.path) \(smmu.region) #iommu-cells \(smmu.iommuCells.map(String.init) ?? "-")"
                         + "\(smmu.dmaCoherent ? " dma-coherent" : "")\(parent.isEmpty ? "" : " msi-parent \(parent)")\(smmu.enabled ? "" : " disabled")")
        }
        for (i, iommu) in otherIOMMUs.enumerated() {
            // An IORT SMMUv1/v2 node has no compatible: its Model field (DEN 0049 Table 14) names it.
            let name = iommu.compatible.first ?? iommu.iortModel.map { "model \($0) (\(IOMMUDescription.iortModelName($0)))" } ?? "-"
            lines.append("iommu[\(i)]: \(iommu.path) \(name)\(iommu.enabled ? "" : " disabled")")
        }
        for bridge in pcieHostBridges {
            lines.append("pcie: \(bridge.path) \(bridge.compatible.first ?? "-") buses \(bridge.busRange.lowerBound)-\(bridge.busRange.upperBound)"
                         + "\(bridge.configSpace.map { " config \($0)" } ?? "")\(Self.controllerText(bridge.kind))\(bridge.enabled ? "" : " disabled")")
            for range in bridge.ranges where range.space != .configuration {
                lines.append("  ranges: \(range.space) \(range.cpuAddress) → PCI \(Hex.format(range.pciAddress, minDigits: 1)) size \(Hex.format(range.size, minDigits: 1))\(range.prefetchable ? " prefetchable" : "")")
            }
            for map in [bridge.iommuMap, bridge.msiMap].compactMap({ $0 }) {
                let mask = map.mask == 0xFFFF_FFFF ? "" : " mask \(Hex.format(UInt64(map.mask), minDigits: 1))"
                lines.append("  \(map.kind.rawValue)\(mask): \(map.entries.map(\.description).joined(separator: " "))")
            }
            if !bridge.msiParent.isEmpty { lines.append("  msi-parent: \(bridge.msiParent.map { "\($0.target)" }.joined(separator: ", "))") }
            if !bridge.iommus.isEmpty { lines.append("  iommus: \(bridge.iommus.map { "\($0.target)" }.joined(separator: ", "))") }
        }
        if !untranslatedITSBases.isEmpty {
            lines.append("untranslated ITS bases: \(untranslatedITSBases.sorted().map(\.description).joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }
}

extension Topology {
    /// How a non-ECAM host bridge reaches configuration space, for its summary line.
    static func controllerText(_ kind: HostBridgeKind) -> String {
        switch kind {
        case .generic: ""
        case .rockchipRK3399(let controller): " axi-base \(controller.axi) apb-base \(controller.apb) (root port at apb-base + 0x80_0000)"
        }
    }
}
