import Bus
import SMMUv3

/// One traced MSI's journal as QEMU's trace events, so a QEMU developer can diff a model run
/// against `qemu-system-aarch64 -d trace:smmuv3_*,smmu_*,gicv3_its_*`. Event names, argument
/// order and formats are QEMU 7.2's (hw/arm/trace-events, hw/intc/trace-events of v7.2.0, as
/// built into Debian bookworm's qemu-system-arm 1:7.2+dfsg-7+deb12u18: checked against the
/// format strings in that binary). Each line is what QEMU's log backend prints after its
/// `PID@SECONDS.MICROS:` prefix, which has no model counterpart and is left out.
///
/// What the journal gives and what is derived, per event:
/// - `smmuv3_config_cache_miss/hit`, `smmu_iotlb_lookup_miss/hit`: the counters restart at the
///   traced MSI (QEMU's count since boot is not in the model); ASID from the CD read in this
///   trace (its word 0, bits 63:48), else 0.
/// - `smmuv3_find_ste`, `smmuv3_find_ste_2lvl`, `smmuv3_get_ste`, `smmuv3_get_cd`: from the
///   L1STD, STE and CD reads. `sid_split` is the L1STD's Span − 1, the split Linux programs with
///   the L2 tables it sizes (`arm_smmu_init_l2_strtab`); features 0x1 is QEMU's
///   SMMU_FEATURE_2LVL_STE.
/// - `smmu_ptw_level` and the leaf events: from each walk read, with 4 KiB tables (base =
///   address rounded down to 4 KiB, offset = index); `iova` is the stage's input: stage 1's
///   from the TLB lookup, stage 2's rebuilt from the walk's table indices (page-aligned, or the
///   exact IPA for the walk of the data's IPA).
/// - `smmuv3_translate_success/abort`, `smmuv3_record_event`: the memory region is QEMU's
///   `smmuv3-iommu-memory-region-BUS-DEVFN` for the requester; perm 0x2 (IOMMU_WO: an MSI is
///   a write).
/// - `gicv3_its_translation_write`: offset 0x40 in the translation frame, size 4, the
///   requester ID. QEMU's DTE/ITE/CTE read events need table contents the journal does not
///   keep, so they are not printed.
/// QEMU 7.2 has no stage 2 (added in 9.0), so a nested trace prints stage-2 walks with 7.2's
/// formats where 9.x would tag them `stage=2` inside `smmu_ptw_level`.
public enum QEMUTrace {
    public static func lines(_ journal: [JournalEntry]) -> [String] {
        var out: [String] = []
        var cacheHits = 0, cacheMisses = 0, tlbHits = 0, tlbMisses = 0
        var requesterID: UInt16 = 0
        var streamID: UInt32 = 0
        var asid: UInt64 = 0
        var missNoted: Set<UInt32> = []
        var translated: (input: UInt64, intermediate: UInt64?)?
        for entry in journal {
            if case .smmuTranslated(let input, let intermediate, _, _, _) = entry { translated = (input, intermediate); break }
        }
        var stage1Input: UInt64 = translated?.input ?? 0
        func rate(_ hits: Int, _ misses: Int) -> Int { hits + misses == 0 ? 0 : hits * 100 / (hits + misses) }
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        func region() -> String { "smmuv3-iommu-memory-region-\(requesterID >> 8)-\(requesterID & 0xFF)" }
        func noteMiss(_ sid: UInt32) {
            guard !missNoted.contains(sid) else { return }
            missNoted.insert(sid)
            cacheMisses += 1
            out.append("smmuv3_config_cache_miss Config cache MISS for sid=\(hex(UInt64(sid))) (hits=\(cacheHits), misses=\(cacheMisses), hit rate=\(rate(cacheHits, cacheMisses)))")
        }
        // A stage-2 walk's input IPA, rebuilt from the table indices of its reads (4 KiB
        // tables: bits 47:39, 38:30, 29:21, 20:12), with the data IPA's low bits when it is the
        // walk of the final IPA.
        var stage2Inputs: [Int: UInt64] = [:]
        var group: [Int] = []
        func closeGroup() {
            guard !group.isEmpty else { return }
            var ipa: UInt64 = 0
            for i in group {
                if case .walkRead(_, let level, let address, _) = journal[i] {
                    ipa |= ((address & 0xFFF) / 8) << UInt64(12 + 9 * (3 - min(max(level, 0), 3)))
                }
            }
            if let data = translated?.intermediate, data & ~0xFFF & ((1 << 48) - 1) == ipa & ~0xFFF { ipa = data }
            for i in group { stage2Inputs[i] = ipa }
            group = []
        }
        for (i, entry) in journal.enumerated() {
            if case .walkRead(2, _, _, let pte) = entry {
                group.append(i)
                if pte & 3 != 3 || group.count == 4 { closeGroup() }
            } else {
                closeGroup()
            }
        }
        closeGroup()
        for (index, entry) in journal.enumerated() {
            switch entry {
            case .route(let rid, let sid, _, _):
                requesterID = rid
                streamID = sid.rawValue
            case .l1stdRead(let sid, let address, let descriptor):
                noteMiss(sid.rawValue)
                let span = Int(descriptor & 0x1F)
                let split = max(span - 1, 0)
                let l1Index = UInt64(sid.rawValue) >> UInt64(split)
                let l2ptr = descriptor & 0x000F_FFFF_FFFF_FFC0
                out.append("smmuv3_find_ste sid=\(hex(UInt64(sid.rawValue))) features:0x1, sid_split:\(hex(UInt64(split)))")
                out.append("smmuv3_find_ste_2lvl strtab_base:\(hex(address &- 8 &* l1Index)) l1ptr:\(hex(address)) l1_off:\(hex(l1Index)), l2ptr:\(hex(l2ptr)) l2_off:\(hex(UInt64(sid.rawValue) & ((1 << UInt64(split)) &- 1))) max_l2_ste:\(span == 0 ? 0 : (1 << (span - 1)) - 1)")
            case .steRead(let sid, let address, _):
                if !missNoted.contains(sid.rawValue) {
                    noteMiss(sid.rawValue)
                    out.append("smmuv3_find_ste sid=\(hex(UInt64(sid.rawValue))) features:0x0, sid_split:0x0")
                }
                out.append("smmuv3_get_ste STE addr: \(hex(address))")
            case .steFetch(let sid, let cached, _, _):
                if cached {
                    cacheHits += 1
                    out.append("smmuv3_config_cache_hit Config cache HIT for sid=\(hex(UInt64(sid.rawValue))) (hits=\(cacheHits), misses=\(cacheMisses), hit rate=\(rate(cacheHits, cacheMisses)))")
                }
            case .cdRead(_, _, let address, let dw0):
                asid = dw0 >> 48
                out.append("smmuv3_get_cd CD addr: \(hex(address))")
            case .tlb(let hit, let address, _, _):
                stage1Input = address
                if hit { tlbHits += 1 } else { tlbMisses += 1 }
                let kind = hit ? "hit IOTLB cache HIT" : "miss IOTLB cache MISS"
                out.append("smmu_iotlb_lookup_\(kind) asid=\(asid) addr=\(hex(address)) hit=\(tlbHits) miss=\(tlbMisses) hit rate=\(rate(tlbHits, tlbMisses))")
            case .walkRead(let stage, let level, let address, let pte):
                let base = address & ~0xFFF
                let offset = (address & 0xFFF) / 8
                let iova = stage == 1 ? stage1Input : (stage2Inputs[index] ?? 0)
                let shift = 12 + 9 * (3 - min(max(level, 0), 3))
                out.append("smmu_ptw_level level=\(level) iova=\(hex(iova)) subpage_sz=\(hex(1 << UInt64(shift))) baseaddr=\(hex(base)) offset=\(offset) => pte=\(hex(pte))")
                let type = pte & 3
                if type == 0 || (type == 1 && level == 3) {
                    out.append("smmu_ptw_invalid_pte stage=\(stage) level=\(level) base@=\(hex(base)) pte@=\(hex(address)) offset=\(offset) pte=\(hex(pte))")
                } else if type == 3 && level == 3 {
                    out.append("smmu_ptw_page_pte stage=\(stage) level=\(level) iova=\(hex(iova)) base@=\(hex(base)) pte@=\(hex(address)) pte=\(hex(pte)) page address = \(hex(pte & 0x000F_FFFF_FFFF_F000))")
                } else if type == 1 {
                    let size = UInt64(1) << UInt64(shift)
                    out.append("smmu_ptw_block_pte stage=\(stage) level=\(level) base@=\(hex(base)) pte@=\(hex(address)) pte=\(hex(pte)) iova=\(hex(iova)) block address = \(hex(pte & 0x000F_FFFF_FFFF_F000 & ~(size - 1))) block size = \(size >> 20) MiB")
                }
            case .smmuTranslated(let input, _, let output, let s1, let s2):
                if !s1 && !s2 {
                    out.append("smmuv3_translate_bypass \(region()) sid=\(hex(UInt64(streamID))) STE bypass iova:\(hex(input)) is_write=1")
                } else {
                    out.append("smmuv3_translate_success \(region()) sid=\(hex(UInt64(streamID))) iova=\(hex(input)) translated=\(hex(output)) perm=0x2")
                }
            case .smmuFault(let fault):
                let name = SMMUEventType(rawValue: fault.eventType)?.name ?? "UNKNOWN"
                if fault.record { out.append("smmuv3_record_event \(name) sid=\(hex(UInt64(fault.streamID.rawValue)))") }
                out.append("smmuv3_translate_abort \(region()) sid=\(hex(UInt64(fault.streamID.rawValue))) abort on iova:\(hex(fault.inputAddress)) is_write=\(fault.isWrite ? 1 : 0)")
            case .smmuAborted(let input):
                out.append("smmuv3_translate_abort \(region()) sid=\(hex(UInt64(streamID))) abort on iova:\(hex(input)) is_write=1")
            case .itsTranslate(_, _, let eventID, _):
                out.append("gicv3_its_translation_write GICv3 ITS TRANSLATER write: offset 0x40 data \(hex(UInt64(eventID))) size 4 requester_id \(hex(UInt64(requesterID)))")
            default:
                continue
            }
        }
        return out
    }

    /// The kernel side as ftrace prints its IRQ tracepoints (include/trace/events/irq.h):
    /// `irq_handler_entry: irq=%d name=%s` and `irq_handler_exit: irq=%d ret=handled`, for the
    /// host's and the guest's handlers, each prefixed with its CPU as ftrace's `[NNN]` column;
    /// task, PID, flags and timestamps have no model counterpart and are left out.
    public static func ftrace(_ journal: [JournalEntry]) -> [String] {
        var out: [String] = []
        func cpu(_ n: Int) -> String { "[" + String(repeating: "0", count: max(0, 3 - String(n).count)) + String(n) + "]" }
        for entry in journal {
            switch entry {
            case .hostInterrupt(let c, _, let irq?, let handler?):
                out.append("host  \(cpu(c)) irq_handler_entry: irq=\(irq) name=\(handler)")
                out.append("host  \(cpu(c)) irq_handler_exit: irq=\(irq) ret=handled")
            case .guestHandler(let irq, _, let c):
                out.append("guest \(cpu(c)) irq_handler_entry: irq=\(irq) name=guest-\(irq)")
                out.append("guest \(cpu(c)) irq_handler_exit: irq=\(irq) ret=handled")
            default:
                continue
            }
        }
        return out
    }
}
