import Foundation
import Testing

/// The seed under `rmr-identity` with each guest firmware QEMU 11 can give: ACPI (what it
/// requires with `accel=on`), whose IORT RMR the guest kernel turns into a DIRECT region, and a
/// device tree, which has no RMR, so the host's 0x0800_0040 is unmapped in the guest's stage 1.
@Suite("trace: the guest firmware behind the MSI window")
struct TraceFirmwareTests {
    func scenario(firmware: String) throws -> URL {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-firmware-\(getpid())-\(firmware).yaml")
        try """
        name: seed-\(firmware)
        platform: qemu-virt
        vm:
          viommu: smmuv3-accel
          guest-domain: dma-strict
          firmware: \(firmware)
        strategy: rmr-identity
        """.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test("ACPI guest: the RMR node becomes an IOMMU_RESV_DIRECT region and the MSI is delivered")
    func acpiGuest() throws {
        let file = try scenario(firmware: "acpi")
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try BinaryTests.run(["trace", file.path, "--strategy", "rmr-identity"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("IORT RMR node at 0xec (revision 3, flags 0x0): input 0x0 count 256 → StreamID 0x0 (single); range 0x0800_0000 + 0x10_0000"), "\(run.stdout)")
        #expect(run.stdout.contains("host bridge _DSM function 5 (preserve_config): set"))
        #expect(run.stdout.contains("iort_iommu_get_resv_regions → IOMMU_RESV_DIRECT [0x0800_0000–0x080f_ffff] prot READ|WRITE|MMIO"))
        #expect(run.stdout.contains("Outcome: delivered"), "\(run.stdout)")
    }

    @Test("DT guest: no RMR, no direct region, and the write faults at the guest's stage 1")
    func deviceTreeGuest() throws {
        let file = try scenario(firmware: "dt")
        defer { try? FileManager.default.removeItem(at: file) }
        let run = try BinaryTests.run(["trace", file.path, "--strategy", "rmr-identity"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("guest firmware: device tree (QEMU virt's: no RMR, no reserved IOVA window)"))
        #expect(run.stdout.contains("gives 0000:00:01.0 no direct region"))
        #expect(run.stdout.contains("Outcome: stage-1"), "\(run.stdout)")
        #expect(run.stdout.contains("F_TRANSLATION StreamID 0x8 InputAddr 0x0800_0040"))
    }
}
