import Benchmark
import Bus
import SMMUv3
import Testbed
import WalkReference

/// `SMMU.compare.*`: Doorbell's `SMMUTranslator.translate` and the plain C walk of
/// `WalkReference` on the same shapes, in the same run, so each figure has its C ratio.
///
/// Shapes (both sides): 4 KiB granule, 48-bit, 4-level tables; `pages` (65,536) IOVA pages
/// from 0x1_0000_0000, page i mapped to data page `perm[i]` (the C side's xorshift
/// Fisher–Yates permutation, read back so both map the same pages). Nested: the stage-1 tables
/// and CD live in guest RAM (IPA 0x5000_0000 → PA 0x6000_0000, page-mapped at stage 2), so a
/// miss is 4 S1 + 20 S2 reads. Single stage: 4 reads. Iteration k uses page k mod 65,536 at
/// offset 0x40 for misses (the 256-entry TLB never still holds it) and page k mod 128 for hits
/// (all 128 stay cached on both sides).
///
/// What each side does per operation: the C miss is the walk alone; Doorbell's miss is a whole
/// `translate` (configuration-cache hit, TLB lookup, walk with every architectural check,
/// TLB fill and its flush every 256 inserts, the `TranslationOutcome`). The C hit is a
/// direct-mapped lookup with a permission check; Doorbell's hit is a whole `translate` too.
func compareBenchmarks() {
    Benchmark("SMMU.compare.tlbHit.C") { benchmark, rig in
        var k: UInt64 = 0
        for _ in benchmark.scaledIterations {
            blackHole(walkref_translate(rig.c, CompareRig.iova(page: k & 127)))
            k &+= 1
        }
    } setup: { CompareRig.c().readyForCHits() }

    Benchmark("SMMU.compare.tlbHit.s1") { benchmark, rig in
        rig.runDoorbell(benchmark, pageMask: 127)
    } setup: { CompareRig.doorbell(nested: false).readyForHits() }

    Benchmark("SMMU.compare.tlbHit.nested") { benchmark, rig in
        rig.runDoorbell(benchmark, pageMask: 127)
    } setup: { CompareRig.doorbell(nested: true).readyForHits() }

    Benchmark("SMMU.compare.s1Miss.C") { benchmark, rig in
        var k: UInt64 = 0
        for _ in benchmark.scaledIterations {
            blackHole(walkref_stage1_walk(rig.c, CompareRig.iova(page: k & CompareRig.pageMask)))
            k &+= 1
        }
    } setup: { CompareRig.c() }

    Benchmark("SMMU.compare.s1Miss") { benchmark, rig in
        rig.runDoorbell(benchmark, pageMask: CompareRig.pageMask)
    } setup: { CompareRig.doorbell(nested: false).readyForMisses(reads: (4, 0)) }

    Benchmark("SMMU.compare.nestedMiss.C") { benchmark, rig in
        var k: UInt64 = 0
        for _ in benchmark.scaledIterations {
            blackHole(walkref_nested_walk(rig.c, CompareRig.iova(page: k & CompareRig.pageMask)))
            k &+= 1
        }
    } setup: { CompareRig.c() }

    Benchmark("SMMU.compare.nestedMiss") { benchmark, rig in
        rig.runDoorbell(benchmark, pageMask: CompareRig.pageMask)
    } setup: { CompareRig.doorbell(nested: true).readyForMisses(reads: (4, 20)) }
}

final class CompareRig {
    static let pages: UInt32 = 65_536
    static let pageMask: UInt64 = UInt64(pages) - 1
    static let seed: UInt64 = 0x9E37_79B9_7F4A_7C15
    static let ioBase: UInt64 = 0x1_0000_0000
    static let ramBase: UInt64 = 0x4000_0000
    static let ramSize: UInt64 = 0x8000_0000
    static let streamTableBase: UInt64 = 0x4000_0000
    static let hostTables: UInt64 = 0x4010_0000
    static let guestIPABase: UInt64 = 0x5000_0000
    static let guestPABase: UInt64 = 0x6000_0000
    static let guestDataIPA: UInt64 = 0x5020_0000
    static let singleDataPA: UInt64 = 0x7000_0000
    static let streamID: UInt32 = 1

    /// The C world (also the source of the permutation); freed with the rig.
    let c: OpaquePointer
    var translator: SMMUTranslator!
    var bus: SystemBus!

    private init() {
        guard let c = walkref_create(Self.pages, Self.seed) else { fatalError("walkref_create failed") }
        self.c = c
    }

    deinit { walkref_destroy(c) }

    @inline(__always)
    static func iova(page: UInt64) -> UInt64 { ioBase &+ page &* 4096 &+ 0x40 }

    static func c() -> CompareRig { CompareRig() }

    /// Doorbell's translator over the same mapping as the C world.
    static func doorbell(nested: Bool) -> CompareRig {
        let rig = CompareRig()
        let bus = SystemBus()
        try! bus.addRAM(base: PhysicalAddress(ramBase), size: ramSize)
        let translator = SMMUTranslator(configuration: .default, bus: bus)
        translator.streamTable = StreamTableConfiguration(base: PhysicalAddress(streamTableBase), log2Size: 8, split: 6, twoLevel: false)
        let host = PageAllocator(base: hostTables, size: 0x200_0000)
        let ste: StreamTableEntry
        if nested {
            let offset = guestPABase &- guestIPABase
            let s2 = try! PageTableBuilder(stage2InputSize: 48, granule: .size4K, bus: bus, allocator: host)
            try! s2.map(input: guestIPABase, output: guestPABase, size: 0x20_0000 + UInt64(pages) * 4096, blocks: false)
            let guestTables = PageAllocator(base: guestIPABase, size: 0x20_0000)
            let s1 = try! PageTableBuilder(stage1InputSize: 48, granule: .size4K, bus: bus, allocator: guestTables, physicalOffset: offset)
            for i in 0..<pages {
                try! s1.map(input: ioBase &+ UInt64(i) &* 4096,
                            output: guestDataIPA &+ UInt64(walkref_permutation(rig.c, i)) &* 4096, size: 4096, blocks: false)
            }
            let cdIPA = guestTables.allocate(bytes: 64, alignment: 64)!
            let cd = ContextDescriptor.stage1(asid: ASID(1), ttb0: s1.root, geometry: s1.geometry, ips: .bits48)
            try! bus.writeWords(PhysicalAddress(cdIPA &+ offset), cd.words)
            ste = .nested(contextPtr: cdIPA, vmid: VMID(1), s2TTB: PhysicalAddress(s2.root), s2Geometry: s2.geometry, outputSize: .bits48)
        } else {
            let s1 = try! PageTableBuilder(stage1InputSize: 48, granule: .size4K, bus: bus, allocator: host)
            for i in 0..<pages {
                try! s1.map(input: ioBase &+ UInt64(i) &* 4096,
                            output: singleDataPA &+ UInt64(walkref_permutation(rig.c, i)) &* 4096, size: 4096, blocks: false)
            }
            let cdAddress = host.allocate(bytes: 64, alignment: 64)!
            let cd = ContextDescriptor.stage1(asid: ASID(1), ttb0: s1.root, geometry: s1.geometry, ips: .bits48)
            try! bus.writeWords(PhysicalAddress(cdAddress), cd.words)
            ste = .stage1(contextPtr: cdAddress)
        }
        try! bus.writeWords(PhysicalAddress(streamTableBase + UInt64(streamID) * 64), ste.words)
        rig.bus = bus
        rig.translator = translator
        // Both sides must agree on every page's output.
        for i in stride(from: UInt32(0), to: pages, by: 997) {
            let expected = nested ? walkref_nested_walk(rig.c, iova(page: UInt64(i))) : walkref_stage1_walk(rig.c, iova(page: UInt64(i)))
            guard case .translated(let result) = translator.translate(rig.transaction(iova(page: UInt64(i)))),
                  result.output.rawValue == expected else { fatalError("Doorbell and WalkReference disagree on page \(i)") }
        }
        translator.tlb.removeAll { _ in true }   // start cold (the configuration cache stays warm)
        return rig
    }

    @inline(__always)
    func transaction(_ address: UInt64) -> DeviceTransaction {
        DeviceTransaction(kind: .write, address: IOVA(address), size: 4, data: 0, streamID: StreamID(Self.streamID),
                          deviceID: DeviceID(Self.streamID), privileged: false, instruction: false)
    }

    /// The translator is read once, outside the loop (as an `SMMUTranslator!` stored `var` it
    /// cost a retain/release per iteration, which is the rig's, not the translator's), and
    /// what is kept is the output address, as the C side keeps its returned PA (a generic
    /// `blackHole` of the whole `TranslationOutcome` copied and destroyed it through its value
    /// witnesses on every iteration). `translate` itself is whole and unchanged.
    func runDoorbell(_ benchmark: Benchmark, pageMask: UInt64) {
        let translator: SMMUTranslator = self.translator
        var k: UInt64 = 0
        for _ in benchmark.scaledIterations {
            switch translator.translate(transaction(Self.iova(page: k & pageMask))) {
            case .translated(let result): blackHole(result.output.rawValue)
            default: blackHole(UInt64.max)
            }
            k &+= 1
        }
    }

    /// Warms the 128 hit pages and checks a second lap hits every time.
    func readyForHits() -> CompareRig {
        for p in 0..<UInt64(128) { _ = translator.translate(transaction(Self.iova(page: p))) }
        let before = translator.counters
        for p in 0..<UInt64(128) {
            guard case .translated = translator.translate(transaction(Self.iova(page: p))) else { fatalError("hit rig does not translate") }
        }
        guard translator.counters.tlbMisses == before.tlbMisses, translator.counters.tlbHits == before.tlbHits + 128 else {
            fatalError("hit rig missed the TLB")
        }
        return self
    }

    func readyForCHits() -> CompareRig {
        for p in 0..<UInt64(128) { _ = walkref_translate(c, Self.iova(page: p)) }
        let misses = walkref_tlb_misses(c)
        for p in 0..<UInt64(128) { _ = walkref_translate(c, Self.iova(page: p)) }
        guard walkref_tlb_misses(c) == misses else { fatalError("C hit rig missed its TLB") }
        return self
    }

    /// 4096 consecutive pages must all miss with exactly the given reads per walk.
    func readyForMisses(reads: (Int, Int)) -> CompareRig {
        let before = translator.counters
        let n = 4096
        for p in 0..<UInt64(n) {
            guard case .translated = translator.translate(transaction(Self.iova(page: p))) else { fatalError("page did not translate") }
        }
        let after = translator.counters
        guard after.tlbMisses - before.tlbMisses == n,
              after.stage1DescriptorReads - before.stage1DescriptorReads == n * reads.0,
              after.stage2DescriptorReads - before.stage2DescriptorReads == n * reads.1 else {
            fatalError("compare miss rig: expected \(n) misses with \(reads) reads each, got \(before) → \(after)")
        }
        return self
    }
}
