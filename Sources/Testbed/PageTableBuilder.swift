import Bus
import LinuxKernel
import SMMUv3

/// A bump allocator handing out aligned, zeroed blocks of memory from one address range: the
/// simplest model of a kernel's page allocator for translation tables, STEs and CDs.
/// Deterministic: the same sequence of requests always yields the same addresses.
public final class PageAllocator {
    public let base: UInt64
    public let limit: UInt64
    public private(set) var next: UInt64

    /// Allocates from `[base, base + size)`.
    public init(base: UInt64, size: UInt64) {
        self.base = base
        self.next = base
        let (end, overflow) = base.addingReportingOverflow(size)
        self.limit = overflow ? .max : end
    }

    /// `bytes` aligned to `alignment` (a power of two; 0 or 1 means none), or nil when the range
    /// is exhausted.
    public func allocate(bytes: UInt64, alignment: UInt64) -> UInt64? {
        let align = max(alignment, 1)
        let (bumped, o1) = next.addingReportingOverflow(align &- 1)
        guard !o1 else { return nil }
        let start = bumped & ~(align &- 1)
        let (end, o2) = start.addingReportingOverflow(bytes)
        guard !o2, end <= limit else { return nil }
        next = end
        return start
    }
}

/// Why the builder could not do what it was asked.
public enum PageTableError: Error, Hashable, Sendable {
    case outOfMemory
    case misaligned(input: UInt64, output: UInt64)
    case outsideInputRange(UInt64)
    case alreadyMapped(UInt64)
    case notMapped(UInt64)
    case partialBlock(UInt64)
    case bus(BusError)
}

extension PageTableError: CustomStringConvertible {
    /// One sentence per case, for the command line (`doorbell walk --address`).
    public var description: String {
        switch self {
        case .outOfMemory: "the table builder ran out of table memory"
        case .misaligned(let input, let output): "\(Hex.format(input)) → \(Hex.format(output)) is not aligned to the mapping's size"
        case .outsideInputRange(let address): "\(Hex.format(address)) is outside the translation's input range (more bits than its T0SZ/VTCR input size allows)"
        case .alreadyMapped(let address): "\(Hex.format(address)) is mapped already"
        case .notMapped(let address): "\(Hex.format(address)) is not mapped"
        case .partialBlock(let address): "\(Hex.format(address)) would split a block mapping"
        case .bus(let error): "a table write failed on the bus: \(error)"
        }
    }
}

/// Attributes of a leaf descriptor. Defaults are what Linux io-pgtable-arm writes for an
/// IOMMU_READ|IOMMU_WRITE mapping of normal memory (`arm_lpae_prot_to_pte`): AP[1]=1
/// (ARM_LPAE_PTE_AP_UNPRIV), AF=1, inner-shareable, MAIR index 1 (cacheable) at stage 1,
/// MemAttr 0xF (normal WB) at stage 2, XN set for non-executable mappings.
public struct PageAttributes: Hashable, Sendable {
    public var readable = true
    public var writable = true
    public var executable = false
    /// Stage 1 AP[1]: unprivileged (EL0) access allowed.
    public var unprivileged = true
    public var accessFlag = true
    /// Stage 1 nG=0 (matches any ASID).
    public var global = false
    /// Stage 1 AttrIndx (MAIR index): Linux 0 NC, 1 cacheable, 2 device.
    public var attributeIndex: UInt64 = 1
    /// Stage 2 MemAttr[3:0] (S2FWB=0): 0xF normal WB, 0x5 normal NC, 0x1 Device-nGnRE.
    public var stage2MemoryAttributes: UInt64 = 0xF
    /// DBM (bit 51), for HTTU dirty-state tests.
    public var dirtyBitModifier = false

    public init() {}

    public static let readWrite = PageAttributes()
    public static var readOnly: PageAttributes { var a = PageAttributes(); a.writable = false; return a }
}

/// Builds VMSAv8-64 translation tables in simulated memory for one stage, granule and input
/// size, the way Linux io-pgtable-arm lays them out (`WalkGeometry.linuxStage2` for stage 2:
/// one level lower with ≤16 concatenated tables when the minimal walk would start at level 0
/// with few entries; stage 1 starts at `stage1StartLevel`).
///
/// Tables are allocated from `allocator`, whose addresses are in the descriptor address space
/// (PA, or IPA for a guest's stage-1 tables); `physicalOffset` is added to reach the RAM that
/// backs them (a guest RAM window: IPA + offset = PA). Not a hot path: it writes through the bus.
public final class PageTableBuilder {
    public enum Stage: Hashable, Sendable { case stage1, stage2 }

    public let stage: Stage
    public let geometry: WalkGeometry
    public let bus: SystemBus
    public let allocator: PageAllocator
    public let physicalOffset: UInt64
    /// Emit OA[51:48] in descriptor bits [15:12] (64K granule with a 52-bit OA, FEAT_LPA).
    public let largePhysicalAddresses: Bool
    /// The start table (TTB0 / S2TTB), in descriptor address space.
    public let root: UInt64
    /// Number of table pages allocated (including the root).
    public private(set) var tableCount = 1

    public init(stage: Stage, geometry: WalkGeometry, bus: SystemBus, allocator: PageAllocator,
                physicalOffset: UInt64 = 0, largePhysicalAddresses: Bool = false) throws(PageTableError) {
        self.stage = stage
        self.geometry = geometry
        self.bus = bus
        self.allocator = allocator
        self.physicalOffset = physicalOffset
        self.largePhysicalAddresses = largePhysicalAddresses && geometry.granule == .size64K
        let bytes = max(geometry.startTableBytes, 64)
        guard let root = allocator.allocate(bytes: bytes, alignment: bytes) else { throw .outOfMemory }
        self.root = root
        try zero(root, bytes: bytes)
    }

    /// The Linux-style builder for stage 2 (`linuxStage2` geometry).
    public convenience init(stage2InputSize: Int, granule: Granule, bus: SystemBus, allocator: PageAllocator, physicalOffset: UInt64 = 0) throws(PageTableError) {
        try self.init(stage: .stage2, geometry: .linuxStage2(granule: granule, inputSize: stage2InputSize), bus: bus,
                      allocator: allocator, physicalOffset: physicalOffset)
    }

    /// The builder for stage 1 (start level from the input size).
    public convenience init(stage1InputSize: Int, granule: Granule, bus: SystemBus, allocator: PageAllocator, physicalOffset: UInt64 = 0) throws(PageTableError) {
        let geometry = WalkGeometry(granule: granule, inputSize: stage1InputSize,
                                    startLevel: WalkGeometry.stage1StartLevel(granule: granule, inputSize: stage1InputSize))
        try self.init(stage: .stage1, geometry: geometry, bus: bus, allocator: allocator, physicalOffset: physicalOffset)
    }

    /// Maps `[input, input + size)` to `[output, output + size)`. With `blocks`, each chunk uses
    /// the largest block the granule allows where both addresses are aligned and the rest of
    /// the range covers it; otherwise pages.
    public func map(input: UInt64, output: UInt64, size: UInt64, attributes: PageAttributes = .readWrite, blocks: Bool = true) throws(PageTableError) {
        let granule = geometry.granule
        guard input & (granule.size - 1) == 0, output & (granule.size - 1) == 0, size & (granule.size - 1) == 0 else {
            throw .misaligned(input: input, output: output)
        }
        var offset: UInt64 = 0
        while offset < size {
            let va = input &+ offset
            let pa = output &+ offset
            let remaining = size - offset
            var level = 3
            if blocks && geometry.startLevel <= 2 {
                for candidate in max(geometry.startLevel, 1)...2 where WalkGeometry.blockAllowed(granule: granule, level: candidate, lpa: largePhysicalAddresses) {
                    let blockSize = UInt64(1) << UInt64(granule.levelShift(candidate))
                    if va & (blockSize - 1) == 0 && pa & (blockSize - 1) == 0 && remaining >= blockSize {
                        level = candidate
                        break
                    }
                }
            }
            try setLeaf(va, output: pa, level: level, attributes: attributes)
            offset &+= UInt64(1) << UInt64(granule.levelShift(level))
        }
    }

    /// Clears the leaf descriptors covering `[input, input + size)` (tables are kept, as Linux
    /// does until the domain is freed). A block only partly covered is an error: splitting is
    /// not modelled.
    public func unmap(input: UInt64, size: UInt64) throws(PageTableError) {
        var offset: UInt64 = 0
        while offset < size {
            let va = input &+ offset
            guard let (address, level) = try leafSlot(va) else { throw .notMapped(va) }
            let blockSize = UInt64(1) << UInt64(geometry.granule.levelShift(level))
            if va & (blockSize - 1) != 0 || size - offset < blockSize { throw .partialBlock(va) }
            try write(address, 0)
            offset &+= blockSize
        }
    }

    /// The leaf descriptor value and level for `input`, or nil if unmapped (for tests).
    public func leaf(for input: UInt64) throws(PageTableError) -> (descriptor: UInt64, level: Int)? {
        guard let (address, level) = try leafSlot(input) else { return nil }
        return (try read(address), level)
    }

    /// Overwrites the leaf descriptor for `input` (for fault tests: clear AF, change AP, …).
    public func modifyLeaf(for input: UInt64, _ change: (UInt64) -> UInt64) throws(PageTableError) {
        guard let (address, _) = try leafSlot(input) else { throw .notMapped(input) }
        try write(address, change(try read(address)))
    }

    /// The descriptor-space address of the table descriptor slot for `input` at `level`, if
    /// the walk reaches that level (for fault tests that corrupt a table entry).
    public func descriptorAddress(for input: UInt64, level: Int) throws(PageTableError) -> UInt64? {
        var table = root
        var current = geometry.startLevel
        while current <= 3 {
            let slot = table &+ geometry.index(of: input, at: current) &* 8
            if current == level { return slot }
            let d = try read(slot)
            guard d & 0b11 == 0b11, current < 3 else { return nil }
            table = outputField(d, shift: geometry.granule.shift)
            current += 1
        }
        return nil
    }

    // MARK: Encoding

    /// The leaf descriptor for `output` at `level` (Arm ARM D8.3: block 0b01, page 0b11), from
    /// io-pgtable's descriptor bits (`ArmLPAEPTE`). Unlike `arm_lpae_prot_to_pte` it can clear
    /// AF, set DBM or a global mapping, and marks a stage-2 page execute-never with XN[1] only.
    public func leafDescriptor(output: UInt64, level: Int, attributes a: PageAttributes) -> UInt64 {
        typealias P = ArmLPAEPTE
        var d: UInt64 = level == 3 ? P.typePage : P.typeBlock
        d |= encodeOutput(output, shift: geometry.granule.levelShift(level))
        d |= P.shareableInner
        if a.accessFlag { d |= P.accessFlag }
        if a.dirtyBitModifier { d |= P.dirtyBitModifier }
        switch stage {
        case .stage1:
            d |= a.attributeIndex.keepingBits(2, 0) << P.attributeIndexShift
            if a.unprivileged { d |= P.apUnprivileged }
            if !a.writable { d |= P.apReadOnly }
            if !a.global { d |= P.notGlobal }
            if !a.executable { d |= P.executeNever }
        case .stage2:
            d |= a.stage2MemoryAttributes.keepingBits(3, 0) << P.memoryAttributesShift
            if a.readable { d |= P.hapRead }
            if a.writable { d |= P.hapWrite }
            if !a.executable { d |= P.stage2ExecuteNever1 }
        }
        return d
    }

    /// A table descriptor pointing at `next`.
    public func tableDescriptor(_ next: UInt64) -> UInt64 {
        ArmLPAEPTE.typeTable | encodeOutput(next, shift: geometry.granule.shift)
    }

    /// `paddr_to_iopte` of the address aligned to `shift`; without FEAT_LPA bits [51:48] are dropped.
    private func encodeOutput(_ address: UInt64, shift: Int) -> UInt64 {
        ArmLPAEPTE.outputAddressField(address.keepingBits(largePhysicalAddresses ? 51 : 47, shift))
    }

    /// `iopte_to_paddr` with FEAT_LPA (64K only); otherwise bits [47:shift].
    private func outputField(_ d: UInt64, shift: Int) -> UInt64 {
        largePhysicalAddresses ? ArmLPAEPTE.outputAddress(d, granule: geometry.granule) : d.keepingBits(47, shift)
    }

    // MARK: Table manipulation

    private func setLeaf(_ va: UInt64, output: UInt64, level: Int, attributes: PageAttributes) throws(PageTableError) {
        guard geometry.inputSize >= 64 || va >> UInt64(geometry.inputSize) == 0 else { throw .outsideInputRange(va) }
        var table = root
        var current = geometry.startLevel
        while true {
            let slot = table &+ geometry.index(of: va, at: current) &* 8
            let d = try read(slot)
            if current == level {
                if d & 1 != 0 { throw .alreadyMapped(va) }
                try write(slot, leafDescriptor(output: output, level: level, attributes: attributes))
                return
            }
            if d & 1 == 0 {
                let bytes = geometry.granule.size
                guard let next = allocator.allocate(bytes: bytes, alignment: bytes) else { throw .outOfMemory }
                try zero(next, bytes: bytes)
                tableCount += 1
                try write(slot, tableDescriptor(next))
                table = next
            } else if d & 0b10 == 0 {
                throw .alreadyMapped(va)
            } else {
                table = outputField(d, shift: geometry.granule.shift)
            }
            current += 1
        }
    }

    private func leafSlot(_ va: UInt64) throws(PageTableError) -> (UInt64, Int)? {
        var table = root
        var current = geometry.startLevel
        while current <= 3 {
            let slot = table &+ geometry.index(of: va, at: current) &* 8
            let d = try read(slot)
            if d & 1 == 0 { return nil }
            if current == 3 || d & 0b10 == 0 { return (slot, current) }
            table = outputField(d, shift: geometry.granule.shift)
            current += 1
        }
        return nil
    }

    private func read(_ address: UInt64) throws(PageTableError) -> UInt64 {
        do { return try bus.read64(PhysicalAddress(address &+ physicalOffset)) } catch { throw .bus(error) }
    }

    private func write(_ address: UInt64, _ value: UInt64) throws(PageTableError) {
        do { try bus.write64(PhysicalAddress(address &+ physicalOffset), value) } catch { throw .bus(error) }
    }

    private func zero(_ address: UInt64, bytes: UInt64) throws(PageTableError) {
        var offset: UInt64 = 0
        while offset < bytes {
            try write(address &+ offset, 0)
            offset &+= 8
        }
    }
}
