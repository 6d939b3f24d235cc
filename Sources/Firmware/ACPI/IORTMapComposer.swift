import Bus

/// Turns IORT ID mappings into the Topology's `IDMap`s (see `Topology(acpi:memory:)`).
struct IORTMapComposer {
    let iort: IORT
    /// `Topology.gic.its`, in MADT order.
    let its: [ITSDescription]
    let madtITS: [MADTGICITS]
    /// IORT node index → `Topology.smmus` index.
    let smmuIndex: [Int: Int]
    /// IORT node index → `Topology.otherIOMMUs` index.
    let iommuIndex: [Int: Int]

    func error(_ node: Int, _ field: String, _ problem: String) -> ACPIError {
        ACPIError(signature: "IORT", structure: "node", offset: iort.nodes[node].offset, field: field, problem: problem)
    }

    /// The target of an ITS group node: the group's first ITS, by MADT Translation ID.
    func itsTarget(_ group: Int) throws(ACPIError) -> DeviceTreeTarget {
        guard case .itsGroup(let g) = iort.nodes[group].kind else { return .node(path: "IORT node \(group)") }
        guard let first = g.itsIdentifiers.first else { throw error(group, "ItsCount", "0: the ITS group names no ITS") }
        // A lone IORT (no MADT read) cannot place its ITSs: the target stays named, not resolved.
        if madtITS.isEmpty { return .node(path: "ITS ID \(first) (no MADT to place it)") }
        guard let index = madtITS.firstIndex(where: { $0.translationID == first }), its.indices.contains(index) else {
            throw error(group, "Identifiers", "ITS ID \(first) is not a MADT GIC ITS Translation ID")
        }
        return .its(index)
    }

    /// A node's own-ID mapping index that Linux skips when translating other IDs
    /// (`iort_get_id_mapping_index`): SMMUv3 revision ≥ 1 with no wired interrupt, or a PMCG.
    func ownIDMappingIndex(_ n: Int) -> Int? {
        let node = iort.nodes[n]
        switch node.kind {
        case .smmuV3(let s):
            guard node.revision >= 1, s.eventGSIV == 0, s.priGSIV == 0, s.gerrGSIV == 0, s.syncGSIV == 0,
                  let index = s.deviceIDMappingIndex, Int(index) < node.mappings.count else { return nil }
            return Int(index)
        case .pmcg:
            return 0
        default:
            return nil
        }
    }

    static func entryLength(_ count: UInt64) -> UInt32 { UInt32(clamping: count) }

    /// Every mapping's output node must be a node: a hand-built `IORT` is checked here, not trusted.
    func checkReferences() throws(ACPIError) {
        for (n, node) in iort.nodes.enumerated() {
            for (i, m) in node.mappings.enumerated() where !iort.nodes.indices.contains(m.outputNode) {
                throw error(n, "ID mapping \(i) Output Reference", "names node index \(m.outputNode) of \(iort.nodes.count)")
            }
        }
    }

    /// The root complex's mappings whose output node is an IOMMU.
    func iommuEntries(_ rc: Int) throws(ACPIError) -> [IDMapEntry] {
        iort.nodes[rc].mappings.compactMap { m -> IDMapEntry? in
            let target: DeviceTreeTarget
            if let s = smmuIndex[m.outputNode] { target = .smmuV3(s) } else if let i = iommuIndex[m.outputNode] { target = .iommu(i) } else { return nil }
            return IDMapEntry(idBase: m.inputBase, phandle: m.outputReference, target: target, outputBase: [m.outputBase],
                              length: m.isSingleMapping ? 1 : Self.entryLength(m.count))
        }
    }

    /// RID → DeviceID, composed through at most one IOMMU, in root complex mapping order and
    /// then the IOMMU's mapping order.
    func msiEntries(_ rc: Int) throws(ACPIError) -> [IDMapEntry] {
        var entries: [IDMapEntry] = []
        for m in iort.nodes[rc].mappings {
            let count: UInt64 = m.isSingleMapping ? 1 : m.count
            let next = iort.nodes[m.outputNode]
            if case .itsGroup = next.kind {
                entries.append(IDMapEntry(idBase: m.inputBase, phandle: m.outputReference, target: try itsTarget(m.outputNode),
                                          outputBase: [m.outputBase], length: Self.entryLength(count)))
                continue
            }
            guard smmuIndex[m.outputNode] != nil || iommuIndex[m.outputNode] != nil else { continue }
            // The IDs this mapping hands to the IOMMU: [outputBase, outputBase + count).
            let outLow = UInt64(m.outputBase), outEnd = outLow + count
            let own = ownIDMappingIndex(m.outputNode)
            for (j, s) in next.mappings.enumerated() where j != own && !s.isSingleMapping {
                guard case .itsGroup = iort.nodes[s.outputNode].kind else { continue }
                let low = max(outLow, UInt64(s.inputBase))
                let end = min(outEnd, UInt64(s.inputBase) + s.count)
                guard low < end else { continue }
                let rid = UInt64(m.inputBase) + (low - outLow)
                let deviceID = UInt64(s.outputBase) + (low - UInt64(s.inputBase))
                // IDs past 32 bits cannot occur in a lookup of a 32-bit RID: leave them out.
                guard rid <= UInt64(UInt32.max), deviceID <= UInt64(UInt32.max) else { continue }
                entries.append(IDMapEntry(idBase: UInt32(rid), phandle: s.outputReference, target: try itsTarget(s.outputNode),
                                          outputBase: [UInt32(deviceID)], length: Self.entryLength(end - low)))
            }
        }
        return entries
    }

    /// ITS bases reached through an SMMUv3 of model HiSilicon Hi161x, in IORT then group order, once each.
    func untranslatedITSBases() throws(ACPIError) -> [PhysicalAddress] {
        var bases: [PhysicalAddress] = []
        for (n, node) in iort.nodes.enumerated() {
            guard case .smmuV3(let smmu) = node.kind, smmu.model == IORTSMMUv3.Model.hisiliconHi161x else { continue }
            for m in node.mappings {
                guard !madtITS.isEmpty, case .itsGroup(let group) = iort.nodes[m.outputNode].kind else { continue }
                for id in group.itsIdentifiers {
                    guard let index = madtITS.firstIndex(where: { $0.translationID == id }) else {
                        throw error(m.outputNode, "Identifiers", "ITS ID \(id) is not a MADT GIC ITS Translation ID (reached from the SMMUv3 at \(ACPIHex.format(node.offset)))")
                    }
                    let base = PhysicalAddress(madtITS[index].baseAddress)
                    if !bases.contains(base) { bases.append(base) }
                }
            }
            _ = n
        }
        return bases
    }
}
