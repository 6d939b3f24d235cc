import Foundation
import Testing

/// `--format qemu-trace` against QEMU 7.2's trace-event formats (hw/arm/trace-events and
/// hw/intc/trace-events of v7.2.0, the formats built into Debian bookworm's qemu-system-arm):
/// every line must match its event's format, and the events come in the order QEMU emits them.
@Suite("QEMU trace events")
struct QEMUTraceTests {
    /// QEMU 7.2's formats for the events the model prints (`%lx` is PRIx64 on LP64).
    static let formats: [String: String] = [
        "smmuv3_config_cache_miss": "Config cache MISS for sid=0x%x (hits=%d, misses=%d, hit rate=%d)",
        "smmuv3_config_cache_hit": "Config cache HIT for sid=0x%x (hits=%d, misses=%d, hit rate=%d)",
        "smmuv3_find_ste": "sid=0x%x features:0x%x, sid_split:0x%x",
        "smmuv3_find_ste_2lvl": "strtab_base:0x%lx l1ptr:0x%lx l1_off:0x%x, l2ptr:0x%lx l2_off:0x%x max_l2_ste:%d",
        "smmuv3_get_ste": "STE addr: 0x%lx",
        "smmuv3_get_cd": "CD addr: 0x%lx",
        "smmu_iotlb_lookup_miss": "IOTLB cache MISS asid=%d addr=0x%lx hit=%d miss=%d hit rate=%d",
        "smmu_iotlb_lookup_hit": "IOTLB cache HIT asid=%d addr=0x%lx hit=%d miss=%d hit rate=%d",
        "smmu_ptw_level": "level=%d iova=0x%lx subpage_sz=0x%zx baseaddr=0x%lx offset=%d => pte=0x%lx",
        "smmu_ptw_invalid_pte": "stage=%d level=%d base@=0x%lx pte@=0x%lx offset=%d pte=0x%lx",
        "smmu_ptw_page_pte": "stage=%d level=%d iova=0x%lx base@=0x%lx pte@=0x%lx pte=0x%lx page address = 0x%lx",
        "smmu_ptw_block_pte": "stage=%d level=%d base@=0x%lx pte@=0x%lx pte=0x%lx iova=0x%lx block address = 0x%lx block size = %d MiB",
        "smmuv3_translate_success": "%s sid=0x%x iova=0x%lx translated=0x%lx perm=0x%x",
        "smmuv3_translate_bypass": "%s sid=0x%x STE bypass iova:0x%lx is_write=%d",
        "smmuv3_translate_abort": "%s sid=0x%x abort on iova:0x%lx is_write=%d",
        "smmuv3_record_event": "%s sid=0x%x",
        "gicv3_its_translation_write": "GICv3 ITS TRANSLATER write: offset 0x%lx data 0x%lx size %u requester_id 0x%x",
    ]

    static func regex(_ format: String) throws -> NSRegularExpression {
        var pattern = NSRegularExpression.escapedPattern(for: format)
        for (conversion, replacement) in [("%lx", "[0-9a-f]+"), ("%zx", "[0-9a-f]+"), ("%x", "[0-9a-f]+"), ("%d", "-?[0-9]+"), ("%u", "[0-9]+"), ("%s", "\\S+")] {
            pattern = pattern.replacingOccurrences(of: conversion, with: replacement)
        }
        return try NSRegularExpression(pattern: "^" + pattern + "$")
    }

    static func check(_ output: String) throws -> [String] {
        var names: [String] = []
        for line in output.split(separator: "\n").map(String.init) {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            let name = parts[0]
            let format = try #require(formats[name], "\(name) is not a QEMU 7.2 event the test knows")
            let args = parts.count > 1 ? parts[1] : ""
            let re = try regex(format)
            #expect(re.firstMatch(in: args, range: NSRange(args.startIndex..., in: args)) != nil, "\(line) does not match \(name)'s format \(format)")
            names.append(name)
        }
        return names
    }

    @Test("bare-metal MSI through stage 1: QEMU's events in QEMU's order, ending at the ITS TRANSLATER write")
    func bareMetalStage1() throws {
        let run = try BinaryTests.run(["msi", "--translation", "s1", "--format", "qemu-trace"])
        #expect(run.status == 0)
        let names = try Self.check(run.stdout)
        #expect(names == ["smmuv3_config_cache_miss", "smmuv3_find_ste", "smmuv3_get_ste", "smmuv3_get_cd", "smmu_iotlb_lookup_miss",
                          "smmu_ptw_level", "smmu_ptw_level", "smmu_ptw_level", "smmu_ptw_level", "smmu_ptw_page_pte",
                          "smmuv3_translate_success", "gicv3_its_translation_write"])
        #expect(run.stdout.contains("smmuv3_translate_success smmuv3-iommu-memory-region-0-8 sid=0x8 iova=0xfffff040 translated=0x8090040 perm=0x2"))
        #expect(run.stdout.contains("gicv3_its_translation_write GICv3 ITS TRANSLATER write: offset 0x40 data 0x2 size 4 requester_id 0x8"))
    }

    @Test("bypass and the seed's legacy fault: STE bypass; an invalid stage-1 descriptor, the recorded F_TRANSLATION and the abort")
    func bypassAndFault() throws {
        let bypass = try BinaryTests.run(["msi", "--translation", "bypass", "--format", "qemu-trace"])
        #expect(try Self.check(bypass.stdout).contains("smmuv3_translate_bypass"))
        let legacy = try BinaryTests.run(["trace", "--scenario", "seed", "--strategy", "legacy", "--format", "qemu-trace"])
        #expect(legacy.status == 0)
        let names = try Self.check(legacy.stdout)
        #expect(Array(names.suffix(3)) == ["smmu_ptw_invalid_pte", "smmuv3_record_event", "smmuv3_translate_abort"])
        #expect(legacy.stdout.contains("smmuv3_record_event F_TRANSLATION sid=0x8"))
        #expect(!names.contains("gicv3_its_translation_write"))
    }

    @Test("ftrace form: the host's vfio-msix handler and the guest's, as irq_handler_entry/exit")
    func ftrace() throws {
        let run = try BinaryTests.run(["trace", "--scenario", "seed", "--strategy", "irqchip-relay", "--format", "ftrace"])
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[0].hasPrefix("host  [000] irq_handler_entry: irq=") && lines[0].contains("name=vfio-msix[0](0000:00:01.0)"))
        #expect(lines[2].hasPrefix("guest [000] irq_handler_entry: irq="))
    }
}
