import Foundation
import LinuxKernel
import Report
import Scenario
import Testing
@testable import Inspect

/// `inspect` on snapshots captured from real Linux 6.12 arm64 boots under QEMU 7.2
/// (Tests/Fixtures/snapshots, made by Scripts/capture-snapshots.sh). The model must predict
/// every enabled vector's message and every group's type, members and reserved regions; the
/// only disagreements left are the documented model gap (bridges' own pcieport vectors).
@Suite("inspect: real machines")
struct RealSnapshotTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/snapshots")

    static func report(_ name: String) -> InspectReport {
        InspectReport(snapshot: MachineSnapshot(DirectorySnapshot(root: root.appendingPathComponent(name).path)))
    }

    @Test("every real snapshot: answered, no missing or unreadable file, only the bridge-vector model gap left",
          arguments: ["dt-smmuv3", "acpi-smmuv3", "dt-passthrough", "dt-vfio"])
    func agrees(_ name: String) throws {
        let report = Self.report(name)
        #expect(report.answered, "\(report.failure ?? "")")
        #expect(report.snapshot.missing.isEmpty && report.snapshot.problems.isEmpty)
        let comparison = try #require(report.comparison)
        for d in comparison.disagreements {
            #expect(d.kind == .modelGap && d.what == "vectors", "\(d.device) \(d.what): model \(d.model), machine \(d.machine)")
        }
        // The two QEMU root ports' pcieport vectors, and nothing else.
        #expect(comparison.disagreements.map(\.device) == ["0000:00:02.0", "0000:00:03.0"])
        #expect(report.prediction?.configuration.version == .v6_14)
    }

    @Test("the firmware the kernel booted from: the device tree, or ACPI over the EFI stub's empty blob")
    func firmware() {
        if case .deviceTree? = Self.report("dt-smmuv3").snapshot.firmware {} else { Issue.record("dt-smmuv3 is a DT boot") }
        if case .acpi(let tables)? = Self.report("acpi-smmuv3").snapshot.firmware {
            #expect(tables.iort != nil && tables.madt != nil && tables.mcfg != nil)
        } else { Issue.record("acpi-smmuv3 booted with acpi=force") }
    }

    @Test("messages: the AHCI function's MSI is the IOVA page 0xffff_f040 in a DMA domain and the ITS doorbell 0x0809_0040 in an identity one, as its configuration space shows")
    func msiMessages() throws {
        for (name, address) in [("dt-smmuv3", UInt64(0xFFFF_F040)), ("acpi-smmuv3", 0xFFFF_F040), ("dt-passthrough", 0x0809_0040)] {
            let row = try #require(Self.report(name).comparison?.rows.first { $0.name == "0000:00:04.0" })
            #expect(row.observed.count == 1 && row.observed[0].address == address, "\(name)")
            #expect(row.predicted?.vectors.map(\.address) == [address], "\(name)")
            #expect(row.predicted?.vectors.map(\.data) == [0])
        }
    }

    @Test("groups: DT shares a root port's group with its endpoint (ACS not enabled at boot), ACPI isolates each (IORT requests ACS before the scan)")
    func groups() throws {
        let dt = try #require(Self.report("dt-smmuv3").prediction)
        let acpi = try #require(Self.report("acpi-smmuv3").prediction)
        #expect(dt.functions.first { $0.name == "0000:01:00.0" }?.groupMembers == ["0000:00:02.0", "0000:01:00.0"])
        #expect(acpi.functions.first { $0.name == "0000:01:00.0" }?.groupMembers == ["0000:01:00.0"])
        #expect(acpi.functions.first { $0.name == "0000:00:02.0" }?.acsControl == 0x1D)
        #expect(dt.functions.first { $0.name == "0000:00:02.0" }?.acsControl == 0)
        // Before v6.15 a driverless function has no group: the host bridge's 00:00.0.
        #expect(dt.functions.first { $0.name == "0000:00:00.0" }?.group == nil)
    }

    @Test("vfio-pci: bound with driver_managed_dma, no vector enabled, the group keeps its DMA default domain")
    func vfio() throws {
        let row = try #require(Self.report("dt-vfio").comparison?.rows.first { $0.name == "0000:02:00.0" })
        #expect(row.driver == "vfio-pci" && row.observed.isEmpty)
        #expect(row.predicted?.vectors.isEmpty == true && row.predicted?.groupType == "DMA" && row.machineGroupType == "DMA")
    }

    @Test("a snapshot archive of what was read reads back to the same report")
    func archiveRoundTrip() throws {
        let recorder = RecordingSnapshot(DirectorySnapshot(root: Self.root.appendingPathComponent("acpi-smmuv3").path))
        let direct = InspectReport(snapshot: MachineSnapshot(recorder))
        let archive = try ArchiveSnapshot(name: recorder.name, bytes: recorder.archive())
        let again = InspectReport(snapshot: MachineSnapshot(archive))
        #expect(again.text == direct.text)
        let (a, b) = (try again.json(), try direct.json())
        #expect(a == b)
        // Only the files inspect reads: no console log, no README.
        #expect(!recorder.recorded.keys.contains { $0.hasSuffix(".txt") || $0.hasSuffix(".md") })
    }

    @Test("what-if: the virtio-net function behind root port 00:02.0 passed through on the DT machine's own kernel (6.12 → v6.14)")
    func passthrough() throws {
        let report = Self.report("dt-smmuv3")
        let prediction = try #require(report.prediction)
        let whatIf = try InspectPassthrough(snapshot: report.snapshot, prediction: prediction, device: "01:00.0", strategies: [])
        #expect(whatIf.device == "0000:01:00.0")
        #expect(whatIf.checks.filter { !$0.passed }.isEmpty, "\(whatIf.checks)")
        let nested = try #require(whatIf.runs.first)
        #expect(nested.scenario.vm.viommu == .acceleratedSMMUv3)
        let delivered = nested.runs.filter(\.allDelivered).map(\.strategy.rawValue)
        // On v6.14 only the two out-of-tree proposals deliver through a nested vSMMU.
        #expect(delivered == ["irqchip-relay", "vfio-override"])
        #expect(throws: InspectPassthrough.Failure.self) {
            _ = try InspectPassthrough(snapshot: report.snapshot, prediction: prediction, device: "00:02.0", strategies: [])
        }
    }

    /// The DT snapshot's files read into an archive, with `edit` applied to its members.
    static func edited(_ name: String, _ edit: (inout [String: TarArchive.Member]) -> Void) throws -> MachineSnapshot {
        let recorder = RecordingSnapshot(DirectorySnapshot(root: root.appendingPathComponent(name).path))
        _ = MachineSnapshot(recorder)
        var members = recorder.recorded
        edit(&members)
        let ordered = members.keys.sorted().compactMap { path in members[path].map { (path, $0) } }
        return MachineSnapshot(try ArchiveSnapshot(name: name, bytes: TarArchive.write(ordered)))
    }

    @Test("what-if refuses on the host's terms: a group member bound to another driver makes the group not viable; a reserved region over the VM's RAM is named")
    func passthroughChecksFail() throws {
        let snapshot = try Self.edited("dt-smmuv3") { members in
            // The root port sharing 01:00.0's group, bound to a DMA-API driver instead of pcieport.
            members["sys/bus/pci/devices/0000:00:02.0/driver"] = .symbolicLink(target: "../../../../bus/pci/drivers/some-dma-driver")
            // A direct-mapped region at the VM's RAM base (0x4000_0000, QEMU virt).
            members["sys/kernel/iommu_groups/0/reserved_regions"] = .file(Array(
                "0x0000000008000000 0x00000000080fffff msi\n0x0000000040000000 0x000000004000ffff direct\n".utf8))
        }
        let report = InspectReport(snapshot: snapshot)
        let prediction = try #require(report.prediction)
        let whatIf = try InspectPassthrough(snapshot: snapshot, prediction: prediction, device: "0000:01:00.0", strategies: [.legacy])
        let checks = Dictionary(uniqueKeysWithValues: whatIf.checks.map { ($0.name, $0) })
        #expect(checks["group viable"]?.passed == false)
        #expect(checks["group viable"]?.detail.contains("0000:00:02.0 (bound to some-dma-driver)") == true)
        #expect(checks["VM RAM clear of reserved regions"]?.passed == false)
        #expect(checks["VM RAM clear of reserved regions"]?.detail.contains("0x0000000040000000 0x000000004000ffff direct") == true)
        #expect(checks["isolated MSI"]?.passed == true)
    }
}
