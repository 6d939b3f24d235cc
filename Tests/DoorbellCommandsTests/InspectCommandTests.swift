import Foundation
import Testing

/// `doorbell inspect` as a user runs it: exit statuses, `--snapshot`, JSON and `--passthrough`.
@Suite("doorbell inspect")
struct InspectCommandTests {
    static let snapshots = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/snapshots")

    @Test("an x86 machine's ACPI tables: says what it found, that it cannot model it, exit 1")
    func x86() throws {
        let run = try BinaryTests.run(["inspect", Self.snapshots.appendingPathComponent("x86-host").path])
        #expect(run.status == 1)
        #expect(run.stdout.contains("firmware: ACPI (APIC, MCFG)"))
        #expect(run.stdout.contains("not an Arm machine"))
    }

    @Test("--snapshot writes a tar that inspect reads back to the same answer; JSON says so too")
    func snapshotRoundTrip() throws {
        let dir = Self.snapshots.appendingPathComponent("dt-vfio").path
        let tar = FileManager.default.temporaryDirectory.appendingPathComponent("inspect-\(getpid()).tar").path
        defer { try? FileManager.default.removeItem(atPath: tar) }
        let first = try BinaryTests.run(["inspect", dir, "--snapshot", tar])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("wrote") && FileManager.default.fileExists(atPath: tar))
        let again = try BinaryTests.run(["inspect", tar])
        #expect(again.status == 0)
        // Same answer but for the first line, which names the source.
        #expect(again.stdout.split(separator: "\n").dropFirst() == first.stdout.split(separator: "\n").dropFirst())
        let json = try BinaryTests.run(["inspect", tar, "--format", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["answered"] as? Bool == true && object["schema"] as? Int == 2)
        let functions = try #require(object["functions"] as? [[String: Any]])
        let vfio = try #require(functions.first { $0["name"] as? String == "0000:02:00.0" })
        #expect(vfio["driver"] as? String == "vfio-pci" && vfio["requester-id"] as? Int == 0x200)
    }

    @Test("--passthrough prints the host checks and the strategy table; a missing BDF is exit 1 naming the functions")
    func passthrough() throws {
        let dir = Self.snapshots.appendingPathComponent("acpi-smmuv3").path
        let run = try BinaryTests.run(["inspect", dir, "--passthrough", "0000:02:00.0", "--strategy", "vfio-override"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("✓ group viable: group 4: 0000:02:00.0"))
        #expect(run.stdout.contains("vfio-override"))
        #expect(!run.stdout.contains("rmr-identity"))
        let missing = try BinaryTests.run(["inspect", dir, "--passthrough", "0000:09:00.0"])
        #expect(missing.status == 1 && missing.stderr.contains("no such PCI function") && missing.stderr.contains("0000:00:04.0"))
        let usage = try BinaryTests.run(["inspect", dir, "--strategy", "legacy"])
        #expect(usage.status == 64)
    }
}
