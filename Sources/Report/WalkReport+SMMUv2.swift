import Bus
import Machine
import SMMUv2
import SMMUv3
import Testbed

/// `doorbell walk` on a platform whose SMMU is an Arm SMMUv1/v2 (MMU-500, MMU-401): the first
/// such SMMU gets StreamID 0x8 in SMR0, whose S2CR names context bank 0, programmed the way
/// Linux's arm-smmu programs its DMA domain's bank (`BareMetal+SMMUv2.swift`); one write is
/// walked, then sent again to show the TLB hit. There is no stream table or context
/// descriptor to fetch: the stream mapping registers and the bank's own registers hold the
/// configuration, so the cost is the descriptor reads alone.
///
/// Stages: `s1` (an AArch64 bank on version 2; an AArch32 long-descriptor bank, 32-bit VA, on
/// version 1), `s2` (Linux's AArch64 VTCR, which a version 1 SMMU reads in its AArch32 form),
/// the default being the stage Linux's `arm_smmu_init_domain_context` would pick (stage 1 when
/// the SMMU has it). `nested` is refused as `doorbell msi` refuses it. Only the 4 KiB granule
/// is modelled.
extension WalkReport {
    static func makeSMMUv2(machine: Machine, stage requested: Stage?, granule: Granule, stage2Granule: Granule,
                           address: UInt64) throws -> WalkReport {
        let smmu = machine.smmuV2s[0]
        let configuration = smmu.configuration
        let node = machine.topology.otherIOMMUs[machine.smmuV2Descriptions[0]]
        let version = configuration.architectureVersion < 2 ? "SMMUv1" : "SMMUv2"
        let name = "\(version) \(node.path)" + (node.compatible.first.map { " (\($0))" } ?? "")
        let stage = requested ?? (configuration.stage1 ? .s1 : .s2)
        switch stage {
        case .nested:
            throw CommandFailure("\(machine.name): nested translation is not available on an \(version): Linux's arm-smmu driver (v6.14-v7.0) never programs nested context banks, and the model does not either; use --stage s1 or s2")
        case .s1 where !configuration.stage1, .s2 where !configuration.stage2:
            throw CommandFailure("\(machine.name): \(name) has no stage \(stage == .s1 ? 1 : 2) (SMMU_IDR0.\(stage == .s1 ? "S1TS" : "S2TS") is clear)")
        default:
            break
        }
        guard (stage == .s1 ? granule : stage2Granule) == .size4K else {
            throw UsageFailure("the \(version) model walks the 4K granule only")
        }
        let aarch32 = stage == .s1 && configuration.architectureVersion < 2
        guard !aarch32 || address >> 32 == 0 else {
            throw UsageFailure("\(name) translates stage 1 in the AArch32 long-descriptor format, whose VA is 32 bits: give an --address below 0x1_0000_0000")
        }
        let bm: BareMetal
        do { bm = try BareMetal(machine: machine) } catch { throw CommandFailure("\(machine.name): \(error)") }
        let ramOutput = bm.ramSpan.base.rawValue &+ (min(0x1000_0000, bm.ramSpan.size / 4) & ~0xFFFF)
        try bm.resetSMMUv2(0)
        let sid = StreamID(0x8)
        let page = address & ~0xFFF
        let tables: PageTableBuilder
        var description: [String] = []
        let inputBits = SMMUv2Configuration.addressBits(configuration.inputAddressSize) ?? 48
        switch stage {
        case .s1 where aarch32:
            tables = try bm.enableSMMUv2Stage1AArch32(streamID: sid)
            description.append("stage 1 only: AArch32 long-descriptor (TTBCR.EAE), 4K granule, 32-bit VA, context bank 0, ASID 1, tables in RAM at \(Hex.format(tables.root))")
        case .s1:
            tables = try bm.enableSMMUv2Stage1(streamID: sid, inputSize: min(inputBits, 48))
            description.append("stage 1 only: AArch64 (CBA2R.VA64), 4K granule, \(min(inputBits, 48))-bit IOVA, context bank 0, ASID 1, tables in RAM at \(Hex.format(tables.root))")
        default:
            tables = try bm.enableSMMUv2Stage2(streamID: sid)
            let form = configuration.architectureVersion < 2 ? " (the version 1 SMMU reads Linux's VTCR in its AArch32 form)" : ""
            description.append("stage 2 only: 4K granule, \(inputBits)-bit IPA, context bank 0, VMID 1, tables in RAM at \(Hex.format(tables.root))\(form)")
        }
        try tables.map(input: page, output: ramOutput, size: 0x1000)
        let expected = ramOutput + (address - page)
        description.insert("\(name): SMR0 = StreamID \(sid) → S2CR0 → context bank 0", at: 0)

        let log = TraceLog()
        let journal = Journal()
        smmu.trace = log
        smmu.journal = journal
        defer { smmu.trace = nil; smmu.journal = nil }
        let transaction = DeviceTransaction(kind: .write, address: IOVA(address), size: 4, data: 0xC0FF_EE00, streamID: sid, deviceID: DeviceID(0x8))
        let response = smmu.handle(transaction)
        let firstCost = TranslationCost(journal: journal.entries)
        let records = log.records
        var text = header(through: "\(version)", on: machine.name, description: description, transaction: transaction, records: records)
        var resultJSON: JSONValue = .null
        var landed: PhysicalAddress?
        switch response {
        case .translated(let output, let bank):
            landed = output
            try? machine.bus.write(output, size: 4, value: transaction.data, requester: .device(transaction.deviceID))
            text += "\nresult: \(transaction.address) → PA \(output) (context bank \(bank.map(String.init) ?? "none"))"
            text += output.rawValue == expected ? "\n" : " — expected \(Hex.format(expected))\n"
            resultJSON = .object(["result": .string("translated"), "input": .address(transaction.address.rawValue),
                                  "intermediate": .null, "output": .address(output.rawValue), "page-size": .address(0x1000),
                                  "writable": .bool(true), "expected": .address(expected), "fault": .null, "abort": .null])
        case .terminated(let abort, let reason):
            text += "\nresult: terminated (\(abort ? "abort" : "RAZ/WI")): \(reason)\n"
            resultJSON = .object(["result": .string("terminated"), "input": .address(transaction.address.rawValue),
                                  "intermediate": .null, "output": .null, "page-size": .null, "writable": .null,
                                  "expected": .address(expected), "fault": .string(reason), "abort": .bool(abort)])
        }
        text += "cost (miss): \(firstCost.descriptorReads(stage: 1)) stage-1 and \(firstCost.descriptorReads(stage: 2)) stage-2 descriptor reads (no STE or CD: SMR0 and S2CR0 pick the bank, whose registers hold the rest)\n"
        log.removeAll()
        journal.removeAll()
        _ = smmu.handle(transaction)
        let secondCost = TranslationCost(journal: journal.entries)
        text += "again (hit):  \(secondCost.tlbHits) TLB hit, \(secondCost.totalReads) reads\n"
        func counters(_ cost: TranslationCost) -> SMMUCounters {
            var c = SMMUCounters()
            c.stage1DescriptorReads = cost.descriptorReads(stage: 1)
            c.stage2DescriptorReads = cost.descriptorReads(stage: 2)
            c.tlbHits = cost.tlbHits
            c.tlbMisses = cost.tlbMisses
            return c
        }
        func json(_ c: SMMUCounters) -> JSONValue {
            .object(["ste-fetches": .number(c.steFetches), "cd-fetches": .number(c.cdFetches),
                     "stage-1-descriptor-reads": .number(c.stage1DescriptorReads), "stage-2-descriptor-reads": .number(c.stage2DescriptorReads),
                     "tlb-hits": .number(c.tlbHits), "tlb-misses": .number(c.tlbMisses)])
        }
        var report = WalkReport(text: text, firstCounters: counters(firstCost), secondCounters: counters(secondCost),
                                firstCost: firstCost, secondCost: secondCost, landedAt: landed)
        report.json = .object([
            "platform": .string(machine.name), "stage": .string(stage.rawValue),
            "granule": .string("\(granule)"), "stage-2-granule": .string("\(stage2Granule)"),
            "stream-id": .number(sid.rawValue), "address": .address(address), "setup": .array(description.map { .string($0) }),
            "records": .records(records), "result": resultJSON, "miss": json(report.firstCounters), "hit": json(report.secondCounters),
        ])
        return report
    }
}
