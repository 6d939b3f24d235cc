import Bus
import Testing
@testable import GIC

@Suite struct TraceTests {
    @Test func oneMSIIsTracedStepByStep() throws {
        let f = try Fixture()
        try f.standardSetup()
        let log = TraceLog()
        f.gic.trace = log
        try f.msi(device: 0x10, event: 3)
        _ = f.ack(1)
        let details = log.records.map(\.detail)
        // The ITT of device 0x10 is at 0x4100_0000 + 0x10 × 0x1000; MAPD Size 4 = 32 events.
        #expect(details == [
            "DeviceID 0x10 → ITT 0x4101_0000 size 4 (32 events)",
            "EventID 3 → pINTID 8195, ICID 1",
            "ICID 1 → redistributor 1",
            "LPI 8195 pending on CPU1 (priority 0xa0, enabled)",
            "CPU1 takes LPI 8195 (priority 0xa0)",
        ])
        #expect(log.records.map(\.layer) == [.its, .its, .its, .redistributor, .cpu])
    }

    @Test func anUntracedGICRecordsNothing() throws {
        let f = try Fixture()
        try f.standardSetup()
        let log = TraceLog()
        f.gic.trace = log
        f.gic.trace = nil
        try f.msi(device: 0x10, event: 3)
        #expect(log.records.isEmpty)
        #expect(f.its.trace == nil && f.gic.redistributors.allSatisfy { $0.trace == nil })
    }
}
