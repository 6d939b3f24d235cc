import Bus
import Testing
@testable import GIC

/// Random bytes as ITS commands and MSIs never crash and never break the model's invariants.
@Suite struct ITSPropertyTests {
    /// A command that is either plausible (a real opcode with small fields, so it reaches deep
    /// into the tables) or plain random words (mostly unsupported opcodes and wild fields).
    static func randomCommand(_ g: inout SeededGenerator) -> [UInt64] {
        let opcodes: [UInt8] = [0x01, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F]
        let choice = g.next() % 4
        if choice == 3 { return [g.next(), g.next(), g.next(), g.next()] }
        var w = [g.next(), g.next(), g.next(), g.next()]
        let opcode = opcodes[Int(g.next() % UInt64(opcodes.count))]
        w[0] = (w[0] & ~0xFF) | UInt64(opcode)
        if choice < 2 {
            // Small IDs (dense, so mappings meet MSIs): DeviceID < 8, EventID < 16, ICID < 8, pINTID near 8192, RDbase < 4,
            // ITT inside RAM (256-byte aligned), Size < 8.
            let device = g.next() % 8
            w[0] = UInt64(opcode) | device << 32
            let intid = g.next() % 8 == 0 ? g.next() & 0xFFFF_FFFF : 8192 + g.next() % 600
            w[1] = (g.next() % 16) | intid << 32
            if opcode == 0x08 { w[1] = g.next() % 8 == 0 ? g.next() % 32 : 3 + g.next() % 3 }
            // Mostly the device's own ITT (so its mappings survive a re-MAPD), sometimes a random one.
            let itt = g.next() % 8 == 0 ? 0x4100_0000 + (g.next() % 4096) * 256 : 0x4100_0000 + device * 0x1000
            w[2] = opcode == 0x08 ? itt | (g.next() % 8 == 0 ? 0 : UInt64(1) << 63)
                : (g.next() % 8) | (g.next() % 4) << 16 | (g.next() % 8 == 0 ? 0 : UInt64(1) << 63)
            w[3] = (g.next() % 4) << 16
        }
        return w
    }

    /// Checks every invariant the model promises after arbitrary input.
    static func checkInvariants(_ f: Fixture, msis: Int) {
        let its = f.its
        #expect(its.creadr % 32 == 0 && its.creadr < its.commandQueueBytes)
        // Every 4-byte TRANSLATER write is either translated or dropped for exactly one reason.
        #expect(its.counters.translaterWrites == msis)
        #expect(its.counters.translations + its.counters.totalDrops == msis)
        // Software never edits the tables here, so the ITS's cached view equals RAM: a device is
        // mapped through the ITS exactly when its DTE in RAM is valid.
        for device in 0..<10 as Range<UInt32> {
            let inRAM = f.bus.ram.read(Fixture.deviceTable + UInt64(device) * 8, size: 8) & 1 == 1
            var mapped = false
            if case .found = its.lookupDevice(device) { mapped = true }
            #expect(mapped == inRAM)
        }
        for (cpu, rd) in f.gic.redistributors.enumerated() {
            let pending = rd.pendingLPIs
            #expect(pending.count == rd.pendingCount)
            // The shadow matches the pending table in RAM bit for bit.
            let table = f.bus.ram.readBytes(f.pendTable(cpu) + 1024, count: rd.lpiCount / 8)
            var fromRAM: [INTID] = []
            for (i, byte) in table.enumerated() where byte != 0 {
                for b in 0..<8 where byte & (1 << b) != 0 { fromRAM.append(INTID(UInt32(8192 + i * 8 + b))) }
            }
            #expect(pending == fromRAM)
        }
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func randomCommandsAndMSIsNeverCrashAndKeepInvariants(seed: UInt64) throws {
        var g = SeededGenerator(seed: seed)
        let f = try Fixture(GICConfiguration(cpuCount: 4), deviceTablePages: 1)
        // Enable a band of LPIs so random deliveries can be acknowledged.
        for intid in 8192..<8800 as Range<UInt32> { f.configure(intid, priority: UInt8(g.next() & 0xFC)) }
        try f.send(.invall(collection: CollectionID(0)))
        var msis = 0
        for step in 0..<1000 {
            try f.send(words: Self.randomCommand(&g))
            if f.its.stalled {
                // Recovery as a driver would do it: disable, re-point the queue, enable.
                try f.its32(ITS.Offset.ctlr, 0)
                try f.its64(ITS.Offset.cbaser, Fixture.commandQueue | UInt64(1) << 63)
                try f.its64(ITS.Offset.cwriter, 0)
                try f.its32(ITS.Offset.ctlr, 1)
                #expect(!f.its.stalled && f.its.creadr == 0)
            }
            for _ in 0..<2 {
                let device = UInt32(g.next() % 10)
                let event = g.next() % 16 == 0 ? UInt32(truncatingIfNeeded: g.next()) : UInt32(g.next() % 18)
                try f.msi(device: device, event: event)
                msis += 1
            }
            let cpu = Int(g.next() % 4)
            let intid = f.ack(cpu)
            if intid != 1023 {
                // Only an enabled LPI at a priority below the mask can be acknowledged.
                let config = f.gic.lpiConfigurationCache[Int(intid) - 8192]
                #expect(intid >= 8192 && config & 1 == 1 && config & 0xFC < 0xF0)
                f.gic.endOfInterrupt(cpu: cpu, intid: intid)
            }
            if step % 250 == 0 { Self.checkInvariants(f, msis: msis) }
        }
        Self.checkInvariants(f, msis: msis)
        // The run must have exercised real work, not only errors.
        #expect(f.its.counters.translations > 20)
        #expect(f.gic.cpuInterfaces.filter { !$0.deliveries.isEmpty }.count >= 2)
        #expect(f.its.counters.commandsProcessed > 500)
        #expect(f.its.counters.commandErrors > 0)
    }

    @Test func randomRegisterWritesNeverCrash() throws {
        var g = SeededGenerator(seed: 7)
        let f = try Fixture()
        for _ in 0..<3000 {
            let offset = [0x0, 0x4, 0x8, 0x80, 0x84, 0x88, 0x8C, 0x90, 0x100, 0x108, 0x110, 0x138, 0xFFE8,
                          0x1_0040, g.next() % 0x2_0000][Int(g.next() % 15)]
            let size = [1, 2, 4, 8][Int(g.next() % 4)]
            let address = PhysicalAddress(Fixture.itsBase.rawValue + UInt64(offset))
            _ = try? f.bus.write(address, size: size, value: g.next(), requester: g.next() % 2 == 0 ? .cpu(0) : .device(DeviceID(UInt32(g.next() % 64))))
            _ = try? f.bus.read(address, size: size, requester: .cpu(0))
            let rd = PhysicalAddress(f.rdBase(Int(g.next() % 2)).rawValue + (g.next() % 0x2_0000) & ~3)
            _ = try? f.bus.write(rd, size: 4, value: g.next(), requester: .cpu(0))
        }
        #expect(f.its.creadr % 32 == 0)
    }

    @Test func decodeThenEncodeIsStableForRandomWords() {
        var g = SeededGenerator(seed: 11)
        var decoded = 0
        for _ in 0..<5000 {
            var w = [g.next(), g.next(), g.next(), g.next()]
            w[0] = (w[0] & ~0xFF) | (g.next() % 0x10)
            guard let command = ITSCommand(words: w) else { continue }
            decoded += 1
            let words = command.encode()
            // Re-encoding drops only reserved bits: decoding the result gives the same command.
            #expect(ITSCommand(words: words) == command)
            #expect(words[0] & 0xFF == w[0] & 0xFF)
        }
        #expect(decoded > 3000)  // 12 of 16 low opcodes are implemented
    }

    @Test func encodedFieldsSitWhereLinuxPutsThem() {
        // Linux its_encode_*: DeviceID DW0[63:32], EventID DW1[31:0], pINTID DW1[63:32],
        // ICID DW2[15:0], target DW2[51:16], ITT DW2[51:8], Valid DW2[63], Size DW1[4:0].
        let mapti = ITSCommand.mapti(device: DeviceID(0xABCD), event: EventID(0x1234), intid: INTID(8195), collection: CollectionID(7)).encode()
        #expect(mapti == [0xABCD_0000_000A, 0x2003_0000_1234, 7, 0])
        let mapd = ITSCommand.mapd(device: DeviceID(1), size: 4, ittAddress: PhysicalAddress(0x4100_0100), valid: true).encode()
        #expect(mapd == [0x1_0000_0008, 4, 0x8000_0000_4100_0100, 0])
        let mapc = ITSCommand.mapc(collection: CollectionID(2), target: .processor(3), valid: true).encode()
        #expect(mapc == [0x09, 0, 0x8000_0000_0003_0002, 0])
        let movall = ITSCommand.movall(from: .processor(1), to: .address(PhysicalAddress(0x080C_0000))).encode()
        #expect(movall == [0x0E, 0, 0x1_0000, 0x080C_0000])
    }
}
