import Firmware

extension GuestACPITables {
    /// The IORT as QEMU 11.0's `build_iort` writes it for `virt` (DEN 0049E.d layout):
    ///
    /// - Table revision 5 for every shape: QEMU "hw/arm/virt-acpi-build: Add IORT RMR regions to
    ///   handle MSI nested binding" (06c0c8fde786) raised `.rev` from 3 to 5 unconditionally, RMR
    ///   nodes or not (its bios-tables-test blobs were updated for the "IORT revision upgrade").
    /// - Identifiers in node order from 0 (`id++`): the ITS group, each SMMUv3, the root
    ///   complex, then each RMR.
    /// - ITS group (§3.1.1.3, node revision 1): one ITS, identifier 0 = the MADT GIC ITS's
    ///   Translation ID.
    /// - SMMUv3 (§3.1.1.7, node revision 4, 68 bytes + one mapping): base, flags = COHACC
    ///   override, model 0 (generic), GSIVs event = `irq`, PRI = +1, GERR = +3, sync = +2,
    ///   proximity domain 0, DeviceID mapping index 0; one ID mapping of all 0x10000 IDs,
    ///   output base = input base 0, to the ITS group (`build_iort_id_mapping(0, 0x10000,
    ///   IORT_NODE_OFFSET)`).
    /// - Root complex (§3.1.1.5, node revision 3, 36 bytes): CCA 1, allocation hints 0,
    ///   memory access flags 3 (CPM, DACS), ATS attribute 1 only when an accelerated SMMUv3 has
    ///   `ats=on` ("hw/arm/smmuv3-accel: Add support for ATS"), segment 0, memory address size
    ///   limit 64; ID mappings: every SMMU's RID ranges to that SMMU, in SMMU order, then the
    ///   gaps of 0…0xFFFF between them to the ITS group (`create_rc_its_idmaps`: a bypassed
    ///   bridge's RIDs are in a gap), each with output base = input base and flags 0.
    /// - RMR (§3.1.1.9, node revision 3, `build_iort_rmr_nodes`), one per accelerated SMMUv3:
    ///   flags 0 (remapping not permitted, unprivileged, device-nGnRnE; `IORT_RMR_FLAGS`), one
    ///   ID mapping — input base = output base = the first RID of the SMMU's first range, count
    ///   = that range's (`idmap->id_count`), to the SMMU, single-mapping flag set — then one
    ///   memory range descriptor, the reserved MSI window.
    public var iort: IORT {
        var nodes: [IORTNode] = []
        var identifier: UInt32 = 0
        func nextIdentifier() -> UInt32 {
            defer { identifier += 1 }
            return identifier
        }
        let itsNode = 0
        nodes.append(IORTNode(revision: 1, identifier: nextIdentifier(), kind: .itsGroup(IORTITSGroup(itsIdentifiers: [0]))))
        var smmuNodes: [Int] = []
        for smmu in smmus {
            smmuNodes.append(nodes.count)
            nodes.append(IORTNode(
                revision: 4, identifier: nextIdentifier(),
                mappings: [IORTIDMapping(inputBase: 0, count: 0x1_0000, outputBase: 0, outputNode: itsNode)],
                kind: .smmuV3(IORTSMMUv3(baseAddress: smmu.base, flags: 1, model: IORTSMMUv3.Model.generic,
                                         eventGSIV: smmu.firstGSIV, priGSIV: smmu.firstGSIV + 1, gerrGSIV: smmu.firstGSIV + 3,
                                         syncGSIV: smmu.firstGSIV + 2, proximityDomain: 0, deviceIDMappingIndex: 0))))
        }
        var mappings: [IORTIDMapping] = []
        for (index, smmu) in smmus.enumerated() {
            for range in smmu.requesterIDs {
                mappings.append(IORTIDMapping(inputBase: range.lowerBound, count: UInt64(range.count), outputBase: range.lowerBound,
                                              outputNode: smmuNodes[index]))
            }
        }
        if smmus.isEmpty {
            mappings.append(IORTIDMapping(inputBase: 0, count: 0x1_0000, outputBase: 0, outputNode: itsNode))
        } else {
            for gap in Self.itsRanges(smmus) {
                mappings.append(IORTIDMapping(inputBase: gap.lowerBound, count: UInt64(gap.count), outputBase: gap.lowerBound,
                                              outputNode: itsNode))
            }
        }
        let ats: UInt32 = smmus.contains { $0.accelerated && $0.ats } ? 1 : 0
        nodes.append(IORTNode(revision: 3, identifier: nextIdentifier(), mappings: mappings, kind: .rootComplex(IORTRootComplex(
            memoryProperties: IORTMemoryAccessProperties(cacheCoherency: 1, memoryFlags: 3), atsAttribute: ats, pciSegment: 0,
            memoryAddressSizeLimit: 64))))
        if let window = reservedMSIWindow {
            for (index, smmu) in smmus.enumerated() where smmu.accelerated {
                guard let first = smmu.requesterIDs.first else { continue }
                nodes.append(IORTNode(
                    revision: 3, identifier: nextIdentifier(),
                    mappings: [IORTIDMapping(inputBase: first.lowerBound, count: UInt64(first.count), outputBase: first.lowerBound,
                                             outputNode: smmuNodes[index], singleMapping: true)],
                    kind: .rmr(IORTRMR(flags: 0, ranges: [IORTMemoryRange(base: window.base, length: window.size)]))))
            }
        }
        return IORT(header: Self.header("IORT", revision: 5), nodes: nodes)
    }

    /// `create_rc_its_idmaps`: the RID ranges of 0…0xFFFF that reach no SMMU, walking each
    /// SMMU's ranges in SMMU order (QEMU sorts the SMMUs by their first range).
    static func itsRanges(_ smmus: [SMMU]) -> [Range<UInt32>] {
        var gaps: [Range<UInt32>] = []
        var next: UInt32 = 0
        for smmu in smmus {
            for range in smmu.requesterIDs {
                if next < range.lowerBound { gaps.append(next..<range.lowerBound) }
                next = range.upperBound
            }
        }
        if next < 0x1_0000 { gaps.append(next..<0x1_0000) }
        return gaps
    }
}
