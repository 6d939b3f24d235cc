import Testing
import Firmware
@testable import LinuxKernel

/// `iort_node_map_id` and its helpers (drivers/acpi/arm64/iort.c) over IORTs built in code:
/// node 0 is an ITS group, node 1 an SMMUv3, node 2 a root complex unless a case says otherwise.
@Suite("IORT node map")
struct IORTNodeMapIDTests {
    static func smmu(revision: UInt8 = 4, flags: UInt32 = 0, gsivs: UInt32 = 0, deviceIDIndex: UInt32? = 0,
                     mappings: [IORTIDMapping]) -> IORTNode {
        IORTNode(revision: revision, identifier: 1, mappings: mappings,
                 kind: .smmuV3(IORTSMMUv3(baseAddress: 0x0905_0000, flags: flags, eventGSIV: gsivs, priGSIV: gsivs,
                                          gerrGSIV: gsivs, syncGSIV: gsivs, deviceIDMappingIndex: deviceIDIndex)))
    }

    static func rc(_ mappings: [IORTIDMapping]) -> IORTNode {
        IORTNode(revision: 3, identifier: 2, mappings: mappings, kind: .rootComplex(IORTRootComplex(pciSegment: 0)))
    }

    static let its = IORTNode(revision: 1, identifier: 0, kind: .itsGroup(IORTITSGroup(itsIdentifiers: [0])))

    static func map(_ input: UInt32, minusOne: UInt32, _ output: UInt32, to node: Int, single: Bool = false) -> IORTIDMapping {
        IORTIDMapping(inputBase: input, numberOfIDsMinusOne: minusOne, outputBase: output, outputNode: node, flags: single ? 1 : 0)
    }

    static func walker(_ nodes: [IORTNode]) -> (IORTWalker, KernelLog) {
        let log = KernelLog()
        return (IORTWalker(iort: IORT(nodes: nodes), log: log), log)
    }

    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var nodes: [IORTNode]
        var start = 2
        var id: UInt32
        var mask = IORTWalker.msiTypeMask
        var node: Int?
        var out: UInt32
        var logs: [String] = []
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "RC → SMMU → ITS chain, to the SMMU",
             nodes: [its, smmu(gsivs: 1, mappings: [map(0x1000, minusOne: 0xFFF, 0x2000, to: 0)]), rc([map(0, minusOne: 0xFF, 0x1000, to: 1)])],
             id: 0x08, mask: IORTWalker.iommuTypeMask, node: 1, out: 0x1008),
        Case(name: "RC → SMMU → ITS chain, to the ITS group",
             nodes: [its, smmu(gsivs: 1, mappings: [map(0x1000, minusOne: 0xFFF, 0x2000, to: 0)]), rc([map(0, minusOne: 0xFF, 0x1000, to: 1)])],
             id: 0x08, node: 0, out: 0x2008),
        Case(name: "the last ID of a range is inclusive",
             nodes: [its, smmu(gsivs: 1, mappings: [map(0, minusOne: 0xFFFF, 0, to: 0)]), rc([map(0, minusOne: 0xFF, 0, to: 1)])],
             id: 0xFF, mask: IORTWalker.iommuTypeMask, node: 1, out: 0xFF),
        Case(name: "off by one: a range ending where the next starts is superseded by it",
             nodes: [its, smmu(gsivs: 1, mappings: [map(0, minusOne: 0xFFFF, 0, to: 0)]),
                     rc([map(0, minusOne: 0x100, 0, to: 1), map(0x100, minusOne: 0xFF, 0x5000, to: 0)])],
             id: 0x100, node: 0, out: 0x5000,
             logs: ["ACPI: IORT: [Firmware Bug]: [map 0x0#1] conflicting mapping for input ID 0x100",
                    "ACPI: IORT: [Firmware Bug]: applying workaround."]),
        Case(name: "off by one alone: the -EAGAIN match is used",
             nodes: [its, smmu(gsivs: 1, mappings: [map(0, minusOne: 0xFFFF, 0x10000, to: 0)]), rc([map(0, minusOne: 0x100, 0, to: 1)])],
             id: 0x100, node: 0, out: 0x10100),
        Case(name: "conflicting overlap not at the start: the first match stands",
             nodes: [its, smmu(gsivs: 1, mappings: [map(0, minusOne: 0xFFFF, 0, to: 0)]),
                     rc([map(0, minusOne: 0x100, 0, to: 1), map(0x80, minusOne: 0x1FF, 0x9000, to: 0)])],
             id: 0x100, mask: IORTWalker.iommuTypeMask, node: 1, out: 0x100,
             logs: ["ACPI: IORT: [Firmware Bug]: [map 0x0#1] conflicting mapping for input ID 0x100"]),
        Case(name: "single mapping on a root complex: every ID gives the output base",
             nodes: [its, smmu(mappings: []), rc([map(0, minusOne: 0, 0x42, to: 0, single: true)])],
             id: 0x1234, node: 0, out: 0x42),
        Case(name: "single mapping on an SMMUv3 is ignored with a warning",
             nodes: [its, smmu(gsivs: 1, mappings: [map(0, minusOne: 0, 0x77, to: 0, single: true)]), rc([map(0, minusOne: 0xFF, 0, to: 1)])],
             id: 0x08, node: nil, out: 0x08,
             logs: ["ACPI: IORT: [Firmware Bug]: [map 0x0#0] SINGLE MAPPING flag not allowed for node type 4, skipping ID map"]),
        Case(name: "an ID outside every range passes through unchanged",
             nodes: [its, smmu(gsivs: 1, mappings: [map(0, minusOne: 0xFFFF, 0, to: 0)]), rc([map(0, minusOne: 0xFF, 0, to: 1)])],
             id: 0x300, node: nil, out: 0x300),
        Case(name: "a cycle of references terminates as a failure",
             nodes: [its,
                     IORTNode(revision: 4, identifier: 1, mappings: [map(0, minusOne: 0xFFFF, 0, to: 2)],
                              kind: .namedComponent(IORTNamedComponent(deviceNameField: [0]))),
                     rc([map(0, minusOne: 0xFFFF, 0, to: 1)])],
             id: 5, node: nil, out: 5),
        Case(name: "a mapping to no node is a NULL parent reference",
             nodes: [its, smmu(mappings: []), rc([map(0, minusOne: 0xFF, 0, to: 7)])],
             id: 5, node: nil, out: 5,
             logs: ["ACPI: IORT: [Firmware Bug]: [node 0x0 type 2] ID map has NULL parent reference"]),
    ]

    @Test("iort_node_map_id", arguments: cases)
    func mapID(_ c: Case) {
        let (walker, log) = Self.walker(c.nodes)
        let result = walker.mapID(from: c.start, id: c.id, typeMask: c.mask)
        #expect(result.node == c.node)
        #expect(result.id == c.out)
        #expect(log.lines == c.logs)
    }

    /// SMMUv3 mapping 0 (DeviceID index 0) would give 0x9000 + id, mapping 1 the identity.
    static func deviceIDCase(revision: UInt8, flags: UInt32, gsivs: UInt32, index: UInt32? = 0) -> (node: Int?, id: UInt32, log: [String]) {
        let (walker, log) = walker([its, smmu(revision: revision, flags: flags, gsivs: gsivs, deviceIDIndex: index,
                                              mappings: [map(0, minusOne: 0xFFFF, 0x9000, to: 0), map(0, minusOne: 0xFFFF, 0, to: 0)]),
                                    rc([map(0, minusOne: 0xFF, 0, to: 1)])])
        let r = walker.mapID(from: 2, id: 0x10, typeMask: IORTWalker.msiTypeMask)
        return (r.node, r.id, log.lines)
    }

    @Test("iort_get_id_mapping_index: the SMMUv3 DeviceID mapping is skipped by revision, GSIVs and DEVICEID_VALID")
    func deviceIDIndex() {
        #expect(Self.deviceIDCase(revision: 0, flags: 0, gsivs: 0).id == 0x9010)       // revision 0: no index
        #expect(Self.deviceIDCase(revision: 3, flags: 0, gsivs: 0).id == 0x10)         // some GSIV not wired: skipped
        #expect(Self.deviceIDCase(revision: 3, flags: 0, gsivs: 1).id == 0x9010)       // all wired: no index
        #expect(Self.deviceIDCase(revision: 5, flags: 0, gsivs: 0).id == 0x9010)       // E.e without DEVICEID_VALID
        #expect(Self.deviceIDCase(revision: 5, flags: 0x10, gsivs: 1).id == 0x10)      // E.e with it, GSIVs irrelevant
        #expect(Self.deviceIDCase(revision: 3, flags: 0, gsivs: 0, index: nil).id == 0x9010)
        let overflow = Self.deviceIDCase(revision: 3, flags: 0, gsivs: 0, index: 5)
        #expect(overflow.id == 0x9010)
        #expect(overflow.log.first == "ACPI: IORT: [Firmware Bug]: [node 0x0 type 4] ID mapping index overflows valid mappings")
    }

    @Test("PMCG: own-ID index 0 unless its overflow interrupt is wired")
    func pmcgIndex() {
        let pmcg = { (gsiv: UInt32) in
            IORTNode(revision: 1, identifier: 3, mappings: [Self.map(0, minusOne: 0, 0x55, to: 0, single: true)],
                     kind: .pmcg(IORTPMCG(page0BaseAddress: 0x1000, overflowGSIV: gsiv, referencedNode: nil)))
        }
        #expect(Self.walker([Self.its, pmcg(0)]).0.idMappingIndex(1) == 0)
        #expect(Self.walker([Self.its, pmcg(9)]).0.idMappingIndex(1) == nil)
        #expect(Self.walker([Self.its, Self.rc([])]).0.idMappingIndex(1) == nil)
    }

    @Test("root complex lookup by PCI segment, first in table order")
    func rootComplexBySegment() {
        let rc1 = IORTNode(revision: 3, identifier: 3, kind: .rootComplex(IORTRootComplex(pciSegment: 1)))
        let rc1b = IORTNode(revision: 3, identifier: 4, kind: .rootComplex(IORTRootComplex(pciSegment: 1)))
        let (walker, _) = Self.walker([Self.its, rc1, Self.rc([]), rc1b])
        #expect(walker.rootComplex(segment: 1) == 1)
        #expect(walker.rootComplex(segment: 0) == 2)
        #expect(walker.rootComplex(segment: 2) == nil)
    }

    @Test("32-bit sums wrap as in Linux: a range running past 0xFFFFFFFF matches nothing above its wrapped end")
    func wrapping() {
        let (walker, _) = Self.walker([Self.its, Self.rc([Self.map(0xFFFF_FF00, minusOne: 0x200, 0, to: 0)])])
        #expect(walker.mapID(from: 1, id: 0xFFFF_FF10, typeMask: IORTWalker.msiTypeMask).node == nil)
        #expect(walker.idMap(node: 1, mapping: 0, id: 0xFFFF_FF10, checkOverlap: false) == .noMatch)
    }
}
