/// Little-endian RAM over the whole 52-bit physical space, stored sparsely.
///
/// Simulated machines place RAM at gigabyte offsets and tables anywhere in it, but touch only a
/// few pages. Storage is therefore a table of 4 KiB page frames allocated on first write; a read
/// of a frame never written returns zeros without allocating, so untouched space costs nothing.
///
/// The frame table has two levels: a leaf of 4096 frame pointers covers 16 MiB, and a small
/// open-addressed directory (linear probing, at most half full, keyed by frame number >> 12)
/// finds the leaf. A one-entry last-frame and last-leaf cache sit in front, because walks and
/// queue accesses hit the same frame, or frames of the same 16 MiB, many times in a row. This
/// replaces a Dictionary keyed by frame number, whose hashing was most of a descriptor read.
///
/// Addresses are plain `UInt64` here: RAM is a backing store reached through `SystemBus`, which
/// decides what is RAM and enforces the physical address size. Any address is safe: arithmetic
/// wraps instead of trapping, and every index is masked to its table's size.
public final class SparseRAM {
    /// Frame size: 4 KiB, the smallest translation granule.
    public static let frameShift: UInt64 = 12
    public static let frameSize: Int = 1 << 12
    @usableFromInline static let frameMask: UInt64 = UInt64(frameSize) - 1
    /// Frames per leaf (2^12: 16 MiB of address space, 32 KiB of pointers).
    @usableFromInline static let leafShift: UInt64 = 12
    @usableFromInline static let leafMask: UInt64 = (1 << leafShift) - 1

    /// One leaf: `1 << leafShift` frame pointers, nil where never written.
    @usableFromInline typealias Leaf = UnsafeMutablePointer<UnsafeMutableRawPointer?>

    /// Everything that changes, in one block this object allocates in `init` and frees in
    /// `deinit` and that nothing else can reach. Reached through a `let` pointer, so a read of
    /// RAM makes no dynamic exclusivity check (a `var` stored property of a class makes one per
    /// access, which was a fifth of a descriptor read). Safe because the block is private to
    /// this object, which is used from one thread at a time like everything else in a machine,
    /// and no method holds a reference into it across a call that could re-enter.
    @usableFromInline
    struct State {
        /// Directory slots: key = (frame number >> leafShift) + 1, 0 = empty.
        @usableFromInline var directoryKeys: UnsafeMutablePointer<UInt64>
        @usableFromInline var directoryLeaves: UnsafeMutablePointer<Leaf?>
        @usableFromInline var directoryMask: Int
        @usableFromInline var leafCount = 0
        @usableFromInline var frameCount = 0
        @usableFromInline var lastFrameNumber: UInt64 = .max
        @usableFromInline var lastFrame: UnsafeMutableRawPointer? = nil
        @usableFromInline var lastLeafKey: UInt64 = 0
        @usableFromInline var lastLeaf: Leaf? = nil

        init(directoryKeys: UnsafeMutablePointer<UInt64>, directoryLeaves: UnsafeMutablePointer<Leaf?>, directoryMask: Int) {
            self.directoryKeys = directoryKeys
            self.directoryLeaves = directoryLeaves
            self.directoryMask = directoryMask
        }
    }

    @usableFromInline let state: UnsafeMutablePointer<State>

    public init() {
        let keys = UnsafeMutablePointer<UInt64>.allocate(capacity: 8)
        keys.initialize(repeating: 0, count: 8)
        let leaves = UnsafeMutablePointer<Leaf?>.allocate(capacity: 8)
        leaves.initialize(repeating: nil, count: 8)
        state = .allocate(capacity: 1)
        state.initialize(to: State(directoryKeys: keys, directoryLeaves: leaves, directoryMask: 7))
    }

    deinit {
        let s = state.pointee
        for i in 0...s.directoryMask {
            guard let leaf = s.directoryLeaves[i] else { continue }
            for j in 0..<Int(SparseRAM.leafMask + 1) { leaf[j]?.deallocate() }
            leaf.deallocate()
        }
        s.directoryKeys.deallocate()
        s.directoryLeaves.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    /// How many 4 KiB frames hold data (for tests and the memory report).
    public var allocatedFrameCount: Int { state.pointee.frameCount }

    /// The frame numbers that hold data, ascending.
    public var allocatedFrameNumbers: [UInt64] {
        let s = state.pointee
        var leaves: [(UInt64, Leaf)] = []
        for i in 0...s.directoryMask {
            if let leaf = s.directoryLeaves[i] { leaves.append((s.directoryKeys[i] &- 1, leaf)) }
        }
        leaves.sort { $0.0 < $1.0 }
        var out: [UInt64] = []
        out.reserveCapacity(s.frameCount)
        for (high, leaf) in leaves {
            for j in 0..<Int(SparseRAM.leafMask + 1) where leaf[j] != nil {
                out.append(high &<< SparseRAM.leafShift | UInt64(j))
            }
        }
        return out
    }

    @inlinable @inline(__always)
    static func directoryHome(_ key: UInt64, mask: Int) -> Int {
        var h = key &* 0x9E37_79B9_7F4A_7C15
        h ^= h &>> 32
        return Int(truncatingIfNeeded: h) & mask
    }

    /// The leaf for directory key `key` (frame number >> leafShift, + 1), or nil.
    @inlinable
    func leaf(key: UInt64) -> Leaf? {
        if key == state.pointee.lastLeafKey { return state.pointee.lastLeaf }
        let mask = state.pointee.directoryMask
        let keys = state.pointee.directoryKeys
        var i = SparseRAM.directoryHome(key, mask: mask)
        while true {
            let k = keys[i]
            if k == key {
                let found = state.pointee.directoryLeaves[i]
                state.pointee.lastLeafKey = key
                state.pointee.lastLeaf = found
                return found
            }
            if k == 0 { return nil }
            i = (i &+ 1) & mask
        }
    }

    /// The leaf for `key`, made on first use (the directory doubles before it is half full).
    @usableFromInline
    func makeLeaf(key: UInt64) -> Leaf {
        if let existing = leaf(key: key) { return existing }
        if (state.pointee.leafCount + 1) * 2 > state.pointee.directoryMask + 1 { growDirectory() }
        let fresh = Leaf.allocate(capacity: Int(SparseRAM.leafMask + 1))
        fresh.initialize(repeating: nil, count: Int(SparseRAM.leafMask + 1))
        insertLeaf(fresh, key: key)
        state.pointee.leafCount += 1
        state.pointee.lastLeafKey = key
        state.pointee.lastLeaf = fresh
        return fresh
    }

    private func insertLeaf(_ leaf: Leaf, key: UInt64) {
        let mask = state.pointee.directoryMask
        let keys = state.pointee.directoryKeys
        var i = SparseRAM.directoryHome(key, mask: mask)
        while keys[i] != 0 { i = (i &+ 1) & mask }
        keys[i] = key
        state.pointee.directoryLeaves[i] = leaf
    }

    private func growDirectory() {
        let oldKeys = state.pointee.directoryKeys, oldLeaves = state.pointee.directoryLeaves
        let oldCount = state.pointee.directoryMask + 1
        let count = oldCount * 2
        let keys = UnsafeMutablePointer<UInt64>.allocate(capacity: count)
        keys.initialize(repeating: 0, count: count)
        let leaves = UnsafeMutablePointer<Leaf?>.allocate(capacity: count)
        leaves.initialize(repeating: nil, count: count)
        state.pointee.directoryKeys = keys
        state.pointee.directoryLeaves = leaves
        state.pointee.directoryMask = count - 1
        for i in 0..<oldCount {
            if let leaf = oldLeaves[i] { insertLeaf(leaf, key: oldKeys[i]) }
        }
        oldKeys.deallocate()
        oldLeaves.deallocate()
    }

    @inlinable @inline(__always)
    func frameForRead(_ number: UInt64) -> UnsafeMutableRawPointer? {
        if number == state.pointee.lastFrameNumber { return state.pointee.lastFrame }
        guard let leaf = leaf(key: (number &>> SparseRAM.leafShift) &+ 1),
              let frame = leaf[Int(number & SparseRAM.leafMask)] else { return nil }
        state.pointee.lastFrameNumber = number
        state.pointee.lastFrame = frame
        return frame
    }

    @inlinable @inline(__always)
    func frameForWrite(_ number: UInt64) -> UnsafeMutableRawPointer {
        if number == state.pointee.lastFrameNumber, let frame = state.pointee.lastFrame { return frame }
        let leaf = makeLeaf(key: (number &>> SparseRAM.leafShift) &+ 1)
        let index = Int(number & SparseRAM.leafMask)
        let frame: UnsafeMutableRawPointer
        if let existing = leaf[index] {
            frame = existing
        } else {
            frame = UnsafeMutableRawPointer.allocate(byteCount: SparseRAM.frameSize, alignment: 16)
            frame.initializeMemory(as: UInt8.self, repeating: 0, count: SparseRAM.frameSize)
            leaf[index] = frame
            state.pointee.frameCount += 1
        }
        state.pointee.lastFrameNumber = number
        state.pointee.lastFrame = frame
        return frame
    }

    /// The frame `number`, if it holds data (no caching; for the whole-memory helpers).
    func existingFrame(_ number: UInt64) -> UnsafeMutableRawPointer? {
        frameForRead(number)
    }

    /// Zeroes the 4 KiB frame holding `address`: a frame never written already reads as zeros,
    /// so only an existing one is cleared (a page allocator's `__GFP_ZERO` at no cost for fresh
    /// memory).
    public func zeroFrame(containing address: UInt64) {
        guard let frame = existingFrame(address >> SparseRAM.frameShift) else { return }
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
            guard let source = existingFrame(number) else { continue }
            other.frameForWrite(number).copyMemory(from: source, byteCount: SparseRAM.frameSize)
        }
        return other
    }

    /// A deterministic 64-bit digest of the contents (FNV-1a over non-zero frames in address
    /// order). All-zero frames hash as absent, so a frame that was written back to zero does not
    /// make two equal memories differ.
    public func contentDigest() -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for number in allocatedFrameNumbers {
            guard let frame = existingFrame(number) else { continue }
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
