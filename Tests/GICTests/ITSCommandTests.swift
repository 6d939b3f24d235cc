import Bus
import Testing
@testable import GIC

@Suite struct ITSCommandTests {
    @Test func commandsWriteTheDocumentedTableFormatsInRAM() throws {
        let f = try Fixture()
        try f.standardSetup()
        // DTE at BASER0 + 0x10 × 8: Valid, Size 4 at [5:1], ITT >> 8 at [49:6].
        let dte = f.bus.ram.read(Fixture.deviceTable + 0x10 * 8, size: 8)
        #expect(dte == 1 | 4 << 1 | (f.ittAddress(0x10).rawValue >> 8) << 6)
        // CTE at BASER1 + 1 × 8: Valid, processor number 1 at [36:1].
        #expect(f.bus.ram.read(Fixture.collectionTable + 8, size: 8) == 1 | 1 << 1)
        // ITE at ITT + 3 × 12: Valid, physical, INTID 8195 at [25:2], ICID 1 at [47:32]; doorbell 1023.
        let ite = f.ittAddress(0x10).rawValue + 3 * 12
        #expect(f.bus.ram.read(ite, size: 8) == 0b11 | 8195 << 2 | 1 << 32)
        #expect(f.bus.ram.read(ite + 8, size: 4) == 1023)
    }

    @Test func indirectDeviceTableWalksTheLevel1Entry() throws {
        let f = try Fixture(indirectDeviceTable: true)
        // No level-2 page for DeviceIDs 0–511 yet: MAPD is out of range (documented choice).
        try f.mapDevice(0x10)
        #expect(f.its.lastCommandError == .mapdDeviceOutOfRange)
        try f.msi(device: 0x10, event: 3)
        #expect(f.its.counters.drops(.unmappedDevice) == 1)
        // Linux its_alloc_device_table: allocate a level-2 page, write L1 entry Valid | PA.
        // L1 entry 1 covers DeviceIDs 512–1023 (a 4 KiB page holds 512 8-byte DTEs).
        f.bus.ram.write(Fixture.deviceTable + 8, size: 8, value: Fixture.level2Pages | 1 << 63)
        try f.mapDevice(600)
        try f.mapCollection(0, cpu: 0)
        try f.mapEvent(600, 1, intid: 8300, icid: 0)
        try f.enable(8300, device: 600, event: 1)
        try f.msi(device: 600, event: 1)
        #expect(f.gic.redistributors[0].isPending(INTID(8300)))
        // The DTE sits in the level-2 page at (600 − 512) × 8.
        #expect(f.bus.ram.read(Fixture.level2Pages + 88 * 8, size: 8) & 1 == 1)
        // One L1 page of 512 entries × 512 DTEs each covers 2^18 > 2^16 DeviceIDs; 0x1_0000 is
        // beyond Devbits, so the table size never matters for it.
        try f.msi(device: 0x1_0000, event: 0)
        #expect(f.its.counters.drops(.deviceIDOutOfRange) == 1)
    }

    @Test func sixtyFourKPagesTakeAddressBits51To48FromBaserBits15To12() throws {
        let f = try Fixture(enableITS: false)
        // A device table at PA 0x1_0000_0001_0000 (above 2^48), 64 KiB pages (PageSize = 2):
        // bits[47:16] hold PA[47:16] = 0x1, bits[15:12] hold PA[51:48] = 0x1.
        try f.bus.addRAM(base: PhysicalAddress(0x1_0000_0000_0000), size: 0x10_0000)
        try f.its64(ITS.Offset.baser, UInt64(1) << 63 | 2 << 8 | 0x1_0000 | 0x1 << 12)
        try f.its32(ITS.Offset.ctlr, 1)
        try f.mapDevice(0x20)
        #expect(f.its.lastCommandError == nil)
        #expect(f.bus.ram.read(0x1_0000_0001_0000 + 0x20 * 8, size: 8) & 1 == 1)
        // One 64 KiB page holds 8192 DTEs.
        try f.mapDevice(8192)
        #expect(f.its.lastCommandError == .mapdDeviceOutOfRange)
    }

    @Test func indirectCollectionTableWalksTheLevel1Entry() throws {
        let f = try Fixture(enableITS: false)
        try f.its64(ITS.Offset.baser + 8, Fixture.collectionTable | UInt64(1) << 63 | UInt64(1) << 62)
        try f.its32(ITS.Offset.ctlr, 1)
        try f.mapCollection(3, cpu: 1)
        #expect(f.its.lastCommandError == .mapcCollectionOutOfRange)  // no level-2 page yet
        f.bus.ram.write(Fixture.collectionTable, size: 8, value: Fixture.level2Pages | 1 << 63)
        try f.mapCollection(3, cpu: 1)
        #expect(f.its.counters.commandErrors == 1)
        #expect(f.bus.ram.read(Fixture.level2Pages + 3 * 8, size: 8) == 1 | 1 << 1)  // Valid, processor 1
        try f.mapDevice(0x10)
        try f.mapEvent(0x10, 0, intid: 8192, icid: 3)
        try f.msi(device: 0x10, event: 0)
        #expect(f.gic.redistributors[1].isPending(INTID(8192)))
    }

    @Test(arguments: [false, true])
    func mapcTargetsFollowPTA(pta: Bool) throws {
        let f = try Fixture(GICConfiguration(cpuCount: 2, physicalTargetAddresses: pta))
        #expect(try f.itsRead(ITS.Offset.typer).bit(19) == pta)
        // PTA=1: RDbase is the RD_base PA [51:16] (0x080C_0000 for CPU1); PTA=0: processor 1.
        let target: ITSTarget = pta ? .address(PhysicalAddress(0x080C_0000)) : .processor(1)
        #expect(f.gic.target(ofCPU: 1) == target)
        try f.send(.mapc(collection: CollectionID(1), target: target, valid: true))
        #expect(f.its.lastCommandError == nil)
        try f.mapDevice(0x10)
        try f.mapEvent(0x10, 3, intid: 8195, icid: 1)
        try f.msi(device: 0x10, event: 3)
        #expect(f.gic.redistributors[1].isPending(INTID(8195)))
        // The other interpretation names no redistributor: processor 1 is not an RD_base frame
        // address (0x1_0000) under PTA=1; 0x80C (PA >> 16) is far beyond 2 PEs under PTA=0.
        let wrong: ITSTarget = pta ? .processor(1) : .address(PhysicalAddress(0x080C_0000))
        try f.send(.mapc(collection: CollectionID(2), target: wrong, valid: true))
        #expect(f.its.lastCommandError == .mapcProcessorOutOfRange)
    }

    @Test func movallMovesEveryPendingLPIBetweenRedistributors() throws {
        let f = try Fixture()
        try f.standardSetup()
        try f.mapEvent(0x10, 4, intid: 8196, icid: 1)
        try f.msi(device: 0x10, event: 3)
        try f.msi(device: 0x10, event: 4)
        #expect(f.gic.redistributors[1].pendingLPIs == [INTID(8195), INTID(8196)])
        try f.send(.movall(from: .processor(1), to: .processor(0)), .sync(target: .processor(0)))
        #expect(f.gic.redistributors[1].pendingCount == 0)
        #expect(f.gic.redistributors[0].pendingLPIs == [INTID(8195), INTID(8196)])
        #expect(f.isPendingInRAM(8196, cpu: 0) && !f.isPendingInRAM(8196, cpu: 1))
        // MOVALL moves state, not mappings: ICID 1 still names CPU1.
        try f.msi(device: 0x10, event: 3)
        #expect(f.gic.redistributors[1].isPending(INTID(8195)))
    }

    @Test func syncIsCountedAndNeverAnError() throws {
        let f = try Fixture()
        try f.send(.sync(target: .processor(0)), .sync(target: .processor(0xFFFF)))
        // SYNC takes an RDbase, and Linux's E_ITS_* list no SYNC error code (docs/hardware.md §ITS command errors).
        #expect(f.its.counters.syncs == 2)
        #expect(f.its.counters.commandErrors == 0)
        #expect(f.its.creadr == 64)
    }

    @Test func intSetsAndClearClearsThePendingBitInThePendingTable() throws {
        let f = try Fixture()
        try f.standardSetup()
        try f.send(.int(device: DeviceID(0x10), event: EventID(3)))
        #expect(f.isPendingInRAM(8195, cpu: 1))
        // Byte 8195 / 8 = 1024, bit 8195 % 8 = 3.
        #expect(f.bus.ram.readByte(f.pendTable(1) + 1024) == 1 << 3)
        try f.send(.clear(device: DeviceID(0x10), event: EventID(3)))
        #expect(!f.isPendingInRAM(8195, cpu: 1))
        #expect(f.ack(1) == 1023)
    }

    @Test func invRefreshesOneLPIAndInvallAllOfTheRedistributor() throws {
        let f = try Fixture()
        try f.standardSetup()
        try f.mapEvent(0x10, 4, intid: 8196, icid: 1)
        try f.enable(8196, device: 0x10, event: 4)
        let rd = f.gic.redistributors[1]
        #expect(rd.cachedConfiguration(INTID(8195)) == 0xA3)
        // Software rewrites both bytes; the redistributor's cache is untouched by memory writes.
        f.configure(8195, priority: 0x40)
        f.configure(8196, priority: 0x40)
        #expect(rd.cachedConfiguration(INTID(8195)) == 0xA3)
        try f.send(.inv(device: DeviceID(0x10), event: EventID(3)))
        #expect(rd.cachedConfiguration(INTID(8195)) == 0x43)
        #expect(rd.cachedConfiguration(INTID(8196)) == 0xA3)
        try f.send(.invall(collection: CollectionID(1)))
        #expect(rd.cachedConfiguration(INTID(8196)) == 0x43)
        // The cache is GIC-wide (CommonLPIAff = 0), so CPU0's redistributor sees the same byte.
        #expect(f.gic.redistributors[0].cachedConfiguration(INTID(8196)) == 0x43)
    }

    @Test func cachesHitAfterTheFirstMSIAndIgnoreTableEditsUntilACommand() throws {
        let f = try Fixture()
        try f.standardSetup()
        let missesBefore = (f.its.deviceCache.statistics.misses, f.its.eventCache.statistics.misses, f.its.collectionCache.statistics.misses)
        for _ in 0..<3 { try f.msi(device: 0x10, event: 3); _ = f.ack(1); f.gic.endOfInterrupt(cpu: 1, intid: 8195) }
        // The setup's INV already filled all three caches, so all three MSIs hit every cache.
        #expect(f.its.deviceCache.statistics.misses == missesBefore.0)
        #expect(f.its.eventCache.statistics.misses == missesBefore.1)
        #expect(f.its.collectionCache.statistics.misses == missesBefore.2)
        #expect(f.its.deviceCache.statistics.hits >= 3)
        // Software corrupts the DTE behind the ITS's back: translation still uses the cached copy.
        f.bus.ram.write(Fixture.deviceTable + 0x10 * 8, size: 8, value: 0)
        try f.msi(device: 0x10, event: 3)
        #expect(f.ack(1) == 8195)
        f.gic.endOfInterrupt(cpu: 1, intid: 8195)
        // A MAPD (here re-mapping another device) does not touch 0x10's entry; a MAPD of 0x10
        // itself does, after which the ITS reads the (restored) table again.
        try f.mapDevice(0x11)
        try f.msi(device: 0x10, event: 3)
        #expect(f.ack(1) == 8195)
        f.gic.endOfInterrupt(cpu: 1, intid: 8195)
        try f.send(.mapd(device: DeviceID(0x10), size: 4, ittAddress: f.ittAddress(0x10), valid: true))
        try f.msi(device: 0x10, event: 3)
        #expect(f.ack(1) == 8195)
        #expect(f.its.deviceCache.statistics.invalidations >= 1)
    }

    @Test func hardwareCollectionsNeedNoCollectionTable() throws {
        let f = try Fixture(GICConfiguration(cpuCount: 2, hardwareCollections: 4))
        #expect(try f.itsRead(ITS.Offset.typer).bits(31, 24) == 4)
        try f.its32(ITS.Offset.ctlr, 0)
        try f.its64(ITS.Offset.baser + 8, 0)  // no collection table at all
        try f.its32(ITS.Offset.ctlr, 1)
        try f.mapCollection(3, cpu: 1)
        #expect(f.its.lastCommandError == nil)
        try f.mapCollection(4, cpu: 1)
        #expect(f.its.lastCommandError == .mapcCollectionOutOfRange)
    }

    @Test func commandQueueWrapsAtItsSize() throws {
        let f = try Fixture()
        // One 4 KiB page holds 128 commands; 300 SYNCs wrap CREADR twice.
        for _ in 0..<300 { try f.send(.sync(target: .processor(0))) }
        #expect(f.its.counters.syncs == 300)
        #expect(f.its.creadr == (300 * 32) % 4096)
    }
}
