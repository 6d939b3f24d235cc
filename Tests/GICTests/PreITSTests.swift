import Testing
import Bus
@testable import GIC

/// The SynQuacer / TI K3 pre-ITS window in front of an ITS: a 32-bit write at base +
/// (DeviceID << 2) is a translation request for that DeviceID with the written EventID.
@Suite("pre-ITS window")
struct PreITSTests {
    static let windowBase = PhysicalAddress(0x0100_0000)
    static let windowSize: UInt64 = 0x40_0000

    /// The standard fixture (DeviceID 0x10, event 3 → LPI 8195 on CPU 1) with a pre-ITS window.
    static func fixture() throws -> (Fixture, PreITS) {
        let f = try Fixture()
        let window = try f.gic.addPreITS(base: windowBase, size: windowSize, its: f.its)
        try f.standardSetup()
        return (f, window)
    }

    static func slot(_ deviceID: UInt32) -> PhysicalAddress { PhysicalAddress(windowBase.rawValue + UInt64(deviceID) << 2) }

    @Test("a 32-bit write at base + (0x10 << 2) raises DeviceID 0x10's EventID 3 → LPI 8195 on CPU 1")
    func slotDelivers() throws {
        let (f, window) = try Self.fixture()
        let journal = Journal()
        f.its.journal = journal
        try f.bus.write(Self.slot(0x10), size: 4, value: 3, requester: .device(DeviceID(0x10)))
        #expect(window.counters.forwarded == 1)
        #expect(f.its.counters.translaterWrites == 1 && f.its.counters.translations == 1)
        #expect(itsTranslations(journal).map(\.deviceID) == [DeviceID(0x10)] && itsTranslations(journal).map(\.eventID) == [3])
        #expect(f.ack(1) == 8195)
    }

    @Test("the DeviceID is the slot's: another requester's sideband, or a CPU store, at slot 0x10 raises 0x10's LPI")
    func noIsolation() throws {
        let (f, _) = try Self.fixture()
        try f.bus.write(Self.slot(0x10), size: 4, value: 3, requester: .device(DeviceID(0x99)))
        #expect(f.ack(1) == 8195, "a device with DeviceID 0x99 raised DeviceID 0x10's interrupt")
        f.gic.endOfInterrupt(cpu: 1, intid: 8195)
        try f.bus.write(Self.slot(0x10), size: 4, value: 3, requester: .cpu(0))
        #expect(f.ack(1) == 8195, "so did a CPU store")
        // Its own slot (0x99) names an unmapped device: dropped by the ITS.
        try f.bus.write(Self.slot(0x99), size: 4, value: 3, requester: .device(DeviceID(0x10)))
        #expect(f.its.counters.drops(.unmappedDevice) == 1)
    }

    @Test("direct writes to GITS_TRANSLATER arrive as DeviceID 0 on a pre-ITS SoC, whatever the sideband")
    func directWriteIsDeviceZero() throws {
        let (f, _) = try Self.fixture()
        #expect(f.its.interconnectDeviceID == DeviceID(0))
        let journal = Journal()
        f.its.journal = journal
        try f.msi(device: 0x10, event: 3)
        #expect(itsTranslations(journal).map(\.deviceID) == [DeviceID(0)])
        #expect(f.its.counters.drops(.unmappedDevice) == 1)
        #expect(f.ack(1) == 1023)
    }

    @Test("only aligned 32-bit writes are forwarded: 1-, 2-, 8-byte and misaligned writes are dropped and counted")
    func sizesAndAlignment() throws {
        let (f, window) = try Self.fixture()
        for size in [1, 2, 8] {
            try f.bus.write(Self.slot(0x10), size: size, value: 3, requester: .device(DeviceID(0x10)))
        }
        #expect(window.counters.droppedSize == 3)
        // A 4-byte write 2 bytes into slot 0x10.
        try f.bus.write(PhysicalAddress(Self.windowBase.rawValue + 0x42), size: 4, value: 3, requester: .device(DeviceID(0x10)))
        #expect(window.counters.droppedMisaligned == 1)
        #expect(window.counters.forwarded == 0 && f.its.counters.translaterWrites == 0)
        #expect(f.ack(1) == 1023)
        #expect(try f.bus.read(Self.slot(0x10), size: 4, requester: .cpu(0)) == 0, "the window reads as zero")
    }

    @Test("slot arithmetic: the last slot is DeviceID size/4 − 1; nothing past the window")
    func slotArithmetic() throws {
        let (_, window) = try Self.fixture()
        #expect(window.deviceID(atOffset: 0) == DeviceID(0))
        #expect(window.deviceID(atOffset: 0x40) == DeviceID(0x10))
        #expect(window.deviceID(atOffset: Self.windowSize - 4) == DeviceID(0xF_FFFF))
        #expect(window.deviceID(atOffset: Self.windowSize) == nil)
        #expect(window.deviceID(atOffset: 2) == nil)
        #expect(window.deviceID(atOffset: .max) == nil)
    }

    @Test("a window too small for one slot, or overlapping the ITS, is refused")
    func placement() throws {
        let f = try Fixture()
        #expect(throws: BusError.self) { try f.gic.addPreITS(base: Self.windowBase, size: 2, its: f.its) }
        #expect(throws: BusError.self) { try f.gic.addPreITS(base: f.its.base, size: 0x1000, its: f.its) }
    }

    @Test("GITS_IIDR reports the configured implementation: QEMU's 0x43B by default, GIC-500 r1p1 when configured")
    func iidr() throws {
        let plain = try Fixture()
        #expect(try plain.itsRead(ITS.Offset.iidr, size: 4) == 0x43B)
        var configuration = GICConfiguration(cpuCount: 2)
        configuration.iidr = GICv3.gic500r1p1IIDR
        let gic500 = try Fixture(configuration)
        #expect(try gic500.itsRead(ITS.Offset.iidr, size: 4) == 0x0001_143B)
        #expect(try gic500.bus.read(PhysicalAddress(Fixture.distributorBase.rawValue + Distributor.Offset.iidr), size: 4, requester: .cpu(0)) == 0x0001_143B)
    }
}

/// The ITS translations a journal recorded: (DeviceID, EventID, result).
private func itsTranslations(_ journal: Journal) -> [(deviceID: DeviceID, eventID: UInt32, result: JournalITSResult)] {
    journal.entries.compactMap {
        if case .itsTranslate(_, let deviceID, let eventID, let result) = $0 { (deviceID, eventID, result) } else { nil }
    }
}
