import Bus
import Testing
@testable import GIC

/// Every command error code of docs/hardware.md §ITS command errors (Linux arm-gic-v3.h E_ITS_*), and the policy.
@Suite struct ITSCommandErrorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var command: ITSCommand
        var expected: UInt32
        var testDescription: String { "\(name) → 0x\(String(expected, radix: 16))" }
    }

    /// In the standard setup (device 0x10 with 32 events, ICIDs 0 and 1 mapped to CPUs 0 and 1,
    /// event 3 → LPI 8195 on ICID 1, 2 CPUs, 512-entry collection table, 16 EventID bits) each of
    /// these commands breaks exactly one rule, named in `name`.
    static let cases: [Case] = [
        Case(name: "MOVI of an event without ITE", command: .movi(device: DeviceID(0x10), event: EventID(4), collection: CollectionID(0)), expected: 0x01_0107),
        Case(name: "MOVI to an unmapped collection", command: .movi(device: DeviceID(0x10), event: EventID(3), collection: CollectionID(5)), expected: 0x01_0109),
        Case(name: "INT of an event without ITE", command: .int(device: DeviceID(0x10), event: EventID(4)), expected: 0x01_0307),
        Case(name: "CLEAR of an event without ITE", command: .clear(device: DeviceID(0x10), event: EventID(4)), expected: 0x01_0507),
        Case(name: "MAPD DeviceID ≥ 2^16", command: .mapd(device: DeviceID(0x1_0000), size: 4, ittAddress: PhysicalAddress(0x4100_0000), valid: true), expected: 0x01_0801),
        Case(name: "MAPD Size 16 > IDbits 15", command: .mapd(device: DeviceID(0x20), size: 16, ittAddress: PhysicalAddress(0x4100_0000), valid: true), expected: 0x01_0802),
        Case(name: "MAPC to processor 2 of 2", command: .mapc(collection: CollectionID(2), target: .processor(2), valid: true), expected: 0x01_0902),
        Case(name: "MAPC ICID 512 beyond a 1-page table", command: .mapc(collection: CollectionID(512), target: .processor(0), valid: true), expected: 0x01_0903),
        Case(name: "MAPTI on an unmapped device", command: .mapti(device: DeviceID(0x20), event: EventID(0), intid: INTID(8192), collection: CollectionID(0)), expected: 0x01_0A04),
        Case(name: "MAPTI EventID 32 ≥ 2^(4+1)", command: .mapti(device: DeviceID(0x10), event: EventID(32), intid: INTID(8192), collection: CollectionID(0)), expected: 0x01_0A05),
        Case(name: "MAPTI pINTID 8191 < 8192", command: .mapti(device: DeviceID(0x10), event: EventID(4), intid: INTID(8191), collection: CollectionID(0)), expected: 0x01_0A06),
        Case(name: "MAPTI pINTID 65536 ≥ 2^16", command: .mapti(device: DeviceID(0x10), event: EventID(4), intid: INTID(65536), collection: CollectionID(0)), expected: 0x01_0A06),
        Case(name: "MAPI on an unmapped device", command: .mapi(device: DeviceID(0x20), event: EventID(0), collection: CollectionID(0)), expected: 0x01_0B04),
        Case(name: "MAPI pINTID = EventID 4 < 8192", command: .mapi(device: DeviceID(0x10), event: EventID(4), collection: CollectionID(0)), expected: 0x01_0B06),
        Case(name: "INV of an event without ITE", command: .inv(device: DeviceID(0x10), event: EventID(4)), expected: 0x01_0C07),
        Case(name: "INVALL of an unmapped collection", command: .invall(collection: CollectionID(5)), expected: 0x01_0D09),
        Case(name: "MOVALL to processor 7 of 2", command: .movall(from: .processor(0), to: .processor(7)), expected: 0x01_0E01),
        Case(name: "DISCARD of an event without ITE", command: .discard(device: DeviceID(0x10), event: EventID(4)), expected: 0x01_0F07),
    ]

    @Test(arguments: cases)
    func commandErrorIsRecordedAndSkipped(_ c: Case) throws {
        let f = try Fixture()
        try f.standardSetup()
        #expect(f.its.lastCommandError == nil)
        try f.send(c.command)
        #expect(f.its.lastCommandError?.rawValue == c.expected)
        #expect(f.its.errorLog.last?.outcome == .error(ITSCommandError(rawValue: c.expected)))
        #expect(f.its.errorLog.last?.words == c.command.encode())
        // Skip-and-continue: the queue moved past the command and the next one runs.
        #expect(f.its.creadr == f.its.cwriter && !f.its.stalled)
        try f.mapEvent(0x10, 7, intid: 8199, icid: 0)
        #expect(f.its.counters.commandErrors == 1)
    }

    @Test func maptiCollectionOutOfRangeUsesTheCauseScheme() throws {
        // CIDbits = 8: ICID 256 cannot exist. Code = 0x01 << 16 | MAPTI << 8 | 03.
        let f = try Fixture(GICConfiguration(cpuCount: 2, collectionIDBits: 8))
        try f.mapDevice(0x10)
        try f.mapEvent(0x10, 0, intid: 8192, icid: 256)
        #expect(f.its.lastCommandError?.rawValue == 0x01_0A03)
        try f.send(.mapc(collection: CollectionID(256), target: .processor(0), valid: true))
        #expect(f.its.lastCommandError == .mapcCollectionOutOfRange)
    }

    @Test func mapdSizeLimitIsIDbits() throws {
        // eventIDBits = 10 → GITS_TYPER.IDbits = 9 → the largest MAPD Size is 9 (1024 events).
        let f = try Fixture(GICConfiguration(cpuCount: 2, eventIDBits: 10))
        #expect(try f.itsRead(ITS.Offset.typer).bits(12, 8) == 9)
        try f.mapDevice(0x10, eventBits: 10)
        #expect(f.its.lastCommandError == nil)
        try f.mapCollection(0, cpu: 0)
        try f.mapEvent(0x10, 1023, intid: 9000, icid: 0)
        #expect(f.its.lastCommandError == nil)
        try f.mapDevice(0x11, eventBits: 11)
        #expect(f.its.lastCommandError == .mapdITTSizeOutOfRange)
        // V=0 ignores Size: unmapping never fails on it.
        try f.send(.mapd(device: DeviceID(0x12), size: 31, ittAddress: PhysicalAddress(0), valid: false))
        #expect(f.its.counters.commandErrors == 1)
    }

    @Test func mapdDeviceIDLimitIsDevbitsAndTheTableSize() throws {
        let f = try Fixture(GICConfiguration(cpuCount: 2, deviceIDBits: 10), deviceTablePages: 1)
        try f.mapDevice(511)  // last DTE of one 4 KiB page of 8-byte entries
        #expect(f.its.lastCommandError == nil)
        try f.mapDevice(512)  // within Devbits (1024) but beyond the table
        #expect(f.its.lastCommandError == .mapdDeviceOutOfRange)
        try f.mapDevice(1024)
        #expect(f.its.counters.commandErrors == 2)
    }

    @Test func stallPolicyStopsTheQueueUntilRetry() throws {
        let f = try Fixture(GICConfiguration(cpuCount: 2, commandErrorPolicy: .stall))
        try f.standardSetup()
        let failingOffset = f.its.cwriter
        try f.send(.int(device: DeviceID(0x10), event: EventID(4)))  // no ITE: 0x010307
        try f.send(.int(device: DeviceID(0x10), event: EventID(3)))  // queued behind it
        #expect(f.its.stalled)
        #expect(f.its.creadr == failingOffset)
        #expect(try f.itsRead(ITS.Offset.creadr) & 1 == 1)  // CREADR.Stalled
        #expect(!f.gic.redistributors[1].isPending(INTID(8195)))
        // Software repairs the command in place (a valid INT) and writes CWRITER with Retry=1.
        try f.bus.writeWords(PhysicalAddress(Fixture.commandQueue + failingOffset), ITSCommand.int(device: DeviceID(0x10), event: EventID(3)).encode())
        try f.its64(ITS.Offset.cwriter, f.its.cwriter | 1)
        #expect(!f.its.stalled)
        #expect(f.its.creadr == f.its.cwriter)
        #expect(f.gic.redistributors[1].isPending(INTID(8195)))
    }

    @Test func aQueueInUnbackedMemoryStallsWithAMemoryFault() throws {
        let f = try Fixture(enableITS: false)
        try f.its64(ITS.Offset.cbaser, 0x1000_0000 | UInt64(1) << 63)  // nothing decodes there
        try f.its32(ITS.Offset.ctlr, 1)
        try f.its64(ITS.Offset.cwriter, 32)
        #expect(f.its.stalled)
        #expect(f.its.errorLog.last?.outcome == .memoryFault(address: 0x1000_0000))
    }

    @Test func unknownOpcodesAreSkippedAndCounted() throws {
        let f = try Fixture()
        try f.send(words: [0x2A, 0, 0, 0])  // VMAPTI: GICv4, not modelled
        try f.send(words: [0xFF, 0, 0, 0])
        #expect(f.its.counters.unsupportedCommands == 2)
        #expect(f.its.lastCommandError == nil)
        #expect(f.its.creadr == 64)
    }
}

@Suite struct ITSQueueTests {
    @Test func aTableWriteFaultStallsEvenUnderSkipAndContinue() throws {
        let f = try Fixture()
        try f.mapCollection(0, cpu: 0)
        // An ITT where nothing decodes: MAPD only writes the DTE, so it succeeds ...
        try f.send(.mapd(device: DeviceID(1), size: 4, ittAddress: PhysicalAddress(0x2000_0000), valid: true))
        #expect(!f.its.stalled)
        // ... but MAPTI must write the ITE there: a bus error, which stalls (QEMU stalls on
        // memory errors too) instead of being skipped like a parameter error.
        try f.mapEvent(1, 0, intid: 8192, icid: 0)
        #expect(f.its.stalled)
        #expect(f.its.errorLog.last?.outcome == .memoryFault(address: 0x2000_0000))
        #expect(f.its.lastCommandError == nil)
    }

    @Test func commandsQueuedWhileDisabledRunWhenTheITSIsEnabled() throws {
        let f = try Fixture(enableITS: false)
        try f.send(.mapc(collection: CollectionID(0), target: .processor(0), valid: true), .sync(target: .processor(0)))
        #expect(f.its.creadr == 0)  // GITS_CTLR.Enabled = 0: nothing consumed
        try f.its32(ITS.Offset.ctlr, 1)
        #expect(f.its.creadr == 64)
        #expect(f.its.counters.commandsProcessed == 2)
    }

    @Test func cwriterBeyondTheQueueIsIgnored() throws {
        let f = try Fixture()
        // A 1-page queue has offsets 0..<4096; 0x2000 is outside it (UNPREDICTABLE; the model
        // consumes nothing and counts it, as QEMU logs and returns).
        try f.its64(ITS.Offset.cwriter, 0x2000)
        #expect(f.its.creadr == 0)
        #expect(f.its.counters.commandsProcessed == 0)
        #expect(f.its.counters.invalidQueueOffsets == 1)
    }
}
