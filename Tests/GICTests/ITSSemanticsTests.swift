import Bus
import Testing
@testable import GIC

/// The ITS behaviours the issue lists: MOVI, DISCARD, MAPD V=0, INV/INVALL with INT.
@Suite struct ITSSemanticsTests {
    @Test func msiBecomesPendingLPIOnTheCollectionsRedistributorAndIsAcknowledged() throws {
        let f = try Fixture()
        try f.standardSetup()
        try f.msi(device: 0x10, event: 3)
        // MAPTI put EventID 3 → 8195 on ICID 1, MAPC put ICID 1 on CPU1: the LPI must be pending
        // there (shadow and the pending table in RAM, bit 8195 % 8 of byte 8195 / 8) and nowhere else.
        #expect(f.gic.redistributors[1].isPending(INTID(8195)))
        #expect(f.isPendingInRAM(8195, cpu: 1))
        #expect(!f.gic.redistributors[0].isPending(INTID(8195)))
        #expect(f.ack(0) == 1023)
        #expect(f.ack(1) == 8195)
        // LPIs have no active state: acknowledging clears the pending bit in RAM too.
        #expect(!f.isPendingInRAM(8195, cpu: 1))
        #expect(f.gic.cpuInterfaces[1].deliveries.retained == [CPUInterface.Delivery(intid: INTID(8195), priority: 0xA0)])
        #expect(f.its.counters.translations == 1)
    }

    @Test func moviRetargetsFutureMSIsAndMovesAPendingLPI() throws {
        let f = try Fixture()
        try f.standardSetup()
        try f.msi(device: 0x10, event: 3)
        try f.send(.movi(device: DeviceID(0x10), event: EventID(3), collection: CollectionID(0)))
        // The pending state moves with the interrupt (GICv3 MOVI), from CPU1 to CPU0 (ICID 0).
        #expect(!f.gic.redistributors[1].isPending(INTID(8195)))
        #expect(f.gic.redistributors[0].isPending(INTID(8195)))
        #expect(f.ack(0) == 8195)
        // A later MSI follows the new ICID: the ITE in RAM now names collection 0.
        try f.msi(device: 0x10, event: 3)
        #expect(f.gic.redistributors[0].isPending(INTID(8195)))
        #expect(!f.gic.redistributors[1].isPending(INTID(8195)))
        #expect(f.its.lastCommandError == nil)
    }

    @Test func discardRemovesTheMappingAndThePendingState() throws {
        let f = try Fixture()
        try f.standardSetup()
        try f.msi(device: 0x10, event: 3)
        try f.send(.discard(device: DeviceID(0x10), event: EventID(3)))
        #expect(!f.gic.redistributors[1].isPending(INTID(8195)))
        #expect(!f.isPendingInRAM(8195, cpu: 1))
        try f.msi(device: 0x10, event: 3)
        #expect(f.its.counters.drops(.unmappedEvent) == 1)
        #expect(f.ack(1) == 1023)
        // A second DISCARD finds no ITE: E_ITS_DISCARD_UNMAPPED_INTERRUPT.
        try f.send(.discard(device: DeviceID(0x10), event: EventID(3)))
        #expect(f.its.lastCommandError == .discardUnmappedInterrupt)
    }

    @Test func mapdWithVZeroUnmapsTheDevice() throws {
        let f = try Fixture()
        try f.standardSetup()
        try f.msi(device: 0x10, event: 3)  // fills all three caches
        _ = f.ack(1)
        try f.send(.mapd(device: DeviceID(0x10), size: 0, ittAddress: PhysicalAddress(0), valid: false))
        try f.msi(device: 0x10, event: 3)
        // MAPD invalidated the cached DTE, so the ITS re-read the now invalid entry.
        #expect(f.its.counters.drops(.unmappedDevice) == 1)
        #expect(f.ack(1) == 1023)
        // Events of an unmapped device cannot be mapped: E_ITS_MAPTI_UNMAPPED_DEVICE.
        try f.mapEvent(0x10, 4, intid: 8196, icid: 1)
        #expect(f.its.lastCommandError == .maptiUnmappedDevice)
    }

    @Test func disablingAnLPIWithINVStopsDeliveryButINTStillMarksItPendingAndINVALLDeliversIt() throws {
        let f = try Fixture()
        try f.standardSetup()
        f.configure(8195, enabled: false)
        try f.send(.inv(device: DeviceID(0x10), event: EventID(3)))
        try f.send(.int(device: DeviceID(0x10), event: EventID(3)))
        // INT sets the pending bit as a TRANSLATER write would (GICv3 INT) ...
        #expect(f.gic.redistributors[1].isPending(INTID(8195)))
        #expect(f.isPendingInRAM(8195, cpu: 1))
        // ... but the cached configuration says disabled, so the CPU interface signals nothing.
        #expect(f.ack(1) == 1023)
        #expect(f.gic.redistributors[1].isPending(INTID(8195)))
        // Re-enabling in memory is not enough: the redistributor still holds the old byte.
        f.configure(8195, enabled: true)
        #expect(f.ack(1) == 1023)
        try f.send(.invall(collection: CollectionID(1)), .sync(target: f.gic.target(ofCPU: 1)))
        #expect(f.ack(1) == 8195)
    }
}
