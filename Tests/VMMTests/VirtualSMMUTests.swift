import Testing
import Bus
import SMMUv3
@testable import VMM

/// The accelerated vSMMU's register file on a guest bus: a guest driver's view (IDRs, CR0ACK,
/// GBPA.UPDATE), commands read from guest memory and handed to the backend, CMD_SYNC MSI
/// completion, the 2-level stream-table fetch and event records written to the guest's queue.
@Suite("Virtual SMMU register file")
struct VirtualSMMUTests {
    final class Recorder: VirtualSMMUBackend {
        var commands: [Command] = []
        var refuse: CommandOpcode?
        func execute(_ command: Command, from vsmmu: VirtualSMMU) -> CommandErrorCode {
            if command.opcode == refuse { return .illegal }
            commands.append(command)
            return .none
        }
    }

    static let base: UInt64 = 0x0905_0000
    typealias R = SMMURegisterOffset

    static func make() throws -> (SystemBus, VirtualSMMU, Recorder) {
        let bus = SystemBus()
        try bus.addRAM(base: PhysicalAddress(0x4000_0000), size: 0x100_0000)
        let v = VirtualSMMU(guestBus: bus, identification: AcceleratedSMMUv3Properties().identification)
        try bus.addDevice(v, base: PhysicalAddress(base), size: 0x2_0000)
        let recorder = Recorder()
        v.backend = recorder
        return (bus, v, recorder)
    }

    static func w32(_ bus: SystemBus, _ offset: UInt64, _ value: UInt64) throws {
        try bus.write(PhysicalAddress(base + offset), size: 4, value: value, requester: .cpu(0))
    }
    static func r32(_ bus: SystemBus, _ offset: UInt64) throws -> UInt64 {
        try bus.read(PhysicalAddress(base + offset), size: 4, requester: .cpu(0))
    }

    @Test("IDRs: QEMU 11.0's emulated SMMUv3 with stage 1 (S1P only, no MSI, no CD2L, TERM_MODEL, CMDQS/EVENTQS 19, 44-bit OAS), IIDR 0, AIDR v3.1")
    func identification() throws {
        let (bus, _, _) = try Self.make()
        let idr0 = UInt32(try Self.r32(bus, R.idr0))
        #expect(idr0.bit(1) && !idr0.bit(0), "S1P=1, S2P=0 (§6.3.1)")
        #expect(idr0.bit(18) && !idr0.bit(9), "VMID16=1 (QEMU sets it whatever the stage), HYP=0")
        #expect(!idr0.bit(13) && !idr0.bit(19), "no MSI, no CD2L")
        #expect(idr0.bits(3, 2) == 0b10, "TTF AArch64")
        let idr1 = UInt32(try Self.r32(bus, R.idr1))
        #expect(idr1.bits(25, 21) == 19 && idr1.bits(20, 16) == 19)
        #expect(idr1.bits(5, 0) == 16 && idr1.bits(10, 6) == 0, "SIDSIZE 16, SSIDSIZE 0 (ssidsize=0)")
        let idr5 = UInt32(try Self.r32(bus, R.idr5))
        #expect(idr5.bits(6, 4) == 0b111 && idr5.bits(2, 0) == 4, "GRAN4K/16K/64K, OAS 44 bits")
        #expect(try Self.r32(bus, R.iidr) == 0)
        #expect(try Self.r32(bus, R.aidr) == 1)
    }

    @Test("CR0 is acknowledged at once; GBPA resets to QEMU's SMMU_GBPA_RESET_VAL, takes a write only with UPDATE and reads back with UPDATE clear")
    func controlRegisters() throws {
        let (bus, _, _) = try Self.make()
        try Self.w32(bus, R.cr0, 0xD)   // SMMUEN | EVENTQEN | CMDQEN
        #expect(try Self.r32(bus, R.cr0ack) == 0xD)
        try Self.w32(bus, R.cr0, 0x13)  // PRIQEN/ATSCHK are RES0 here
        #expect(try Self.r32(bus, R.cr0ack) == 0x1)
        try Self.w32(bus, R.gbpa, 1 << 20)
        #expect(try Self.r32(bus, R.gbpa) == UInt64(SMMURegisterState.gbpaReset), "no UPDATE: ignored")
        try Self.w32(bus, R.gbpa, 1 << 31 | 1 << 20)
        #expect(try Self.r32(bus, R.gbpa) == 1 << 20)
    }

    @Test("commands are read from guest memory between CONS and PROD (with wrap), CMD_SYNC completes without an MSI (IDR0.MSI = 0), a refused command stops the queue with CERROR_ILL")
    func commandQueue() throws {
        let (bus, v, recorder) = try Self.make()
        let q: UInt64 = 0x4010_0000
        try bus.write64(PhysicalAddress(Self.base + R.cmdqBase), q | 2)   // 4 entries
        try Self.w32(bus, R.cr0, 0x8)
        let syncSlot: UInt64 = q + 2 * 16
        let commands: [Command] = [
            .cfgiSTE(StreamID(8), leaf: true),
            .tlbiNHASID(VMID(0), ASID(3)),
            .sync(CommandSync(completionSignal: .interrupt, msiData: 0, msiAddress: syncSlot)),
            .cfgiCD(StreamID(8), SubstreamID(0), leaf: true),
            .tlbiNHAll(VMID(0)),
        ]
        // Fill slots 0..3, publish PROD = 3.
        for (i, c) in commands.prefix(4).enumerated() {
            let (w0, w1) = c.encode()
            try bus.writeWords(PhysicalAddress(q + UInt64(i) * 16), [w0, w1])
        }
        try Self.w32(bus, R.cmdqProd, 3)
        #expect(try Self.r32(bus, R.cmdqCons) == 3)
        #expect(recorder.commands == Array(commands.prefix(2)))
        // IDR0.MSI = 0: a CMD_SYNC with CS = SIG_IRQ writes no MSI (§4.7.3), so its first word
        // is left as written.
        #expect(try bus.read(PhysicalAddress(syncSlot), size: 8) == commands[2].encode().0)
        // Slot 3, then slot 0 again with the wrap bit: PROD = 0b101.
        let (w0, w1) = commands[4].encode()
        try bus.writeWords(PhysicalAddress(q), [w0, w1])
        try Self.w32(bus, R.cmdqProd, 5)
        #expect(try Self.r32(bus, R.cmdqCons) == 5)
        #expect(recorder.commands.suffix(2) == [commands[3], commands[4]])
        // A refused command: CONS stays on it with ERR = CERROR_ILL, GERROR.CMDQ_ERR toggles.
        recorder.refuse = .cfgiSTE
        let (a0, a1) = Command.cfgiSTE(StreamID(9), leaf: true).encode()
        try bus.writeWords(PhysicalAddress(q + 16), [a0, a1])
        try Self.w32(bus, R.cmdqProd, 6)
        let cons = UInt32(try Self.r32(bus, R.cmdqCons))
        #expect(cons & 0xFF == 5 && SMMURegisterField.commandError(cons) == CommandErrorCode.illegal.rawValue)
        #expect(try Self.r32(bus, R.gerror) & 1 == 1)
        #expect(v.consumedCommands.count == 5)
    }

    @Test("a guest STE is fetched through a 2-level stream table (L1STD span, L2 pointer)")
    func streamTableFetch() throws {
        let (bus, v, _) = try Self.make()
        let l1: UInt64 = 0x4020_0000, l2: UInt64 = 0x4021_0000
        try bus.write64(PhysicalAddress(Self.base + R.strtabBase), l1)
        try Self.w32(bus, R.strtabBaseCfg, 1 << 16 | 8 << 6 | 16)   // 2-level, SPLIT 8, 2^16 SIDs
        // SID 0x108: L1 index 1, L2 index 8. Span 9 = 256 STEs.
        try bus.write64(PhysicalAddress(l1 + 8), l2 | 9)
        var ste = StreamTableEntry()
        ste.valid = true
        ste.config = .stage1
        ste.s1ContextPtr = 0x4030_0000
        try bus.writeWords(PhysicalAddress(l2 + 8 * 64), ste.words)
        #expect(try v.guestStreamTableEntry(StreamID(0x108)) == ste)
        #expect(throws: VirtualSMMU.FetchError.invalidSpan(StreamID(0x8), l1Index: 0, l1Address: l1, span: 0, split: 8)) {
            try v.guestStreamTableEntry(StreamID(0x8))
        }
        #expect(throws: VirtualSMMU.FetchError.streamIDOutOfRange(StreamID(0x1_0000), log2Size: 16)) {
            try v.guestStreamTableEntry(StreamID(0x1_0000))
        }
    }

    @Test("events land at EVENTQ_PROD in guest memory; a full queue toggles OVFLG and drops the record")
    func eventQueue() throws {
        let (bus, v, _) = try Self.make()
        let q: UInt64 = 0x4040_0000
        try bus.write64(PhysicalAddress(Self.base + R.eventqBase), q | 1)   // 2 entries
        #expect(!v.record(EventRecord(0x10, 0, 0, 0)), "EVENTQEN off: discarded")
        try Self.w32(bus, R.cr0, 0x4)
        let event = EventRecord(0x10 | UInt64(8) << 32, 0, 0x0809_0040, 0)
        #expect(v.record(event) && v.record(event))
        #expect(try bus.readWords(PhysicalAddress(q + 32), count: 4) == event.words)
        #expect(try Self.r32(bus, R.eventqProd) == 2)
        #expect(!v.record(event))
        #expect(try Self.r32(bus, R.eventqProd) == 1 << 31 | 2)
        #expect(v.recordedEvents == 2 && v.droppedEvents == 2)
    }
}

/// Hostile guests: random register accesses of every size and random queue contents never
/// trap, and CONS stays inside the queue's index range.
@Suite("Virtual SMMU: hostile register and queue contents")
struct VirtualSMMUPropertyTests {
    @Test(arguments: [1, 2, 3])
    func randomAccesses(seed: UInt64) throws {
        let (bus, v, _) = try VirtualSMMUTests.make()
        var rng = SeededGenerator(seed: seed)
        let offsets: [UInt64] = [0x0, 0x20, 0x24, 0x44, 0x60, 0x64, 0x80, 0x84, 0x88, 0x90, 0x94, 0x98, 0x9C, 0xA0, 0xA8, 0xAC,
                                 0xB0, 0x1_00A8, 0x1_00AC, 0x50, 0x68]
        for _ in 0..<1500 {
            let offset = Bool.random(using: &rng) ? offsets[Int.random(in: 0..<offsets.count, using: &rng)]
                                                  : UInt64.random(in: 0..<0x2_0000, using: &rng)
            let size = [1, 2, 4, 8][Int.random(in: 0..<4, using: &rng)]
            // Queues and tables point into guest RAM (random words there) or anywhere.
            var value = UInt64.random(in: 0...UInt64.max, using: &rng)
            if Bool.random(using: &rng) { value = 0x4000_0000 | (value & 0xFF_FFFF) }
            try? bus.write(PhysicalAddress(VirtualSMMUTests.base + offset), size: size, value: value, requester: .cpu(0))
            _ = try? bus.read(PhysicalAddress(VirtualSMMUTests.base + offset), size: size, requester: .cpu(0))
            if Int.random(in: 0..<8, using: &rng) == 0 {
                try bus.write64(PhysicalAddress(0x4000_0000 | (UInt64.random(in: 0..<0x1_0000, using: &rng) & ~7)),
                                UInt64.random(in: 0...UInt64.max, using: &rng))
            }
            if Int.random(in: 0..<16, using: &rng) == 0 {
                _ = v.record(EventRecord(UInt64.random(in: 0...UInt64.max, using: &rng), 0, 0, 0))
                _ = try? v.guestStreamTableEntry(StreamID(UInt32.random(in: 0...UInt32.max, using: &rng)))
            }
            let log2 = min(SMMURegisterField.queueLog2Size(v.registers.cmdqBase), v.identification.commandQueueMaxLog2)
            let cons = try bus.read(PhysicalAddress(VirtualSMMUTests.base + SMMURegisterOffset.cmdqCons), size: 4, requester: .cpu(0))
            #expect(cons & 0xFF_FFFF < UInt64(2) << UInt64(log2))
        }
    }
}
