import Bus

/// readl/writel/readq/writeq: how drivers touch device registers. The kernel runs on CPU 0 in
/// this model; a bus error (nothing decoded, a device refusing) is what Linux sees as a
/// synchronous external abort, reported here as EIO.
public struct MMIOAccess {
    unowned(safe) let bus: SystemBus

    public init(bus: SystemBus) { self.bus = bus }

    public func read32(_ address: PhysicalAddress) throws(Errno) -> UInt32 {
        do { return UInt32(truncatingIfNeeded: try bus.read(address, size: 4, requester: .cpu(0))) } catch { throw .EIO }
    }

    public func read64(_ address: PhysicalAddress) throws(Errno) -> UInt64 {
        do { return try bus.read(address, size: 8, requester: .cpu(0)) } catch { throw .EIO }
    }

    public func write32(_ address: PhysicalAddress, _ value: UInt32) throws(Errno) {
        do { try bus.write(address, size: 4, value: UInt64(value), requester: .cpu(0)) } catch { throw .EIO }
    }

    public func write64(_ address: PhysicalAddress, _ value: UInt64) throws(Errno) {
        do { try bus.write(address, size: 8, value: value, requester: .cpu(0)) } catch { throw .EIO }
    }

    public func write(_ address: PhysicalAddress, size: Int, _ value: UInt64) throws(Errno) {
        do { try bus.write(address, size: size, value: value, requester: .cpu(0)) } catch { throw .EIO }
    }

    public func read(_ address: PhysicalAddress, size: Int) throws(Errno) -> UInt64 {
        do { return try bus.read(address, size: size, requester: .cpu(0)) } catch { throw .EIO }
    }
}
