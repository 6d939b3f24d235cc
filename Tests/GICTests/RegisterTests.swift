import Bus
import Testing
@testable import GIC

/// ID and control registers, read over the bus as Linux reads them.
@Suite struct RegisterTests {
    @Test func qemuVirtITSTyperMatchesQEMU() throws {
        let f = try Fixture(.qemuVirt)
        let typer = try f.itsRead(ITS.Offset.typer)
        // QEMU gicv3_arm_its_realize: Physical=1, ITT_entry_size=12−1, IDbits=15, Devbits=15,
        // CIL=1, CIDbits=15; PTA, SEIS, HCC, Virtual left 0.
        #expect(typer.bit(0))
        #expect(!typer.bit(1))
        #expect(typer.bits(7, 4) == 11)
        #expect(typer.bits(12, 8) == 15)
        #expect(typer.bits(17, 13) == 15)
        #expect(!typer.bit(18) && !typer.bit(19))
        #expect(typer.bits(31, 24) == 0)
        #expect(typer.bits(35, 32) == 15)
        #expect(typer.bit(36))
        // 32-bit halves read the same bits (Linux uses readq, others readl).
        #expect(try f.itsRead(ITS.Offset.typer + 4, size: 4) == typer >> 32)
    }

    @Test func baserTypeAndEntrySizeAreReadOnly() throws {
        let f = try Fixture(enableITS: false)
        try f.its64(ITS.Offset.baser, 0)
        let b0 = try f.itsRead(ITS.Offset.baser)
        #expect(b0.bits(58, 56) == 1 && b0.bits(52, 48) == 7)  // Devices, 8-byte entries
        #expect(try f.itsRead(ITS.Offset.baser + 8).bits(58, 56) == 4)  // Collections
        // BASER2..7 are unimplemented under GICv3: RAZ/WI.
        try f.its64(ITS.Offset.baser + 16, .max)
        #expect(try f.itsRead(ITS.Offset.baser + 16) == 0)
    }

    @Test func baserResetValuesMatchQEMU() throws {
        let bus = SystemBus()
        let gic = GICv3(configuration: .qemuVirt)
        try gic.attach(to: bus, distributorBase: Fixture.distributorBase, redistributorBase: Fixture.redistributorBase)
        let its = try gic.addITS(base: Fixture.itsBase)
        // QEMU gicv3_its_reset: Type Device/Collection, Page_Size 64 KiB (2), EntrySize 8 − 1.
        let b0 = try its.mmioRead(offset: ITS.Offset.baser, size: 8, requester: .cpu(0))
        let b1 = try its.mmioRead(offset: ITS.Offset.baser + 8, size: 8, requester: .cpu(0))
        #expect(b0 == 1 << 56 | 7 << 48 | 2 << 8)
        #expect(b1 == 4 << 56 | 7 << 48 | 2 << 8)
        // GITS_CTLR out of reset: disabled and quiescent.
        #expect(try its.mmioRead(offset: ITS.Offset.ctlr, size: 4, requester: .cpu(0)) == 1 << 31)
    }

    @Test func cbaserWriteResetsCREADRAndIsIgnoredWhileEnabled() throws {
        let f = try Fixture()
        try f.send(.sync(target: .processor(0)))
        #expect(f.its.creadr == 32)
        try f.its64(ITS.Offset.cbaser, 0x4300_0000 | UInt64(1) << 63)
        #expect(try f.itsRead(ITS.Offset.cbaser) == Fixture.commandQueue | UInt64(1) << 63)
        try f.its32(ITS.Offset.ctlr, 0)
        // Quiescent reads 1 once disabled (Linux its_force_quiescent waits for it).
        #expect(try f.itsRead(ITS.Offset.ctlr, size: 4) == 1 << 31)
        try f.its64(ITS.Offset.cbaser, 0x4300_0000 | UInt64(1) << 63)
        // QEMU resets both CREADR and CWRITER on a CBASER write.
        #expect(f.its.creadr == 0 && f.its.cwriter == 0)
    }

    @Test(arguments: [3, 4])
    func distributorAndRedistributorIdentifyThemselves(version: Int) throws {
        let f = try Fixture(GICConfiguration(version: version, cpuCount: 3))
        let gicd = try f.bus.read(PhysicalAddress(0x0800_0004), size: 4, requester: .cpu(0))
        // GICD_TYPER.LPIS[17]=1, IDbits[23:19] = 16 − 1, ITLinesNumber = (256 + 32) / 32 − 1.
        #expect(gicd.bit(17) && gicd.bits(23, 19) == 15 && gicd.bits(4, 0) == 8)
        #expect(gicd.bit(18) == (version == 4))
        #expect(try f.bus.read(PhysicalAddress(0x0800_FFE8), size: 4, requester: .cpu(0)).bits(7, 4) == UInt64(version))
        // Redistributors are 0x20000 apart (GICv3) or 0x40000 (GICv4); the last has Last=1.
        for cpu in 0..<3 {
            let typer = try f.bus.read(PhysicalAddress(f.rdBase(cpu).rawValue + 8), size: 8, requester: .cpu(cpu))
            #expect(typer.bit(0))  // PLPIS
            #expect(typer.bit(1) == (version == 4))  // VLPIS
            #expect(typer.bits(23, 8) == UInt64(cpu))
            #expect(typer.bit(4) == (cpu == 2))
            #expect(typer.bits(63, 32) == UInt64(cpu))  // Aff0 = cpu
        }
        #expect(f.rdBase(1).rawValue - f.rdBase(0).rawValue == (version == 4 ? 0x4_0000 : 0x2_0000))
        #expect(try f.its.mmioRead(offset: ITS.Offset.pidr2, size: 4, requester: .cpu(0)).bits(7, 4) == UInt64(version))
    }

    @Test func wakerHandshakeCompletesAtOnce() throws {
        let f = try Fixture()
        let waker = PhysicalAddress(f.rdBase(0).rawValue + Redistributor.Offset.waker)
        // Out of reset ProcessorSleep = ChildrenAsleep = 1; Linux gic_enable_redist clears
        // ProcessorSleep and polls until ChildrenAsleep reads 0.
        #expect(try f.bus.read(waker, size: 4, requester: .cpu(0)) == 0b110)
        try f.bus.write(waker, size: 4, value: 0, requester: .cpu(0))
        #expect(try f.bus.read(waker, size: 4, requester: .cpu(0)) == 0)
    }

    @Test func propbaserAndPendbaserIgnoreWritesWhileLPIsAreEnabled() throws {
        let f = try Fixture()
        let prop = PhysicalAddress(f.rdBase(0).rawValue + Redistributor.Offset.propbaser)
        let before = try f.bus.read(prop, size: 8, requester: .cpu(0))
        try f.bus.write(prop, size: 8, value: 0x4400_0000 | 15, requester: .cpu(0))
        #expect(try f.bus.read(prop, size: 8, requester: .cpu(0)) == before)
        #expect(f.gic.redistributors[0].counters.ignoredBaseWrites == 1)
    }

    @Test func propbaserIDbitsIsClampedAndTooFewBitsMeanNoLPIs() throws {
        let f = try Fixture(enableLPIs: false)
        let prop = PhysicalAddress(f.rdBase(0).rawValue + Redistributor.Offset.propbaser)
        // QEMU clamps IDbits to GICD_TYPER.IDbits (15).
        try f.bus.write(prop, size: 8, value: Fixture.propTable | 31, requester: .cpu(0))
        #expect(try f.bus.read(prop, size: 8, requester: .cpu(0)) & 0x1F == 15)
        // IDbits 12 = 13 INTID bits: no LPI (8192 needs 14 bits), so nothing can become pending.
        try f.bus.write(prop, size: 8, value: Fixture.propTable | 12, requester: .cpu(0))
        try f.bus.write(PhysicalAddress(f.rdBase(0).rawValue), size: 4, value: 1, requester: .cpu(0))
        #expect(f.gic.redistributors[0].lpiCount == 0)
        #expect(!f.gic.redistributors[0].setPending(INTID(8192)))
        #expect(f.gic.redistributors[0].counters.lpisOutOfRange == 1)
    }

    @Test func enableLPIsLoadsPendingStateFromThePendingTable() throws {
        let f = try Fixture(enableLPIs: false)
        // Software (e.g. after kexec) leaves LPI 8200 pending in the table and enabled in config.
        f.bus.ram.writeByte(f.pendTable(0) + 8200 / 8, 1 << (8200 % 8))
        f.configure(8200, priority: 0x80)
        try f.enableRedistributor(0)
        #expect(f.gic.redistributors[0].pendingLPIs == [INTID(8200)])
        #expect(f.ack(0) == 8200)
    }
}
