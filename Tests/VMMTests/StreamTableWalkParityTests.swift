import Testing
import Bus
import SMMUv3
@testable import VMM

/// The accelerated vSMMU and the physical SMMU share one stream-table walk
/// (`StreamTableWalker`), as QEMU's accelerated vSMMU shares the emulated SMMU's
/// `smmu_find_ste`. Each case programs STRTAB_BASE / STRTAB_BASE_CFG through MMIO on both, puts
/// the same tables in memory, and asks each for one StreamID through its public entry point:
/// the physical SMMU translates a transaction (`handle`), the vSMMU fetches the guest STE
/// (`guestStreamTableEntry`). Both must find the same STE or report the same event.
@Suite("Stream table walk: the vSMMU and the physical SMMU agree")
struct StreamTableWalkParityTests {
    /// What one side made of the StreamID.
    enum Outcome: Hashable, CustomStringConvertible {
        /// The STE was found; its Config.
        case entry(StreamConfig)
        /// No STE: the event the SMMU records (§7.3).
        case event(SMMUEventType)
        var description: String {
            switch self {
            case .entry(let c): "STE \(c)"
            case .event(let e): e.name
            }
        }
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let strtabBase: UInt64
        let strtabBaseCfg: UInt32
        /// Memory contents: 64-bit words at addresses.
        let memory: [(UInt64, [UInt64])]
        let streamID: UInt32
        let expected: Outcome
        var testDescription: String { name }
    }

    static let ram: UInt64 = 0x4000_0000
    static let smmuBase: UInt64 = 0x0900_0000
    static let vsmmuBase: UInt64 = 0x0905_0000
    static let bypass = StreamTableEntry.bypass.words
    /// A 2-level table: STRTAB_BASE_CFG with FMT = 0b01.
    static func twoLevel(log2Size: UInt32, split: UInt32) -> UInt32 { 1 << 16 | split << 6 | log2Size }
    static func l1(span: Int, l2: UInt64) -> [UInt64] { LevelOneStreamTableDescriptor(span: span, l2Ptr: l2).words }

    static let cases: [Case] = [
        Case(name: "linear table, StreamID 5: the STE at base + 5 × 64",
             strtabBase: ram, strtabBaseCfg: 8, memory: [(ram + 5 * 64, bypass)], streamID: 5, expected: .entry(.bypass)),
        Case(name: "linear table, StreamID ≥ 2^LOG2SIZE: C_BAD_STREAMID",
             strtabBase: ram, strtabBaseCfg: 8, memory: [], streamID: 256, expected: .event(.cBadStreamID)),
        Case(name: "LOG2SIZE 20 is capped at SIDSIZE 16: StreamID 0x10000 is out of range",
             strtabBase: ram, strtabBaseCfg: 20, memory: [], streamID: 0x1_0000, expected: .event(.cBadStreamID)),
        Case(name: "misaligned linear base: ADDR[LOG2SIZE+5:0] are treated as zero (§6.3.24)",
             strtabBase: ram + 3 * 64, strtabBaseCfg: 8, memory: [(ram + 5 * 64, bypass), (ram + 8 * 64, StreamTableEntry.abort.words)],
             streamID: 5, expected: .entry(.bypass)),
        Case(name: "STRTAB_BASE above the 44-bit OAS: the bits above are not stored (§6.3.24)",
             strtabBase: 1 << 50 | ram, strtabBaseCfg: 8, memory: [(ram + 5 * 64, bypass)], streamID: 5, expected: .entry(.bypass)),
        Case(name: "a table in no memory: F_STE_FETCH",
             strtabBase: 0x1000_0000, strtabBaseCfg: 8, memory: [], streamID: 5, expected: .event(.fSTEFetch)),
        Case(name: "2-level, SPLIT 8: L1STD[1] then L2[8]",
             strtabBase: ram, strtabBaseCfg: twoLevel(log2Size: 16, split: 8),
             memory: [(ram + 8, l1(span: 9, l2: ram + 0x1_0000)), (ram + 0x1_0000 + 8 * 64, bypass)],
             streamID: 0x108, expected: .entry(.bypass)),
        Case(name: "Reserved SPLIT 7 behaves as 6 (§6.3.25): StreamID 0x45 is L1STD[1], L2[5]",
             strtabBase: ram, strtabBaseCfg: twoLevel(log2Size: 16, split: 7),
             memory: [(ram + 8, l1(span: 7, l2: ram + 0x1_0000)), (ram + 0x1_0000 + 5 * 64, bypass),
                      (ram, l1(span: 8, l2: ram + 0x2_0000)), (ram + 0x2_0000 + 0x45 * 64, StreamTableEntry.abort.words)],
             streamID: 0x45, expected: .entry(.bypass)),
        Case(name: "Span 0: the L1STD is invalid, C_BAD_STREAMID",
             strtabBase: ram, strtabBaseCfg: twoLevel(log2Size: 16, split: 8), memory: [], streamID: 0x8, expected: .event(.cBadStreamID)),
        Case(name: "Span 12 is Reserved (> 11), even with a Reserved SPLIT 20: C_BAD_STREAMID",
             strtabBase: ram, strtabBaseCfg: twoLevel(log2Size: 16, split: 20),
             memory: [(ram, l1(span: 12, l2: ram + 0x10_0000)), (ram + 0x10_0000 + 8 * 64, bypass)],
             streamID: 0x8, expected: .event(.cBadStreamID)),
        Case(name: "Span above SPLIT + 1: C_BAD_STREAMID",
             strtabBase: ram, strtabBaseCfg: twoLevel(log2Size: 16, split: 6),
             memory: [(ram, l1(span: 8, l2: ram + 0x1_0000)), (ram + 0x1_0000 + 8 * 64, bypass)],
             streamID: 0x8, expected: .event(.cBadStreamID)),
        Case(name: "StreamID beyond the L1STD's Span: C_BAD_STREAMID",
             strtabBase: ram, strtabBaseCfg: twoLevel(log2Size: 16, split: 8),
             memory: [(ram, l1(span: 2, l2: ram + 0x1_0000))], streamID: 0x5, expected: .event(.cBadStreamID)),
        Case(name: "L2Ptr beyond the 44-bit OAS: F_STE_FETCH, not truncated (§3.4.3)",
             strtabBase: ram, strtabBaseCfg: twoLevel(log2Size: 16, split: 8),
             memory: [(ram, l1(span: 1, l2: 1 << 50 | ram + 0x1_0000)), (ram + 0x1_0000, bypass)],
             streamID: 0x0, expected: .event(.fSTEFetch)),
        Case(name: "L2Ptr misaligned to its array: the low bits are treated as zero (§5.1)",
             strtabBase: ram, strtabBaseCfg: twoLevel(log2Size: 16, split: 8),
             memory: [(ram, l1(span: 3, l2: ram + 0x1_0000 + 0x40)), (ram + 0x1_0000 + 2 * 64, bypass),
                      (ram + 0x1_0000 + 3 * 64, StreamTableEntry.abort.words)],
             streamID: 0x2, expected: .entry(.bypass)),
    ]

    /// One bus with RAM, the physical SMMU and the vSMMU, both with QEMU's vSMMU identity.
    static func make() throws -> (SystemBus, SMMUv3, VirtualSMMU) {
        let bus = SystemBus()
        try bus.addRAM(base: PhysicalAddress(ram), size: 0x100_0000)
        let identification = AcceleratedSMMUv3Properties().identification
        let smmu = SMMUv3(configuration: identification, bus: bus)
        try bus.addDevice(smmu, base: PhysicalAddress(smmuBase), size: SMMUv3.mmioSize)
        let vsmmu = VirtualSMMU(guestBus: bus, identification: identification)
        try bus.addDevice(vsmmu, base: PhysicalAddress(vsmmuBase), size: SMMUv3.mmioSize)
        return (bus, smmu, vsmmu)
    }

    /// Programs the stream table and SMMUEN through MMIO, as a driver does.
    static func program(_ bus: SystemBus, at base: UInt64, _ c: Case) throws {
        typealias R = SMMURegisterOffset
        try bus.write(PhysicalAddress(base + R.strtabBase), size: 8, value: c.strtabBase, requester: .cpu(0))
        try bus.write(PhysicalAddress(base + R.strtabBaseCfg), size: 4, value: UInt64(c.strtabBaseCfg), requester: .cpu(0))
        try bus.write(PhysicalAddress(base + R.cr0), size: 4, value: UInt64(SMMUControl0.smmuEnable.rawValue), requester: .cpu(0))
    }

    static func physicalOutcome(_ smmu: SMMUv3, streamID: UInt32) -> Outcome {
        let transaction = DeviceTransaction(kind: .read, address: IOVA(0x1000), size: 4,
                                            streamID: StreamID(streamID), deviceID: DeviceID(streamID))
        switch smmu.handle(transaction) {
        case .translated: return .entry(.bypass)   // only a bypass STE translates here
        case .terminated(nil, abort: true): return .entry(.abort)
        case .terminated(let fault?, _): return .event(fault.type)
        case .terminated(nil, abort: false): return .event(.fUUT)   // not expected: RAZ/WI without a fault
        }
    }

    static func virtualOutcome(_ vsmmu: VirtualSMMU, streamID: UInt32) -> Outcome {
        do {
            let ste = try vsmmu.guestStreamTableEntry(StreamID(streamID))
            // The vSMMU returns the STE as found (QEMU's accel path does not decode it); one the
            // physical SMMU rejects as C_BAD_STE is reported as that event here too.
            if ste.illegalRule(on: vsmmu.identification) != nil { return .event(.cBadSTE) }
            return .entry(ste.config)
        } catch {
            return .event(error.eventType)
        }
    }

    @Test(arguments: cases)
    func bothSidesAgree(_ c: Case) throws {
        let (bus, smmu, vsmmu) = try Self.make()
        for (address, words) in c.memory { try bus.writeWords(PhysicalAddress(address), words) }
        try Self.program(bus, at: Self.smmuBase, c)
        try Self.program(bus, at: Self.vsmmuBase, c)
        let physical = Self.physicalOutcome(smmu, streamID: c.streamID)
        let virtual = Self.virtualOutcome(vsmmu, streamID: c.streamID)
        #expect(physical == c.expected, "physical SMMU: \(physical)")
        #expect(virtual == c.expected, "vSMMU: \(virtual)")
    }

    @Test("an STE the physical SMMU rejects (V = 0; Config = S2 with IDR0.S2P = 0) is C_BAD_STE there and the same illegal STE from the vSMMU's fetch")
    func malformedEntries() throws {
        var stage2 = StreamTableEntry.bypass
        stage2.config = .stage2   // QEMU's vSMMU advertises stage 1 only (§5.2 Config)
        for words in [StreamTableEntry().words, stage2.words] {
            let c = Case(name: "", strtabBase: Self.ram, strtabBaseCfg: 8, memory: [(Self.ram + 5 * 64, words)],
                         streamID: 5, expected: .event(.cBadSTE))
            try bothSidesAgree(c)
            let (bus, _, vsmmu) = try Self.make()
            for (address, w) in c.memory { try bus.writeWords(PhysicalAddress(address), w) }
            try Self.program(bus, at: Self.vsmmuBase, c)
            #expect(try vsmmu.guestStreamTableEntry(StreamID(5)).words == words, "fetched as found")
        }
    }
}
