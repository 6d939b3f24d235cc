import Bus
import Testing
@testable import GIC

/// The DeviceID comes from the bus, never from the data: who can raise whose LPI.
@Suite struct ITSIsolationTests {
    @Test(arguments: [Requester.cpu(0), .cpu(1), .hardware])
    func aWriteWithoutDeviceIDRaisesNoLPI(requester: Requester) throws {
        let f = try Fixture()
        try f.standardSetup()
        // Whatever a PE writes (here the EventID of the mapped event), it carries no DeviceID.
        try f.bus.write(f.its.translaterAddress, size: 4, value: 3, requester: requester)
        #expect(f.its.counters.drops(.noDeviceID) == 1)
        #expect(f.its.counters.translations == 0)
        #expect(f.gic.redistributors.allSatisfy { $0.pendingCount == 0 })
    }

    @Test func anotherDevicesDeviceIDCannotRaiseTheFirstDevicesLPI() throws {
        let f = try Fixture()
        try f.standardSetup(device: 0x10)
        // Device 0x11 is unmapped: its write of the same EventID is dropped.
        try f.msi(device: 0x11, event: 3)
        #expect(f.its.counters.drops(.unmappedDevice) == 1)
        #expect(!f.gic.redistributors[1].isPending(INTID(8195)))
        // Mapped with its own ITT, device 0x11's EventID 3 reaches only its own LPI (8200).
        try f.mapDevice(0x11)
        try f.mapEvent(0x11, 3, intid: 8200, icid: 1)
        try f.msi(device: 0x11, event: 3)
        #expect(f.gic.redistributors[1].pendingLPIs == [INTID(8200)])
    }

    @Test func anEventTheITTDoesNotMapIsDroppedAndCounted() throws {
        let f = try Fixture()
        try f.standardSetup()
        try f.msi(device: 0x10, event: 4)      // inside the ITT (32 events), no ITE
        try f.msi(device: 0x10, event: 32)     // beyond 2^(Size+1) = 32
        try f.msi(device: 0x10, event: 0xFFFF_FFFF)
        #expect(f.its.counters.drops(.unmappedEvent) == 1)
        #expect(f.its.counters.drops(.eventIDOutOfRange) == 2)
        #expect(f.gic.redistributors.allSatisfy { $0.pendingCount == 0 })
    }

    @Test func deviceIDsBeyondDevbitsOrTheTableAreOutOfRange() throws {
        let f = try Fixture()
        try f.standardSetup()
        // One flat 4 KiB page holds 512 DTEs; Devbits allows 2^16 DeviceIDs.
        try f.msi(device: 512, event: 0)
        try f.msi(device: 0x1_0000, event: 0)
        #expect(f.its.counters.drops(.deviceIDOutOfRange) == 2)
    }

    @Test func aDisabledITSDropsEverything() throws {
        let f = try Fixture(enableITS: false)
        try f.msi(device: 0x10, event: 3)
        #expect(f.its.counters.drops(.itsDisabled) == 1)
    }

    @Test func translaterTakesSixteenBitWritesAndRejectsOtherSizes() throws {
        let f = try Fixture()
        try f.standardSetup()
        try f.bus.write(f.its.translaterAddress, size: 2, value: 0xFFFF_0003, requester: .device(DeviceID(0x10)))
        // Only the low 16 bits are the EventID, so this is event 3.
        #expect(f.gic.redistributors[1].isPending(INTID(8195)))
        #expect(throws: BusError.self) {
            try f.bus.write(f.its.translaterAddress, size: 8, value: 3, requester: .device(DeviceID(0x10)))
        }
        #expect(f.its.counters.drops(.badAccessSize) == 1)
    }

    @Test func anLPIForARedistributorWithLPIsDisabledIsRefused() throws {
        let f = try Fixture(enableLPIs: false)
        try f.enableRedistributor(0)
        try f.mapDevice(0x10)
        try f.mapCollection(1, cpu: 1)
        try f.mapEvent(0x10, 3, intid: 8195, icid: 1)
        let result = f.its.translate(deviceID: DeviceID(0x10), eventID: EventID(3))
        #expect(result == .delivered(intid: INTID(8195), cpu: 1, accepted: false))
        #expect(f.gic.redistributors[1].counters.lpisDroppedLPIsDisabled == 1)
        #expect(!f.isPendingInRAM(8195, cpu: 1))
    }
}
