import Bus
import SMMUv3
import Testbed
import Testing

/// Property tests: seeded random bytes as STEs, CDs, L1 descriptors and page-table descriptors
/// never crash the translator, and every outcome is a translation, an abort without event, or
/// an architected fault whose fields are consistent with its kind.
@Suite struct TranslationPropertyTests {
    static let iterations = 1500

    /// Invariants every outcome must satisfy.
    static func check(_ outcome: TranslationOutcome, _ label: @autoclosure () -> String) {
        switch outcome {
        case .translated(let r):
            #expect(r.output.rawValue < SystemBus.physicalAddressLimit, "\(label())")
            #expect(r.pageSize.nonzeroBitCount == 1 && r.pageSize >= 4096, "\(label())")
        case .abortedWithoutEvent:
            break
        case .fault(let f):
            if f.type.isTranslationFault && f.stage2 {
                #expect(f.ipa != nil, "stage-2 translation faults carry the IPA: \(label()) \(f)")
            }
            if f.type == .fSTEFetch || f.type == .fCDFetch || f.type == .fWalkEABT {
                #expect(f.fetchAddress != nil, "fetch aborts carry FetchAddr: \(label()) \(f)")
            }
            if !f.type.isTranslationFault && f.type != .cBadStreamID {
                #expect(f.record && f.abort, "non-translation events are recorded and abort: \(label()) \(f)")
            }
            #expect(!f.reason.isEmpty, "\(label())")
        }
    }

    /// Mutates `words` in place: flips a few random bits, sometimes replaces a whole word.
    static func mutate(_ words: inout [UInt64], _ rng: inout SeededGenerator) {
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let i = Int.random(in: 0..<words.count, using: &rng)
            if Bool.random(using: &rng) {
                words[i] ^= 1 << UInt64.random(in: 0...63, using: &rng)
            } else if Int.random(in: 0..<4, using: &rng) == 0 {
                words[i] = rng.next()
            }
        }
    }

    static func randomTransaction(_ h: TranslationHarness, sid: UInt32, _ rng: inout SeededGenerator) -> TranslationOutcome {
        let address: UInt64 = Bool.random(using: &rng) ? UInt64.random(in: 0...0x3000, using: &rng) : rng.next() >> UInt64.random(in: 0...40, using: &rng)
        let ssid: UInt32? = Int.random(in: 0..<4, using: &rng) == 0 ? UInt32.random(in: 0...2000, using: &rng) : nil
        return h.translate(sid, address, write: Bool.random(using: &rng), ssid: ssid,
                           privileged: Bool.random(using: &rng), instruction: Int.random(in: 0..<8, using: &rng) == 0)
    }

    @Test func randomSTEs() throws {
        var rng = SeededGenerator(seed: 0xA11C_E001)
        let h = TranslationHarness()
        let (s1, _, _) = try h.makeNested(sid: 1)
        try s1.map(input: 0x1000, output: TranslationHarness.guestDataIPA, size: 0x2000)
        let baseline = try h.bus.readWords(PhysicalAddress(TranslationHarness.streamTableBase + 64), count: 8)
        for i in 0..<Self.iterations {
            var words = Int.random(in: 0..<8, using: &rng) == 0 ? (0..<8).map { _ in rng.next() } : baseline
            Self.mutate(&words, &rng)
            let ste = StreamTableEntry(words: words)
            try h.setSTE(1, ste)
            h.translator.invalidate(.configurationAll)
            h.translator.invalidate(.nsnhAll)
            let outcome = Self.randomTransaction(h, sid: 1, &rng)
            Self.check(outcome, "STE iteration \(i) \(words.map { Hex.format($0) })")
            let illegal = ste.illegalRule(on: h.translator.configuration)
            #expect((outcome.fault?.type == .cBadSTE) == (illegal != nil), "C_BAD_STE exactly when SteIllegal: iteration \(i) \(String(describing: illegal)) \(outcome)")
        }
    }

    @Test func randomCDs() throws {
        var rng = SeededGenerator(seed: 0xA11C_E002)
        let h = TranslationHarness()
        let s1 = try h.makeStage1(sid: 1)
        try s1.map(input: 0x1000, output: 0x30_0000_0000, size: 0x2000)
        let ste = StreamTableEntry(words: try h.bus.readWords(PhysicalAddress(TranslationHarness.streamTableBase + 64), count: 8))
        let baseline = try h.bus.readWords(PhysicalAddress(ste.s1ContextPtr), count: 8)
        for i in 0..<Self.iterations {
            var words = Int.random(in: 0..<8, using: &rng) == 0 ? (0..<8).map { _ in rng.next() } : baseline
            Self.mutate(&words, &rng)
            let cd = ContextDescriptor(words: words)
            try h.writeCD(cd, at: ste.s1ContextPtr)
            h.translator.invalidate(.contextDescriptorAll(StreamID(1)))
            h.translator.invalidate(.nsnhAll)
            let outcome = h.translate(1, UInt64.random(in: 0...0x4000, using: &rng) | (Bool.random(using: &rng) ? 0 : rng.next() & 0xFFFF_0000_0000_0000),
                                      write: Bool.random(using: &rng), privileged: Bool.random(using: &rng))
            Self.check(outcome, "CD iteration \(i)")
            let illegal = cd.illegalRule(on: h.translator.configuration, ste: ste)
            #expect((outcome.fault?.type == .cBadCD) == (illegal != nil), "C_BAD_CD exactly when CdIllegal: iteration \(i) \(outcome)")
        }
    }

    @Test func randomLevelOneDescriptors() throws {
        var rng = SeededGenerator(seed: 0xA11C_E003)
        // L1STD: a 2-level stream table whose L1 entries are random.
        let h = TranslationHarness(log2Size: 16, twoLevel: true, split: 8)
        for i in 0..<Self.iterations {
            let l1Index = UInt64.random(in: 0..<4, using: &rng)
            let raw = Bool.random(using: &rng) ? rng.next() : LevelOneStreamTableDescriptor(span: Int.random(in: 0...12, using: &rng),
                                                                                           l2Ptr: 0x4010_0000 + (rng.next() & 0xF_FFC0)).rawValue
            try h.bus.write64(PhysicalAddress(TranslationHarness.streamTableBase + l1Index * 8), raw)
            h.translator.invalidate(.configurationAll)
            Self.check(h.translate(UInt32(l1Index << 8) | UInt32.random(in: 0...255, using: &rng), 0x1000), "L1STD iteration \(i) \(Hex.format(raw))")
        }
        // L1CD: a 2-level CD table (S1Fmt=1, 2^10 SSIDs) whose L1 entries are random.
        let g = TranslationHarness()
        let l1 = try g.allocateHost(16 * 8, alignment: 128)
        try g.setSTE(1, .stage1(contextPtr: l1, cdMax: 10, s1Fmt: 1))
        for i in 0..<Self.iterations {
            let index = UInt64.random(in: 0..<16, using: &rng)
            let raw = Bool.random(using: &rng) ? rng.next() : LevelOneContextDescriptor(valid: Bool.random(using: &rng), l2Ptr: 0x4010_0000 + (rng.next() & 0xF_F000)).rawValue
            try g.bus.write64(PhysicalAddress(l1 + index * 8), raw)
            g.translator.invalidate(.contextDescriptorAll(StreamID(1)))
            Self.check(g.translate(1, 0x1000, ssid: UInt32(index << 6) | UInt32.random(in: 0...63, using: &rng)), "L1CD iteration \(i) \(Hex.format(raw))")
        }
    }

    /// Valid nested tables, then one descriptor on the walk path (S1 or S2, any level) replaced
    /// by a mutated or random value.
    @Test func randomPageTableDescriptors() throws {
        var rng = SeededGenerator(seed: 0xA11C_E004)
        let h = TranslationHarness()
        let (s1, s2, _) = try h.makeNested(sid: 1)
        let va: UInt64 = 0x0000_0012_3456_7000
        try s1.map(input: va, output: TranslationHarness.guestDataIPA, size: 0x1000)
        var slots: [(address: UInt64, value: UInt64)] = []
        for level in 0...3 {
            if let slot = try s1.descriptorAddress(for: va, level: level) {
                let pa = slot + TranslationHarness.guestOffset
                slots.append((pa, try h.bus.read64(PhysicalAddress(pa))))
            }
            if let slot = try s2.descriptorAddress(for: TranslationHarness.guestDataIPA, level: level) {
                slots.append((slot, try h.bus.read64(PhysicalAddress(slot))))
            }
        }
        #expect(slots.count == 8)
        for i in 0..<Self.iterations {
            let victim = slots[Int.random(in: 0..<slots.count, using: &rng)]
            var words = [victim.value]
            Self.mutate(&words, &rng)
            try h.bus.write64(PhysicalAddress(victim.address), words[0])
            h.translator.invalidate(.nsnhAll)
            Self.check(h.translate(1, va | UInt64.random(in: 0...0xFFF, using: &rng), write: Bool.random(using: &rng)),
                       "descriptor iteration \(i) at \(Hex.format(victim.address)) = \(Hex.format(words[0]))")
            try h.bus.write64(PhysicalAddress(victim.address), victim.value)
        }
        // The restored tables translate again.
        h.translator.invalidate(.nsnhAll)
        #expect(h.translate(1, va).result?.output.rawValue == TranslationHarness.guestDataIPA + TranslationHarness.guestOffset)
    }
}
