import Testing
@testable import Bus

/// The frame-by-frame bulk paths of SparseRAM (`read(into:from:)`, `readBytes`, `writeBytes`)
/// must agree byte for byte with single-byte access, across frame boundaries, through frames
/// never written (zeros), and at the top of the address space (addresses wrap).
@Suite("SparseRAM bulk copies")
struct SparseRAMBulkTests {
    @Test("writeBytes then readBytes across three frames equals byte-wise access; unwritten frames read zero")
    func acrossFrames() {
        let ram = SparseRAM()
        let bytes = (0..<9000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        ram.writeBytes(0x1FF0, bytes)
        #expect(ram.readBytes(0x1FF0, count: bytes.count) == bytes)
        for (i, b) in bytes.enumerated() where i % 997 == 0 { #expect(ram.readByte(0x1FF0 + UInt64(i)) == b) }
        #expect(ram.allocatedFrameCount == 4, "0x1000…0x4000 hold the 9000 bytes from 0x1FF0")
        // A read spanning written and never-written frames: the tail is zeros, nothing allocated.
        let span = ram.readBytes(0x4000 - 8, count: 0x2010)
        #expect(Array(span.prefix(8)) == Array(bytes[(0x4000 - 8 - 0x1FF0)..<(0x4000 - 0x1FF0)]))
        #expect(span.dropFirst(0x1000).allSatisfy { $0 == 0 })
        #expect(ram.allocatedFrameCount == 4)
    }

    @Test("a copy that runs past 2^64 wraps to address 0, like the single-byte path")
    func wraps() {
        let ram = SparseRAM()
        ram.writeBytes(UInt64.max - 1, [0xAA, 0xBB, 0xCC, 0xDD])
        #expect(ram.readByte(UInt64.max - 1) == 0xAA && ram.readByte(UInt64.max) == 0xBB)
        #expect(ram.readByte(0) == 0xCC && ram.readByte(1) == 0xDD)
        #expect(ram.readBytes(UInt64.max - 1, count: 4) == [0xAA, 0xBB, 0xCC, 0xDD])
    }

    @Test("random bulk writes and reads agree with a byte-wise reference (seeded)")
    func property() {
        var rng = SeededGenerator(seed: 0xB01C)
        let ram = SparseRAM()
        var reference: [UInt64: UInt8] = [:]
        for _ in 0..<300 {
            let base = rng.next() % 0x4_0000
            let count = Int(rng.next() % 9000)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            ram.writeBytes(base, bytes)
            for (i, b) in bytes.enumerated() { reference[base + UInt64(i)] = b }
            let probe = rng.next() % 0x4_0000
            let length = Int(rng.next() % 5000)
            let got = ram.readBytes(probe, count: length)
            for i in stride(from: 0, to: length, by: 13) { #expect(got[i] == reference[probe + UInt64(i)] ?? 0) }
        }
    }

    @Test("zeroFrame clears a written frame and leaves unwritten space unallocated")
    func zeroFrame() {
        let ram = SparseRAM()
        ram.write(0x5008, size: 8, value: .max)
        ram.zeroFrame(containing: 0x5FFF)
        #expect(ram.read(0x5008, size: 8) == 0)
        ram.zeroFrame(containing: 0x9000)
        #expect(ram.allocatedFrameCount == 1)
    }
}
