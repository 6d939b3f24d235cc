/// Little-endian RAM over the whole 52-bit physical space, stored sparsely, forked copy-on-write.
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
/// `fork()` makes an independent copy in time proportional to the directory (a few entries), not
/// to the memory: the two copies share every leaf and frame until one of them writes. Each copy
/// owns some directory slots (`directoryOwned`) and, in an owned leaf, some frames (the leaf's
/// bitmap after its 4096 pointers); only owned storage is written in place. A write to a shared
/// leaf first copies the leaf's pointers (32 KiB), a write to a shared frame first copies the
/// frame (4 KiB). A fork clears ownership on both sides. Storage is freed by `FrameArena`s, not
/// by reference counts: what a RAM allocates goes to its current arena; a fork freezes that arena
/// (never appended to again) and both copies keep it alive, so a shared frame lives while any copy
/// can still reach it. A frame replaced on write stays in its frozen arena until every copy that
/// shares the arena is gone: the price of not counting references on the read path. Frozen arenas
/// are only read, so copies may live on different threads.
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
    @usableFromInline static let leafEntries: Int = 1 << 12
    /// Words of a leaf's ownership bitmap (one bit per frame), stored after its pointers.
    static let bitmapWords: Int = leafEntries / 64

    /// One leaf: `1 << leafShift` frame pointers, nil where never written, then the bitmap.
    @usableFromInline typealias Leaf = UnsafeMutablePointer<UnsafeMutableRawPointer?>

    /// Everything that changes on the access paths, in one block this object allocates in `init`
    /// and frees in `deinit` and that nothing else can reach. Reached through a `let` pointer, so
    /// a read of RAM makes no dynamic exclusivity check (a `var` stored property of a class makes
    /// one per access, which was a fifth of a descriptor read). Safe because the block is private
    /// to this object, which is used from one thread at a time like everything else in a machine,
    /// and no method holds a reference into it across a call that could re-enter.
    @usableFromInline
    struct State {
        /// Directory slots: key = (frame number >> leafShift) + 1, 0 = empty.
        @usableFromInline var directoryKeys: UnsafeMutablePointer<UInt64>
        @usableFromInline var directoryLeaves: UnsafeMutablePointer<Leaf?>
        /// Whether this RAM owns the slot's leaf (may write it in place).
        @usableFromInline var directoryOwned: UnsafeMutablePointer<Bool>
        @usableFromInline var directoryMask: Int
        @usableFromInline var leafCount = 0
        @usableFromInline var frameCount = 0
        /// Read cache: the frame last looked up (owned or shared).
        @usableFromInline var lastFrameNumber: UInt64 = .max
        @usableFromInline var lastFrame: UnsafeMutableRawPointer? = nil
        /// Write cache: the frame last made writable (owned, in an owned leaf).
        @usableFromInline var lastWriteFrameNumber: UInt64 = .max
        @usableFromInline var lastWriteFrame: UnsafeMutableRawPointer? = nil
        @usableFromInline var lastLeafKey: UInt64 = 0
        @usableFromInline var lastLeaf: Leaf? = nil

        init(directoryKeys: UnsafeMutablePointer<UInt64>, directoryLeaves: UnsafeMutablePointer<Leaf?>,
             directoryOwned: UnsafeMutablePointer<Bool>, directoryMask: Int) {
            self.directoryKeys = directoryKeys
            self.directoryLeaves = directoryLeaves
            self.directoryOwned = directoryOwned
            self.directoryMask = directoryMask
        }
    }

    @usableFromInline let state: UnsafeMutablePointer<State>
    /// Where this RAM's new leaves and frames are allocated; only this RAM appends to it.
    private var arena = FrameArena()
    /// Arenas frozen by forks, shared with the other copies and never appended to again.
    private var frozenArenas: [FrameArena] = []

    public init() {
        state = .allocate(capacity: 1)
        state.initialize(to: SparseRAM.makeDirectory(count: 8))
    }

    private static func makeDirectory(count: Int) -> State {
        let keys = UnsafeMutablePointer<UInt64>.allocate(capacity: count)
        keys.initialize(repeating: 0, count: count)
        let leaves = UnsafeMutablePointer<Leaf?>.allocate(capacity: count)
        leaves.initialize(repeating: nil, count: count)
        let owned = UnsafeMutablePointer<Bool>.allocate(capacity: count)
        owned.initialize(repeating: false, count: count)
        return State(directoryKeys: keys, directoryLeaves: leaves, directoryOwned: owned, directoryMask: count - 1)
    }

    deinit {
        let s = state.pointee
        s.directoryKeys.deallocate()
        s.directoryLeaves.deallocate()
        s.directoryOwned.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
        // Leaves and frames belong to the arenas, freed when the last copy sharing them goes.
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
        guard let slot = slot(key: key) else { return nil }
        let found = state.pointee.directoryLeaves[slot]
        state.pointee.lastLeafKey = key
        state.pointee.lastLeaf = found
        return found
    }

    /// The directory slot holding `key`, or nil.
    @inlinable
    func slot(key: UInt64) -> Int? {
        let mask = state.pointee.directoryMask
        let keys = state.pointee.directoryKeys
        var i = SparseRAM.directoryHome(key, mask: mask)
        while true {
            let k = keys[i]
            if k == key { return i }
            if k == 0 { return nil }
            i = (i &+ 1) & mask
        }
    }

    /// The ownership bitmap stored after a leaf's pointers.
    @usableFromInline
    static func bitmap(of leaf: Leaf) -> UnsafeMutablePointer<UInt64> {
        UnsafeMutableRawPointer(leaf.advanced(by: leafEntries)).assumingMemoryBound(to: UInt64.self)
    }

    /// A fresh leaf from this RAM's arena: pointers copied from `source` (or nil), bitmap clear
    /// (every frame it points at is still shared).
    private func allocateLeaf(copying source: Leaf?) -> Leaf {
        let byteCount = SparseRAM.leafEntries * MemoryLayout<UnsafeMutableRawPointer?>.stride + SparseRAM.bitmapWords * 8
        let raw = arena.allocate(byteCount: byteCount, alignment: 8)
        let fresh = raw.bindMemory(to: UnsafeMutableRawPointer?.self, capacity: SparseRAM.leafEntries)
        if let source {
            fresh.initialize(from: source, count: SparseRAM.leafEntries)
        } else {
            fresh.initialize(repeating: nil, count: SparseRAM.leafEntries)
        }
        raw.advanced(by: SparseRAM.leafEntries * MemoryLayout<UnsafeMutableRawPointer?>.stride)
            .bindMemory(to: UInt64.self, capacity: SparseRAM.bitmapWords)
            .initialize(repeating: 0, count: SparseRAM.bitmapWords)
        return fresh
    }

    /// The leaf for `key`, owned by this RAM: made on first use (the directory doubles before it
    /// is half full), or copied from the shared one on the first write after a fork.
    @usableFromInline
    func makeOwnedLeaf(key: UInt64) -> Leaf {
        if let index = slot(key: key) {
            if state.pointee.directoryOwned[index], let existing = state.pointee.directoryLeaves[index] { return existing }
            let copied = allocateLeaf(copying: state.pointee.directoryLeaves[index])
            state.pointee.directoryLeaves[index] = copied
            state.pointee.directoryOwned[index] = true
            state.pointee.lastLeafKey = key
            state.pointee.lastLeaf = copied
            return copied
        }
        if (state.pointee.leafCount + 1) * 2 > state.pointee.directoryMask + 1 { growDirectory() }
        let fresh = allocateLeaf(copying: nil)
        insertLeaf(fresh, key: key, owned: true)
        state.pointee.leafCount += 1
        state.pointee.lastLeafKey = key
        state.pointee.lastLeaf = fresh
        return fresh
    }

    private func insertLeaf(_ leaf: Leaf, key: UInt64, owned: Bool) {
        let mask = state.pointee.directoryMask
        let keys = state.pointee.directoryKeys
        var i = SparseRAM.directoryHome(key, mask: mask)
        while keys[i] != 0 { i = (i &+ 1) & mask }
        keys[i] = key
        state.pointee.directoryLeaves[i] = leaf
        state.pointee.directoryOwned[i] = owned
    }

    private func growDirectory() {
        let old = state.pointee
        let oldCount = old.directoryMask + 1
        let grown = SparseRAM.makeDirectory(count: oldCount * 2)
        state.pointee.directoryKeys = grown.directoryKeys
        state.pointee.directoryLeaves = grown.directoryLeaves
        state.pointee.directoryOwned = grown.directoryOwned
        state.pointee.directoryMask = grown.directoryMask
        for i in 0..<oldCount {
            if let leaf = old.directoryLeaves[i] { insertLeaf(leaf, key: old.directoryKeys[i], owned: old.directoryOwned[i]) }
        }
        old.directoryKeys.deallocate()
        old.directoryLeaves.deallocate()
        old.directoryOwned.deallocate()
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
        if number == state.pointee.lastWriteFrameNumber, let frame = state.pointee.lastWriteFrame { return frame }
        return ownedFrame(number)
    }

    /// Frame `number`, owned by this RAM: allocated zeroed on first write, or copied from the
    /// shared frame on the first write after a fork.
    @usableFromInline
    func ownedFrame(_ number: UInt64) -> UnsafeMutableRawPointer {
        let leaf = makeOwnedLeaf(key: (number &>> SparseRAM.leafShift) &+ 1)
        let index = Int(number & SparseRAM.leafMask)
        let bitmap = SparseRAM.bitmap(of: leaf)
        let bit: UInt64 = 1 &<< UInt64(index & 63)
        let frame: UnsafeMutableRawPointer
        if bitmap[index >> 6] & bit != 0, let existing = leaf[index] {
            frame = existing
        } else {
            frame = arena.allocate(byteCount: SparseRAM.frameSize, alignment: 16)
            if let shared = leaf[index] {
                frame.copyMemory(from: shared, byteCount: SparseRAM.frameSize)
            } else {
                frame.initializeMemory(as: UInt8.self, repeating: 0, count: SparseRAM.frameSize)
                state.pointee.frameCount += 1
            }
            leaf[index] = frame
            bitmap[index >> 6] |= bit
        }
        state.pointee.lastFrameNumber = number
        state.pointee.lastFrame = frame
        state.pointee.lastWriteFrameNumber = number
        state.pointee.lastWriteFrame = frame
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
        guard existingFrame(address >> SparseRAM.frameShift) != nil else { return }
        frameForWrite(address >> SparseRAM.frameShift).initializeMemory(as: UInt8.self, repeating: 0, count: SparseRAM.frameSize)
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

    /// An independent copy in time proportional to the directory: both copies share every leaf
    /// and frame until one of them writes it (see the type's comment). Used for VM save/restore
    /// and for forking a world.
    public func fork() -> SparseRAM {
        if !arena.isEmpty {
            frozenArenas.append(arena)
            arena = FrameArena()
        }
        let s = state.pointee
        for i in 0...s.directoryMask { s.directoryOwned[i] = false }
        state.pointee.lastWriteFrameNumber = .max
        state.pointee.lastWriteFrame = nil
        let other = SparseRAM()
        let count = s.directoryMask + 1
        var copied = SparseRAM.makeDirectory(count: count)
        copied.directoryKeys.update(from: s.directoryKeys, count: count)
        copied.directoryLeaves.update(from: s.directoryLeaves, count: count)
        copied.leafCount = s.leafCount
        copied.frameCount = s.frameCount
        let fresh = other.state.pointee
        fresh.directoryKeys.deallocate()
        fresh.directoryLeaves.deallocate()
        fresh.directoryOwned.deallocate()
        other.state.pointee = copied
        other.frozenArenas = frozenArenas
        return other
    }

    /// Whether this RAM and `other` hold frame `number` in the same storage (shared since a fork
    /// and written by neither); for tests of the copy-on-write.
    func sharesFrame(_ number: UInt64, with other: SparseRAM) -> Bool {
        guard let mine = existingFrame(number), let theirs = other.existingFrame(number) else { return false }
        return mine == theirs
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

extension SparseRAM: WorldCloneable {
    public func clone(into map: inout CloneMap) -> SparseRAM { fork() }
}

/// Storage allocated by one `SparseRAM` between two forks (leaves and frames), freed together
/// when the last RAM that can reach it goes. Appended to only by the RAM whose current arena it
/// is; frozen (read only) once a fork hands it to two RAMs.
final class FrameArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    var isEmpty: Bool { blocks.isEmpty }

    func allocate(byteCount: Int, alignment: Int) -> UnsafeMutableRawPointer {
        let block = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: alignment)
        blocks.append(block)
        return block
    }

    deinit {
        for block in blocks { block.deallocate() }
    }
}
