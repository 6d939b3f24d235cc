import Bus

/// The GIC's cache of LPI configuration bytes, one for the whole GIC.
///
/// GICR_TYPER.CommonLPIAff = 0 (what this model reports) means every redistributor shares one
/// LPI configuration table, and GIC-600 keeps one LPI property cache for the GIC (GIC-600 TRM;
/// docs/hardware.md §ITS caches). Sharing the cache is also what keeps Linux correct: it sends INV only through the
/// collection currently holding an LPI, and after MOVI the new redistributor must not see a
/// stale byte from before.
///
/// Loading follows the strictest behaviour the architecture allows: the whole table is read
/// when a redistributor's EnableLPIs goes 0→1, one byte on INV, the whole table on INVALL. Any
/// other change to a configuration byte in memory stays invisible, so software that forgets an
/// INV (plus SYNC) fails deterministically. (QEMU re-reads the byte on every LPI, which hides
/// such bugs.)
public final class LPIConfigurationCache {
    @usableFromInline var bytes: ContiguousArray<UInt8>
    /// Configuration bytes read from memory.
    public internal(set) var reads = 0
    /// Bumped by every load: a redistributor's priority index (`PendingLPIIndex`), built from
    /// these bytes, knows from it that a byte may have changed under it (an INV through another
    /// redistributor included, since the cache is GIC-wide).
    public private(set) var generation: UInt64 = 0
    /// The bytes the load that made `generation` re-read: [from, from + count).
    public private(set) var lastLoad: (from: Int, count: Int) = (0, 0)

    init(lpiCount: Int) {
        bytes = ContiguousArray(repeating: 0, count: max(lpiCount, 0))
    }

    public var count: Int { bytes.count }

    /// The cached byte for LPI index `i` (INTID − 8192), 0 (disabled) beyond the cache.
    @inlinable
    public subscript(index: Int) -> UInt8 {
        index >= 0 && index < bytes.count ? bytes[index] : 0
    }

    /// Re-reads bytes [index, index + count) from the table at `base` through `bus`. Bytes that
    /// cannot be read load as 0 (disabled); returns how many failed.
    func load(base: PhysicalAddress, from index: Int, count: Int, bus: SystemBus?) -> Int {
        let n = min(count, bytes.count - index)
        guard index >= 0, n > 0 else { return 0 }
        reads += n
        generation &+= 1
        lastLoad = (index, n)
        guard let bus, let start = base.adding(UInt64(index)) else {
            for i in index..<(index + n) { bytes[i] = 0 }
            return n
        }
        if let base = bus.ramBackingAddress(start, size: UInt64(n)) {
            // Byte by byte straight into the cache: no temporary array, so INV allocates nothing.
            // `base` is the backing-store address (a VM's guest RAM is offset in the store).
            let ram = bus.ram
            bytes.withUnsafeMutableBytes { cache in
                ram.read(into: UnsafeMutableRawBufferPointer(rebasing: cache[index..<(index + n)]), from: base)
            }
            return 0
        }
        var faults = 0
        for i in 0..<n {
            if let a = start.adding(UInt64(i)), let b = try? bus.read(a, size: 1, requester: .hardware) {
                bytes[index + i] = UInt8(truncatingIfNeeded: b)
            } else {
                bytes[index + i] = 0
                faults += 1
            }
        }
        return faults
    }
}

extension LPIConfigurationCache {
    /// Takes `other`'s cached bytes and read count (a forked world's copy).
    func copyState(of other: LPIConfigurationCache) {
        bytes = other.bytes
        reads = other.reads
        generation = other.generation
        lastLoad = other.lastLoad
    }
}
