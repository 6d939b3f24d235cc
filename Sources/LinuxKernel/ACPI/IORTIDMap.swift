import Firmware

/// The ID translation of drivers/acpi/arm64/iort.c (mainline v6.15) over a parsed `IORT`:
/// `iort_id_map`, `iort_get_id_mapping_index`, `iort_node_map_id` and the root complex lookup
/// `iort_scan_node(ACPI_IORT_NODE_PCI_ROOT_COMPLEX, iort_match_node_callback, …)`.
///
/// Nodes are named by their index in `IORT.nodes`; a mapping's output node is its
/// `outputNode` index. Firmware bugs go to the kernel log with Linux's wording under Linux's
/// `pr_fmt` prefix ("ACPI: IORT: [Firmware Bug]: …"); where Linux prints a kernel pointer
/// (`%p`, hashed in dmesg) the model prints the node's table offset and the map's index.
public struct IORTWalker {
    public let iort: IORT
    let log: KernelLog?

    public init(iort: IORT, log: KernelLog?) {
        self.iort = iort
        self.log = log
    }

    /// `IORT_IOMMU_TYPE`: SMMU (3) | SMMUv3 (4).
    public static let iommuTypeMask: UInt32 = (1 << 3) | (1 << 4)
    /// `IORT_MSI_TYPE`: ITS group (0).
    public static let msiTypeMask: UInt32 = 1 << 0
    /// How many nodes `mapID` visits before giving up. Linux's `iort_node_map_id` has no bound:
    /// a table whose references form a cycle would make it loop forever; the model treats the
    /// walk as failed instead. Real chains are at most RC → SMMU → ITS group (three nodes).
    public static let hopLimit = 16

    /// `IORT_TYPE_MASK(type)`: 1 << type. Types beyond 31 (undefined shifts in C) match nothing.
    static func typeMask(_ type: UInt8) -> UInt32 { type < 32 ? UInt32(1) << UInt32(type) : 0 }

    /// The outcome of `iort_id_map`.
    public enum IDMapResult: Hashable, Sendable {
        /// 0: the ID maps to this output.
        case mapped(UInt32)
        /// -EAGAIN: the ID is the last of the range (`input_base + id_count`) and maps to this
        /// output, but a later mapping starting there may supersede it (the "number of IDs minus
        /// one" confusion).
        case endOfRange(UInt32)
        /// -ENXIO.
        case noMatch
    }

    func fwBug(_ message: String) {
        log?.log("ACPI: IORT", "[Firmware Bug]: " + message)
    }

    func mapName(_ node: Int, _ index: Int) -> String {
        "[map \(iortHex(iort.nodes[node].offset))#\(index)]"
    }

    func nodeName(_ node: Int) -> String {
        "[node \(iortHex(iort.nodes[node].offset)) type \(iort.nodes[node].type)]"
    }

    /// `iort_id_map(map, type, rid_in, &rid_out, check_overlap)` for mapping `index` of `node`:
    /// - a single mapping (flags bit 0) gives `output_base` for a named component or root
    ///   complex node; on any other node it is a firmware bug ("SINGLE MAPPING flag not allowed
    ///   …, skipping ID map") and does not match;
    /// - otherwise the range is [input_base, input_base + id_count] inclusive (Number of IDs is
    ///   the count minus one, DEN 0049E.f §3.1.1.2 Table 5);
    /// - with `checkOverlap` (an earlier mapping matched at its last ID) the overlap is logged
    ///   ("conflicting mapping for input ID"), and only a range starting exactly at the ID may
    ///   take over ("applying workaround.");
    /// - the last ID of a range of more than one ID is `.endOfRange` (-EAGAIN).
    ///
    /// Sums are 32-bit and wrap as Linux's `u32` arithmetic does (no trap on any table).
    public func idMap(node: Int, mapping index: Int, id: UInt32, checkOverlap: Bool) -> IDMapResult {
        let type = iort.nodes[node].type
        let map = iort.nodes[node].mappings[index]
        if map.isSingleMapping {
            if type == 1 || type == 2 { return .mapped(map.outputBase) }
            log?.log("ACPI: IORT", "[Firmware Bug]: \(mapName(node, index)) SINGLE MAPPING flag not allowed for node type \(type), skipping ID map")
            return .noMatch
        }
        let last = map.inputBase &+ map.numberOfIDsMinusOne
        if id < map.inputBase || id > last { return .noMatch }
        if checkOverlap {
            fwBug("\(mapName(node, index)) conflicting mapping for input ID \(iortHex(id))")
            if id != map.inputBase { return .noMatch }
            fwBug("applying workaround.")
        }
        let out = map.outputBase &+ (id &- map.inputBase)
        if map.numberOfIDsMinusOne > 0 && id == last { return .endOfRange(out) }
        return .mapped(out)
    }

    /// `iort_get_id_mapping_index(node)`: the mapping that gives the node's own DeviceID, which
    /// ID translation skips.
    /// - SMMUv3 (DEN 0049E.f §3.1.1.7 "DeviceID mapping index"): none below node revision 1;
    ///   below revision 5 none when all four GSIVs (event, PRI, GERR, sync) are wired; from
    ///   revision 5 (E.e) none unless flags bit 4 (DeviceID mapping index valid); an index past
    ///   the mappings is a firmware bug ("ID mapping index overflows valid mappings"), none.
    ///   A node read without the field (fixed part shorter than 68 bytes) has none.
    /// - PMCG: none with a wired overflow GSIV or no mappings, else 0.
    /// - Other types: none.
    public func idMappingIndex(_ n: Int) -> Int? {
        let node = iort.nodes[n]
        switch node.kind {
        case .smmuV3(let smmu):
            guard node.revision >= 1 else { return nil }
            if node.revision < 5 {
                if smmu.eventGSIV != 0 && smmu.priGSIV != 0 && smmu.gerrGSIV != 0 && smmu.syncGSIV != 0 { return nil }
            } else if !smmu.deviceIDMappingIndexValid {
                return nil
            }
            guard let index = smmu.deviceIDMappingIndex else { return nil }
            guard UInt64(index) < UInt64(node.mappings.count) else {
                fwBug("\(nodeName(n)) ID mapping index overflows valid mappings")
                return nil
            }
            return Int(index)
        case .pmcg(let pmcg):
            return pmcg.overflowGSIV != 0 || node.mappings.isEmpty ? nil : 0
        default:
            return nil
        }
    }

    /// `iort_scan_node(ACPI_IORT_NODE_PCI_ROOT_COMPLEX, iort_match_node_callback, &bus->dev)`:
    /// the first root complex node, in table order, whose PCI Segment Number equals the bus's
    /// `pci_domain_nr`.
    public func rootComplex(segment: UInt32) -> Int? {
        iort.nodes.firstIndex { node in
            if case .rootComplex(let rc) = node.kind { return rc.pciSegment == segment }
            return false
        }
    }
}

/// `0x%x` / `0x%llx`, as iort.c's messages print numbers.
func iortHex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
