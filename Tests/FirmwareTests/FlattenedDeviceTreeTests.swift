import Testing
@testable import Firmware

@Suite("Flattened device tree reader and writer")
struct FlattenedDeviceTreeTests {
    @Test("the fixture set holds the 14 QEMU dumps and 40 board DTBs the fixtures README lists")
    func fixtureCount() {
        #expect(Fixtures.all.count == 54)
        #expect(Fixtures.all.filter { $0.hasPrefix("qemu-virt/") }.count == 14)
    }

    @Test("every fixture DTB is read without error (dtc 1.6.1 decompiles all 54 too)", arguments: Fixtures.all)
    func readsFixture(name: String) throws {
        let bytes = try Fixtures.bytes(name)
        let fdt = try FlattenedDeviceTree(bytes: bytes)
        // Every fixture was written by dtc or QEMU's libfdt: version 17, compatible with 16,
        // and totalsize is the file size.
        #expect(fdt.header.version == 17)
        #expect(fdt.header.lastCompatibleVersion == 16)
        #expect(Int(fdt.header.totalSize) == bytes.count)
        #expect(fdt.tree.root.name == "")
        #expect(!fdt.tree.root.compatible.isEmpty)
    }

    @Test("read → write → read gives the same tree for every fixture", arguments: Fixtures.all)
    func roundTrip(name: String) throws {
        let tree = try DeviceTree(dtb: try Fixtures.bytes(name))
        let written = try DeviceTreeWriter.write(tree)
        let reread = try FlattenedDeviceTree(bytes: written)
        #expect(reread.tree == tree)
        #expect(reread.header.version == 17)
        // Writing is a pure function of the tree: writing the re-read tree gives the same bytes.
        #expect(try DeviceTreeWriter.write(reread.tree) == written)
    }
}
