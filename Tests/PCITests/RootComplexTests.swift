import Bus
import Testing
@testable import PCI

@Suite("Root complex: ECAM, memory window, requester ID maps")
struct RootComplexTests {
    struct ECAMCase: Sendable, CustomTestStringConvertible {
        var range: ClosedRange<UInt8>
        var offset: UInt64
        var requesterID: RequesterID
        var register: Int
        var testDescription: String { "bus range \(range), offset \(Hex.format(offset))" }
    }

    static let ecamCases: [ECAMCase] = [
        ECAMCase(range: 0...255, offset: 1 << 20 | 2 << 15 | 3 << 12 | 0x10,
                 requesterID: RequesterID(bus: 1, device: 2, function: 3), register: 0x10),
        ECAMCase(range: 0...255, offset: 0x0FF_FFFC, requesterID: RequesterID(bus: 0x0F, device: 31, function: 7), register: 0xFFC),
        // The ECAM base corresponds to the first bus of the range (DT bus-range 0x10–0x1f).
        ECAMCase(range: 0x10...0x1F, offset: 0x44, requesterID: RequesterID(bus: 0x10, device: 0, function: 0), register: 0x44),
    ]

    @Test("ECAM offset = bus << 20 | device << 15 | function << 12 | register, relative to the first bus", arguments: ecamCases)
    func ecamDecode(_ c: ECAMCase) throws {
        let rc = RootComplex(busRange: c.range)
        let decoded = try #require(rc.ecam.decode(offset: c.offset))
        #expect(decoded.requesterID == c.requesterID && decoded.register == c.register)
        #expect(rc.ecamSize == UInt64(c.range.count) << 20)
    }

    @Test("through the system bus: a populated function answers, an empty slot and a bus beyond the range read all-ones")
    func ecamOnTheBus() throws {
        let f = try Fixture(requesterID: RequesterID(bus: 0, device: 1, function: 0))
        let bus = SystemBus()
        // QEMU virt's low ECAM: 0x3f00_0000, 16 MiB (16 buses).
        let rc16 = RootComplex(busRange: 0...15)
        try rc16.attach(try PCIFunction(requesterID: RequesterID(bus: 0, device: 1, function: 0), vendorID: 0x1AF4, deviceID: 0x1041))
        try bus.addDevice(rc16.ecam, base: PhysicalAddress(0x3F00_0000), size: rc16.ecamSize)
        let dev1 = PhysicalAddress(0x3F00_0000 + (1 << 15))
        #expect(try bus.read(dev1, size: 4, requester: .cpu(0)) == 0x1041_1AF4)
        #expect(try bus.read(PhysicalAddress(0x3F00_0000 + (2 << 15)), size: 2, requester: .cpu(0)) == 0xFFFF)
        #expect(try bus.read(PhysicalAddress(0x3F00_0000 + (1 << 20)), size: 4, requester: .cpu(0)) == 0xFFFF_FFFF)
        // A write through ECAM reaches the function's config space (Command = MSE | BME).
        try bus.write(try #require(dev1.adding(4)), size: 2, value: 0x6, requester: .cpu(0))
        #expect(rc16.functions[0].config.busMasterEnabled)
        // An 8-byte access is split into two DWORD accesses.
        #expect(try rc16.ecam.mmioRead(offset: 1 << 15, size: 8, requester: .cpu(0)) & 0xFFFF_FFFF == 0x1041_1AF4)
        // Bus 256 is beyond a 256-bus ECAM window.
        #expect(try f.rootComplex.ecam.mmioRead(offset: 0x1000_0000, size: 4, requester: .cpu(0)) == 0xFFFF_FFFF)
    }

    @Test("the memory window routes to the BAR that decodes the address, only while Memory Space Enable is set")
    func memoryWindow() throws {
        let f = try Fixture()
        // Before enabling: no BAR decodes, the window reads all-ones (Unsupported Request).
        #expect(try f.mmioRead(0xC, size: 4) == 0xFFFF_FFFF)
        f.enable()
        #expect(try f.mmioRead(0xC, size: 4) == 1)       // MSI-X entry 0 Vector Control, reset value
        let decoded = try #require(f.rootComplex.decode(Fixture.barAddress + 0x2000))
        #expect(decoded.function === f.function && decoded.bar == 0 && decoded.offset == 0x2000)
        #expect(f.rootComplex.decode(Fixture.barAddress + 0x4000) == nil)   // past the 16 KiB BAR
        f.function.configWrite(offset: ConfigRegister.command, size: 2, value: 0)
        #expect(try f.mmioRead(0xC, size: 4) == 0xFFFF_FFFF)
    }

    struct MapCase: Sendable, CustomTestStringConvertible {
        var why: String
        var entries: [RequesterIDMap.Entry]
        var mask: UInt32
        var rid: UInt16
        var expected: UInt32?
        var testDescription: String { why }
    }

    static let flip: [RequesterIDMap.Entry] = [.init(ridBase: 0, outputBase: 0x8000, length: 0x8000),
                                                .init(ridBase: 0x8000, outputBase: 0, length: 0x8000)]
    static let whole: [RequesterIDMap.Entry] = [.init(ridBase: 0, outputBase: 0, length: 0x10000)]

    /// Examples from the DT bindings (pci-iommu.txt, pci-msi.txt) and board-style masks; each
    /// expected value is out-base + ((rid & mask) − rid-base), worked out by hand.
    static let mapCases: [MapCase] = [
        MapCase(why: "identity <0 &x 0 0x10000>: 0x0008 → 0x8", entries: whole, mask: 0xFFFF_FFFF, rid: 0x0008, expected: 0x8),
        MapCase(why: "pci-iommu.txt example 2, mask 0xfff8 drops the function: 0x0103 → 0x0100",
                entries: whole, mask: 0xFFF8, rid: 0x0103, expected: 0x0100),
        MapCase(why: "pci-iommu.txt example 3, high bus bit flipped: 0x0100 → 0x8100", entries: flip, mask: 0xFFFF_FFFF, rid: 0x0100, expected: 0x8100),
        MapCase(why: "pci-iommu.txt example 3, second entry: 0x8100 → 0x0100", entries: flip, mask: 0xFFFF_FFFF, rid: 0x8100, expected: 0x0100),
        MapCase(why: "board style mask 0xff00, one ID per bus: 0x0312 → 0x0300", entries: whole, mask: 0xFF00, rid: 0x0312, expected: 0x0300),
        MapCase(why: "board style mask 0x7f8 into a range at 0x10000: 0x0a0f & 0x7f8 = 0x208 → 0x10208",
                entries: [.init(ridBase: 0, outputBase: 0x1_0000, length: 0x800)], mask: 0x7F8, rid: 0x0A0F, expected: 0x1_0208),
        MapCase(why: "out of range: only bus 0 is mapped, 0x0200 has no entry",
                entries: [.init(ridBase: 0, outputBase: 0, length: 0x100)], mask: 0xFFFF_FFFF, rid: 0x0200, expected: nil),
    ]

    @Test("iommu-map / msi-map with -map-mask", arguments: mapCases)
    func mapMask(_ c: MapCase) {
        let map = RequesterIDMap(entries: c.entries, mask: c.mask)
        #expect(map.lookup(RequesterID(c.rid)).id == c.expected)
    }

    @Test("an entry whose rid-base has bits outside the mask invalidates the map (of_map_id -EFAULT)")
    func invalidEntry() {
        let map = RequesterIDMap(entries: [.init(ridBase: 0x0101, outputBase: 0, length: 0x100)], mask: 0xFF00)
        #expect(map.lookup(0x0101) == .invalidEntry(entry: 0))
        // A 64-bit range check: base + length past 2^32 does not wrap into a match for RID 0.
        let huge = RequesterIDMap(entries: [.init(ridBase: 0xFFFF_FF00, outputBase: 0, length: 0x200)])
        #expect(huge.lookup(0x0000) == .noMatch(maskedRID: 0))
    }

    @Test("every transaction leaves with StreamID = iommu-map(RID) and DeviceID = msi-map(RID)")
    func tagging() throws {
        let f = try Fixture(requesterID: RequesterID(bus: 1, device: 0, function: 1))   // RID 0x0101
        f.rootComplex.iommuMap = RequesterIDMap(entries: [.init(ridBase: 0x100, target: 1, outputBase: 0x4000, length: 0x100)])
        f.rootComplex.msiMap = RequesterIDMap(entries: [.init(ridBase: 0, target: 2, outputBase: 0x1_0000, length: 0x10000)], mask: 0xFFF8)
        f.enable()
        f.function.dma(.write, address: IOVA(0x8000), size: 8, data: 0x1122)
        try f.program(vector: 0, address: doorbell, data: 7, masked: false)
        f.setMSIXControl(enable: true, functionMask: false)
        f.function.raise(vector: 0)
        #expect(f.port.transactions.count == 2)
        for t in f.port.transactions {
            #expect(t.streamID == StreamID(0x4001))      // 0x4000 + (0x101 − 0x100)
            #expect(t.deviceID == DeviceID(0x1_0100))    // 0x10000 + (0x101 & 0xfff8)
        }
        #expect(f.function.log.compactMap(\.outcome.result).allSatisfy { $0.status == .completed })
    }

    @Test("no iommu-map entry: the request bypasses the SMMU through untranslatedUpstream, or is aborted without one")
    func untranslated() throws {
        let f = try Fixture(requesterID: RequesterID(bus: 2, device: 0, function: 0))
        f.rootComplex.iommuMap = RequesterIDMap(entries: [.init(ridBase: 0, outputBase: 0, length: 0x100)])
        f.enable()
        #expect(f.rootComplex.route(for: f.function).streamID == nil)
        #expect(f.function.dma(.read, address: IOVA(0x1000), size: 4).result?.status == .aborted)
        let direct = RecordingPort()
        f.rootComplex.untranslatedUpstream = direct
        f.function.dma(.write, address: IOVA(0x1000), size: 4, data: 5)
        #expect(direct.transactions.count == 1 && f.port.transactions.isEmpty)
        // DeviceID is still msi-map(RID) (identity here).
        #expect(direct.transactions.first?.deviceID == DeviceID(0x200))
    }

    @Test("msi-map absent, or without an entry for the RID: the DeviceID is the RID (of_map_id bypass)")
    func msiMapFallbacks() throws {
        let rc = RootComplex()
        rc.msiMap = nil
        #expect(rc.route(for: RequesterID(0x0310)).deviceID == DeviceID(0x0310))
        rc.msiMap = RequesterIDMap(entries: [.init(ridBase: 0, outputBase: 0x100, length: 0x10)])
        #expect(rc.route(for: RequesterID(0x0310)).deviceID == DeviceID(0x0310))
        #expect(rc.route(for: RequesterID(0x0003)).deviceID == DeviceID(0x0103))
        // iommu-map absent: no device is behind the IOMMU.
        rc.iommuMap = nil
        #expect(rc.route(for: RequesterID(0x0003)).streamID == nil)
    }

    @Test("attaching two things at one Requester ID is refused")
    func duplicateRID() throws {
        let rc = RootComplex()
        try rc.attach(try PCIFunction(requesterID: RequesterID(8), vendorID: 1, deviceID: 1))
        #expect(throws: PCIConfigurationError.self) {
            try rc.attach(try PCIFunction(requesterID: RequesterID(8), vendorID: 1, deviceID: 2))
        }
    }

    @Test("DMA: reads return completion data, odd sizes and unattached functions are refused")
    func dma() throws {
        let f = try Fixture()
        f.enable()
        f.port.readData = 0xCAFE
        #expect(f.function.dma(.read, address: IOVA(0x40), size: 2).result?.data == 0xCAFE)
        #expect(f.function.dma(.read, address: IOVA(0x40), size: 3) == .notSent(.unsupportedSize))
        let lonely = try PCIFunction(requesterID: RequesterID(9), vendorID: 1, deviceID: 1)
        lonely.configWrite(offset: ConfigRegister.command, size: 2, value: 4)
        #expect(lonely.dma(.write, address: IOVA(0), size: 4) == .notSent(.notAttached))
    }

    @Test("end to end through the system bus: ECAM enables the function, CPU stores program and unmask MSI-X entry 0")
    func endToEndOnTheBus() throws {
        let f = try Fixture(tableSize: 4)
        let bus = SystemBus()
        // QEMU virt: high ECAM at 0x40_1000_0000 (256 buses), 32-bit MMIO window at 0x1000_0000.
        try bus.addDevice(f.rootComplex.ecam, base: PhysicalAddress(0x40_1000_0000), size: f.rootComplex.ecamSize)
        try bus.addDevice(f.rootComplex.memoryWindow, base: PhysicalAddress(Fixture.barAddress), size: 0x2EFF_0000)
        let cfg: UInt64 = 0x40_1000_0000 + (1 << 15)   // 00:01.0
        try bus.write(PhysicalAddress(cfg + 0x10), size: 4, value: Fixture.barAddress, requester: .cpu(0))
        try bus.write(PhysicalAddress(cfg + 0x14), size: 4, value: 0, requester: .cpu(0))
        try bus.write(PhysicalAddress(cfg + 0x04), size: 2, value: 0x6, requester: .cpu(0))
        try bus.write(PhysicalAddress(cfg + UInt64(f.msix.controlOffset)), size: 2, value: 0x8000, requester: .cpu(0))
        let entry = Fixture.barAddress
        try bus.write(PhysicalAddress(entry), size: 8, value: doorbell, requester: .cpu(0))
        try bus.write(PhysicalAddress(entry + 8), size: 4, value: 0x1234, requester: .cpu(0))
        f.function.raise(vector: 0)                       // still masked (reset state): pending
        #expect(try bus.read(PhysicalAddress(entry + 0x2000), size: 8, requester: .cpu(0)) == 1)
        try bus.write(PhysicalAddress(entry + 0xC), size: 4, value: 0, requester: .cpu(0))
        #expect(f.port.transactions.map(\.data) == [0x1234])
        #expect(f.port.transactions.first?.address == IOVA(doorbell))
        #expect(try bus.read(PhysicalAddress(entry + 0x2000), size: 8, requester: .cpu(0)) == 0)
    }

    @Test("with logging off, messages are still sent but nothing is recorded")
    func loggingOff() throws {
        let f = try Fixture(tableSize: 2)
        f.enable()
        f.function.isLogging = false
        try f.program(vector: 1, address: doorbell, data: 9, masked: false)
        f.setMSIXControl(enable: true, functionMask: false)
        #expect(f.function.raise(vector: 1).transaction != nil)
        #expect(f.function.log.isEmpty && f.port.transactions.count == 1)
    }
}
