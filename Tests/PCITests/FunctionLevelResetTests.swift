import Testing
import Bus
@testable import PCI

/// Function Level Reset (PCIe r6.0 §6.6.2, §7.5.3.3 Device Capabilities bit 28, §7.5.3.4 Device
/// Control bit 15): what a write of Initiate FLR does to the function.
@Suite("Function Level Reset")
struct FunctionLevelResetTests {
    @Test("an endpoint advertises FLR in Device Capabilities unless built without it; bridges and other port types never do")
    func capabilityBit() throws {
        let f = try Fixture()
        let cap = try #require(f.function.expressCapability)
        #expect(cap.supportsFunctionLevelReset)
        #expect(f.function.configRead(offset: cap.offset + 4, size: 4) & (1 << 28) != 0)
        let without = try PCIFunction(requesterID: RequesterID(0x10), vendorID: 1, deviceID: 2, functionLevelReset: false)
        let offset = try #require(without.expressCapability).offset
        #expect(without.configRead(offset: offset + 4, size: 4) == 0)
        let bridge = try PCIToPCIBridge(requesterID: RequesterID(0x18), kind: .rootPort, secondaryBus: 1)
        let bridgeCap = try #require(bridge.config.findCapability(CapabilityID.pciExpress))
        #expect(bridge.configRead(offset: bridgeCap + 4, size: 4) == 0)
    }

    @Test("Initiate FLR returns config space, BARs, MSI-X enable, table and PBA to their reset values and reads back 0")
    func resetsEverything() throws {
        let f = try Fixture(tableSize: 4)
        let function = f.function
        let reset = function.config
        let cap = try #require(function.expressCapability)
        let msix = try #require(function.msix)
        // Program the function as a driver would.
        function.configWrite(offset: ConfigRegister.bar0, size: 4, value: UInt32(Fixture.barAddress))
        function.configWrite(offset: ConfigRegister.command, size: 2, value: UInt32(ConfigRegister.commandMemorySpace | ConfigRegister.commandBusMaster))
        function.configWrite(offset: msix.controlOffset, size: 2, value: UInt32(MSIXCapability.controlEnable))
        function.barWrite(bar: 0, offset: 0x10, size: 4, value: doorbell)
        function.barWrite(bar: 0, offset: 0x18, size: 4, value: 7)
        function.barWrite(bar: 0, offset: 0x1C, size: 4, value: 0)                 // unmask vector 1
        function.configWrite(offset: cap.offset + 8, size: 2, value: 0x2810)     // MPS/MRRS-style bits
        #expect(function.raise(vector: 1).result?.status == .completed)
        function.barWrite(bar: 0, offset: 0x1C, size: 4, value: 1)                 // mask vector 1
        #expect(function.raise(vector: 1) == .pending)

        function.configWrite(offset: cap.offset + 8, size: 2, value: 0x2810 | 0x8000)

        #expect(function.functionLevelResets == 1)
        #expect(function.config == reset, "configuration space exactly as built")
        #expect(cap.deviceControl(in: function.config) == 0, "Initiate FLR reads 0 and Device Control resets")
        #expect(function.msixTable == MSIXTable(size: 4), "entries masked with zero address/data, PBA clear")
        #expect(!msix.isEnabled(in: function.config))
        #expect(function.raise(vector: 1) == .pending, "MSI-X off after the reset: the vector latches")
        #expect(function.dma(.write, address: IOVA(0x1000), size: 4) == .notSent(.busMasterDisabled))
    }

    @Test("without the capability, Initiate FLR is ignored and reads 0; the rest of Device Control is kept")
    func ignoredWithoutCapability() throws {
        let function = try PCIFunction(requesterID: RequesterID(0x10), vendorID: 1, deviceID: 2,
                                       bars: [BaseAddressRegister(index: 0, size: 0x1000)], functionLevelReset: false)
        let cap = try #require(function.expressCapability)
        function.configWrite(offset: ConfigRegister.bar0, size: 4, value: 0x1000_0000)
        function.configWrite(offset: cap.offset + 8, size: 2, value: 0x8010)
        #expect(function.functionLevelResets == 0)
        #expect(cap.deviceControl(in: function.config) == 0x0010)
        #expect(function.config.barAddress(0) == 0x1000_0000)
    }

    @Test("an FLR through ECAM from the root complex resets only the addressed function")
    func onlyTheTarget() throws {
        let f = try Fixture()
        let other = try PCIFunction(name: "other", requesterID: RequesterID(bus: 0, device: 2, function: 0), vendorID: 1, deviceID: 2,
                                    bars: [BaseAddressRegister(index: 0, size: 0x1000)])
        try f.rootComplex.attach(other)
        other.configWrite(offset: ConfigRegister.bar0, size: 4, value: 0x1001_0000)
        let cap = try #require(f.function.expressCapability)
        let ecamOffset = UInt64(f.function.requesterID.rawValue) << 12 | UInt64(cap.offset + 8)
        try f.rootComplex.ecam.mmioWrite(offset: ecamOffset, size: 2, value: 0x8000, requester: .cpu(0))
        #expect(f.function.functionLevelResets == 1 && other.functionLevelResets == 0)
        #expect(other.config.barAddress(0) == 0x1001_0000)
    }
}
