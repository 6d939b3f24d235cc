import Testing
import Bus
@testable import Firmware

/// `socionext,synquacer-pre-its` on TI K3 boards: read from the real blobs, and rejected with
/// the node named when malformed.
@Suite("pre-ITS window (socionext,synquacer-pre-its)")
struct PreITSWindowTests {
    /// Every TI K3 board fixture: its one ITS carries `<0x1000000 0x400000>`.
    static let tiBoards = ["ti_k3-am625-sk", "ti_k3-am642-evm", "ti_k3-am654-base-board", "ti_k3-am6548-iot2050-advanced-pg2",
                           "ti_k3-j7200-common-proc-board", "ti_k3-j721e-common-proc-board", "ti_k3-j721e-sk",
                           "ti_k3-j721s2-common-proc-board"]

    @Test("TI J721E: the ITS at 0x182_0000 has the pre-ITS window 0x100_0000 size 0x40_0000 (1 Mi four-byte slots)")
    func j721e() throws {
        let topology = try Topology(dtb: try Fixtures.board("ti_k3-j721e-common-proc-board"))
        #expect(topology.its.count == 1)
        let its = try #require(topology.its.first)
        #expect(its.region.base == PhysicalAddress(0x0182_0000))
        let window = try #require(its.preITSWindow)
        #expect(window == PreITSWindow(base: 0x0100_0000, size: 0x40_0000))
        #expect(window.slots == 0x10_0000)
        // its_irq_get_msi_base_pre_its: base + (DeviceID << 2).
        #expect(window.doorbell(deviceID: 0) == 0x0100_0000)
        #expect(window.doorbell(deviceID: 0x1_0000) == 0x0104_0000)
        #expect(window.doorbell(deviceID: 0xFFFF_FFFF) == 0x0100_0000 + 0x3_FFFF_FFFC, "64-bit arithmetic, no wrap")
        #expect(topology.summary.contains("pre-ITS window 0x100_0000 size 0x40_0000 (socionext,synquacer-pre-its)"), "\(topology.summary)")
    }

    @Test("every TI K3 fixture's ITS carries the same window; no other board fixture has one", arguments: Fixtures.all)
    func everyBoard(name: String) throws {
        let topology = try Topology(dtb: try Fixtures.bytes(name))
        let board = String(name.split(separator: "/").last ?? "").replacingOccurrences(of: ".dtb", with: "")
        let windows = topology.its.compactMap(\.preITSWindow)
        if Self.tiBoards.contains(board) {
            #expect(windows == [PreITSWindow(base: 0x0100_0000, size: 0x40_0000)], "\(board)")
        } else {
            #expect(windows.isEmpty, "\(board)")
        }
    }

    /// The J721E tree with the ITS's property replaced.
    static func j721e(with property: DeviceTreeProperty) throws -> (DeviceTree, String) {
        let tree = try DeviceTree(dtb: try Fixtures.board("ti_k3-j721e-common-proc-board"))
        let path = try #require(tree.nodes.first { $0.node.isCompatible(with: "arm,gic-v3-its") }?.path)
        return (try #require(tree.setting(property, at: path)), path)
    }

    @Test("malformed: fewer than two cells, or not whole cells, stops with the node and property named")
    func malformed() throws {
        for bytes: [UInt8] in [[], [0, 0, 0, 1], [0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0, 4, 9]] {
            let (tree, path) = try Self.j721e(with: DeviceTreeProperty(name: PreITSWindow.property, value: bytes))
            #expect(throws: TopologyError.property(path: path, property: PreITSWindow.property,
                                                   problem: "expected <base size> (2 cells), found \(bytes.count) bytes")) {
                try Topology(deviceTree: tree)
            }
        }
    }

    @Test("a longer property gives its first two cells, as of_property_read_u32_array(…, 2) reads it")
    func longer() throws {
        let (tree, _) = try Self.j721e(with: DeviceTreeProperty(name: PreITSWindow.property, cells: [0x0200_0000, 0x1000, 0xDEAD]))
        let topology = try Topology(deviceTree: tree)
        #expect(topology.its.first?.preITSWindow == PreITSWindow(base: 0x0200_0000, size: 0x1000))
    }

    @Test("the written blob round-trips the property")
    func roundTrip() throws {
        let (tree, _) = try Self.j721e(with: DeviceTreeProperty(name: PreITSWindow.property, cells: [0x0C00_0000, 0x8_0000]))
        let again = try Topology(dtb: try DeviceTreeWriter.write(tree))
        #expect(again.its.first?.preITSWindow == PreITSWindow(base: 0x0C00_0000, size: 0x8_0000))
    }
}
