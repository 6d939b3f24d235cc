import Bus
import Testing
@testable import GIC

/// SPIs from the distributor to the CPU interface (IHI 0069 §4.1, §4.5, §12.9), programmed by
/// MMIO the way Linux's `gic_dist_init` and `request_irq` leave them.
@Suite("GIC SPI delivery")
struct SPIDeliveryTests {
    /// A two-PE GIC (affinities 0.0.0.0 and 0.0.0.1) with ARE_NS | EnableGrp1NS set, every SPI
    /// in Group 1, PMR 0xF0, and `intid` configured: priority, level or edge, routed to `cpu`'s
    /// affinity and enabled.
    func fixture(intid: UInt32 = 40, priority: UInt8 = 0xA0, edge: Bool = false, cpu: UInt64 = 0, enable: Bool = true) throws -> Fixture {
        let f = try Fixture()
        try f.gicd32(Distributor.Offset.ctlr, 1 << 4 | 1 << 1 | 1)
        for word in UInt64(1)..<8 { try f.gicd32(Distributor.Offset.igroupr + word * 4, ~0) }
        try f.gic.distributor.mmioWrite(offset: Distributor.Offset.ipriorityr + UInt64(intid), size: 1, value: UInt64(priority), requester: .cpu(0))
        if edge { try f.gicd32(Distributor.Offset.icfgr + UInt64(intid / 16) * 4, 2 << ((intid % 16) * 2)) }
        try f.gic.distributor.mmioWrite(offset: Distributor.Offset.irouter + 8 * UInt64(intid), size: 8, value: cpu, requester: .cpu(0))
        if enable { try f.gicd32(Distributor.Offset.isenabler + UInt64(intid / 32) * 4, 1 << (intid % 32)) }
        return f
    }

    @Test("ICC_IAR1_EL1 returns an asserted level SPI's INTID and makes it active; it stays pending while the wire is asserted")
    func acknowledgeMakesActive() throws {
        let f = try fixture()
        let d = f.gic.distributor
        #expect(f.ack(0) == 1023, "nothing asserted")
        d.setLevel(intid: 40, asserted: true)
        #expect(d.isPending(intid: 40) && !d.isActive(intid: 40))
        #expect(f.ack(0) == 40)
        #expect(d.isActive(intid: 40) && d.isPending(intid: 40), "active and pending: the wire is still asserted")
        #expect(f.gic.cpuInterfaces[0].runningPriority == 0xA0)
        #expect(f.gic.cpuInterfaces[0].deliveries.last?.description == "SPI 40 (priority 0xa0)")
        #expect(f.ack(0) == 1023, "an active SPI is not signalled again")
        #expect(try f.gicdRead(Distributor.Offset.isactiver + 4) & (1 << 8) != 0, "GICD_ISACTIVER1 bit 8")
    }

    @Test("level-sensitive: still asserted at EOI (EOImode 0) → taken again; deasserted → not")
    func levelRetakenUntilDeasserted() throws {
        let f = try fixture()
        let d = f.gic.distributor
        d.setLevel(intid: 40, asserted: true)
        #expect(f.ack(0) == 40)
        f.gic.endOfInterrupt(cpu: 0, intid: 40)
        #expect(!d.isActive(intid: 40))
        #expect(f.ack(0) == 40, "the handler did not clear the device: the line is taken again")
        d.setLevel(intid: 40, asserted: false)
        f.gic.endOfInterrupt(cpu: 0, intid: 40)
        #expect(!d.isPending(intid: 40) && !d.isActive(intid: 40))
        #expect(f.ack(0) == 1023)
        #expect(f.gic.cpuInterfaces[0].counters.deactivations == 2)
    }

    @Test("EOImode 1: ICC_EOIR1_EL1 only drops the priority, ICC_DIR_EL1 deactivates; DIR with EOImode 0 is ignored")
    func eoiModeSplitsDropAndDeactivate() throws {
        let f = try fixture()
        let d = f.gic.distributor
        f.gic.setEOIMode(cpu: 0, true)
        d.setLevel(intid: 40, asserted: true)
        #expect(f.ack(0) == 40)
        f.gic.endOfInterrupt(cpu: 0, intid: 40)
        #expect(f.gic.cpuInterfaces[0].runningPriority == 0xFF, "priority dropped")
        #expect(d.isActive(intid: 40), "still active until DIR")
        #expect(f.ack(0) == 1023)
        d.setLevel(intid: 40, asserted: false)
        f.gic.deactivate(cpu: 0, intid: 40)
        #expect(!d.isActive(intid: 40))
        #expect(f.ack(0) == 1023)

        f.gic.setEOIMode(cpu: 0, false)
        d.setLevel(intid: 40, asserted: true)
        #expect(f.ack(0) == 40)
        f.gic.deactivate(cpu: 0, intid: 40)
        #expect(d.isActive(intid: 40), "DIR with EOImode 0 does nothing here")
        #expect(f.gic.cpuInterfaces[0].counters.ignoredDeactivations == 1)
    }

    @Test("edge-triggered: a rising edge latches pending, the acknowledge clears it, a new edge while active makes it active and pending")
    func edgeSemantics() throws {
        let f = try fixture(edge: true)
        let d = f.gic.distributor
        d.setLevel(intid: 40, asserted: true)
        d.setLevel(intid: 40, asserted: false)
        #expect(d.isPending(intid: 40), "the edge is latched after the wire drops")
        #expect(f.ack(0) == 40)
        #expect(!d.isPending(intid: 40) && d.isActive(intid: 40))
        d.setLevel(intid: 40, asserted: true)
        #expect(d.isPending(intid: 40) && d.isActive(intid: 40))
        f.gic.endOfInterrupt(cpu: 0, intid: 40)
        #expect(f.ack(0) == 40, "the second edge")
        f.gic.endOfInterrupt(cpu: 0, intid: 40)
        #expect(f.ack(0) == 1023, "a held level is not a new edge")
    }

    @Test("a disabled SPI, a Group 0 SPI, or EnableGrp1NS clear: not taken")
    func enableGroupAndDistributorEnable() throws {
        let f = try fixture(enable: false)
        let d = f.gic.distributor
        d.setLevel(intid: 40, asserted: true)
        #expect(f.ack(0) == 1023, "GICD_ISENABLER1 bit 8 clear")
        try f.gicd32(Distributor.Offset.isenabler + 4, 1 << 8)
        try f.gicd32(Distributor.Offset.igroupr + 4, ~UInt32(1 << 8))
        #expect(f.ack(0) == 1023, "Group 0: not an IAR1 interrupt")
        try f.gicd32(Distributor.Offset.igroupr + 4, ~0)
        try f.gicd32(Distributor.Offset.ctlr, 1 << 4)
        #expect(f.ack(0) == 1023, "EnableGrp1NS clear")
        try f.gicd32(Distributor.Offset.ctlr, 1 << 4 | 1 << 1)
        try f.gicd32(Distributor.Offset.icenabler + 4, 1 << 8)
        #expect(!d.isEnabled(intid: 40))
        #expect(f.ack(0) == 1023, "GICD_ICENABLER cleared it")
        try f.gicd32(Distributor.Offset.isenabler + 4, 1 << 8)
        #expect(f.ack(0) == 40)
    }

    @Test("GICD_IROUTER: Aff0 = 1 routes the SPI to CPU 1 only; an affinity no PE has routes it nowhere; 1-of-N lets the first PE to ask take it")
    func routing() throws {
        let f = try fixture(cpu: 1)
        let d = f.gic.distributor
        d.setLevel(intid: 40, asserted: true)
        #expect(f.ack(0) == 1023)
        #expect(f.ack(1) == 40)
        f.gic.endOfInterrupt(cpu: 1, intid: 40)
        try d.mmioWrite(offset: Distributor.Offset.irouter + 8 * 40, size: 8, value: 0x0000_0001_0000_0000, requester: .cpu(0))
        #expect(f.ack(0) == 1023 && f.ack(1) == 1023, "Aff3 = 1 matches no PE")
        try d.mmioWrite(offset: Distributor.Offset.irouter + 8 * 40, size: 8, value: 1 << 31, requester: .cpu(0))
        #expect(f.ack(1) == 40)
        #expect(f.ack(0) == 1023, "already active on CPU 1")
    }

    @Test("priority: the lower value wins over SPIs and LPIs; PMR masks; a running priority only lets a lower group priority preempt")
    func priorities() throws {
        let f = try fixture(intid: 40, priority: 0x80)
        let d = f.gic.distributor
        try d.mmioWrite(offset: Distributor.Offset.ipriorityr + 41, size: 1, value: 0x40, requester: .cpu(0))
        try d.mmioWrite(offset: Distributor.Offset.irouter + 8 * 41, size: 8, value: 0, requester: .cpu(0))
        try f.gicd32(Distributor.Offset.isenabler + 4, 1 << 8 | 1 << 9)
        #expect(try d.mmioRead(offset: Distributor.Offset.ipriorityr + 40, size: 4, requester: .cpu(0)) & 0xFFFF == 0x4080,
                "byte writes land in the 32-bit GICD_IPRIORITYR10")
        d.setLevel(intid: 40, asserted: true)
        d.setLevel(intid: 41, asserted: true)
        #expect(f.ack(0) == 41, "0x40 before 0x80")
        #expect(f.ack(0) == 1023, "0x80 does not preempt running 0x40")
        f.gic.endOfInterrupt(cpu: 0, intid: 41)
        d.setLevel(intid: 41, asserted: false)
        // On CPU 1, LPI 8195 at 0xA0 loses to SPI 40 at 0x80, then runs after it.
        try d.mmioWrite(offset: Distributor.Offset.irouter + 8 * 40, size: 8, value: 1, requester: .cpu(0))
        try f.standardSetup()
        try f.msi(device: 0x10, event: 3)
        #expect(f.ack(1) == 40)
        f.gic.endOfInterrupt(cpu: 1, intid: 40)
        d.setLevel(intid: 40, asserted: false)
        #expect(f.ack(1) == 8195)
        f.gic.endOfInterrupt(cpu: 1, intid: 8195)
        try d.mmioWrite(offset: Distributor.Offset.irouter + 8 * 40, size: 8, value: 0, requester: .cpu(0))
        f.gic.setPriorityMask(cpu: 0, 0x80)
        d.setLevel(intid: 40, asserted: true)
        #expect(f.ack(0) == 1023, "PMR 0x80 masks priority 0x80")
    }

    @Test("bad INTIDs and register offsets never crash")
    func badInput() throws {
        let f = try fixture()
        let d = f.gic.distributor
        for intid: UInt32 in [0, 31, 1019, 1020, 5000, .max] {
            #expect(!d.setLevel(intid: intid, asserted: true))
            #expect(!d.isPending(intid: intid))
            _ = d.priority(intid: intid)
            _ = d.router(intid: intid)
            f.gic.deactivate(cpu: 0, intid: intid)
            f.gic.endOfInterrupt(cpu: 0, intid: intid)
        }
        for offset: UInt64 in [0x3FF, 0x7FF, 0xFFFF, 0x1_0000] {
            try d.mmioWrite(offset: offset, size: 1, value: 0xFF, requester: .cpu(0))
            _ = try d.mmioRead(offset: offset, size: 1, requester: .cpu(0))
        }
        f.gic.deactivate(cpu: 7, intid: 40)
        #expect(f.ack(0) == 1023)
    }
}

extension Fixture {
    func gicd32(_ offset: UInt64, _ value: UInt32) throws {
        try gic.distributor.mmioWrite(offset: offset, size: 4, value: UInt64(value), requester: .cpu(0))
    }

    func gicdRead(_ offset: UInt64) throws -> UInt32 {
        UInt32(truncatingIfNeeded: try gic.distributor.mmioRead(offset: offset, size: 4, requester: .cpu(0)))
    }
}
