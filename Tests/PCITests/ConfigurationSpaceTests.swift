import Bus
import Testing
@testable import PCI

@Suite("Configuration space")
struct ConfigurationSpaceTests {
    @Test("Vendor ID, Device ID, class code and Header Type are read-only")
    func identityIsReadOnly() throws {
        let f = try Fixture()
        f.function.configWrite(offset: 0, size: 4, value: 0xDEAD_BEEF)
        f.function.configWrite(offset: ConfigRegister.headerType, size: 1, value: 0x81)
        // 0x1AF4/0x1041 is what the fixture was built with; a write must not change them.
        #expect(f.function.configRead(offset: 0, size: 4) == 0x1041_1AF4)
        #expect(f.function.configRead(offset: ConfigRegister.headerType, size: 1) == 0)
    }

    @Test("Command keeps only the bits a PCIe function implements (MSE, BME, Parity, SERR, INTx Disable)")
    func commandWritableBits() throws {
        let f = try Fixture()
        f.function.configWrite(offset: ConfigRegister.command, size: 2, value: 0xFFFF)
        // 0x0002 | 0x0004 | 0x0040 | 0x0100 | 0x0400 (pci_regs.h PCI_COMMAND_*); I/O space and
        // the bits PCIe hardwires to 0 stay 0.
        #expect(f.function.configRead(offset: ConfigRegister.command, size: 2) == 0x0546)
        #expect(f.function.config.busMasterEnabled && f.function.config.memorySpaceEnabled)
    }

    @Test("Status: Capabilities List is RO 1, Received Master Abort is set by an aborted DMA read and cleared by writing 1")
    func statusWriteOneToClear() throws {
        let f = try Fixture()
        f.enable()
        f.port.status = .aborted
        f.function.dma(.read, address: IOVA(0x1000), size: 4)
        #expect(f.function.config.status == 0x2010)
        f.function.configWrite(offset: ConfigRegister.status, size: 2, value: 0xFFFF)
        #expect(f.function.config.status == 0x0010)
    }

    /// Linux `__pci_read_base`: write ~0, read back, size = ~(value & mask) + 1.
    @Test("BAR size probing returns the size mask with the RO type bits", arguments: [
        // (kind, size, prefetchable, expected low DWORD, expected high DWORD)
        (BaseAddressRegister.Kind.memory32, UInt64(0x1000), false, UInt32(0xFFFF_F000), UInt32?.none),
        (.memory32, 0x10, true, 0xFFFF_FFF8, nil),                 // 16 bytes, prefetchable: type bit 3
        (.memory64, 0x10_0000, true, 0xFFF0_000C, 0xFFFF_FFFF),    // 1 MiB: 64-bit (bits 2:1 = 10) + prefetch
        (.memory64, 0x2_0000_0000, false, 0x0000_0004, 0xFFFF_FFFE), // 8 GiB: size bits reach the upper DWORD
    ])
    func barSizing(kind: BaseAddressRegister.Kind, size: UInt64, prefetchable: Bool, low: UInt32, high: UInt32?) throws {
        let f = try PCIFunction(requesterID: RequesterID(0x0008), vendorID: 1, deviceID: 2,
                                bars: [BaseAddressRegister(index: 0, kind: kind, size: size, prefetchable: prefetchable)])
        f.configWrite(offset: 0x10, size: 4, value: 0xFFFF_FFFF)
        f.configWrite(offset: 0x14, size: 4, value: 0xFFFF_FFFF)
        #expect(f.configRead(offset: 0x10, size: 4) == low)
        if let high { #expect(f.configRead(offset: 0x14, size: 4) == high) }
        let mask = UInt64(high ?? 0xFFFF_FFFF) << 32 | UInt64(low & ~0xF)
        #expect(~mask &+ 1 == size)
    }

    @Test("an unimplemented BAR reads 0 and ignores writes (so its size probe reads 0: absent)")
    func unimplementedBAR() throws {
        let f = try Fixture()
        f.function.configWrite(offset: 0x18, size: 4, value: 0xFFFF_FFFF)
        #expect(f.function.configRead(offset: 0x18, size: 4) == 0)
    }

    @Test("bad BAR definitions are rejected at construction")
    func badBARs() {
        #expect(throws: PCIConfigurationError.self) {
            _ = try PCIFunction(requesterID: RequesterID(0), vendorID: 1, deviceID: 1,
                                bars: [BaseAddressRegister(index: 0, kind: .memory32, size: 0x3000)])
        }
        #expect(throws: PCIConfigurationError.self) {
            _ = try PCIFunction(requesterID: RequesterID(0), vendorID: 1, deviceID: 1,
                                bars: [BaseAddressRegister(index: 5, kind: .memory64, size: 0x1000)])
        }
    }

    @Test("the capability list is walkable from 0x34: PCIe at 0x40, MSI after its 0x3C bytes, MSI-X after MSI's 0x18")
    func capabilityWalk() throws {
        let f = try Fixture(msi: MSIConfiguration(is64Bit: true, perVectorMasking: true))
        let c = f.function
        // Walk by hand, reading raw bytes the way software does.
        #expect(c.configRead(offset: 0x06, size: 2) & 0x10 != 0)   // PCI_STATUS_CAP_LIST
        #expect(c.configRead(offset: 0x34, size: 1) == 0x40)
        #expect(c.configRead(offset: 0x40, size: 1) == 0x10)        // PCI_CAP_ID_EXP
        #expect(c.configRead(offset: 0x41, size: 1) == 0x7C)        // 0x40 + PCI_CAP_EXP_ENDPOINT_SIZEOF_V2
        #expect(c.configRead(offset: 0x7C, size: 1) == 0x05)        // PCI_CAP_ID_MSI
        #expect(c.configRead(offset: 0x7D, size: 1) == 0x94)        // 0x7C + 0x18 (64-bit + masking)
        #expect(c.configRead(offset: 0x94, size: 1) == 0x11)        // PCI_CAP_ID_MSIX
        #expect(c.configRead(offset: 0x95, size: 1) == 0x00)        // end of list
        #expect(c.config.capabilityList().map(\.id) == [0x10, 0x05, 0x11])
        // The PCIe capability says "endpoint, version 2" (PCI_EXP_FLAGS: type 0, version 2).
        #expect(c.configRead(offset: 0x42, size: 2) == 0x0002)
        // Extended space: no Extended Capabilities, header at 0x100 reads 0 (PCIe §7.6.3).
        #expect(c.configRead(offset: 0x100, size: 4) == 0)
    }

    @Test("a corrupt, looping capability list still terminates after 48 entries (Linux PCI_FIND_CAP_TTL)")
    func loopingList() throws {
        var config = ConfigurationSpace(vendorID: 1, deviceID: 1, headerType: .endpoint)
        config.setHardwareBits(offset: 0x34, size: 1, value: 0x40)
        config.setHardwareBits(offset: 0x40, size: 2, value: 0x4005)   // id 5, next → itself
        #expect(config.capabilityList().count == 48)
        config.setHardwareBits(offset: 0x41, size: 1, value: 0x3C)     // pointer below 0x40 ends the walk
        #expect(config.capabilityList().count == 1)
    }

    @Test("accesses of any size at any offset never trap; bytes outside 4 KiB read 0")
    func anyAccess() throws {
        let f = try Fixture(msi: MSIConfiguration())
        for offset in [-8, -1, 0, 1, 2, 3, 0x3F, 0xFF, 0xFFD, 0xFFE, 0xFFF, 0x1000, 0x1003, Int.max, Int.min] {
            for size in 0...9 {
                _ = f.function.configRead(offset: offset, size: size)
                f.function.configWrite(offset: offset, size: size, value: 0xFFFF_FFFF)
            }
        }
        #expect(f.function.configRead(offset: 0xFFE, size: 4) & 0xFFFF_0000 == 0)
        #expect(f.function.config.vendorID == 0x1AF4)
    }

    @Test("type-1 header: bus numbers are RW, Header Type reads 1, PCIe type says PCIe-to-PCI bridge")
    func bridgeHeader() throws {
        let bridge = try PCIToPCIBridge(requesterID: RequesterID(bus: 0, device: 1, function: 0), kind: .pcieToPCI,
                                        secondaryBus: 1, subordinateBus: 1)
        #expect(bridge.configRead(offset: ConfigRegister.headerType, size: 1) == 1)
        bridge.configWrite(offset: 0x18, size: 4, value: 0x0005_0300)  // primary 0, secondary 3, subordinate 5
        #expect(bridge.primaryBus == 0 && bridge.secondaryBus == 3 && bridge.subordinateBus == 5)
        // Class code 0x060400: PCI-to-PCI bridge.
        #expect(bridge.configRead(offset: 0x08, size: 4) >> 8 == 0x06_0400)
        // What Linux pci_pcie_type() reads: PCI_EXP_TYPE_PCI_BRIDGE (0x7).
        #expect(PCIExpressCapability.portType(in: bridge.config) == .pcieToPCIBridge)
        #expect(bridge.configRead(offset: 0x42, size: 2) == 0x0072)
        // A conventional PCI bridge has no PCI Express capability at all.
        let legacy = try PCIToPCIBridge(requesterID: RequesterID(0x0010), kind: .conventionalPCI, secondaryBus: 4)
        #expect(PCIExpressCapability.portType(in: legacy.config) == nil)
    }
}

@Suite("Multi-function header")
struct MultifunctionHeaderTests {
    @Test("a multi-function endpoint reads Header Type 0x80 and software cannot clear the bit")
    func headerTypeBit7() throws {
        // pci_regs.h: PCI_HEADER_TYPE (0x0E), bit 7 = multi-function device, read-only.
        let function = try PCIFunction(requesterID: RequesterID(bus: 0, device: 1, function: 0), vendorID: 1, deviceID: 2, multifunction: true)
        #expect(function.configRead(offset: 0x0E, size: 1) == 0x80)
        function.configWrite(offset: 0x0E, size: 1, value: 0)
        #expect(function.configRead(offset: 0x0E, size: 1) == 0x80)
        let single = try PCIFunction(requesterID: RequesterID(bus: 0, device: 2, function: 0), vendorID: 1, deviceID: 2)
        #expect(single.configRead(offset: 0x0E, size: 1) == 0x00)
    }
}
