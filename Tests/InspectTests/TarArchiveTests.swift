import Foundation
import Testing
@testable import Inspect

@Suite("inspect: snapshot archives")
struct TarArchiveTests {
    @Test("write then read gives the same files and links, parents first, bytes independent of input order")
    func roundTrip() throws {
        let long = "sys/" + String(repeating: "d", count: 90) + "/" + String(repeating: "e", count: 90) + "/vendor"
        let longer = String(repeating: "x", count: 300)
        let members: [(path: String, member: TarArchive.Member)] = [
            ("sys/bus/pci/devices/0000:00:01.0/vendor", .file(Array("0x1af4\n".utf8))),
            ("sys/bus/pci/devices/0000:00:01.0/iommu_group", .symbolicLink(target: "../../../../kernel/iommu_groups/0")),
            (long, .file([1, 2, 3])),
            (longer, .file([])),
            ("proc/cmdline", .file(Array(repeating: 0x41, count: 1500))),
        ]
        let bytes = TarArchive.write(members)
        #expect(bytes.count % 512 == 0)
        #expect(TarArchive.write(members.reversed()) == bytes)
        let read = try TarArchive.read(bytes)
        let byPath = Dictionary(read.map { ($0.path, $0.member) }, uniquingKeysWith: { a, _ in a })
        for (path, member) in members { #expect(byPath[path] == member, "\(path)") }
        #expect(byPath["sys/bus/pci"] == .directory)
        let dirIndex = try #require(read.firstIndex { $0.path == "sys/bus/pci/devices/0000:00:01.0" })
        let fileIndex = try #require(read.firstIndex { $0.path == "sys/bus/pci/devices/0000:00:01.0/vendor" })
        #expect(dirIndex < fileIndex)
    }

    @Test("a corrupt archive is an error naming the offset: bad checksum, member past the end, non-octal size")
    func corrupt() {
        var bytes = TarArchive.write([("a", .file(Array(repeating: 7, count: 600)))])
        var flipped = bytes
        flipped[0] ^= 0x20
        #expect(throws: TarArchive.FormatError(offset: 0, problem: "header checksum does not match")) { try TarArchive.read(flipped) }
        let truncated = Array(bytes.prefix(700))
        #expect(throws: TarArchive.FormatError.self) { try TarArchive.read(truncated) }
        // Size field "0000000011x0" with a fixed-up checksum.
        bytes[124 + 10] = UInt8(ascii: "9")
        for i in 148..<156 { bytes[i] = UInt8(ascii: " ") }
        let sum = bytes[0..<512].reduce(0) { $0 + Int($1) }
        let octal = Array(String(sum, radix: 8).utf8)
        for (i, b) in octal.enumerated() { bytes[148 + i] = b }
        bytes[148 + octal.count] = 0
        #expect(throws: TarArchive.FormatError(offset: 0, problem: "numeric field at byte 124 is not octal")) { try TarArchive.read(bytes) }
    }

    @Test("an archive snapshot lists directories from member paths and reads links as text")
    func archiveSource() throws {
        let bytes = TarArchive.write([
            ("sys/kernel/iommu_groups/3/type", .file(Array("DMA\n".utf8))),
            ("sys/kernel/iommu_groups/3/devices/0000:00:02.0", .symbolicLink(target: "../../../../devices/pci0000:00/0000:00:02.0")),
            ("sys/kernel/iommu_groups/10/type", .file(Array("identity\n".utf8))),
        ])
        let source = try ArchiveSnapshot(name: "t.tar", bytes: bytes)
        #expect(source.list("sys/kernel/iommu_groups") == ["10", "3"])
        #expect(source.readLink("sys/kernel/iommu_groups/3/devices/0000:00:02.0") == "../../../../devices/pci0000:00/0000:00:02.0")
        #expect(try source.read("sys/kernel/iommu_groups/3/type", limit: 100) == Array("DMA\n".utf8))
        #expect(try source.read("sys/kernel/iommu_groups/4/type", limit: 100) == nil)
        #expect(throws: SnapshotError.self) { try source.read("sys/kernel/iommu_groups/3/type", limit: 2) }
        let snapshot = MachineSnapshot(source)
        #expect(snapshot.groups.map(\.number) == [3, 10])
        #expect(snapshot.groups[0].devices == ["0000:00:02.0"])
    }

    @Test("a directory source refuses a FIFO and a device by type, and reads through links")
    func directorySource() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inspect-dir-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("proc"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(mkfifo(dir.appendingPathComponent("proc/cmdline").path, 0o600) == 0)
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("proc/iomem").path, withDestinationPath: "/dev/zero")
        try "6.1.0\n".write(to: dir.appendingPathComponent("release"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("proc/osrelease").path, withDestinationPath: "../release")
        let source = DirectorySnapshot(root: dir.path)
        #expect(throws: SnapshotError.self) { try source.read("proc/cmdline", limit: 100) }
        #expect(throws: SnapshotError.self) { try source.read("proc/iomem", limit: 100) }
        #expect(try source.read("proc/osrelease", limit: 100) == Array("6.1.0\n".utf8))
        #expect(source.readLink("proc/osrelease") == "../release")
        let snapshot = MachineSnapshot(source)
        #expect(snapshot.problems.count == 2)
        #expect(snapshot.problems.allSatisfy { $0.contains("not a regular file") })
    }

    @Test("recording what was read and reading the archive back gives the same snapshot")
    func recordingRoundTrip() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/snapshots/x86-host")
        let recorder = RecordingSnapshot(DirectorySnapshot(root: root.path))
        let live = MachineSnapshot(recorder)
        let back = MachineSnapshot(try ArchiveSnapshot(name: "x", bytes: recorder.archive()))
        #expect(back.release == live.release)
        #expect(back.missing == live.missing)
        #expect(recorder.recorded.keys.sorted().contains("sys/firmware/acpi/tables/APIC"))
    }
}

@Suite("inspect: pax records")
struct PaxRecordTests {
    @Test("a pax record whose length does not reach past its own digits ends the parse instead of trapping")
    func shortLength() {
        #expect(TarArchive.paxRecords(Array("1 x\n".utf8)).isEmpty)
        #expect(TarArchive.paxRecords(Array("3 path=a\n".utf8)).isEmpty)
        #expect(TarArchive.paxRecords(Array("11 path=ab\n".utf8)) == ["path": "ab"])
    }
}
