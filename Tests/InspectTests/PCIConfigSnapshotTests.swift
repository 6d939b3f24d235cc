import PCI
import Testing
@testable import Inspect

/// The configuration-space reader against the PCI model's own configuration spaces (both built
/// from PCI 3.0 §6.7–6.8 and PCIe r6.0 §7.5.3), and against lists that loop or run off the end.
@Suite("inspect: configuration space")
struct PCIConfigSnapshotTests {
    static func bytes(_ config: ConfigurationSpace, length: Int = 4096) -> [UInt8] {
        (0..<length / 4).flatMap { dword -> [UInt8] in
            let v = config.read(offset: dword * 4, size: 4)
            return [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)]
        }
    }

    @Test("an MSI-X endpoint: IDs, class, PCIe endpoint, table size, BIR and offset")
    func msix() throws {
        let f = try PCIFunction(name: "f", requesterID: RequesterID(bus: 0, device: 1, function: 0), vendorID: 0x1AF4, deviceID: 0x1041,
                                classCode: 0x02_0000, bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                msix: MSIXConfiguration(tableSize: 3, tableOffset: 0x1000, pbaOffset: 0x2000), interruptPin: 1)
        let c = try PCIConfigSnapshot(Self.bytes(f.config), path: "config")
        #expect(c.vendorID == 0x1AF4 && c.deviceID == 0x1041 && c.classCode == 0x02_0000)
        #expect(!c.isBridge && !c.multifunction && c.interruptPin == 1)
        #expect(c.expressPortType == 0)
        #expect(c.msix == PCIConfigSnapshot.MSIX(enabled: false, functionMask: false, tableSize: 3, tableBIR: 0, tableOffset: 0x1000))
        #expect(c.msi == nil)
        #expect(c.acs == nil)
    }

    @Test("an MSI endpoint: Multiple Message Capable, 64-bit, per-vector masking")
    func msi() throws {
        let f = try PCIFunction(name: "f", requesterID: RequesterID(bus: 1, device: 0, function: 0), vendorID: 0x8086, deviceID: 0x2922,
                                msi: MSIConfiguration(is64Bit: true, perVectorMasking: true, vectorsLog2: 3), multifunction: true)
        let c = try PCIConfigSnapshot(Self.bytes(f.config), path: "config")
        let msi = try #require(c.msi)
        #expect(msi.capable == 8 && msi.is64Bit && msi.perVectorMasking && !msi.enabled)
        #expect(c.multifunction)
    }

    @Test("a root port: Type 1 header, bus numbers, PCIe port type 4")
    func rootPort() throws {
        let b = try PCIToPCIBridge(name: "rp", requesterID: RequesterID(bus: 0, device: 2, function: 0), kind: .rootPort,
                                   vendorID: 0x1B36, deviceID: 0x000C, secondaryBus: 1, subordinateBus: 3)
        let c = try PCIConfigSnapshot(Self.bytes(b.config), path: "config")
        #expect(c.isBridge && c.secondaryBus == 1 && c.subordinateBus == 3 && c.expressPortType == 4)
    }

    @Test("a non-root reader's 64 bytes: identity only; fewer is an error; a looping list ends")
    func partialAndHostile() throws {
        let f = try PCIFunction(name: "f", requesterID: RequesterID(bus: 0, device: 1, function: 0), vendorID: 0x1AF4, deviceID: 0x1041,
                                bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)], msix: MSIXConfiguration(tableSize: 2))
        let short = try PCIConfigSnapshot(Self.bytes(f.config, length: 64), path: "config")
        #expect(short.vendorID == 0x1AF4 && short.msix == nil && short.length == 64)
        #expect(throws: SysfsParseError.self) { _ = try PCIConfigSnapshot(Array(repeating: 0, count: 63), path: "config") }
        var loop = [UInt8](repeating: 0, count: 4096)
        loop[0x06] = 0x10            // capabilities list
        loop[0x34] = 0x40
        loop[0x40] = 0x09; loop[0x41] = 0x40   // a vendor capability pointing at itself
        loop[0x100] = 0x0D; loop[0x102] = 0x01; loop[0x103] = 0x10  // ACS whose next is itself (0x100)
        loop[0x104] = 0x1F; loop[0x106] = 0x1D
        let c = try PCIConfigSnapshot(loop, path: "config")
        #expect(c.acs == PCIConfigSnapshot.ACS(capability: 0x1F, control: 0x1D))
    }
}
