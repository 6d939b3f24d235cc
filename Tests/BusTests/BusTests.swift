import Testing
@testable import Bus

@Suite("Bit fields")
struct BitFieldTests {
    @Test("bits(hi, lo) extracts the inclusive field and settingBits replaces only that field")
    func extractAndReplace() {
        let word: UInt64 = 0xFEDC_BA98_7654_3210
        #expect(word.bits(7, 0) == 0x10)
        #expect(word.bits(63, 60) == 0xF)
        #expect(word.bits(63, 0) == word)
        #expect(word.bit(4) && !word.bit(0))
        let changed = word.settingBits(11, 8, to: 0xA)
        #expect(changed == 0xFEDC_BA98_7654_3A10)
        // Excess bits of the new value are dropped, not spilled into neighbours.
        #expect(UInt64(0).settingBits(3, 0, to: 0xFF) == 0xF)
        #expect(word.keepingBits(51, 12) == 0x000C_BA98_7654_3000)
    }

    @Test("absurd field positions never trap")
    func absurdPositions() {
        let word: UInt64 = .max
        #expect(word.bits(200, 100) == 0)
        #expect(word.settingBits(70, 64, to: 1) == .max)
        #expect(UInt64.lowMask(-3) == 0)
    }

    @Test("Hex.format groups by four and Hex.parse accepts underscores", arguments: [
        (UInt64(0x0809_0040), "0x0809_0040"),
        (UInt64(0x1_0000_0000), "0x1_0000_0000"),
        (UInt64(0), "0x0000_0000"),
    ])
    func hexRoundTrip(value: UInt64, text: String) {
        #expect(Hex.format(value) == text)
        #expect(Hex.parse(text) == value)
    }

    @Test("Hex.parse rejects junk and overflow")
    func hexRejects() {
        #expect(Hex.parse("0x") == nil)
        #expect(Hex.parse("0xG") == nil)
        #expect(Hex.parse("0x1_0000_0000_0000_0000") == nil)
        #expect(Hex.parse("") == nil)
        #expect(Hex.parse("1234") == 1234)
    }
}

@Suite("Typed addresses and identifiers")
struct TypedValueTests {
    @Test("alignment and offsets follow the granule")
    func alignment() {
        let a = IOVA(0xFFFF_F040)
        #expect(a.alignedDown(to: .size4K) == IOVA(0xFFFF_F000))
        #expect(a.offset(in: .size4K) == 0x40)
        #expect(a.alignedDown(to: .size64K) == IOVA(0xFFFF_0000))
        #expect(a.offset(in: .size64K) == 0xF040)
        #expect(PhysicalAddress(UInt64.max).adding(1) == nil)
        #expect(IPA(0x1000).adding(0x40) == IPA(0x1040))
    }

    @Test("granule geometry matches Arm ARM D8.2 level shifts")
    func granuleGeometry() {
        #expect((0...3).map { Granule.size4K.levelShift($0) } == [39, 30, 21, 12])
        #expect((0...3).map { Granule.size16K.levelShift($0) } == [47, 36, 25, 14])
        #expect((0...3).map { Granule.size64K.levelShift($0) } == [55, 42, 29, 16])
        #expect(Granule.size4K.entriesPerTable == 512)
        #expect(Granule.size16K.entriesPerTable == 2048)
        #expect(Granule.size64K.entriesPerTable == 8192)
        #expect(Granule(pageSize: 65536) == .size64K)
        #expect(Granule(pageSize: 8192) == nil)
    }
}

@Suite("Sparse RAM")
struct SparseRAMTests {
    @Test("unwritten memory reads as zero and allocates nothing")
    func zeroWithoutAllocation() {
        let ram = SparseRAM()
        #expect(ram.read(0xF_FFFF_FFFF_F000, size: 8) == 0)
        #expect(ram.read(0x4000_0000, size: 4) == 0)
        #expect(ram.allocatedFrameCount == 0)
    }

    @Test("little-endian layout: a 64-bit write reads back byte by byte lowest first")
    func littleEndian() {
        let ram = SparseRAM()
        ram.write(0x1000, size: 8, value: 0x0807_0605_0403_0201)
        #expect(ram.readBytes(0x1000, count: 8) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(ram.read(0x1002, size: 2) == 0x0403)
        #expect(ram.read(0x1004, size: 4) == 0x0807_0605)
        #expect(ram.allocatedFrameCount == 1)
    }

    @Test("an access crossing a frame boundary touches both frames")
    func crossingFrames() {
        let ram = SparseRAM()
        ram.write(0x1FFC, size: 8, value: 0x1122_3344_5566_7788)
        #expect(ram.read(0x1FFC, size: 8) == 0x1122_3344_5566_7788)
        #expect(ram.read(0x2000, size: 4) == 0x1122_3344)
        #expect(ram.allocatedFrameNumbers == [1, 2])
    }

    @Test("the top of the address space wraps instead of trapping")
    func topOfSpace() {
        let ram = SparseRAM()
        ram.write(UInt64.max - 3, size: 8, value: 0xAABB_CCDD_EEFF_0011)
        #expect(ram.read(UInt64.max - 3, size: 8) == 0xAABB_CCDD_EEFF_0011)
    }

    @Test("a fork is independent and the digest ignores frames written back to zero")
    func copyAndDigest() {
        let ram = SparseRAM()
        ram.write(0x5000, size: 8, value: 42)
        let copy = ram.fork()
        ram.write(0x5000, size: 8, value: 43)
        #expect(copy.read(0x5000, size: 8) == 42)
        #expect(copy.contentDigest() != ram.contentDigest())
        let empty = SparseRAM()
        let zeroed = SparseRAM()
        zeroed.write(0x9000, size: 8, value: 7)
        zeroed.write(0x9000, size: 8, value: 0)
        #expect(empty.contentDigest() == zeroed.contentDigest())
    }
}

/// A register file that records what the bus handed it.
final class RecordingDevice: MMIODevice {
    var mmioName: String { "recorder" }
    var writes: [(offset: UInt64, size: Int, value: UInt64, requester: Requester)] = []
    func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        if offset == 0xBAD { throw .deviceError(PhysicalAddress(offset), "refused") }
        return offset &* 2
    }
    func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        writes.append((offset, size, value, requester))
    }
}

@Suite("System bus")
struct SystemBusTests {
    func makeBus() throws -> (SystemBus, RecordingDevice) {
        let bus = SystemBus()
        let device = RecordingDevice()
        try bus.addRAM(base: PhysicalAddress(0x4000_0000), size: 0x4000_0000)
        try bus.addDevice(device, base: PhysicalAddress(0x0808_0000), size: 0x2_0000)
        return (bus, device)
    }

    @Test("RAM and device windows decode; the device sees its offset and the requester")
    func decode() throws {
        let (bus, device) = try makeBus()
        try bus.write64(PhysicalAddress(0x4000_1000), 0xDEAD_BEEF)
        #expect(try bus.read64(PhysicalAddress(0x4000_1000)) == 0xDEAD_BEEF)
        try bus.write(PhysicalAddress(0x0809_0040), size: 4, value: 7, requester: .device(DeviceID(0x10)))
        #expect(device.writes.count == 1)
        #expect(device.writes.first?.offset == 0x1_0040)
        #expect(device.writes.first?.requester == .device(DeviceID(0x10)))
        #expect(try bus.read(PhysicalAddress(0x0808_0008), size: 4) == 0x10)
    }

    @Test("an unbacked address, an access straddling a window end and a bad size are errors")
    func errors() throws {
        let (bus, _) = try makeBus()
        #expect(throws: BusError.unbacked(PhysicalAddress(0x1000))) { try bus.read64(PhysicalAddress(0x1000)) }
        #expect(throws: BusError.unbacked(PhysicalAddress(0x7FFF_FFFC))) { try bus.read64(PhysicalAddress(0x7FFF_FFFC)) }
        #expect(throws: BusError.badAccess(PhysicalAddress(0x4000_0000), size: 3)) { try bus.read(PhysicalAddress(0x4000_0000), size: 3) }
        #expect(throws: BusError.beyondPhysicalAddressSpace(PhysicalAddress(1 << 52))) { try bus.read64(PhysicalAddress(1 << 52)) }
        #expect(throws: BusError.deviceError(PhysicalAddress(0xBAD), "refused")) { try bus.read(PhysicalAddress(0x0808_0BAD), size: 1) }
    }

    @Test("overlapping regions are rejected with both names")
    func overlap() throws {
        let (bus, device) = try makeBus()
        #expect(throws: BusError.self) { try bus.addDevice(device, base: PhysicalAddress(0x0809_0000), size: 0x1000, name: "clash") }
        #expect(throws: BusError.self) { try bus.addRAM(base: PhysicalAddress(0x3FFF_F000), size: 0x2000) }
        #expect(bus.regions.count == 2)
    }

    @Test("regions are found by binary search in any insertion order", arguments: [[3, 1, 0, 2], [0, 1, 2, 3], [2, 3, 1, 0]])
    func binarySearch(order: [Int]) throws {
        let bus = SystemBus()
        for i in order {
            try bus.addRAM(base: PhysicalAddress(UInt64(i) << 32), size: 0x1000, name: "r\(i)")
        }
        for i in 0..<4 {
            let index = try #require(bus.regionIndex(for: (UInt64(i) << 32) + 0x800))
            #expect(bus.regions[index].name == "r\(i)")
            #expect(bus.regionIndex(for: (UInt64(i) << 32) + 0x1000) == nil)
        }
    }

    @Test("RAM reached through the bus is the shared backing store")
    func sharedBackingStore() throws {
        let (bus, _) = try makeBus()
        try bus.write(PhysicalAddress(0x4000_0010), size: 4, value: 0x1234_5678)
        #expect(bus.ram.read(0x4000_0010, size: 4) == 0x1234_5678)
        #expect(bus.isRAM(PhysicalAddress(0x4000_0000), size: 0x4000_0000))
        #expect(!bus.isRAM(PhysicalAddress(0x7FFF_F000), size: 0x2000))
    }
}

@Suite("Seeded generator")
struct SeededGeneratorTests {
    @Test("the same seed gives the same sequence; SplitMix64's published first output for seed 0")
    func deterministic() {
        var a = SeededGenerator(seed: 0)
        var b = SeededGenerator(seed: 0)
        // First output of SplitMix64 seeded with 0 (reference implementation by Vigna).
        #expect(a.next() == 0xE220_A839_7B1D_CDAF)
        _ = b.next()
        #expect(a.bytes(13) == b.bytes(13))
        var c = SeededGenerator(seed: 1)
        #expect(c.next() != SeededGenerator(seed: 0).state)
    }
}

@Suite("RAM windows backed elsewhere")
struct BackedRAMTests {
    @Test("a guest bus's IPA window reads and writes the host RAM that backs it")
    func guestWindow() throws {
        let host = SystemBus()
        try host.addRAM(base: PhysicalAddress(0x4000_0000), size: 0x4000_0000)
        // The guest's RAM at IPA 0x4000_0000 is host PA 0x6000_0000 onwards.
        let guest = SystemBus(ram: host.ram)
        try guest.addRAM(base: PhysicalAddress(0x4000_0000), size: 0x1000_0000, backedAt: PhysicalAddress(0x6000_0000))
        try guest.write64(PhysicalAddress(0x4000_1000), 0x1234)
        #expect(try host.read64(PhysicalAddress(0x6000_1000)) == 0x1234)
        try host.write64(PhysicalAddress(0x6FFF_FFF8), 7)
        #expect(try guest.read64(PhysicalAddress(0x4FFF_FFF8)) == 7)
        #expect(throws: BusError.unbacked(PhysicalAddress(0x5000_0000))) { try guest.read64(PhysicalAddress(0x5000_0000)) }
        #expect(guest.isRAM(PhysicalAddress(0x4000_0000), size: 0x1000_0000))
    }
}
