import Bus

/// The IO Remapping Table (Arm DEN 0049E.f, "IO Remapping Table, Platform Design Document";
/// ACPICA `ACPI_TABLE_IORT`): how IDs from PCIe root complexes and named components reach
/// SMMUs and GIC ITS groups. Table revisions 0 (DEN 0049 issue A…D) through 7 (E.f) are read.
///
/// Layout fields (`IORTNode.offset`, `length`, `mappingOffset`, array offsets) are kept as read
/// so that the field dump and error messages can name bytes; the writer ignores them and lays
/// out every node itself (header at 0, nodes from 0x30, each node's fixed part, then its ID
/// mappings and arrays, as QEMU's `build_iort` does), so `IORT(bytes: x.bytes()) == x` for a
/// table that was read from such a canonical layout.
public struct IORT: Hashable, Sendable, ACPIFieldDump {
    public var header: ACPITableHeader
    /// Offset to the node array (§3.1, Table 2 "Offset to Array of IORT Nodes") as read.
    public var nodeOffset: UInt32
    /// The header's Reserved word.
    public var reserved: UInt32
    /// Nodes in table order.
    public var nodes: [IORTNode]

    public init(header: ACPITableHeader = ACPITableHeader(signature: "IORT", revision: 5), nodeOffset: UInt32 = 0x30,
                reserved: UInt32 = 0, nodes: [IORTNode]) {
        self.header = header
        self.nodeOffset = nodeOffset
        self.reserved = reserved
        self.nodes = nodes
    }

    /// The index of the node that starts at `offset`, as ID mappings refer to nodes.
    public func nodeIndex(atOffset offset: UInt32) -> Int? {
        nodes.firstIndex { UInt64($0.offset) == UInt64(offset) }
    }
}

/// One IORT node (DEN 0049E.f §3.1.1, Table 3 "IORT node header"): the common 16-byte header,
/// the type-specific data and the ID mapping array.
public struct IORTNode: Hashable, Sendable {
    /// Byte offset of the node in its table (as read).
    public var offset: Int
    /// Length as read.
    public var length: UInt16
    public var revision: UInt8
    /// "Identifier" (DEN 0049E.b on; "Reserved" before, and iasl's label for tables below
    /// revision 3): a unique ID among the nodes.
    public var identifier: UInt32
    /// Offset of the ID mapping array from the node start, as read.
    public var mappingOffset: UInt32
    public var mappings: [IORTIDMapping]
    public var kind: Kind

    public init(offset: Int = 0, length: UInt16 = 0, revision: UInt8, identifier: UInt32, mappingOffset: UInt32 = 0,
                mappings: [IORTIDMapping] = [], kind: Kind) {
        self.offset = offset
        self.length = length
        self.revision = revision
        self.identifier = identifier
        self.mappingOffset = mappingOffset
        self.mappings = mappings
        self.kind = kind
    }

    /// The node type field (DEN 0049E.f Table 4).
    public var type: UInt8 {
        switch kind {
        case .itsGroup: return 0
        case .namedComponent: return 1
        case .rootComplex: return 2
        case .smmuV1V2: return 3
        case .smmuV3: return 4
        case .pmcg: return 5
        case .rmr: return 6
        case .unknown(let type, _): return type
        }
    }

    /// A short readable name of the type: "ITS group", "SMMUv3", …
    public var typeName: String {
        switch kind {
        case .itsGroup: return "ITS group"
        case .namedComponent: return "named component"
        case .rootComplex: return "root complex"
        case .smmuV1V2: return "SMMUv1/v2"
        case .smmuV3: return "SMMUv3"
        case .pmcg: return "PMCG"
        case .rmr: return "RMR"
        case .unknown(let type, _): return "type \(ACPIHex.format(type))"
        }
    }

    public enum Kind: Hashable, Sendable {
        case itsGroup(IORTITSGroup)
        case namedComponent(IORTNamedComponent)
        case rootComplex(IORTRootComplex)
        case smmuV1V2(IORTSMMUv1v2)
        case smmuV3(IORTSMMUv3)
        case pmcg(IORTPMCG)
        case rmr(IORTRMR)
        /// A type this reader does not know: the bytes between the node header and the end of
        /// the node (mapping array included, which is also decoded into `mappings`).
        case unknown(type: UInt8, data: [UInt8])
    }
}

/// An ID mapping (DEN 0049E.f §3.1.1.2 "ID mappings", Table 5; ACPICA `ACPI_IORT_ID_MAPPING`): 20 bytes.
public struct IORTIDMapping: Hashable, Sendable {
    public var inputBase: UInt32
    /// The "Number of IDs" field, which the spec defines as the number of IDs in the range
    /// **minus one** (QEMU writes `id_count - 1`; Linux `iort_id_map` treats
    /// `input_base + id_count` as the last ID, inclusive).
    public var numberOfIDsMinusOne: UInt32
    public var outputBase: UInt32
    /// Offset of the output node from the start of the table, as read.
    public var outputReference: UInt32
    /// The node at `outputReference` (an index into `IORT.nodes`), resolved by the reader; the
    /// writer uses it to write the reference at the node's new offset.
    public var outputNode: Int
    /// Bit 0: single mapping (the output is the node's own ID, `outputBase`, not a range).
    public var flags: UInt32

    public init(inputBase: UInt32, numberOfIDsMinusOne: UInt32, outputBase: UInt32, outputReference: UInt32 = 0,
                outputNode: Int, flags: UInt32 = 0) {
        self.inputBase = inputBase
        self.numberOfIDsMinusOne = numberOfIDsMinusOne
        self.outputBase = outputBase
        self.outputReference = outputReference
        self.outputNode = outputNode
        self.flags = flags
    }

    /// A mapping of `count` IDs (count ≥ 1).
    public init(inputBase: UInt32, count: UInt64, outputBase: UInt32, outputNode: Int, singleMapping: Bool = false) {
        self.init(inputBase: inputBase, numberOfIDsMinusOne: UInt32(clamping: max(count, 1) - 1), outputBase: outputBase,
                  outputNode: outputNode, flags: singleMapping ? 1 : 0)
    }

    /// Flags bit 0.
    public var isSingleMapping: Bool { flags & 1 != 0 }
    /// How many IDs the range covers: the field plus one (up to 2^32).
    public var count: UInt64 { UInt64(numberOfIDsMinusOne) + 1 }
    /// The input IDs covered, first…last.
    public var inputRange: ClosedRange<UInt64> { UInt64(inputBase)...(UInt64(inputBase) + UInt64(numberOfIDsMinusOne)) }
}

/// Memory access properties (DEN 0049E.f §3.1.1.2, Table 7/8), 8 bytes: Cache Coherency
/// (4 bytes; 1 = fully coherent), allocation hints (1), reserved (2), memory access flags (1:
/// bit 0 coherent path to memory (CPM), bit 1 device attributes (DACS)).
public struct IORTMemoryAccessProperties: Hashable, Sendable {
    public var cacheCoherency: UInt32
    public var hints: UInt8
    public var reserved: UInt16
    public var memoryFlags: UInt8

    public init(cacheCoherency: UInt32 = 0, hints: UInt8 = 0, reserved: UInt16 = 0, memoryFlags: UInt8 = 0) {
        self.cacheCoherency = cacheCoherency
        self.hints = hints
        self.reserved = reserved
        self.memoryFlags = memoryFlags
    }

    /// CCA = 1: the device's accesses are cache coherent (Linux `iort_dma_setup` → `dev_dma_attr`).
    public var isCoherent: Bool { cacheCoherency == 1 }
}

/// ITS group node, type 0 (DEN 0049E.f §3.1.1.3, Table 12): the GIC ITS IDs (MADT GIC ITS
/// structure "GIC ITS ID") of the group.
public struct IORTITSGroup: Hashable, Sendable {
    public var itsIdentifiers: [UInt32]
    public init(itsIdentifiers: [UInt32]) { self.itsIdentifiers = itsIdentifiers }
}

/// Named component node, type 1 (DEN 0049E.f §3.1.1.4, Table 13).
public struct IORTNamedComponent: Hashable, Sendable {
    /// Node flags: bit 0 stall supported, bits 5:1 substream width.
    public var nodeFlags: UInt32
    public var memoryProperties: IORTMemoryAccessProperties
    /// Memory address size limit (node revision ≥ 1; reserved before).
    public var memoryAddressSizeLimit: UInt8
    /// The device object name area as stored: a NUL-terminated namespace path and its padding
    /// up to the ID mapping array.
    public var deviceNameField: [UInt8]

    public init(nodeFlags: UInt32 = 0, memoryProperties: IORTMemoryAccessProperties = .init(), memoryAddressSizeLimit: UInt8 = 0,
                deviceNameField: [UInt8]) {
        self.nodeFlags = nodeFlags
        self.memoryProperties = memoryProperties
        self.memoryAddressSizeLimit = memoryAddressSizeLimit
        self.deviceNameField = deviceNameField
    }

    /// The namespace path up to its NUL ("\\_SB.PCI0.DEV0").
    public var deviceName: String {
        String(decoding: deviceNameField.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// Root complex node, type 2 (DEN 0049E.f §3.1.1.5, Table 17; ACPICA `ACPI_IORT_ROOT_COMPLEX`).
public struct IORTRootComplex: Hashable, Sendable {
    public var memoryProperties: IORTMemoryAccessProperties
    /// ATS attribute: bit 0 ATS supported, bit 1 PRI supported, bit 2 PASID forwarding supported.
    public var atsAttribute: UInt32
    /// The PCI segment (MCFG "PCI Segment Group Number", `_SEG`) this root complex is.
    public var pciSegment: UInt32
    /// Memory address size limit (node revision ≥ 1; reserved before).
    public var memoryAddressSizeLimit: UInt8
    /// PASID capabilities, bits 4:0 maximum PASID width (node revision ≥ 4, E.d; reserved before).
    public var pasidCapabilities: UInt16
    /// The reserved byte at offset 35.
    public var reserved: UInt8
    /// Flags at offset 36 (node revision ≥ 4; present only when the node's fixed part is 40
    /// bytes long). Bit 0: PASID forwarding on the root port.
    public var flags: UInt32?

    public init(memoryProperties: IORTMemoryAccessProperties = .init(), atsAttribute: UInt32 = 0, pciSegment: UInt32,
                memoryAddressSizeLimit: UInt8 = 0, pasidCapabilities: UInt16 = 0, reserved: UInt8 = 0, flags: UInt32? = nil) {
        self.memoryProperties = memoryProperties
        self.atsAttribute = atsAttribute
        self.pciSegment = pciSegment
        self.memoryAddressSizeLimit = memoryAddressSizeLimit
        self.pasidCapabilities = pasidCapabilities
        self.reserved = reserved
        self.flags = flags
    }

    public var atsSupported: Bool { atsAttribute & 1 != 0 }
}

/// A GSIV and its flags (bit 0: edge triggered), as the SMMUv1/v2 interrupt arrays hold them.
public struct IORTInterrupt: Hashable, Sendable {
    public var gsiv: UInt32
    public var flags: UInt32
    public init(gsiv: UInt32, flags: UInt32 = 0) {
        self.gsiv = gsiv
        self.flags = flags
    }
}

/// SMMUv1/v2 node, type 3 (DEN 0049E.f §3.1.1.6, Table 14).
public struct IORTSMMUv1v2: Hashable, Sendable {
    public var baseAddress: UInt64
    public var span: UInt64
    /// 0 SMMUv1, 1 SMMUv2, 2 MMU-400, 3 MMU-500, 4 MMU-401, 5 Cavium ThunderX SMMUv2.
    public var model: UInt32
    /// Bit 0 DVM supported, bit 1 coherent page table walk.
    public var flags: UInt32
    /// The two global interrupts (SMMU_NSgIrpt, SMMU_NSgCfgIrpt).
    public var globalInterrupts: [IORTInterrupt]
    public var contextInterrupts: [IORTInterrupt]
    public var pmuInterrupts: [IORTInterrupt]
    /// Array offsets as read.
    public var globalInterruptOffset: UInt32
    public var contextInterruptOffset: UInt32
    public var pmuInterruptOffset: UInt32

    public init(baseAddress: UInt64, span: UInt64, model: UInt32, flags: UInt32 = 0, globalInterrupts: [IORTInterrupt],
                contextInterrupts: [IORTInterrupt] = [], pmuInterrupts: [IORTInterrupt] = [],
                globalInterruptOffset: UInt32 = 0, contextInterruptOffset: UInt32 = 0, pmuInterruptOffset: UInt32 = 0) {
        self.baseAddress = baseAddress
        self.span = span
        self.model = model
        self.flags = flags
        self.globalInterrupts = globalInterrupts
        self.contextInterrupts = contextInterrupts
        self.pmuInterrupts = pmuInterrupts
        self.globalInterruptOffset = globalInterruptOffset
        self.contextInterruptOffset = contextInterruptOffset
        self.pmuInterruptOffset = pmuInterruptOffset
    }
}

/// SMMUv3 node, type 4 (DEN 0049E.f §3.1.1.7, Table 15; ACPICA `ACPI_IORT_SMMU_V3`).
public struct IORTSMMUv3: Hashable, Sendable {
    /// Model values (Table 15, "Model"); Linux `acpi_smmu_v3_get_options` and
    /// `iort_iommu_msi_get_resv_regions` act on them.
    public enum Model {
        public static let generic: UInt32 = 0
        /// HiSilicon Hi161x: the ITS doorbell is reached without SMMU translation
        /// (erratum 161010801); Linux reserves the ITS frames as MSI regions.
        public static let hisiliconHi161x: UInt32 = 1
        /// Cavium CN99xx: page 1 is not implemented (Linux `ARM_SMMU_OPT_PAGE0_REGS_ONLY`).
        public static let caviumCN99xx: UInt32 = 2
    }

    public var baseAddress: UInt64
    /// Bit 0 COHACC override, bits 2:1 HTTU override, bit 3 proximity domain valid, bit 4
    /// DeviceID mapping index valid (E.e).
    public var flags: UInt32
    public var reserved: UInt32
    /// VATOS address (0 when there is none).
    public var vatosAddress: UInt64
    public var model: UInt32
    public var eventGSIV: UInt32
    public var priGSIV: UInt32
    public var gerrGSIV: UInt32
    public var syncGSIV: UInt32
    /// Node revision ≥ 1 (absent when the fixed part ends at 60).
    public var proximityDomain: UInt32?
    /// Node revision ≥ 2 (absent when the fixed part ends before 68): the index into the ID
    /// mappings of the one that gives the SMMU's own DeviceID for its MSIs.
    public var deviceIDMappingIndex: UInt32?

    public init(baseAddress: UInt64, flags: UInt32 = 0, reserved: UInt32 = 0, vatosAddress: UInt64 = 0, model: UInt32 = 0,
                eventGSIV: UInt32 = 0, priGSIV: UInt32 = 0, gerrGSIV: UInt32 = 0, syncGSIV: UInt32 = 0,
                proximityDomain: UInt32? = 0, deviceIDMappingIndex: UInt32? = 0) {
        self.baseAddress = baseAddress
        self.flags = flags
        self.reserved = reserved
        self.vatosAddress = vatosAddress
        self.model = model
        self.eventGSIV = eventGSIV
        self.priGSIV = priGSIV
        self.gerrGSIV = gerrGSIV
        self.syncGSIV = syncGSIV
        self.proximityDomain = proximityDomain
        self.deviceIDMappingIndex = deviceIDMappingIndex
    }

    public var coherentAccessOverride: Bool { flags & 1 != 0 }
    /// HTTU override, bits 2:1 (0 none, 1 access flag, 2 access and dirty).
    public var httuOverride: UInt32 { (flags >> 1) & 3 }
    public var proximityDomainValid: Bool { flags & 8 != 0 }
    public var deviceIDMappingIndexValid: Bool { flags & 0x10 != 0 }
}

/// PMCG node, type 5 (DEN 0049E.f §3.1.1.8, Table 16): an SMMUv3 performance monitor counter group.
public struct IORTPMCG: Hashable, Sendable {
    public var page0BaseAddress: UInt64
    public var overflowGSIV: UInt32
    /// Offset of the node whose events it counts, as read.
    public var nodeReference: UInt32
    /// The node at `nodeReference` (nil when the reference is 0).
    public var referencedNode: Int?
    /// Node revision ≥ 1 (absent when the fixed part ends at 32).
    public var page1BaseAddress: UInt64?

    public init(page0BaseAddress: UInt64, overflowGSIV: UInt32 = 0, nodeReference: UInt32 = 0, referencedNode: Int?,
                page1BaseAddress: UInt64? = 0) {
        self.page0BaseAddress = page0BaseAddress
        self.overflowGSIV = overflowGSIV
        self.nodeReference = nodeReference
        self.referencedNode = referencedNode
        self.page1BaseAddress = page1BaseAddress
    }
}

/// Reserved memory range node, type 6 (DEN 0049E.f §3.1.1.9, Tables 18/19; E.c introduced it
/// at node revision 1, E.d revised it to 3 and defined the flags beyond bit 0).
public struct IORTRMR: Hashable, Sendable {
    /// Bit 0 remapping permitted, bit 1 access privileged (E.d), bits 9:2 memory access
    /// attributes (E.d: 0x00 device-nGnRnE … 0x05 normal inner/outer write-back).
    public var flags: UInt32
    public var ranges: [IORTMemoryRange]
    /// Offset of the memory range descriptor array, as read.
    public var rangeOffset: UInt32

    public init(flags: UInt32 = 0, ranges: [IORTMemoryRange], rangeOffset: UInt32 = 0) {
        self.flags = flags
        self.ranges = ranges
        self.rangeOffset = rangeOffset
    }

    public var remappingPermitted: Bool { flags & 1 != 0 }
    public var accessPrivileged: Bool { flags & 2 != 0 }
    /// Bits 9:2.
    public var memoryAccessAttributes: UInt8 { UInt8(truncatingIfNeeded: flags >> 2) }
}

/// A memory range descriptor of an RMR node (DEN 0049E.f Table 19): 20 bytes.
public struct IORTMemoryRange: Hashable, Sendable {
    public var base: UInt64
    public var length: UInt64
    public var reserved: UInt32

    public init(base: UInt64, length: UInt64, reserved: UInt32 = 0) {
        self.base = base
        self.length = length
        self.reserved = reserved
    }
}
