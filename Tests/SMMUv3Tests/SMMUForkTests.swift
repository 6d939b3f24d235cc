import Bus
import SMMUv3
import Testbed
import Testing

/// Copying an SMMU into a forked world (`WorldCloneable`): the copy translates as the original
/// would, including from its caches, and neither sees the other's later table writes,
/// invalidations or register writes.
@Suite("SMMUv3 fork")
struct SMMUForkTests {
    @Test("a forked translator keeps the TLB and STE cache and is independent of the original afterwards")
    func translatorFork() throws {
        let h = TranslationHarness()
        let s2 = try h.makeStage2(sid: 1)
        try s2.map(input: 0x1000, output: 0x30_0000_1000, size: 0x1000)
        try s2.map(input: 0x2000, output: 0x30_0000_2000, size: 0x1000)
        #expect(h.translate(1, 0x1000).result?.fromTLB == false)

        var map = CloneMap()
        let copy = map.clone(h.translator)
        map.finish()
        let copyBus = try #require(map.copy(of: h.bus))
        #expect(copy !== h.translator && copy.bus === copyBus && copyBus !== h.bus)
        #expect(copy.tlb.sortedEntries.map(\.0) == h.translator.tlb.sortedEntries.map(\.0))
        #expect(copy.cachedStreamCount == h.translator.cachedStreamCount)
        #expect(copy.counters == h.translator.counters)
        #expect(CloneMap.valueFieldsThatDiffer(h.translator, copy) == [], "every stored value is carried into the copy")
        // The copy answers from the TLB it inherited.
        let inherited = copy.translate(h.transaction(1, 0x1000))
        #expect(inherited.result?.fromTLB == true)

        // The copy's stream table now aborts StreamID 1; only its own CFGI_STE makes that visible.
        try copyBus.writeWords(PhysicalAddress(TranslationHarness.streamTableBase + 64), StreamTableEntry.abort.words)
        copy.invalidate(.streamTableEntry(StreamID(1), leaf: true))
        copy.invalidate(.nsnhAll)
        #expect(copy.translate(h.transaction(1, 0x2000)).result == nil)
        let original = h.translate(1, 0x2000)
        #expect(original.result?.output == PhysicalAddress(0x30_0000_2000))
        #expect(original.result?.fromTLB == false, "the original's TLB did not see the copy's lookups")
    }

    @Test("a bus fork copies the SMMU on it once, pointed at the new bus, with independent registers")
    func busFork() throws {
        let bus = SystemBus()
        let smmu = SMMUv3(bus: bus)
        try bus.addRAM(base: PhysicalAddress(0x4000_0000), size: 0x1000_0000)
        try bus.addDevice(smmu, base: PhysicalAddress(0x0905_0000), size: SMMUv3.mmioSize)
        try bus.write(PhysicalAddress(0x0905_0000 + SMMURegisterOffset.strtabBase), size: 8, value: 0x4000_0000, requester: .cpu(0))

        var map = CloneMap()
        let copyBus = map.clone(bus)
        #expect(map.copy(of: smmu) == nil, "devices are copied in finish()")
        map.finish()
        let copySMMU = try #require(map.copy(of: smmu))
        let again = map.clone(smmu)
        #expect(again === copySMMU && copySMMU.bus === copyBus && copySMMU.translator.bus === copyBus)
        #expect(copyBus.regions == bus.regions)
        #expect(copySMMU.registers == smmu.registers)

        try copyBus.write(PhysicalAddress(0x0905_0000 + SMMURegisterOffset.strtabBase), size: 8, value: 0x4800_0000, requester: .cpu(0))
        let readBack = { (b: SystemBus) throws -> UInt64 in
            try b.read(PhysicalAddress(0x0905_0000 + SMMURegisterOffset.strtabBase), size: 8, requester: .cpu(0))
        }
        #expect(try readBack(copyBus) & 0xFFFF_FFC0 == 0x4800_0000)
        #expect(try readBack(bus) & 0xFFFF_FFC0 == 0x4000_0000)
        try bus.write(PhysicalAddress(0x4000_0000), size: 8, value: 7, requester: .cpu(0))
        #expect(try copyBus.read(PhysicalAddress(0x4000_0000), size: 8, requester: .cpu(0)) == 0)
    }
}
