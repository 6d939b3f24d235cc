import Bus
import Testing
@testable import GIC

/// SPIs raised by writes: a GICv2m MSI frame's MSI_SETSPI_NS (SBSA GICv2m; QEMU
/// `arm_gicv2m.c`), the GICv3 distributor's GICD_SETSPI_NSR / GICD_CLRSPI_NSR (IHI 0069 §12.9),
/// and a GICv2's GICD_ITARGETSR routing and memory-mapped GICC (IHI 0048B §4.3, §4.4).
@Suite("GIC message-based SPIs and GICv2m")
struct SPIMessageTests {
    static let gicd = PhysicalAddress(0x0800_0000)
    static let gicc = PhysicalAddress(0x0801_0000)
    static let v2m = PhysicalAddress(0x0802_0000)

    /// A GICv2 as QEMU `virt` gic-version=2 has it (GICD, GICC, one v2m frame with SPIs 80…143),
    /// programmed as Linux's irq-gic.c leaves it: GICD_CTLR.Enable, GICC_CTLR.Enable, PMR 0xF0;
    /// `intid` edge-triggered, priority 0xA0, targeted at CPU interface `target`, enabled.
    func gicv2(cpus: Int = 2, intid: UInt32 = 80, target: UInt8 = 1) throws -> (SystemBus, GICv3, GICv2mMSIFrame) {
        let bus = SystemBus()
        let gic = GICv3(configuration: GICConfiguration(version: 2, cpuCount: cpus))
        try gic.attachDistributor(to: bus, base: Self.gicd)
        try gic.addGICv2CPUInterface(base: Self.gicc)
        let frame = try gic.addV2mFrame(base: Self.v2m, baseSPI: 80, spiCount: 64)
        try bus.write(Self.gicd, size: 4, value: 1, requester: .cpu(0))
        for cpu in 0..<cpus {
            try bus.write(Self.gicc, size: 4, value: 1, requester: .cpu(cpu))
            try bus.write(Self.gicc.adding(4)!, size: 4, value: 0xF0, requester: .cpu(cpu))
        }
        try bus.write(Self.gicd.adding(0x400 + UInt64(intid))!, size: 1, value: 0xA0, requester: .cpu(0))
        try bus.write(Self.gicd.adding(0xC00 + UInt64(intid / 16) * 4)!, size: 4, value: 2 << ((intid % 16) * 2), requester: .cpu(0))
        try bus.write(Self.gicd.adding(0x800 + UInt64(intid))!, size: 1, value: UInt64(target), requester: .cpu(0))
        try bus.write(Self.gicd.adding(0x100 + UInt64(intid / 32) * 4)!, size: 4, value: 1 << (intid % 32), requester: .cpu(0))
        return (bus, gic, frame)
    }

    func iar(_ bus: SystemBus, cpu: Int) throws -> UInt64 { try bus.read(Self.gicc.adding(0xC)!, size: 4, requester: .cpu(cpu)) }
    func eoir(_ bus: SystemBus, cpu: Int, _ intid: UInt64) throws { try bus.write(Self.gicc.adding(0x10)!, size: 4, value: intid, requester: .cpu(cpu)) }

    @Test("MSI_TYPER holds the base SPI in [25:16] and the count in [9:0]; MSI_IIDR is QEMU's 'Q' product")
    func v2mTyper() throws {
        let (bus, _, _) = try gicv2()
        let typer = try bus.read(Self.v2m.adding(0x8)!, size: 4)
        #expect(typer >> 16 & 0x3FF == 80)
        #expect(typer & 0x3FF == 64)
        #expect(typer == 0x0050_0040)
        #expect(try bus.read(Self.v2m.adding(0xFCC)!, size: 4) == 0x0510_0000)
        #expect(try bus.read(Self.v2m.adding(0x40)!, size: 4) == 0, "MSI_SETSPI_NS is write-only")
    }

    @Test("a device's write of an SPI number to MSI_SETSPI_NS makes it pending; the targeted CPU acknowledges it through GICC_IAR and ends it with GICC_EOIR")
    func v2mDelivers() throws {
        let (bus, gic, frame) = try gicv2(target: 0b10)
        try bus.write(Self.v2m.adding(0x40)!, size: 4, value: 80, requester: .device(DeviceID(8)))
        #expect(gic.distributor.isPending(intid: 80))
        #expect(frame.delivered == 1)
        #expect(try iar(bus, cpu: 0) == 1023, "GICD_ITARGETSR names CPU interface 1 only")
        #expect(try iar(bus, cpu: 1) == 80)
        #expect(gic.distributor.isActive(intid: 80) && !gic.distributor.isPending(intid: 80), "edge: acknowledged → active")
        #expect(try iar(bus, cpu: 1) == 1023, "active: not signalled again")
        try eoir(bus, cpu: 1, 80)
        #expect(!gic.distributor.isActive(intid: 80))
        #expect(gic.cpuInterfaces[1].runningPriority == 0xFF)
    }

    @Test("MSI_SETSPI_NS ignores SPI numbers outside the frame's range, and accesses other than 16/32-bit")
    func v2mOutOfRange() throws {
        let (bus, gic, frame) = try gicv2(target: 1)
        for value: UInt64 in [79, 144, 0, 1023, 32] {
            try bus.write(Self.v2m.adding(0x40)!, size: 4, value: value, requester: .device(DeviceID(8)))
        }
        #expect(frame.ignoredWrites == 5)
        #expect(!gic.distributor.isPending(intid: 79) && !gic.distributor.isPending(intid: 32))
        try bus.write(Self.v2m.adding(0x40)!, size: 1, value: 80, requester: .device(DeviceID(8)))
        #expect(!gic.distributor.isPending(intid: 80), "an 8-bit write is ignored")
        try bus.write(Self.v2m.adding(0x40)!, size: 2, value: 0xFC00 | 143, requester: .device(DeviceID(8)))
        #expect(gic.distributor.isPending(intid: 143), "16-bit write; bits above [9:0] are not the SPI number")
    }

    @Test("GICv2 distributor: GICD_TYPER, GICD_ICPIDR2, GICD_ITARGETSR bytes; disabled GICD_CTLR or GICC_CTLR forwards nothing")
    func gicv2Layout() throws {
        let (bus, gic, _) = try gicv2(cpus: 2, target: 1)
        #expect(try bus.read(Self.gicd.adding(4)!, size: 4) == (256 + 32) / 32 - 1 | 1 << 5)
        #expect(try bus.read(Self.gicd.adding(0xFE8)!, size: 4) == 0x2B)
        #expect(try bus.read(Self.gicd.adding(0x850)!, size: 4) == 1, "ITARGETSR20 byte 0 = INTID 80")
        #expect(gic.distributor.typer & (1 << 17) == 0, "no LPIs")
        gic.distributor.setSPIPending(intid: 80)
        try bus.write(Self.gicd, size: 4, value: 0, requester: .cpu(0))
        #expect(try iar(bus, cpu: 0) == 1023, "GICD_CTLR.Enable clear")
        try bus.write(Self.gicd, size: 4, value: 1, requester: .cpu(0))
        try bus.write(Self.gicc, size: 4, value: 0, requester: .cpu(0))
        #expect(try iar(bus, cpu: 0) == 1023, "GICC_CTLR.Enable clear")
        try bus.write(Self.gicc, size: 4, value: 1, requester: .cpu(0))
        #expect(try iar(bus, cpu: 0) == 80)
        #expect(try bus.read(Self.gicc.adding(0xC)!, size: 4, requester: .hardware) == 0, "GICC is banked per CPU; a non-CPU access reads 0")
    }

    @Test("GICC_CTLR.EOImode 1: GICC_EOIR only drops the priority; GICC_DIR deactivates")
    func gicv2EOIMode() throws {
        let (bus, gic, _) = try gicv2(target: 1)
        try bus.write(Self.gicc, size: 4, value: 1 | 1 << 9, requester: .cpu(0))
        gic.distributor.setSPIPending(intid: 80)
        #expect(try iar(bus, cpu: 0) == 80)
        try eoir(bus, cpu: 0, 80)
        #expect(gic.distributor.isActive(intid: 80))
        try bus.write(Self.gicc.adding(0x1000)!, size: 4, value: 80, requester: .cpu(0))
        #expect(!gic.distributor.isActive(intid: 80))
    }

    // MARK: GICv3 MBIs

    func gicv3(mbis: Bool = true, edge: Bool) throws -> GICv3 {
        let bus = SystemBus()
        var configuration = GICConfiguration(cpuCount: 1)
        configuration.messageBasedSPIs = mbis
        let gic = GICv3(configuration: configuration)
        try gic.attach(to: bus, distributorBase: Self.gicd, redistributorBase: PhysicalAddress(0x080A_0000))
        let d = gic.distributor
        try d.mmioWrite(offset: 0, size: 4, value: 1 << 4 | 1 << 1, requester: .cpu(0))
        try d.mmioWrite(offset: 0x80 + 8, size: 4, value: ~0, requester: .cpu(0))
        try d.mmioWrite(offset: 0x400 + 70, size: 1, value: 0xA0, requester: .cpu(0))
        if edge { try d.mmioWrite(offset: 0xC00 + 4 * 4, size: 4, value: 2 << 12, requester: .cpu(0)) }
        try d.mmioWrite(offset: 0x6000 + 8 * 70, size: 8, value: 0, requester: .cpu(0))
        try d.mmioWrite(offset: 0x108, size: 4, value: 1 << 6, requester: .cpu(0))
        gic.setPriorityMask(cpu: 0, 0xF0)
        return gic
    }

    @Test("GICD_TYPER.MBIS (bit 16) says whether GICD_SETSPI_NSR exists; without it the write is ignored")
    func mbisBit() throws {
        let with = try gicv3(edge: true)
        let without = try gicv3(mbis: false, edge: true)
        #expect(with.distributor.typer & (1 << 16) != 0)
        #expect(without.distributor.typer & (1 << 16) == 0)
        try without.distributor.mmioWrite(offset: 0x40, size: 4, value: 70, requester: .device(DeviceID(1)))
        #expect(!without.distributor.isPending(intid: 70))
    }

    @Test("GICD_SETSPI_NSR on an edge SPI: pending, acknowledged → active, EOI → idle; an invalid SPI or an already pending one has no effect")
    func setspiEdge() throws {
        let gic = try gicv3(edge: true)
        let d = gic.distributor
        try d.mmioWrite(offset: 0x40, size: 4, value: 70, requester: .device(DeviceID(1)))
        #expect(d.isPending(intid: 70))
        #expect(!d.setSPIPending(intid: 70), "already pending: no effect")
        #expect(!d.setSPIPending(intid: 31), "a PPI is not an SPI")
        #expect(!d.setSPIPending(intid: 32 + 256), "beyond ITLinesNumber")
        #expect(gic.acknowledge(cpu: 0) == 70)
        #expect(d.isActive(intid: 70) && !d.isPending(intid: 70))
        gic.endOfInterrupt(cpu: 0, intid: 70)
        #expect(!d.isActive(intid: 70))
        #expect(gic.acknowledge(cpu: 0) == 1023)
        try d.mmioWrite(offset: 0x40, size: 2, value: 0xE000 | 70, requester: .device(DeviceID(1)))
        #expect(d.isPending(intid: 70), "16-bit write, INTID in [12:0]")
        try d.mmioWrite(offset: 0x48, size: 4, value: 70, requester: .cpu(0))
        #expect(!d.isPending(intid: 70), "GICD_CLRSPI_NSR removes the pending state")
    }

    @Test("GICD_SETSPI_NSR on a level SPI asserts it until GICD_CLRSPI_NSR: taken again after EOI while asserted")
    func setspiLevel() throws {
        let gic = try gicv3(edge: false)
        let d = gic.distributor
        try d.mmioWrite(offset: 0x40, size: 4, value: 70, requester: .device(DeviceID(1)))
        #expect(d.isMessageAsserted(intid: 70))
        #expect(gic.acknowledge(cpu: 0) == 70)
        #expect(d.isActive(intid: 70) && d.isPending(intid: 70), "active and pending")
        gic.endOfInterrupt(cpu: 0, intid: 70)
        #expect(gic.acknowledge(cpu: 0) == 70, "still asserted")
        try d.mmioWrite(offset: 0x48, size: 4, value: 70, requester: .device(DeviceID(1)))
        #expect(!d.isPending(intid: 70) && d.isActive(intid: 70), "active and pending → active")
        gic.endOfInterrupt(cpu: 0, intid: 70)
        #expect(gic.acknowledge(cpu: 0) == 1023)
        #expect(try d.mmioRead(offset: 0x40, size: 4, requester: .cpu(0)) == 0, "write-only")
    }
}
