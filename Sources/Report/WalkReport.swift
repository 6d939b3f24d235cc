import Bus
import Machine
import SMMUv3
import Testbed

/// The result of `doorbell walk`, kept apart from printing so tests can check it.
public struct WalkReport {
    /// Which stages translate.
    public enum Stage: String, CaseIterable, Sendable {
        case s1, s2, nested
    }

    public var text: String
    public var firstCounters: SMMUCounters
    public var secondCounters: SMMUCounters
    /// The cost lines' numbers: the first (missing) and second (hitting) write's reads and TLB
    /// lookups, folded from the journal the SMMU kept for each write.
    public var firstCost: TranslationCost
    public var secondCost: TranslationCost
    public var landedAt: PhysicalAddress?
    /// The same as data: `doorbell walk --format json`.
    public var json: JSONValue = .null

    /// Builds the translation on `machine` through the SMMU's own interface, sends one write to
    /// `address` from StreamID 0x8, then again to show the TLB hit.
    /// Without an SMMUv3, the first Arm SMMUv1/v2 (`WalkReport+SMMUv2.swift`); `stage` nil is
    /// nested on an SMMUv3 and the DMA domain's stage on an Arm SMMU.
    public static func make(machine: Machine, stage: Stage?, granule: Granule, stage2Granule: Granule, address: UInt64) throws -> WalkReport {
        if machine.smmus.isEmpty, !machine.smmuV2s.isEmpty {
            return try makeSMMUv2(machine: machine, stage: stage, granule: granule, stage2Granule: stage2Granule, address: address)
        }
        return try make(machine: machine, stage: stage ?? .nested, granule: granule, stage2Granule: stage2Granule, address: address)
    }

    public static func make(machine: Machine, stage: Stage, granule: Granule, stage2Granule: Granule, address: UInt64) throws -> WalkReport {
        if machine.smmus.isEmpty, !machine.smmuV2s.isEmpty {
            return try makeSMMUv2(machine: machine, stage: stage, granule: granule, stage2Granule: stage2Granule, address: address)
        }
        guard !machine.smmus.isEmpty else {
            let others = machine.topology.otherIOMMUs.filter(\.enabled).map { "\($0.path) is \($0.compatible.first ?? "another IOMMU")" }
            throw CommandFailure("\(machine.name): no SMMUv3 in the description\(others.isEmpty ? "" : " (not modelled: \(others.joined(separator: ", ")))")")
        }
        let bm: BareMetal
        do { bm = try BareMetal(machine: machine) } catch { throw CommandFailure("\(machine.name): \(error)") }
        // Where the walk's output lands: 256 MiB into the largest usable RAM span (a quarter of
        // it on a small span), 64 KiB aligned, so the write ends in RAM on any platform.
        let ramOutput = bm.ramSpan.base.rawValue &+ (min(0x1000_0000, bm.ramSpan.size / 4) & ~0xFFFF)
        try bm.resetSMMU()
        let sid = StreamID(0x8)
        let page = address & ~(granule.size - 1)
        var description: [String] = []
        var expected: UInt64 = 0
        switch stage {
        case .s1:
            let tables = try bm.enableStage1(streamID: sid, granule: granule)
            let output = ramOutput
            try tables.map(input: page, output: output, size: granule.size)
            expected = output + (address - page)
            description.append("stage 1 only: \(granule) granule, 48-bit IOVA, tables in RAM at \(Hex.format(tables.root))")
        case .s2:
            let ipaPage = address & ~(stage2Granule.size - 1)
            let tables: PageTableBuilder
            do { tables = try PageTableBuilder(stage2InputSize: 40, granule: stage2Granule, bus: machine.bus, allocator: bm.allocator) }
            catch { throw UsageFailure("\(error)") }
            let output = ramOutput
            try tables.map(input: ipaPage, output: output, size: stage2Granule.size)
            try bm.installSTE(.stage2(vmid: VMID(1), ttb: PhysicalAddress(tables.root), geometry: tables.geometry,
                                      outputSize: machine.smmus[0].translator.configuration.outputAddressSize), streamID: sid)
            expected = output + (address - ipaPage)
            description.append("stage 2 only: \(stage2Granule) granule, 40-bit IPA, VMID 1")
        case .nested:
            let nested = try bm.enableNested(streamID: sid, stage1Granule: granule, stage2Granule: stage2Granule)
            let ipa = nested.guestRAM.ipa &+ (min(0x80_0000, nested.guestRAM.size / 4) & ~0xFFFF)
            try nested.stage1.map(input: page, output: ipa, size: granule.size)
            expected = nested.guestRAM.pa + (ipa - nested.guestRAM.ipa) + (address - page)
            description.append("nested: stage 1 \(granule)/48-bit (CD at IPA \(Hex.format(nested.contextDescriptorIPA)), tables in guest RAM), stage 2 \(stage2Granule)/40-bit, VMID 1, ASID 1")
            description.append("guest RAM: IPA \(Hex.format(nested.guestRAM.ipa)) → PA \(Hex.format(nested.guestRAM.pa)), \(nested.guestRAM.size >> 20) MiB")
        }
        let translator = machine.smmus[0].translator
        let log = TraceLog()
        translator.trace = log
        translator.counters = SMMUCounters()
        let journal = Journal()
        translator.journal = journal
        defer { translator.journal = nil }
        let transaction = DeviceTransaction(kind: .write, address: IOVA(address), size: 4, data: 0xC0FF_EE00, streamID: sid, deviceID: DeviceID(0x8))
        let response = machine.smmus[0].handle(transaction)
        let first = translator.counters
        let firstCost = TranslationCost(journal: journal.entries)
        let records = log.records
        var text = header(through: "SMMUv3", on: machine.name, description: description, transaction: transaction, records: records)
        var resultJSON: JSONValue = .null
        var landed: PhysicalAddress?
        switch response {
        case .translated(let result):
            landed = result.output
            try? machine.bus.write(result.output, size: 4, value: transaction.data, requester: .device(transaction.deviceID))
            let ipa = result.intermediate.map { " → IPA \($0)" } ?? ""
            text += "\nresult: \(transaction.address)\(ipa) → PA \(result.output) (\(result.pageSize >> 10) KiB, \(result.writable ? "RW" : "RO"))"
            text += result.output.rawValue == expected ? "\n" : " — expected \(Hex.format(expected))\n"
            resultJSON = .object(["result": .string("translated"), "input": .address(transaction.address.rawValue),
                                  "intermediate": .address(result.intermediate?.rawValue), "output": .address(result.output.rawValue),
                                  "page-size": .address(result.pageSize), "writable": .bool(result.writable),
                                  "expected": .address(expected), "fault": .null, "abort": .null])
        case .terminated(let fault, let abort):
            text += "\nresult: terminated (\(abort ? "abort" : "RAZ/WI"))\(fault.map { ": \($0)" } ?? "")\n"
            resultJSON = .object(["result": .string("terminated"), "input": .address(transaction.address.rawValue),
                                  "intermediate": .null, "output": .null, "page-size": .null, "writable": .null,
                                  "expected": .address(expected), "fault": .string(fault.map { "\($0)" }), "abort": .bool(abort)])
        }
        text += "cost (miss): \(firstCost.streamTableReads) STE fetch, \(firstCost.contextDescriptorReads) CD fetch, \(firstCost.descriptorReads(stage: 1)) stage-1 and \(firstCost.descriptorReads(stage: 2)) stage-2 descriptor reads\n"
        log.removeAll()
        journal.removeAll()
        translator.counters = SMMUCounters()
        _ = machine.smmus[0].handle(transaction)
        let second = translator.counters
        let secondCost = TranslationCost(journal: journal.entries)
        text += "again (hit):  \(secondCost.tlbHits) TLB hit, \(secondCost.totalReads) reads\n"
        var report = WalkReport(text: text, firstCounters: first, secondCounters: second, firstCost: firstCost, secondCost: secondCost, landedAt: landed)
        func counters(_ c: SMMUCounters) -> JSONValue {
            .object(["ste-fetches": .number(c.steFetches), "cd-fetches": .number(c.cdFetches),
                     "stage-1-descriptor-reads": .number(c.stage1DescriptorReads), "stage-2-descriptor-reads": .number(c.stage2DescriptorReads),
                     "tlb-hits": .number(c.tlbHits), "tlb-misses": .number(c.tlbMisses)])
        }
        report.json = .object([
            "platform": .string(machine.name), "stage": .string(stage.rawValue),
            "granule": .string("\(granule)"), "stage-2-granule": .string("\(stage2Granule)"),
            "stream-id": .number(sid.rawValue), "address": .address(address), "setup": .array(description.map { .string($0) }),
            "records": .records(records), "result": resultJSON, "miss": counters(first), "hit": counters(second),
        ])
        return report
    }
}

extension WalkReport {
    /// The text above the result, the same for every SMMU: what was programmed, the one
    /// transaction, then every step it took.
    static func header(through smmu: String, on machine: String, description: [String], transaction: DeviceTransaction,
                       records: [TraceRecord]) -> String {
        var text = "Doorbell: one DMA write through the \(smmu) on \(machine)\n"
        for line in description { text += "  \(line)\n" }
        text += "  transaction: \(transaction)\n\n"
        return text + TraceTable.render(records)
    }
}
