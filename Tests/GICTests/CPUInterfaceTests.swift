import Bus
import Testing
@testable import GIC

@Suite struct CPUInterfaceTests {
    /// Device 0x10 events 0–3 → LPIs 8200 (0xA0), 8195 (0x80), 8197 (0x80), 8199 (0x60 but disabled).
    func setup() throws -> Fixture {
        let f = try Fixture()
        try f.mapDevice(0x10)
        try f.mapCollection(0, cpu: 0)
        for (event, intid) in [(0, 8200), (1, 8195), (2, 8197), (3, 8199)] as [(UInt32, UInt32)] {
            try f.mapEvent(0x10, event, intid: intid, icid: 0)
        }
        f.configure(8200, priority: 0xA0)
        f.configure(8195, priority: 0x80)
        f.configure(8197, priority: 0x80)
        f.configure(8199, priority: 0x60, enabled: false)
        try f.send(.invall(collection: CollectionID(0)))
        for event in 0..<4 as Range<UInt32> { try f.msi(device: 0x10, event: event) }
        return f
    }

    @Test func acknowledgeTakesLowestPriorityValueThenLowestINTIDAndRespectsRunningPriority() throws {
        let f = try setup()
        // 0x80 beats 0xA0; between the two 0x80s the lower INTID wins (documented tie rule);
        // 8199 has the best priority but is disabled, so it never shows.
        #expect(f.ack(0) == 8195)
        #expect(f.gic.cpuInterfaces[0].runningPriority == 0x80)
        // 8197 has the same priority as the running one: no preemption until EOI.
        #expect(f.ack(0) == 1023)
        f.gic.endOfInterrupt(cpu: 0, intid: 8195)
        #expect(f.ack(0) == 8197)
        f.gic.endOfInterrupt(cpu: 0, intid: 8197)
        #expect(f.ack(0) == 8200)
        f.gic.endOfInterrupt(cpu: 0, intid: 8200)
        #expect(f.ack(0) == 1023)
        #expect(f.gic.cpuInterfaces[0].runningPriority == 0xFF)
        #expect(f.gic.cpuInterfaces[0].deliveries.map(\.intid.rawValue) == [8195, 8197, 8200])
        #expect(f.gic.redistributors[0].pendingLPIs == [INTID(8199)])
    }

    @Test func higherPriorityPreemptsARunningLowerPriority() throws {
        let f = try setup()
        // Take 8200 alone first by masking the 0x80s out with a lower PMR after clearing them.
        try f.send(.clear(device: DeviceID(0x10), event: EventID(1)), .clear(device: DeviceID(0x10), event: EventID(2)))
        #expect(f.ack(0) == 8200)
        try f.msi(device: 0x10, event: 1)
        // 0x80 < running 0xA0: preempts (nested), then EOIs unwind innermost first.
        #expect(f.ack(0) == 8195)
        #expect(f.gic.cpuInterfaces[0].activeStack.map(\.intid.rawValue) == [8200, 8195])
        f.gic.endOfInterrupt(cpu: 0, intid: 8195)
        #expect(f.gic.cpuInterfaces[0].runningPriority == 0xA0)
        f.gic.endOfInterrupt(cpu: 0, intid: 8200)
        #expect(f.gic.cpuInterfaces[0].counters.unmatchedEndOfInterrupts == 0)
    }

    @Test func priorityMaskHidesPrioritiesAtOrAboveIt() throws {
        let f = try setup()
        // Only priorities strictly below PMR are signalled: PMR 0x80 hides 0x80 and 0xA0.
        f.gic.setPriorityMask(cpu: 0, 0x80)
        #expect(f.ack(0) == 1023)
        f.gic.setPriorityMask(cpu: 0, 0x81)
        #expect(f.ack(0) == 8195)
    }

    @Test func aPendingLPICanBeRaisedAgainWhileItsHandlerRuns() throws {
        let f = try setup()
        #expect(f.ack(0) == 8195)
        // No active state for LPIs: the same MSI makes it pending again at once.
        try f.msi(device: 0x10, event: 1)
        #expect(f.gic.redistributors[0].isPending(INTID(8195)))
        f.gic.endOfInterrupt(cpu: 0, intid: 8195)
        #expect(f.ack(0) == 8195)
    }

    @Test func eoiWithNothingActiveIsCountedAndIgnored() throws {
        let f = try Fixture()
        f.gic.endOfInterrupt(cpu: 0, intid: 8192)
        f.gic.endOfInterrupt(cpu: 0, intid: 1023)  // special INTIDs are ignored outright
        #expect(f.gic.cpuInterfaces[0].counters.unmatchedEndOfInterrupts == 1)
        #expect(f.gic.cpuInterfaces[0].counters.endOfInterrupts == 1)
    }
}
