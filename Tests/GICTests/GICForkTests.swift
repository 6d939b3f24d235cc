import Bus
import Testing
@testable import GIC

/// Copying the GIC into a forked world (`WorldCloneable`): one copy of each part whichever way
/// it is reached, wired to the copied bus and GIC, carrying the ITS state and pending LPIs, and
/// independent of the original afterwards.
@Suite("GIC fork")
struct GICForkTests {
    @Test("a bus fork copies the GIC's parts once: the bus's devices are the copied GIC's")
    func partsCopiedOnce() throws {
        let f = try Fixture()
        try f.standardSetup()
        var map = CloneMap()
        let bus = map.clone(f.bus)
        let gic = map.clone(f.gic)
        map.finish()
        #expect(gic !== f.gic && gic.bus === bus)
        #expect(try #require(map.copy(of: f.gic.distributor)) === gic.distributor)
        #expect(gic.itss.count == 1 && gic.itss[0].gic === gic && gic.itss[0].bus === bus)
        #expect(gic.redistributors.allSatisfy { $0.bus === bus && $0.owner === gic })
        #expect(map.copy(of: f.its) === gic.itss[0])
        #expect(gic.itss[0].cwriter == f.its.cwriter && gic.itss[0].baser == f.its.baser)
        #expect(gic.redistributors.map(\.propbaser) == f.gic.redistributors.map(\.propbaser))
    }

    @Test("an MSI in the copy makes its LPI pending there only; the original still delivers its own")
    func independentDelivery() throws {
        let f = try Fixture()
        try f.standardSetup()
        try f.msi(device: 0x10, event: 3)     // pending on CPU1 before the fork
        var map = CloneMap()
        let bus = map.clone(f.bus)
        map.finish()
        let gic = try #require(map.copy(of: f.gic))
        let its = gic.itss[0]
        #expect(gic.redistributors[1].isPending(INTID(8195)), "pending state is copied")
        #expect(gic.acknowledge(cpu: 1) == 8195)
        #expect(f.gic.redistributors[1].isPending(INTID(8195)), "the copy's acknowledge left the original pending")
        #expect(f.ack(1) == 8195)
        // A second MSI sent into the copy only.
        try bus.write(its.translaterAddress, size: 4, value: 3, requester: .device(DeviceID(0x10)))
        #expect(gic.redistributors[1].isPending(INTID(8195)))
        #expect(!f.gic.redistributors[1].isPending(INTID(8195)))
        #expect(its.counters != f.its.counters)
        // A command in the copy (DISCARD) leaves the original's mapping alone.
        let words = ITSCommand.discard(device: DeviceID(0x10), event: EventID(3)).encode()
        let offset = its.cwriter
        try bus.writeWords(PhysicalAddress(Fixture.commandQueue + offset), words)
        try bus.write(PhysicalAddress(Fixture.itsBase.rawValue + ITS.Offset.cwriter), size: 8,
                      value: (offset + 32) % its.commandQueueBytes, requester: .cpu(0))
        try bus.write(its.translaterAddress, size: 4, value: 3, requester: .device(DeviceID(0x10)))
        #expect(its.counters.drops(.unmappedEvent) == 1)
        try f.msi(device: 0x10, event: 3)
        #expect(f.its.counters.drops(.unmappedEvent) == 0)
        // Pending again (8195 is still active from the acknowledge above, so a same-priority
        // acknowledge would not signal it yet: the pending bit is the answer).
        #expect(f.gic.redistributors[1].isPending(INTID(8195)))
    }

    @Test("every stored value of the distributor, each redistributor, the ITS and the LPI cache is carried into the copy (a field added later and not copied fails here)")
    func everyValueFieldCopied() throws {
        let f = try Fixture()
        try f.standardSetup()
        try f.msi(device: 0x10, event: 3)
        var map = CloneMap()
        _ = map.clone(f.bus)
        map.finish()
        let gic = try #require(map.copy(of: f.gic))
        let pairs: [(String, AnyObject, AnyObject)] =
            [("distributor", f.gic.distributor, gic.distributor), ("ITS", f.its, gic.itss[0]),
             ("LPI configuration cache", f.gic.lpiConfigurationCache, gic.lpiConfigurationCache)]
            + zip(f.gic.redistributors, gic.redistributors).map { ("redistributor \($0.processorNumber)", $0, $1) }
            + zip(f.gic.cpuInterfaces, gic.cpuInterfaces).enumerated().map { ("CPU interface \($0)", $1.0, $1.1) }
        for (name, original, copy) in pairs {
            #expect(CloneMap.valueFieldsThatDiffer(original, copy) == [], "\(name): fields not carried into the copy")
        }
    }
}
