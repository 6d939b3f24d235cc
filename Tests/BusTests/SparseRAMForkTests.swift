import Testing
@testable import Bus

/// `SparseRAM.fork()`: the two copies share storage until one writes, and a write in one is never
/// seen by the other, whichever side writes, through every write path, across several forks.
@Suite("SparseRAM fork (copy-on-write)")
struct SparseRAMForkTests {
    @Test("a fork reads what the original held; a write in either is invisible to the other")
    func independentAfterFork() {
        let ram = SparseRAM()
        ram.write(0x1000, size: 8, value: 0x1111)
        ram.write(0x4000_2008, size: 4, value: 0x2222)
        let child = ram.fork()
        #expect(child.read(0x1000, size: 8) == 0x1111)
        #expect(child.read(0x4000_2008, size: 4) == 0x2222)
        child.write(0x1000, size: 8, value: 0xAAAA)
        ram.write(0x4000_2008, size: 4, value: 0xBBBB)
        #expect(ram.read(0x1000, size: 8) == 0x1111)
        #expect(child.read(0x1000, size: 8) == 0xAAAA)
        #expect(child.read(0x4000_2008, size: 4) == 0x2222)
        #expect(ram.read(0x4000_2008, size: 4) == 0xBBBB)
        // A frame new in the child is absent in the original.
        child.write(0x9000_0000, size: 1, value: 7)
        #expect(ram.read(0x9000_0000, size: 1) == 0)
        #expect(ram.allocatedFrameCount == 2 && child.allocatedFrameCount == 3)
    }

    @Test("frames stay shared until written, and only the written frame is copied")
    func sharedUntilWritten() {
        let ram = SparseRAM()
        for frame in 0..<4 { ram.write(UInt64(frame) << 12, size: 8, value: UInt64(frame + 1)) }
        let child = ram.fork()
        for frame in 0..<4 { #expect(ram.sharesFrame(UInt64(frame), with: child)) }
        child.write(0x2010, size: 2, value: 0xFFFF)
        #expect(!ram.sharesFrame(2, with: child))
        #expect(ram.sharesFrame(0, with: child) && ram.sharesFrame(1, with: child) && ram.sharesFrame(3, with: child))
        // The copied frame kept the rest of its bytes.
        #expect(child.read(0x2000, size: 8) == 3)
        #expect(ram.read(0x2010, size: 2) == 0)
    }

    @Test("the original's cached frame is not written in place after a fork")
    func writeCacheInvalidated() {
        let ram = SparseRAM()
        ram.write(0x5000, size: 8, value: 1)
        ram.write(0x5008, size: 8, value: 2)   // the write cache now holds frame 5
        let child = ram.fork()
        ram.write(0x5000, size: 8, value: 99)
        #expect(child.read(0x5000, size: 8) == 1)
        #expect(ram.read(0x5000, size: 8) == 99)
        // And the child's read cache does not survive its own copy-on-write either.
        #expect(child.read(0x5008, size: 8) == 2)
        child.write(0x5008, size: 8, value: 3)
        #expect(child.read(0x5008, size: 8) == 3)
        #expect(ram.read(0x5008, size: 8) == 2)
    }

    @Test("bulk writes, byte writes and zeroFrame copy before writing")
    func everyWritePath() {
        let ram = SparseRAM()
        let bytes = (0..<9000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        ram.writeBytes(0x1FF0, bytes)
        let child = ram.fork()
        child.writeBytes(0x2FF0, [UInt8](repeating: 0xEE, count: 64))
        child.writeByte(0x1FF0, 0x55)
        child.zeroFrame(containing: 0x4000)
        #expect(ram.readBytes(0x1FF0, count: bytes.count) == bytes)
        #expect(child.readByte(0x1FF0) == 0x55)
        #expect(child.readBytes(0x2FF0, count: 64) == [UInt8](repeating: 0xEE, count: 64))
        #expect(child.readBytes(0x4000, count: 0x1000).allSatisfy { $0 == 0 })
        #expect(ram.readByte(0x4000) == bytes[0x4000 - 0x1FF0])
    }

    @Test("forks of forks: three generations stay independent and the digests follow the contents")
    func generations() {
        let a = SparseRAM()
        a.write(0x1000, size: 8, value: 1)
        let b = a.fork()
        b.write(0x1000, size: 8, value: 2)
        let c = b.fork()
        c.write(0x1000, size: 8, value: 3)
        a.write(0x1000, size: 8, value: 4)
        let d = a.fork()
        #expect([a, b, c, d].map { $0.read(0x1000, size: 8) } == [4, 2, 3, 4])
        #expect(a.contentDigest() == d.contentDigest())
        #expect(a.contentDigest() != b.contentDigest())
        // Storage shared with a copy that is gone stays readable.
        var e: SparseRAM? = c.fork()
        let f = e!.fork()
        e = nil
        #expect(f.read(0x1000, size: 8) == 3)
    }

    @Test("a fork carries many leaves and a grown directory")
    func manyLeaves() {
        let ram = SparseRAM()
        for leaf in 0..<40 { ram.write(UInt64(leaf) << 24, size: 8, value: UInt64(leaf) + 100) }
        let child = ram.fork()
        for leaf in 0..<40 { child.write(UInt64(leaf) << 24 | 8, size: 8, value: UInt64(leaf)) }
        for leaf in 0..<40 {
            #expect(child.read(UInt64(leaf) << 24, size: 8) == UInt64(leaf) + 100)
            #expect(ram.read(UInt64(leaf) << 24 | 8, size: 8) == 0)
        }
        #expect(child.allocatedFrameNumbers == ram.allocatedFrameNumbers)
        for leaf in 40..<80 { child.write(UInt64(leaf) << 24, size: 8, value: 1) }
        #expect(ram.allocatedFrameCount == 40 && child.allocatedFrameCount == 80)
    }

    @Test("CloneMap clones a RAM once, however often it is reached")
    func cloneMapMemoises() {
        let ram = SparseRAM()
        ram.write(0x1000, size: 4, value: 5)
        var map = CloneMap()
        let first = map.clone(ram)
        let second = map.clone(ram)
        #expect(first === second && first !== ram)
        #expect(map.count == 1)
        first.write(0x1000, size: 4, value: 6)
        #expect(ram.read(0x1000, size: 4) == 5)
    }
}
