import Bus

/// The platform description a machine is built from: RAM, CPUs, the GIC with its ITSs or GICv2m
/// frames, SMMUv3s and other IOMMUs, and PCIe host bridges with the maps that turn a Requester
/// ID into a StreamID and a DeviceID. Derived from a device tree; every list is in device tree
/// (blob) order except `memory`, which is sorted by address, so indices are stable and output
/// is deterministic.
public struct Topology: Hashable, Sendable {
    /// `/model`.
    public var model: String?
    /// `/compatible`.
    public var compatible: [String]
    public var cpus: [CPUDescription]
    /// `reg` of every `device_type = "memory"` node, sorted by base.
    public var memory: [MemoryRange]
    /// `/reserved-memory` children.
    public var reservedMemory: [ReservedMemoryRegion]
    /// The DTB's memory reservation block (DT spec §5.3).
    public var memoryReservations: [MemoryRange]
    /// The first GIC node (`arm,gic-v3` or a GICv2 compatible), nil when there is none.
    public var gic: GICDescription?
    public var smmus: [SMMUv3Description]
    /// Nodes with `#iommu-cells` that are not `arm,smmu-v3` (MMU-500 and others).
    public var otherIOMMUs: [IOMMUDescription]
    public var pcieHostBridges: [PCIeHostBridge]

    /// ITS doorbells that a device's MSI write reaches without SMMU translation.
    ///
    /// Not in the device tree: the DT says which SMMU translates a RID (`iommu-map`) but not
    /// whether the interconnect routes writes to a given ITS frame around the SMMU, which some
    /// platforms do and which decides whether the seed's problem exists there at all. The
    /// device-tree reader leaves it empty; a machine preset (or a scenario) sets it.
    public var untranslatedITSBases: [PhysicalAddress]

    /// `memory` is not the description's: it gave no usable RAM (ACPI tables carry none; a
    /// device tree whose boot loader fills `/memory` in has size 0), and `withDefaultMemory()`
    /// chose a window that overlaps nothing described.
    public var memoryIsDefault: Bool = false

    /// The IORT the topology was derived from (`Topology(acpi:memory:)`), so that software can
    /// walk it itself as Linux's `iort_node_map_id` does; nil on the device-tree path.
    public var iort: IORT?

    public init(model: String? = nil, compatible: [String] = [], cpus: [CPUDescription] = [],
                memory: [MemoryRange] = [], reservedMemory: [ReservedMemoryRegion] = [],
                memoryReservations: [MemoryRange] = [], gic: GICDescription? = nil,
                smmus: [SMMUv3Description] = [], otherIOMMUs: [IOMMUDescription] = [],
                pcieHostBridges: [PCIeHostBridge] = [], untranslatedITSBases: [PhysicalAddress] = [],
                iort: IORT? = nil) {
        self.model = model
        self.compatible = compatible
        self.cpus = cpus
        self.memory = memory
        self.reservedMemory = reservedMemory
        self.memoryReservations = memoryReservations
        self.gic = gic
        self.smmus = smmus
        self.otherIOMMUs = otherIOMMUs
        self.pcieHostBridges = pcieHostBridges
        self.untranslatedITSBases = untranslatedITSBases
        self.iort = iort
    }

    /// Reads a DTB and derives the topology.
    public init(dtb bytes: [UInt8]) throws(TopologyError) {
        let tree: DeviceTree
        do {
            tree = try DeviceTree(dtb: bytes)
        } catch {
            throw .blob(error)
        }
        try self.init(deviceTree: tree)
    }

    public init(deviceTree tree: DeviceTree) throws(TopologyError) {
        var reader = TopologyReader(tree: tree)
        self = try reader.read()
    }

    /// All ITSs, or none when there is no GIC.
    public var its: [ITSDescription] { gic?.its ?? [] }
}

/// Why a device tree could not be turned into a `Topology`: the node path, the property, and
/// what was wrong with it.
public enum TopologyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The blob itself is malformed.
    case blob(FDTError)
    /// A property of a node the topology needs is malformed.
    case property(path: String, property: String, problem: String)

    public var description: String {
        switch self {
        case .blob(let error): return error.description
        case .property(let path, let property, let problem): return "\(path): \(property): \(problem)"
        }
    }
}
