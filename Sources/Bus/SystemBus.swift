/// The system interconnect: decodes a physical address to a RAM window or an MMIO device.
///
/// Regions are kept sorted by base and found by binary search behind a one-entry last-hit
/// cache, so a run of descriptor reads in one RAM window costs one comparison each. An address
/// that decodes to nothing is an error (`BusError.unbacked`), the model of a decode error on the
/// interconnect, and the physical address space is 52 bits (Armv8.2 LPA), the largest any
/// modelled component can emit.
public final class SystemBus {
    /// Bits of physical address the bus decodes.
    public static let physicalAddressBits = 52
    public static let physicalAddressLimit: UInt64 = 1 << 52

    /// What a region decodes to.
    public enum RegionKind: Hashable, Sendable {
        /// RAM: address A of the window is byte A + `offset` (wrapping) of the backing store.
        /// The host's windows have offset 0; a VM's bus maps guest-physical (IPA) windows onto
        /// the host RAM that backs them with a non-zero offset, so the guest's page tables are
        /// the very bytes the physical SMMU walks.
        case ram(offset: UInt64)
        /// An index into the bus's device list.
        case device(Int)
    }

    /// One decoded window: `[base, base + size)`.
    public struct Region: Hashable, Sendable, CustomStringConvertible {
        public let base: PhysicalAddress
        public let size: UInt64
        public let kind: RegionKind
        public let name: String

        /// The last byte of the region (inclusive), so regions may end at the top of the space.
        public var last: UInt64 { base.rawValue &+ (size &- 1) }

        @inlinable
        func contains(_ address: UInt64) -> Bool {
            address >= base.rawValue && address &- base.rawValue < size
        }

        public var description: String {
            "\(Hex.format(base.rawValue, minDigits: 9))–\(Hex.format(last, minDigits: 9)) \(name)"
        }
    }

    /// The backing store for every RAM window. Windows are views of one physical address space,
    /// so a RAM address means the same bytes whichever window decoded it.
    public let ram: SparseRAM
    public internal(set) var regions: [Region] = []
    @usableFromInline var devices: [any MMIODevice] = []
    @usableFromInline var lastRegionIndex: Int = -1
    /// Optional trace of device (MMIO) accesses; RAM accesses are not traced here (the layer
    /// that reads a descriptor reports what it meant).
    public var trace: TraceLog?
    /// The journal of the message being followed, if any (`Journal`).
    public var journal: Journal?
    /// Counters for reports and tests.
    public var ramReads: Int { get { hot.pointee.ramReads } set { hot.pointee.ramReads = newValue } }
    public var ramWrites: Int { get { hot.pointee.ramWrites } set { hot.pointee.ramWrites = newValue } }
    public var mmioReads: Int { get { hot.pointee.mmioReads } set { hot.pointee.mmioReads = newValue } }
    public var mmioWrites: Int { get { hot.pointee.mmioWrites } set { hot.pointee.mmioWrites = newValue } }

    /// The counters and the last RAM window an access decoded to, in a block this object
    /// allocates in `init` and frees in `deinit`, reached through a `let` pointer: a RAM access
    /// that falls in the same window as the last one (every descriptor read of a walk, every
    /// queue access) is a range compare and a `SparseRAM` read, with no dynamic exclusivity
    /// check, Region copy or binary search. Safe: the block is private to this bus, used from
    /// one thread at a time, and never yielded across a call. The cached window stays valid for
    /// the bus's life: regions are only added (never overlapping an existing one) or, for
    /// devices, removed, so a RAM window, once decoded, always decodes the same way.
    @usableFromInline
    struct HotState {
        @usableFromInline var ramReads = 0
        @usableFromInline var ramWrites = 0
        @usableFromInline var mmioReads = 0
        @usableFromInline var mmioWrites = 0
        /// The last RAM window: first address, size (0 = none) and backing offset.
        @usableFromInline var ramBase: UInt64 = .max
        @usableFromInline var ramSize: UInt64 = 0
        @usableFromInline var ramOffset: UInt64 = 0
        init() {}
    }
    @usableFromInline let hot: UnsafeMutablePointer<HotState>

    public init(ram: SparseRAM = SparseRAM()) {
        self.ram = ram
        hot = .allocate(capacity: 1)
        hot.initialize(to: HotState())
    }

    deinit {
        hot.deinitialize(count: 1)
        hot.deallocate()
    }

    /// The backing address of a `size`-byte RAM access at `raw` when it lies in the cached RAM
    /// window (`size` ≤ 8, the window ≥ 8 bytes), else nil.
    @inlinable @inline(__always)
    func cachedRAM(_ raw: UInt64, size: Int) -> UInt64? {
        let h = hot.pointee
        guard raw >= h.ramBase, raw &- h.ramBase <= h.ramSize &- UInt64(size) else { return nil }
        return raw &+ h.ramOffset
    }

    /// Remembers a RAM window for `cachedRAM` (only windows of at least 8 bytes, so the range
    /// check's subtraction cannot wrap).
    @inlinable @inline(__always)
    func cacheRAM(_ region: Region, offset: UInt64) {
        guard region.size >= 8 else { return }
        hot.pointee.ramBase = region.base.rawValue
        hot.pointee.ramSize = region.size
        hot.pointee.ramOffset = offset
    }

    /// Adds a RAM window. Overlap with an existing region is a platform description error.
    public func addRAM(base: PhysicalAddress, size: UInt64, name: String = "ram") throws(BusError) {
        try insert(Region(base: base, size: size, kind: .ram(offset: 0), name: name))
    }

    /// Adds a RAM window whose bytes live elsewhere in the backing store: window address A is
    /// backing address `backing` + (A − `base`). Used for a VM's guest RAM, backed by host RAM.
    public func addRAM(base: PhysicalAddress, size: UInt64, backedAt backing: PhysicalAddress, name: String = "ram") throws(BusError) {
        try insert(Region(base: base, size: size, kind: .ram(offset: backing.rawValue &- base.rawValue), name: name))
    }

    /// Adds an MMIO device window.
    public func addDevice(_ device: any MMIODevice, base: PhysicalAddress, size: UInt64, name: String? = nil) throws(BusError) {
        let region = Region(base: base, size: size, kind: .device(devices.count), name: name ?? device.mmioName)
        try insert(region)
        devices.append(device)
    }

    /// Removes every window that decodes to `device` (a device unplugged from the interconnect,
    /// or an emulated one destroyed with its VM); returns how many were removed. Later devices
    /// keep their windows.
    @discardableResult
    public func removeDevice(_ device: any MMIODevice) -> Int {
        guard let index = devices.firstIndex(where: { $0 === device }) else { return 0 }
        let before = regions.count
        regions = regions.compactMap { region in
            guard case .device(let i) = region.kind else { return region }
            if i == index { return nil }
            return i > index ? Region(base: region.base, size: region.size, kind: .device(i - 1), name: region.name) : region
        }
        devices.remove(at: index)
        lastRegionIndex = -1
        return before - regions.count
    }

    private func insert(_ region: Region) throws(BusError) {
        guard region.size > 0 else {
            throw .badAccess(region.base, size: 0)
        }
        let (end, overflow) = region.base.rawValue.addingReportingOverflow(region.size)
        guard !overflow || end == 0, region.last < SystemBus.physicalAddressLimit else {
            throw .beyondPhysicalAddressSpace(PhysicalAddress(region.last))
        }
        // Regions are disjoint and sorted by base, hence by last too: the first region ending at
        // or above the new base is the only candidate for the lowest overlap and is also the
        // insertion point (a binary search, so a platform with 20 k memory nodes is not
        // quadratic).
        let index = firstRegion(endingAtOrAbove: region.base.rawValue)
        if index < regions.count, regions[index].base.rawValue <= region.last {
            throw .overlappingRegion(name: region.name, base: region.base, existing: regions[index].description)
        }
        regions.insert(region, at: index)
        lastRegionIndex = -1
    }

    /// The index of the first region whose last byte is at or above `address` (`regions.count`
    /// when none).
    private func firstRegion(endingAtOrAbove address: UInt64) -> Int {
        var low = 0
        var high = regions.count
        while low < high {
            let mid = low + (high - low) / 2
            if regions[mid].last < address { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// The region that decodes `address`, if any.
    @inlinable
    public func regionIndex(for address: UInt64) -> Int? {
        if lastRegionIndex >= 0, lastRegionIndex < regions.count, regions[lastRegionIndex].contains(address) {
            return lastRegionIndex
        }
        var low = 0
        var high = regions.count - 1
        while low <= high {
            let mid = (low + high) / 2
            let region = regions[mid]
            if address < region.base.rawValue {
                high = mid - 1
            } else if region.contains(address) {
                lastRegionIndex = mid
                return mid
            } else {
                low = mid + 1
            }
        }
        return nil
    }

    /// Whether `[address, address + size)` is wholly inside one RAM window.
    public func isRAM(_ address: PhysicalAddress, size: UInt64 = 1) -> Bool {
        guard let index = regionIndex(for: address.rawValue), case .ram = regions[index].kind else { return false }
        let region = regions[index]
        return size == 0 || (address.rawValue &- region.base.rawValue) <= region.size &- size
    }

    /// The backing-store address of `[address, address + size)` when it lies wholly inside one
    /// RAM window, else nil. Bulk readers that go to `ram` directly must translate through this:
    /// on a VM's bus a window's bytes live at another address of the store (`addRAM(backedAt:)`).
    public func ramBackingAddress(_ address: PhysicalAddress, size: UInt64 = 1) -> UInt64? {
        guard let index = regionIndex(for: address.rawValue), case .ram(let offset) = regions[index].kind else { return nil }
        let region = regions[index]
        guard size == 0 || (address.rawValue &- region.base.rawValue) <= region.size &- size else { return nil }
        return address.rawValue &+ offset
    }

    /// Reads `size` bytes (1, 2, 4 or 8) at `address`.
    @inlinable
    public func read(_ address: PhysicalAddress, size: Int, requester: Requester = .hardware) throws(BusError) -> UInt64 {
        let raw = address.rawValue
        guard raw < SystemBus.physicalAddressLimit else { throw .beyondPhysicalAddressSpace(address) }
        guard size == 1 || size == 2 || size == 4 || size == 8 else { throw .badAccess(address, size: size) }
        if let backing = cachedRAM(raw, size: size) {
            hot.pointee.ramReads &+= 1
            return ram.read(backing, size: size)
        }
        guard let index = regionIndex(for: raw) else { throw .unbacked(address) }
        let region = regions[index]
        guard raw &- region.base.rawValue <= region.size &- UInt64(size) else { throw .unbacked(address) }
        switch region.kind {
        case .ram(let offset):
            hot.pointee.ramReads &+= 1
            cacheRAM(region, offset: offset)
            return ram.read(raw &+ offset, size: size)
        case .device(let deviceIndex):
            hot.pointee.mmioReads &+= 1
            let value = try devices[deviceIndex].mmioRead(offset: raw &- region.base.rawValue, size: size, requester: requester)
            trace?.append(.bus, "MMIO read \(region.name)", address: raw, value: value, "by \(requester)", kind: .mmioRead)
            journal?.append(.mmioRead(address: raw, value: value))
            return value
        }
    }

    /// Writes the low `size` bytes of `value` at `address`.
    @inlinable
    public func write(_ address: PhysicalAddress, size: Int, value: UInt64, requester: Requester = .hardware) throws(BusError) {
        let raw = address.rawValue
        guard raw < SystemBus.physicalAddressLimit else { throw .beyondPhysicalAddressSpace(address) }
        guard size == 1 || size == 2 || size == 4 || size == 8 else { throw .badAccess(address, size: size) }
        if let backing = cachedRAM(raw, size: size) {
            hot.pointee.ramWrites &+= 1
            ram.write(backing, size: size, value: value)
            return
        }
        guard let index = regionIndex(for: raw) else { throw .unbacked(address) }
        let region = regions[index]
        guard raw &- region.base.rawValue <= region.size &- UInt64(size) else { throw .unbacked(address) }
        switch region.kind {
        case .ram(let offset):
            hot.pointee.ramWrites &+= 1
            cacheRAM(region, offset: offset)
            ram.write(raw &+ offset, size: size, value: value)
        case .device(let deviceIndex):
            hot.pointee.mmioWrites &+= 1
            trace?.append(.bus, "MMIO write \(region.name)", address: raw, value: value, "by \(requester)")
            try devices[deviceIndex].mmioWrite(offset: raw &- region.base.rawValue, size: size, value: value, requester: requester)
        }
    }

    /// Convenience for 64-bit little-endian reads (descriptors, table entries).
    @inlinable
    public func read64(_ address: PhysicalAddress) throws(BusError) -> UInt64 {
        try read(address, size: 8)
    }

    /// Convenience for 64-bit writes.
    @inlinable
    public func write64(_ address: PhysicalAddress, _ value: UInt64) throws(BusError) {
        try write(address, size: 8, value: value)
    }

    /// Writes a sequence of 64-bit words at consecutive addresses (a whole STE, CD or command).
    public func writeWords(_ address: PhysicalAddress, _ words: [UInt64]) throws(BusError) {
        for (i, word) in words.enumerated() {
            guard let at = address.adding(UInt64(i) * 8) else { throw .beyondPhysicalAddressSpace(address) }
            try write64(at, word)
        }
    }

    /// Reads `count` consecutive 64-bit words.
    public func readWords(_ address: PhysicalAddress, count: Int) throws(BusError) -> [UInt64] {
        var words: [UInt64] = []
        words.reserveCapacity(max(count, 0))
        for i in 0..<max(count, 0) {
            guard let at = address.adding(UInt64(i) * 8) else { throw .beyondPhysicalAddressSpace(address) }
            words.append(try read64(at))
        }
        return words
    }

    /// Resets the access counters.
    public func resetCounters() {
        ramReads = 0; ramWrites = 0; mmioReads = 0; mmioWrites = 0
    }
}
