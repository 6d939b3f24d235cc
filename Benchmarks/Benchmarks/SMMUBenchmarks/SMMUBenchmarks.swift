import Benchmark
import Bus
import SMMUv3
import Testbed

/// `SMMUTranslator.translate` on its own: a bus with one RAM window, a linear stream table and
/// page tables built with the module's `PageTableBuilder`, nothing else in the path.
///
/// Misses use distinct pages, not invalidation: each iteration translates the next of
/// `SMMURig.missPages` (1024) mapped 4 KiB pages, cycling. The TLB holds 256 entries and
/// flushes itself when full, so a page is never still cached when its turn comes round again;
/// `SMMURig.readyForMisses` checks that (and the descriptor-read count per walk) in the setup.
/// Rigs are built in `setup:`, so the measured region is only `translate` (plus a counter),
/// never table building; the cost of the TLB's own flush every 256 inserts is included.
/// `SMMU.translate.s1.miss.invalidate` is the other way to force a miss (one page,
/// `invalidate(.nsnhAll)` each iteration) and measures the invalidation too.
let benchmarks: @Sendable () -> Void = {
    // 1000 translations per sample; `--scale` reports per translation.
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal],
                                           scalingFactor: .kilo, maxDuration: .seconds(2))

    Benchmark("SMMU.translate.s1.tlbHit") { benchmark, rig in
        rig.runHits(benchmark)
    } setup: { SMMURig.stage1().readyForHits() }

    Benchmark("SMMU.translate.s1.miss") { benchmark, rig in
        rig.runMisses(benchmark)
    } setup: { SMMURig.stage1().readyForMisses(descriptorReads: (4, 0)) }

    Benchmark("SMMU.translate.s2.miss") { benchmark, rig in
        rig.runMisses(benchmark)
    } setup: { SMMURig.stage2().readyForMisses(descriptorReads: (0, 4)) }

    // (4 + 1) × 4 stage-2 reads (each stage-1 table address and the final IPA), 4 stage-1.
    Benchmark("SMMU.translate.nested.miss") { benchmark, rig in
        rig.runMisses(benchmark)
    } setup: { SMMURig.nested().readyForMisses(descriptorReads: (4, 20)) }

    Benchmark("SMMU.translate.nested.tlbHit") { benchmark, rig in
        rig.runHits(benchmark)
    } setup: { SMMURig.nested().readyForHits() }

    Benchmark("SMMU.translate.s1.miss.invalidate") { benchmark, rig in
        let transaction = rig.transaction(SMMURig.ioBase)
        for _ in benchmark.scaledIterations {
            rig.translator.invalidate(.nsnhAll)
            blackHole(rig.translator.translate(transaction))
        }
    } setup: { SMMURig.stage1().readyForHits() }

    compareBenchmarks()
}

/// One translator, one stream (StreamID 1), `missPages` mapped pages from `ioBase`.
final class SMMURig {
    static let ramBase: UInt64 = 0x4000_0000
    static let ramSize: UInt64 = 0x4000_0000              // 1 GiB
    static let streamTableBase: UInt64 = 0x4000_0000      // 256 STEs
    static let hostTables: UInt64 = 0x4010_0000           // 32 MiB for CDs and host tables
    static let guestIPABase: UInt64 = 0x5000_0000         // guest RAM window (IPA = PA − 0x1000_0000)
    static let guestPABase: UInt64 = 0x6000_0000
    static let guestSize: UInt64 = 0x100_0000             // 16 MiB: tables in the first 2 MiB, data after
    static let ioBase: UInt64 = 0x1_0000_0000             // IOVAs (stage 1) / IPAs (stage 2 only)
    static let dataBase: UInt64 = 0x7000_0000             // output PAs of the mapped pages
    static let missPages = 1024
    static let streamID: UInt32 = 1

    let bus: SystemBus
    let translator: SMMUTranslator
    let host: PageAllocator
    var next = 0

    private init() {
        bus = SystemBus()
        try! bus.addRAM(base: PhysicalAddress(Self.ramBase), size: Self.ramSize)
        translator = SMMUTranslator(configuration: .default, bus: bus)
        translator.streamTable = StreamTableConfiguration(base: PhysicalAddress(Self.streamTableBase), log2Size: 8, split: 6, twoLevel: false)
        host = PageAllocator(base: Self.hostTables, size: 0x200_0000)
    }

    private func setSTE(_ ste: StreamTableEntry) {
        try! bus.writeWords(PhysicalAddress(Self.streamTableBase + UInt64(Self.streamID) * 64), ste.words)
    }

    /// Stage 1 only, 4 KiB granule, 48-bit input: a 4-level walk (Linux io-pgtable-arm's default).
    static func stage1() -> SMMURig {
        let rig = SMMURig()
        let s1 = try! PageTableBuilder(stage1InputSize: 48, granule: .size4K, bus: rig.bus, allocator: rig.host)
        try! s1.map(input: ioBase, output: dataBase, size: UInt64(missPages) * 4096, blocks: false)
        let cdAddress = rig.host.allocate(bytes: 64, alignment: 64)!
        let cd = ContextDescriptor.stage1(asid: ASID(1), ttb0: s1.root, geometry: s1.geometry, ips: .bits48)
        try! rig.bus.writeWords(PhysicalAddress(cdAddress), cd.words)
        rig.setSTE(.stage1(contextPtr: cdAddress))
        return rig
    }

    /// Stage 2 only, 4 KiB granule, 48-bit IPA: starts at level 0, 4 levels.
    static func stage2() -> SMMURig {
        let rig = SMMURig()
        let s2 = try! PageTableBuilder(stage2InputSize: 48, granule: .size4K, bus: rig.bus, allocator: rig.host)
        try! s2.map(input: ioBase, output: dataBase, size: UInt64(missPages) * 4096, blocks: false)
        rig.setSTE(.stage2(vmid: VMID(1), ttb: PhysicalAddress(s2.root), geometry: s2.geometry, outputSize: .bits48))
        return rig
    }

    /// Nested: a 4-level guest stage 1 whose tables and CD live in guest RAM (addressed by IPA)
    /// over a 4-level host stage 2 that page-maps guest RAM, so every stage-1 table address is
    /// itself walked at stage 2.
    static func nested() -> SMMURig {
        let rig = SMMURig()
        let offset = guestPABase &- guestIPABase
        let s2 = try! PageTableBuilder(stage2InputSize: 48, granule: .size4K, bus: rig.bus, allocator: rig.host)
        try! s2.map(input: guestIPABase, output: guestPABase, size: guestSize, blocks: false)
        let guestTables = PageAllocator(base: guestIPABase, size: 0x20_0000)
        let s1 = try! PageTableBuilder(stage1InputSize: 48, granule: .size4K, bus: rig.bus, allocator: guestTables, physicalOffset: offset)
        // IOVA page i → guest data IPA page i (inside the stage-2-mapped window).
        try! s1.map(input: ioBase, output: guestIPABase + 0x20_0000, size: UInt64(missPages) * 4096, blocks: false)
        let cdIPA = guestTables.allocate(bytes: 64, alignment: 64)!
        let cd = ContextDescriptor.stage1(asid: ASID(1), ttb0: s1.root, geometry: s1.geometry, ips: .bits48)
        try! rig.bus.writeWords(PhysicalAddress(cdIPA &+ offset), cd.words)
        rig.setSTE(.nested(contextPtr: cdIPA, vmid: VMID(1), s2TTB: PhysicalAddress(s2.root), s2Geometry: s2.geometry, outputSize: .bits48))
        return rig
    }

    func transaction(_ address: UInt64) -> DeviceTransaction {
        DeviceTransaction(kind: .write, address: IOVA(address), size: 4, data: 0, streamID: StreamID(Self.streamID),
                          deviceID: DeviceID(Self.streamID), privileged: false, instruction: false)
    }

    /// Translates the next page of the cycle.
    @inline(__always)
    func translateNext() -> TranslationOutcome {
        let page = UInt64(next)
        next = next == Self.missPages - 1 ? 0 : next + 1
        return translator.translate(transaction(Self.ioBase &+ page &* 4096))
    }

    func runMisses(_ benchmark: Benchmark) {
        for _ in benchmark.scaledIterations {
            blackHole(translateNext())
        }
    }

    func runHits(_ benchmark: Benchmark) {
        let transaction = self.transaction(Self.ioBase)
        for _ in benchmark.scaledIterations {
            blackHole(translator.translate(transaction))
        }
    }

    /// Translates the first page twice and checks the second time hit the TLB.
    func readyForHits() -> SMMURig {
        let transaction = self.transaction(Self.ioBase)
        guard case .translated = translator.translate(transaction) else { fatalError("benchmark rig does not translate") }
        let misses = translator.counters.tlbMisses
        guard case .translated = translator.translate(transaction), translator.counters.tlbMisses == misses else {
            fatalError("TLB-hit benchmark rig missed")
        }
        return self
    }

    /// Two laps of the page cycle (after one to warm the configuration cache) must miss every
    /// time and read exactly the given (stage 1, stage 2) descriptor counts per walk.
    func readyForMisses(descriptorReads: (Int, Int)) -> SMMURig {
        for _ in 0..<Self.missPages { guard case .translated = translateNext() else { fatalError("page did not translate") } }
        let before = translator.counters
        let n = 2 * Self.missPages
        for _ in 0..<n { guard case .translated = translateNext() else { fatalError("page did not translate") } }
        let after = translator.counters
        guard after.tlbMisses - before.tlbMisses == n, after.tlbHits == before.tlbHits,
              after.stage1DescriptorReads - before.stage1DescriptorReads == n * descriptorReads.0,
              after.stage2DescriptorReads - before.stage2DescriptorReads == n * descriptorReads.1 else {
            fatalError("miss benchmark rig: expected \(n) misses with \(descriptorReads) reads each, got \(before) → \(after)")
        }
        return self
    }
}
