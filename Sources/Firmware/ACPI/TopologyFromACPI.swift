import Bus

extension Topology {
    /// Derives the platform description from ACPI tables, the way Linux's ACPI boot path finds
    /// the same things (`acpi_parse_gic_cpu_interface`, `gic_acpi_init`, `iort_init_platform_devices`,
    /// `pci_mcfg_lookup`, `iort_node_map_id`):
    ///
    /// - `cpus`: MADT GICC structures that are enabled or online capable (Linux skips the
    ///   others), in table order, by MPIDR.
    /// - `gic`: from the first GICD (architecture from its version; 0 = "probe" is GICv3 when
    ///   any redistributor is described, else GICv2); redistributor regions from GICR
    ///   structures, else from the GICCs' GICR bases (128 KiB each, 256 KiB for GICv4); ITSs
    ///   from GIC ITS structures in MADT order (128 KiB each); v2m frames from MSI frames (4 KiB).
    /// - `smmus`: IORT SMMUv3 nodes (`path` "IORT@0x48 SMMUv3"; 128 KiB, 64 KiB for the Cavium
    ///   CN99xx model as Linux `arm_smmu_v3_resource_size`); SMMUv1/v2 and PMCG nodes go to
    ///   `otherIOMMUs`.
    /// - `pcieHostBridges`: one per IORT root complex node, joined with the MCFG entry of its PCI
    ///   segment (ECAM window and bus range; `domain` = segment). `ranges` stay empty: ACPI
    ///   puts the MMIO windows in the DSDT's `_CRS`, which is AML and not read here. MCFG
    ///   segments with no root complex node follow, with no maps.
    /// - `iommuMap`: the root complex's ID mappings whose output is an SMMU (a bypass range,
    ///   mapped straight to an ITS group, is absent); `msiMap`: the composed RID → DeviceID
    ///   chain, root complex → SMMU → ITS group or root complex → ITS group, split where the
    ///   ranges intersect, targeting the group's first ITS (by MADT Translation ID). Entries
    ///   carry the IORT output reference (a node offset) where the DT path has a phandle.
    /// - `untranslatedITSBases`: the ITSs behind an SMMUv3 of model HiSilicon Hi161x (Linux
    ///   `iort_iommu_msi_get_resv_regions`, erratum 161010801: the doorbell bypasses the SMMU).
    ///
    /// ID mappings are taken as the spec defines them (Number of IDs = count − 1); Linux's
    /// tolerance of tables that store the count itself (`iort_id_map`'s overlap check) and a
    /// single mapping in a root complex matching every RID are left to a walk of `iort`.
    /// Memory is not in these tables (it is in the UEFI memory map): the caller passes it,
    /// `ACPITableSet.defaultMemory()` gives a guess.
    public init(acpi tables: ACPITableSet, memory: [MemoryRange]) throws(ACPIError) {
        self.init(memory: memory.sorted())
        iort = tables.iort
        if let madt = tables.madt {
            let used = madt.structures.filter {
                if case .gicc(let c) = $0.kind { return c.isEnabled || c.isOnlineCapable } else { return false }
            }
            cpus = used.compactMap { s in
                guard case .gicc(let c) = s.kind else { return nil }
                return CPUDescription(path: "MADT@\(ACPIHex.format(s.offset)) GICC", mpidr: c.mpidr, compatible: [], enableMethod: nil)
            }
            gic = Self.gic(madt, usedGICCs: used)
        }
        guard let table = tables.iort else {
            appendMCFGOnlyBridges(tables.mcfg, skipping: [])
            return
        }
        var smmuIndex: [Int: Int] = [:]
        var iommuIndex: [Int: Int] = [:]
        for (n, node) in table.nodes.enumerated() {
            let path = "IORT@\(ACPIHex.format(node.offset)) \(node.typeName)"
            switch node.kind {
            case .smmuV3(let smmu):
                smmuIndex[n] = smmus.count
                smmus.append(SMMUv3Description(
                    path: path, compatible: [],
                    region: MemoryRange(base: PhysicalAddress(smmu.baseAddress), size: smmu.model == IORTSMMUv3.Model.caviumCN99xx ? 0x1_0000 : 0x2_0000),
                    iommuCells: nil, phandle: nil, dmaCoherent: smmu.coherentAccessOverride,
                    interruptNames: Self.interruptNames(smmu), msiParent: [], enabled: true, iortNode: n))
            case .smmuV1V2(let smmu):
                iommuIndex[n] = otherIOMMUs.count
                // Linux's IORT platform device for the node has the SMMU_NSgIrpt global
                // interrupt and the context interrupts (`arm_smmu_init_resources`, which skips
                // SMMU_NSgCfgIrpt); `arm_smmu_device_acpi_probe` takes one global interrupt and
                // the version from the Model field.
                otherIOMMUs.append(IOMMUDescription(path: path, compatible: [], regions: [MemoryRange(base: PhysicalAddress(smmu.baseAddress), size: smmu.span)],
                                                    iommuCells: nil, phandle: nil, enabled: true, globalInterrupts: 1,
                                                    interruptCount: 1 + smmu.contextInterrupts.count, iortModel: smmu.model, iortNode: n))
            case .pmcg(let pmcg):
                iommuIndex[n] = otherIOMMUs.count
                var regions = [MemoryRange(base: PhysicalAddress(pmcg.page0BaseAddress), size: 0x1000)]
                if let page1 = pmcg.page1BaseAddress, page1 != 0 { regions.append(MemoryRange(base: PhysicalAddress(page1), size: 0x1000)) }
                otherIOMMUs.append(IOMMUDescription(path: path, compatible: [], regions: regions, iommuCells: nil, phandle: nil, enabled: true))
            default:
                break
            }
        }
        let composer = IORTMapComposer(iort: table, its: gic?.its ?? [], madtITS: tables.madt?.its ?? [],
                                       smmuIndex: smmuIndex, iommuIndex: iommuIndex)
        try composer.checkReferences()
        var segments: [UInt32] = []
        for (n, node) in table.nodes.enumerated() {
            guard case .rootComplex(let rc) = node.kind else { continue }
            segments.append(rc.pciSegment)
            let entry = tables.mcfg?.entries.first { UInt32($0.segment) == rc.pciSegment }
            let window = entry?.ecamWindow
            let config = window.map { MemoryRange(base: PhysicalAddress($0.base), size: $0.size) }
            let iommuEntries = try composer.iommuEntries(n)
            let msiEntries = try composer.msiEntries(n)
            pcieHostBridges.append(PCIeHostBridge(
                path: "IORT@\(ACPIHex.format(node.offset)) root complex", compatible: [], enabled: true,
                regions: config.map { [$0] } ?? [], regionNames: config == nil ? [] : ["ecam"], configSpace: config,
                busRange: entry.map { UInt32($0.startBus)...UInt32(max($0.startBus, $0.endBus)) } ?? 0...255,
                busRangeIsDefault: entry == nil, domain: rc.pciSegment, ranges: [],
                iommuMap: iommuEntries.isEmpty ? nil : IDMap(kind: .iommu, entries: iommuEntries),
                msiMap: msiEntries.isEmpty ? nil : IDMap(kind: .msi, entries: msiEntries),
                msiParent: [], iommus: [], dmaCoherent: rc.memoryProperties.isCoherent, functionNodes: [], iortNode: n))
        }
        appendMCFGOnlyBridges(tables.mcfg, skipping: segments)
        untranslatedITSBases = try composer.untranslatedITSBases()
    }

    private mutating func appendMCFGOnlyBridges(_ mcfg: MCFG?, skipping segments: [UInt32]) {
        guard let mcfg else { return }
        var seen = segments
        for (i, entry) in mcfg.entries.enumerated() where !seen.contains(UInt32(entry.segment)) {
            seen.append(UInt32(entry.segment))
            let config = entry.ecamWindow.map { MemoryRange(base: PhysicalAddress($0.base), size: $0.size) }
            pcieHostBridges.append(PCIeHostBridge(
                path: "MCFG@\(ACPIHex.format(44 + 16 * i)) segment \(entry.segment)", compatible: [], enabled: true,
                regions: config.map { [$0] } ?? [], regionNames: config == nil ? [] : ["ecam"], configSpace: config,
                busRange: UInt32(entry.startBus)...UInt32(max(entry.startBus, entry.endBus)), busRangeIsDefault: false,
                domain: UInt32(entry.segment), ranges: [], iommuMap: nil, msiMap: nil, msiParent: [], iommus: [],
                dmaCoherent: false, functionNodes: []))
        }
    }

    /// Linux `arm_smmu_v3_init_resources`: one name per wired interrupt, or "combined" for a
    /// Cavium CN99xx whose four GSIVs are one line.
    static func interruptNames(_ smmu: IORTSMMUv3) -> [String] {
        if smmu.model == IORTSMMUv3.Model.caviumCN99xx, smmu.eventGSIV != 0, smmu.eventGSIV == smmu.priGSIV,
           smmu.eventGSIV == smmu.gerrGSIV, smmu.eventGSIV == smmu.syncGSIV {
            return ["combined"]
        }
        var names: [String] = []
        if smmu.eventGSIV != 0 { names.append("eventq") }
        if smmu.priGSIV != 0 { names.append("priq") }
        if smmu.gerrGSIV != 0 { names.append("gerror") }
        if smmu.syncGSIV != 0 { names.append("cmdq-sync") }
        return names
    }

    static func gic(_ madt: MADT, usedGICCs: [MADTStructure]) -> GICDescription? {
        guard let gicdStructure = madt.structures.first(where: { if case .gicd = $0.kind { return true } else { return false } }),
              case .gicd(let gicd) = gicdStructure.kind else { return nil }
        let giccs = usedGICCs.compactMap { s -> MADTGICC? in if case .gicc(let c) = s.kind { return c } else { return nil } }
        let architecture: GICDescription.Architecture
        switch gicd.version {
        case 1, 2: architecture = .v2
        case 0: architecture = (!madt.gicrs.isEmpty || giccs.contains { $0.gicrBaseAddress != 0 }) ? .v3 : .v2
        default: architecture = .v3
        }
        var redistributors: [MemoryRange] = []
        if architecture == .v3 {
            if !madt.gicrs.isEmpty {
                redistributors = madt.gicrs.map { MemoryRange(base: PhysicalAddress($0.baseAddress), size: UInt64($0.length)) }
            } else {
                let size: UInt64 = gicd.version == 4 ? 0x4_0000 : 0x2_0000
                redistributors = giccs.filter { $0.gicrBaseAddress != 0 }.map { MemoryRange(base: PhysicalAddress($0.gicrBaseAddress), size: size) }
            }
        }
        var cpuInterface: [MemoryRange] = []
        var maintenance: [UInt32]?
        if let first = giccs.first {
            // Linux ACPI_GIC_CPU_IF_MEM_SIZE (8 KiB), ACPI_GICV2_VCTRL_MEM_SIZE (4 KiB), ACPI_GICV2_VCPU_MEM_SIZE (8 KiB).
            for (base, size) in [(first.physicalBaseAddress, UInt64(0x2000)), (first.gichBaseAddress, 0x1000), (first.gicvBaseAddress, 0x2000)] where base != 0 {
                cpuInterface.append(MemoryRange(base: PhysicalAddress(base), size: size))
            }
            // A PPI GSIV as the DT's three cells (GIC binding: type 1 = PPI, number − 16, 4 = level high).
            if (16..<32).contains(first.vgicMaintenanceInterrupt) {
                maintenance = [1, first.vgicMaintenanceInterrupt - 16, 4]
            }
        }
        let its = madt.structures.compactMap { s -> ITSDescription? in
            guard case .its(let i) = s.kind else { return nil }
            return ITSDescription(path: "MADT@\(ACPIHex.format(s.offset)) GIC ITS \(i.translationID)",
                                  region: MemoryRange(base: PhysicalAddress(i.baseAddress), size: 0x2_0000), phandle: nil,
                                  isMSIController: true, msiCells: nil, enabled: true, translationID: i.translationID)
        }
        let frames = madt.structures.compactMap { s -> GICv2mFrame? in
            guard case .msiFrame(let f) = s.kind else { return nil }
            return GICv2mFrame(path: "MADT@\(ACPIHex.format(s.offset)) GIC MSI frame \(f.frameID)",
                               region: MemoryRange(base: PhysicalAddress(f.baseAddress), size: 0x1000), phandle: nil, isMSIController: true,
                               baseSPI: f.overridesTyper ? UInt32(f.spiBase) : nil, spiCount: f.overridesTyper ? UInt32(f.spiCount) : nil,
                               enabled: true)
        }
        return GICDescription(
            path: "MADT@\(ACPIHex.format(gicdStructure.offset)) GICD", compatible: [], phandle: nil, architecture: architecture,
            distributor: MemoryRange(base: PhysicalAddress(gicd.baseAddress), size: architecture == .v3 ? 0x1_0000 : 0x1000),
            redistributorRegions: redistributors, redistributorStride: nil, cpuInterfaceRegions: cpuInterface,
            maintenanceInterrupt: maintenance, isMSIController: false, mbiRanges: [], its: its, v2mFrames: frames)
    }
}

extension ACPITableSet {
    /// A RAM map for tables that do not carry one (ACPI leaves memory to the UEFI memory map):
    /// `Topology.defaultRAM()` over what the tables describe (GIC frames, ITSs, MSI frames,
    /// SMMUs and other IOMMUs, ECAM windows), so the DT and ACPI paths choose alike. Empty when
    /// the tables cannot be read or no conventional base is free.
    public func defaultMemory() -> [MemoryRange] {
        guard let topology = try? Topology(acpi: self, memory: []), let ram = topology.defaultRAM() else { return [] }
        return [ram]
    }
}
