import Testing
import Bus
@testable import SMMUv3

/// Property tests: whatever a driver writes, the SMMU neither traps nor leaves its registers in
/// a state the architecture cannot produce.
@Suite("SMMUv3 device under random input")
struct DeviceRandomInputTests {
    typealias R = SMMURegisterOffset

    static let interestingOffsets: [UInt64] = [
        R.idr0, R.idr5, R.iidr, R.cr0, R.cr0ack, R.cr1, R.cr2, R.gbpa, R.agbpa, R.irqCtrl, R.gerror, R.gerrorn,
        R.gerrorIRQCfg0, R.gerrorIRQCfg0 + 4, R.gerrorIRQCfg1, R.gerrorIRQCfg2, R.strtabBase, R.strtabBase + 4,
        R.strtabBaseCfg, R.cmdqBase, R.cmdqBase + 4, R.cmdqProd, R.cmdqCons, R.eventqBase, R.eventqBase + 4,
        R.eventqProdPage0Alias, R.eventqConsPage0Alias, R.eventqIRQCfg0, R.eventqIRQCfg1, R.eventqIRQCfg2,
        R.priqBase, R.priqIRQCfg0, R.pidr0, R.cidr3, R.eventqProd, R.eventqCons, R.priqProd, R.priqCons,
    ]

    /// Checks what must hold after any sequence of accesses.
    static func checkInvariants(_ smmu: SMMUv3) {
        let r = smmu.registers
        // CR0/IRQ_CTRL updates complete synchronously and only implemented bits exist.
        #expect(r.cr0 == r.cr0ack)
        #expect(r.cr0 & ~SMMUControl0.implemented.rawValue == 0)
        #expect(r.irqCtrl == r.irqCtrlAck)
        // GBPA updates complete at once; GERROR/GERRORN hold only implemented error bits.
        #expect(r.gbpa >> 31 == 0)
        let errors = SMMUGlobalErrors.implemented(msi: smmu.configuration.msi).rawValue
        #expect(r.gerror & ~errors == 0 && r.gerrorn & ~errors == 0)
        // CONS.RD never has bits above the wrap flag once the SMMU has moved it.
        #expect(r.cmdqCons & 0x80F0_0000 == 0)
        // The SMMU never writes outside OVFLG and WR.
        #expect(r.eventqProd & 0x7FF0_0000 == 0)
    }

    @Test("random register accesses of every size and offset never trap and keep the invariants",
          arguments: [UInt64(1), 2, 3])
    func randomRegisterAccesses(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        var configuration = SMMUConfiguration()
        configuration.msi = seed != 2
        configuration.hyp = seed == 3
        configuration.commandQueueMaxLog2 = 6
        configuration.eventQueueMaxLog2 = 6
        let h = DeviceHarness(configuration: configuration)
        // Some plausible queue memory so that enables do real work.
        try h.bus.writeWords(PhysicalAddress(0x4100_0000), (0..<64).map { _ in rng.next() })
        let selfTargets: [UInt64] = [R.cmdqProd, R.gerrorn, R.cr0, R.eventqCons].map { DeviceHarness.smmuBase + $0 }
        for _ in 0..<2500 {
            let offset: UInt64
            switch rng.next() % 4 {
            case 0: offset = rng.next() % SMMUv3.mmioSize
            default: offset = Self.interestingOffsets[Int(rng.next() % UInt64(Self.interestingOffsets.count))]
            }
            let size = [1, 2, 3, 4, 4, 4, 8, 8, 16][Int(rng.next() % 9)]
            var value = rng.next()
            switch rng.next() % 8 {
            case 0: value = 0x4100_0000 | (value & 0x7F)                         // a queue/table in RAM
            case 1: value = selfTargets[Int(value % 4)]                          // MSIs back into the SMMU
            case 2: value &= 0xFFFF
            default: break
            }
            if rng.next() % 3 == 0 {
                _ = try h.smmu.mmioRead(offset: offset, size: size, requester: .cpu(0))
            } else {
                try h.smmu.mmioWrite(offset: offset, size: size, value: value, requester: .cpu(0))
            }
            if rng.next() % 16 == 0 {
                _ = h.smmu.handle(DeviceHarness.write(rng.next(), sid: UInt32(truncatingIfNeeded: rng.next() % 512)))
            }
            if rng.next() % 32 == 0 {
                h.smmu.recordEvent(SMMUFault(type: .fTranslation, streamID: StreamID(1), inputAddress: rng.next()))
            }
        }
        Self.checkInvariants(h.smmu)
    }

    @Test("random command bytes: CONS stops exactly at the first command that is not legal here",
          arguments: [UInt64(11), 12])
    func randomCommands(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        var configuration = SMMUConfiguration()
        configuration.hyp = seed == 12
        configuration.stage2 = seed != 12
        let h = DeviceHarness(configuration: configuration)
        let base: UInt64 = 0x4100_0000
        let log2Size = 4
        let defined = CommandOpcode.allCases.map(\.rawValue)
        var consumedTotal = 0
        for _ in 0..<1500 {
            // Fresh queue contents: mostly defined opcodes with random fields, some raw bytes.
            var words: [(UInt64, UInt64)] = []
            for _ in 0..<16 {
                var w0 = rng.next()
                if rng.next() % 8 != 0 {
                    w0 = (w0 & ~0xFF) | UInt64(defined[Int(rng.next() % UInt64(defined.count))])
                    if rng.next() % 2 == 0 { w0 &= ~(1 << 10) }   // usually SSec = 0
                }
                var w1 = rng.next()
                if rng.next() % 2 == 0 { w1 &= 0xFFF }            // MSIs mostly to address 0 or low memory
                words.append((w0, w1))
            }
            for (slot, (w0, w1)) in words.enumerated() {
                try h.placeRaw(w0, w1, queueBase: base, slot: UInt32(slot))
            }
            // Restart from CONS = 0 with no error active.
            try h.write32(R.cr0, 0)
            try h.write32(R.gerrorn, try h.read32(R.gerror))
            try h.write64(R.cmdqBase, base | UInt64(log2Size))
            try h.write32(R.cmdqCons, 0)
            try h.write32(R.cmdqProd, 0)
            try h.write32(R.cr0, SMMUControl0.commandQueueEnable.rawValue)
            let produced = Int(rng.next() % 17)               // 0…16 commands; 16 is a full queue
            let prod = UInt32(produced == 16 ? 0b1_0000 : produced)
            let before = h.smmu.translator.counters.commandsConsumed
            try h.write32(R.cmdqProd, prod)

            // The independent expectation: the first command that fails to decode or is illegal
            // on this configuration.
            var firstBad: Int?
            for (i, (w0, w1)) in words.prefix(produced).enumerated() {
                switch Command.decode(w0, w1) {
                case .failure: firstBad = i
                case .success(let command): if command.illegality(on: configuration) != nil { firstBad = i }
                }
                if firstBad != nil { break }
            }
            let cons = try h.read32(R.cmdqCons)
            let consumed = h.smmu.translator.counters.commandsConsumed - before
            if let firstBad {
                #expect(cons & 0x1F == UInt32(firstBad))
                #expect(cons >> 24 & 0x7F == 1)
                #expect(h.smmu.registers.activeErrors.contains(.commandQueue))
                #expect(consumed == firstBad)
            } else {
                #expect(cons & 0x1F == prod)
                #expect(consumed == produced)
            }
            consumedTotal += consumed
            Self.checkInvariants(h.smmu)
        }
        #expect(consumedTotal > 0)
    }
    @Test("one PROD write per command or one for the whole batch: the same commands consumed, the same stop")
    func incrementalEqualsBulk() throws {
        var rng = SeededGenerator(seed: 21)
        let base: UInt64 = 0x4100_0000
        let pool: [Command] = [
            .tlbiNSNHAll, Command.cfgiAll(), .cfgiSTE(StreamID(3), leaf: true), .tlbiNHAll(VMID(2)),
            .sync(CommandSync(completionSignal: .none)), .prefetchConfig(StreamID(1), substream: nil),
            .tlbiEL2All,                                   // CERROR_ILL here: IDR0.HYP = 0
        ]
        for _ in 0..<300 {
            let count = Int(rng.next() % 16) + 1
            let commands = (0..<count).map { _ in pool[Int(rng.next() % UInt64(pool.count))] }
            let bulk = DeviceHarness()
            let steps = DeviceHarness()
            for h in [bulk, steps] {
                try h.enableCommandQueue(base: base, log2Size: 4)
                _ = try h.place(commands, queueBase: base, log2Size: 4, producer: 0)
            }
            try bulk.write32(R.cmdqProd, UInt32(count == 16 ? 0b1_0000 : count))
            let geometry = QueueGeometry(log2Size: 4)
            var prod: UInt32 = 0
            for _ in 0..<count {
                prod = geometry.advanced(prod)
                try steps.write32(R.cmdqProd, prod)
            }
            #expect(bulk.smmu.registers.cmdqCons == steps.smmu.registers.cmdqCons)
            #expect(bulk.smmu.registers.gerror == steps.smmu.registers.gerror)
            #expect(bulk.smmu.translator.counters == steps.smmu.translator.counters)
        }
    }
}
