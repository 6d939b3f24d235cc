import Foundation
import Firmware
import Testing

/// The RK3399 from the command line beyond `msi`: a broken axi-base is one line naming the
/// node, and a scenario's function at 01:01.0 is not enumerated by the host (Linux's
/// `rockchip_pcie_valid_device`), while 01:00.0 is.
@Suite("RK3399 commands")
struct RockchipCommandTests {
    static let board = BoardVerdictTests.boards.appendingPathComponent("rockchip_rk3399-rockpro64.dtb")

    func file(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-rk3399-\(getpid())-\(name)")
    }

    @Test("msi with a truncated axi-base exits 1 with one line naming /pcie@f8000000 and reg")
    func truncatedAXI() throws {
        let tree = try DeviceTree(dtb: try DeviceTreeFile.read(path: Self.board.path))
        let edited = try #require(tree.setting(DeviceTreeProperty(name: "reg", cells: [0, 0xF800_0000, 0, 0x80_0000, 0, 0xFD00_0000, 0, 0x100_0000]),
                                               at: "/pcie@f8000000"))
        let path = file("truncated.dtb")
        try Data(DeviceTreeWriter.write(edited)).write(to: path)
        defer { try? FileManager.default.removeItem(at: path) }
        let run = try BinaryTests.run(["msi", "--platform", path.path])
        #expect(run.status == 1)
        #expect(run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
        #expect(run.stderr.contains("/pcie@f8000000: reg: axi-base 0xf800_0000 size 0x80_0000 is truncated: bus 31 needs 0x200_0000 bytes"), "\(run.stderr)")
    }

    func scenario(bdf: String) throws -> BinaryTests.Run {
        let path = file("\(bdf.replacingOccurrences(of: ":", with: "-")).yaml")
        try """
        name: rk3399
        platform: \(Self.board.path)
        devices:
          - bdf: "\(bdf)"
            vectors: 2
        strategy: rmr-identity
        """.write(to: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: path) }
        return try BinaryTests.run(["run", path.path])
    }

    @Test("run: 01:01.0 is not enumerated; 01:00.0 is, and VFIO then finds no IOMMU group (the board has none)")
    func scenarioPlacement() throws {
        let hidden = try scenario(bdf: "01:01.0")
        #expect(hidden.stdout.contains("the setup failed at host enumeration: 01:01.0 was not enumerated"), "\(hidden.stdout)")
        let endpoint = try scenario(bdf: "01:00.0")
        #expect(endpoint.stdout.contains("the setup failed at VMM: vfio-pci bind: EINVAL"), "\(endpoint.stdout)")
    }

    @Test("host --device 01:00.0 --device 01:01.0: the root port and 01:00.0 are listed, 01:01.0 is named as not enumerated")
    func hostDevices() throws {
        let run = try BinaryTests.run(["host", "--platform", Self.board.path, "--device", "01:00.0", "--device", "01:01.0"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("01:01.0 was not enumerated: the host bridge's configuration accessors do not reach it"), "\(run.stdout)")
        #expect(run.stdout.contains("0000:00:00.0 (bridge)"), "\(run.stdout)")
        #expect(run.stdout.contains("StreamID none (no IOMMU); DeviceID 0x100"), "\(run.stdout)")
        #expect(!run.stdout.contains("0000:01:01.0"), "\(run.stdout)")
    }
}
