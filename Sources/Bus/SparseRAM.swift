/// Little-endian RAM over the whole 52-bit physical space, stored sparsely.
///
/// Simulated machines place RAM at gigabyte offsets and tables anywhere in it, but touch only a
/// few pages. Storage is therefore a table of 4 KiB page frames allocated on first write; a read
/// of a frame never written returns zeros without allocating, so untouched space costs nothing.
/// The frame table is a dictionary keyed by frame number with a one-entry last-hit cache in
/// front, because walks and queue accesses hit the same frame many times in a row.
///
/// Addresses are plain `UInt64` here: RAM is a backing store reached through `SystemBus`, which
/// decides what is RAM and enforces the physical address size. Any address is safe: arithmetic
/// wraps instead of trapping and nothing is indexed without a check.
public final class SparseRAM {
    /// Frame size: 4 KiB, the smallest translation granule.
    public static let frameShift: UInt64 = 12
    public static let frameSize: Int = 1 << 12
    @usableFromInline static let frameMask: UInt64 = UInt64(frameSize) - 1

    @usableFromInline var frames: [UInt64: UnsafeMutableRawPointer] = [:]
    @usableFromInline var lastFrameNumber: UInt64 = .max
    @usableFromInline var lastFrame: UnsafeMutableRawPointer? = nil

    public init() {}

    deinit {
        for (_, frame) in frames { frame.deallocate() }
    }

    /// How many 4 KiB frames hold data (for tests and the memory report).
    public var allocatedFrameCount: Int { frames.count }

    /// The frame numbers that hold data, ascending (deterministic, unlike the dictionary).
    public var allocatedFrameNumbers: [UInt64] { frames.keys.sorted() }

    @inlinable @inline(__always)
    func frameForRead(_ number: UInt64) -> UnsafeMutableRawPointer? {
        if number == lastFrameNumber { return lastFrame }
        guard let frame = frames[number] else { return nil }
        lastFrameNumber = number
        lastFrame = frame
        return frame
    }

    @inlinable @inline(__always)
    func frameForWrite(_ number: UInt64) -> UnsafeMutableRawPointer {
        if number == lastFrameNumber, let frame = lastFrame { return frame }
        let frame: UnsafeMutableRawPointer
        if let existing = frames[number] {
            frame = existing
        } else {
            frame = UnsafeMutableRawPointer.allocate(byteCount: SparseRAM.frameSize, alignment: 16)
            frame.initializeMemory(as: UInt8.self, repeating: 0, count: SparseRAM.frameSize)
            frames[number] = frame
        }
        lastFrameNumber = number
        lastFrame = frame
        return frame
    }

    /// Zeroes the 4 KiB frame holding `address`: a frame never written already reads as zeros,
    /// so only an existing one is cleared (a page allocator's `__GFP_ZERO` at no cost for fresh
    /// memory).
    public func zeroFrame(containing address: UInt64) {
        guard let frame = frames[address >> SparseRAM.frameShift] else { return }
        frame.initializeMemory(as: UInt8.self, repeating: 0, count: SparseRAM.frameSize)
    }

    /// Reads `size` bytes (1, 2, 4 or 8; other sizes are clamped to 8) little-endian at `address`.
    @inlinable
    public func read(_ address: UInt64, size: Int) -> UInt64 {
        let width = min(max(size, 1), 8)
        let offset = Int(address & SparseRAM.frameMask)
        if offset + width <= SparseRAM.frameSize {
            guard let frame = frameForRead(address &>> SparseRAM.frameShift) else { return 0 }
            switch width {
            case 8: return UInt64(littleEndian: frame.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            case 4: return UInt64(UInt32(littleEndian: frame.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            case 2: return UInt64(UInt16(littleEndian: frame.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
            case 1: return UInt64(frame.load(fromByteOffset: offset, as: UInt8.self))
            default: break
            }
        }
        // Crosses a frame boundary (or an odd size): byte by byte.
        var value: UInt64 = 0
        for i in 0..<width {
            value |= UInt64(readByte(address &+ UInt64(i))) &<< UInt64(8 * i)
        }
        return value
    }

    /// Writes the low `size` bytes (1, 2, 4 or 8) of `value` little-endian at `address`.
    @inlinable
    public func write(_ address: UInt64, size: Int, value: UInt64) {
        let width = min(max(size, 1), 8)
        let offset = Int(address & SparseRAM.frameMask)
        if offset + width <= SparseRAM.frameSize {
            let frame = frameForWrite(address &>> SparseRAM.frameShift)
            switch width {
            case 8: frame.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self); return
            case 4: frame.storeBytes(of: UInt32(truncatingIfNeeded: value).littleEndian, toByteOffset: offset, as: UInt32.self); return
            case 2: frame.storeBytes(of: UInt16(truncatingIfNeeded: value).littleEndian, toByteOffset: offset, as: UInt16.self); return
            case 1: frame.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: offset, as: UInt8.self); return
            default: break
            }
        }
        for i in 0..<width {
            writeByte(address &+ UInt64(i), UInt8(truncatingIfNeeded: value &>> UInt64(8 * i)))
        }
    }

    @inlinable
    public func readByte(_ address: UInt64) -> UInt8 {
        guard let frame = frameForRead(address &>> SparseRAM.frameShift) else { return 0 }
        return frame.load(fromByteOffset: Int(address & SparseRAM.frameMask), as: UInt8.self)
    }

    @inlinable
    public func writeByte(_ address: UInt64, _ byte: UInt8) {
        let frame = frameForWrite(address &>> SparseRAM.frameShift)
        frame.storeBytes(of: byte, toByteOffset: Int(address & SparseRAM.frameMask), as: UInt8.self)
    }

    /// Copies `count` bytes out, starting at `address`.
    public func readBytes(_ address: UInt64, count: Int) -> [UInt8] {
        guard count > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { read(into: $0, from: address) }
        return out
    }

    /// Fills `buffer` from `address` frame by frame (one lookup and one copy per frame; frames
    /// never written read as zeros). Addresses wrap at 2^64 as everywhere else here.
    public func read(into buffer: UnsafeMutableRawBufferPointer, from address: UInt64) {
        var done = 0
        var cursor = address
        while done < buffer.count {
            let offset = Int(cursor & SparseRAM.frameMask)
            let chunk = min(SparseRAM.frameSize - offset, buffer.count - done)
            guard let target = buffer.baseAddress?.advanced(by: done) else { return }
            if let frame = frameForRead(cursor &>> SparseRAM.frameShift) {
                target.copyMemory(from: frame.advanced(by: offset), byteCount: chunk)
            } else {
                target.initializeMemory(as: UInt8.self, repeating: 0, count: chunk)
            }
            done += chunk
            cursor &+= UInt64(chunk)
        }
    }

    /// Copies `bytes` in, starting at `address`, frame by frame.
    public func writeBytes(_ address: UInt64, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { source in
            var done = 0
            var cursor = address
            while done < source.count {
                let offset = Int(cursor & SparseRAM.frameMask)
                let chunk = min(SparseRAM.frameSize - offset, source.count - done)
                guard let from = source.baseAddress?.advanced(by: done) else { return }
                frameForWrite(cursor &>> SparseRAM.frameShift).advanced(by: offset).copyMemory(from: from, byteCount: chunk)
                done += chunk
                cursor &+= UInt64(chunk)
            }
        }
    }

    /// A deep copy, for saving a machine's state (VM save/restore, the explorer's branches).
    public func copy() -> SparseRAM {
        let other = SparseRAM()
        for number in allocatedFrameNumbers {
            guard let source = frames[number] else { continue }
            let frame = UnsafeMutableRawPointer.allocate(byteCount: SparseRAM.frameSize, alignment: 16)
            frame.copyMemory(from: source, byteCount: SparseRAM.frameSize)
            other.frames[number] = frame
        }
        return other
    }

    /// A deterministic 64-bit digest of the contents (FNV-1a over non-zero frames in address
    /// order). All-zero frames hash as absent, so a frame that was written back to zero does not
    /// make two equal memories differ.
    public func contentDigest() -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for number in allocatedFrameNumbers {
            guard let frame = frames[number] else { continue }
            let words = frame.bindMemory(to: UInt64.self, capacity: SparseRAM.frameSize / 8)
            var any = false
            for i in 0..<(SparseRAM.frameSize / 8) where words[i] != 0 { any = true; break }
            guard any else { continue }
            hash = (hash ^ number) &* 0x100_0000_01b3
            for i in 0..<(SparseRAM.frameSize / 8) {
                hash = (hash ^ words[i]) &* 0x100_0000_01b3
            }
        }
        return hash
    }
}
