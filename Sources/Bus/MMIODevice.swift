/// A device reached by the system bus: registers at offsets from its base.
///
/// This is the one protocol on the bus path. Dispatch goes through a sorted region table, not a
/// linear search of devices, and RAM never goes through this protocol.
public protocol MMIODevice: AnyObject {
    /// A human-readable name used in traces ("smmuv3", "gic-its").
    var mmioName: String { get }
    /// Reads `size` bytes at `offset`. Unimplemented registers are RAZ unless the device's spec
    /// says otherwise; `BusError.deviceError` is the device refusing (an external abort).
    func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64
    /// Writes the low `size` bytes of `value` at `offset`.
    func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError)
}

/// Why a bus access failed. Each is what hardware reports as an external abort (SLVERR/DECERR on
/// AXI); the layer that issued the access turns it into its own architected fault (for the SMMU,
/// F_WALK_EABT or F_STE_FETCH/F_CD_FETCH).
public enum BusError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Nothing is decoded at this address (DECERR).
    case unbacked(PhysicalAddress)
    /// The address is beyond the 52-bit physical address space.
    case beyondPhysicalAddressSpace(PhysicalAddress)
    /// A device refused the access (SLVERR), e.g. a write to a read-only register it chose to
    /// abort, or an unsupported access size.
    case deviceError(PhysicalAddress, String)
    /// The access size is not 1, 2, 4 or 8, or the access is not naturally aligned for a device
    /// that requires it.
    case badAccess(PhysicalAddress, size: Int)
    /// A region being added overlaps one already on the bus (a platform description error).
    case overlappingRegion(name: String, base: PhysicalAddress, existing: String)

    public var description: String {
        switch self {
        case .unbacked(let a): "no RAM or device at \(a)"
        case .beyondPhysicalAddressSpace(let a): "\(a) is beyond the 52-bit physical address space"
        case .deviceError(let a, let why): "device error at \(a): \(why)"
        case .badAccess(let a, let size): "bad access of \(size) bytes at \(a)"
        case .overlappingRegion(let name, let base, let existing):
            "region \(name) at \(base) overlaps \(existing)"
        }
    }
}
