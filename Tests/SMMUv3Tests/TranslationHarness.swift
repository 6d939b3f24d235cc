import Bus
import SMMUv3
import Testbed

/// A bus with one large RAM window, a stream table, host table memory and a "guest RAM" window
/// (IPA 0x4000_0000 backed at PA 0x20_0000_0000), and an `SMMUTranslator` over it. Tests build
/// STEs, CDs and page tables with the module's own encoders and then translate.
///
/// Layout (PA): 0x4000_0000 stream table (64 KiB), 0x4010_0000 host allocator (64 MiB: STE L2
/// tables, CDs, host page tables), 0x20_0000_0000 guest RAM (the IPA window's backing).
final class TranslationHarness {
    static let ramBase: UInt64 = 0x4000_0000
    static let ramEnd: UInt64 = 0x100_0000_0000          // 1 TiB
    static let streamTableBase: UInt64 = 0x4000_0000
    static let hostAllocatorBase: UInt64 = 0x4010_0000
    static let guestIPABase: UInt64 = 0x4000_0000
    static let guestPABase: UInt64 = 0x20_0000_0000
    /// Guest RAM mapped by `mapGuestRAM` (page-mapped at stage 2 so walks have every level).
    static let guestRAMSize: UInt64 = 0x40_0000         // 4 MiB
    static var guestOffset: UInt64 { guestPABase &- guestIPABase }

    let bus: SystemBus
    let translator: SMMUTranslator
    let hostAllocator: PageAllocator
    /// Allocates in guest IPA space (the first 2 MiB of guest RAM are for tables and CDs).
    let guestAllocator: PageAllocator
    private var l2Tables: [UInt64: UInt64] = [:]

    init(configuration: SMMUConfiguration = .default, log2Size: Int = 8, twoLevel: Bool = false, split: Int = 6) {
        bus = SystemBus()
        // Fixed, non-overlapping layout: a failure would be a broken harness, caught below.
        try? bus.addRAM(base: PhysicalAddress(Self.ramBase), size: Self.ramEnd - Self.ramBase)
        translator = SMMUTranslator(configuration: configuration, bus: bus)
        translator.streamTable = StreamTableConfiguration(base: PhysicalAddress(Self.streamTableBase), log2Size: log2Size,
                                                          split: split, twoLevel: twoLevel)
        translator.recordInvalidStreamIDs = true
        hostAllocator = PageAllocator(base: Self.hostAllocatorBase, size: 0x400_0000)
        guestAllocator = PageAllocator(base: Self.guestIPABase, size: 0x20_0000)
    }

    /// Writes an STE for `sid`: linear table, or through an L1STD with a full-span L2 table
    /// (allocated on first use) for a 2-level table.
    func setSTE(_ sid: UInt32, _ ste: StreamTableEntry) throws {
        let table = translator.streamTable
        if table.twoLevel {
            let split = [6, 8, 10].contains(table.split) ? table.split : 6
            let l1Index = UInt64(sid) >> UInt64(split)
            let l1Address = Self.streamTableBase + l1Index * 8
            let l2: UInt64
            if let existing = l2Tables[l1Index] { l2 = existing } else {
                let bytes = UInt64(64) << UInt64(split)
                guard let fresh = hostAllocator.allocate(bytes: bytes, alignment: bytes) else { throw PageTableError.outOfMemory }
                l2 = fresh
                l2Tables[l1Index] = fresh
                try bus.write64(PhysicalAddress(l1Address), LevelOneStreamTableDescriptor(span: split + 1, l2Ptr: l2).rawValue)
            }
            try bus.writeWords(PhysicalAddress(l2 + (UInt64(sid) & ((1 << UInt64(split)) - 1)) * 64), ste.words)
        } else {
            try bus.writeWords(PhysicalAddress(Self.streamTableBase + UInt64(sid) * 64), ste.words)
        }
    }

    /// Writes a CD at a PA.
    func writeCD(_ cd: ContextDescriptor, at pa: UInt64) throws {
        try bus.writeWords(PhysicalAddress(pa), cd.words)
    }

    /// A host allocation (PA).
    func allocateHost(_ bytes: UInt64, alignment: UInt64 = 64) throws -> UInt64 {
        guard let a = hostAllocator.allocate(bytes: bytes, alignment: alignment) else { throw PageTableError.outOfMemory }
        return a
    }

    /// A guest allocation (IPA).
    func allocateGuest(_ bytes: UInt64, alignment: UInt64 = 64) throws -> UInt64 {
        guard let a = guestAllocator.allocate(bytes: bytes, alignment: alignment) else { throw PageTableError.outOfMemory }
        return a
    }

    /// A host stage-2 table that maps the guest RAM window page by page (so a stage-2 walk of
    /// any guest address reads every level), built as Linux io-pgtable-arm would.
    func hostStage2(granule: Granule = .size4K, inputSize: Int = 48) throws -> PageTableBuilder {
        let s2 = try PageTableBuilder(stage2InputSize: inputSize, granule: granule, bus: bus, allocator: hostAllocator)
        try s2.map(input: Self.guestIPABase, output: Self.guestPABase, size: Self.guestRAMSize, blocks: false)
        return s2
    }

    /// A guest stage-1 table in guest RAM (descriptors hold IPAs).
    func guestStage1(granule: Granule = .size4K, inputSize: Int = 48) throws -> PageTableBuilder {
        try PageTableBuilder(stage1InputSize: inputSize, granule: granule, bus: bus, allocator: guestAllocator,
                             physicalOffset: Self.guestOffset)
    }

    func transaction(_ sid: UInt32, _ address: UInt64, write: Bool = false, data: UInt64 = 0, ssid: UInt32? = nil,
                     privileged: Bool = false, instruction: Bool = false) -> DeviceTransaction {
        DeviceTransaction(kind: write ? .write : .read, address: IOVA(address), size: 4, data: data,
                          streamID: StreamID(sid), substreamID: ssid.map { SubstreamID($0) }, deviceID: DeviceID(sid),
                          privileged: privileged, instruction: instruction)
    }

    func translate(_ sid: UInt32, _ address: UInt64, write: Bool = false, ssid: UInt32? = nil,
                   privileged: Bool = false, instruction: Bool = false) -> TranslationOutcome {
        translator.translate(transaction(sid, address, write: write, ssid: ssid, privileged: privileged, instruction: instruction))
    }

    /// A DMA write through the SMMU: translate, then write `value` (4 bytes) at the output PA.
    /// Returns the PA written, or nil if the SMMU did not translate.
    @discardableResult
    func dmaWrite(_ sid: UInt32, _ address: UInt64, value: UInt32, ssid: UInt32? = nil) throws -> UInt64? {
        guard case .translated(let result) = translate(sid, address, write: true, ssid: ssid), result.writable else { return nil }
        try bus.write(result.output, size: 4, value: UInt64(value))
        return result.output.rawValue
    }

    /// RAM contents at a PA (what the DMA should have changed).
    func ram32(_ pa: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: bus.ram.read(pa, size: 4))
    }
}

extension TranslationOutcome {
    /// The fault, if this outcome is one.
    var fault: SMMUFault? {
        if case .fault(let f) = self { return f }
        return nil
    }

    var result: TranslationResult? {
        if case .translated(let r) = self { return r }
        return nil
    }
}

/// Ready-made stream configurations.
extension TranslationHarness {
    static let vmid = VMID(7)
    static let asid = ASID(0x42)

    /// Stage 1 only: host tables (PA), a CD in host memory, STE Config=0b101.
    func makeStage1(sid: UInt32, granule: Granule = .size4K, inputSize: Int = 48, asid: ASID = TranslationHarness.asid,
                    configureCD: (inout ContextDescriptor) -> Void = { _ in }) throws -> PageTableBuilder {
        let s1 = try PageTableBuilder(stage1InputSize: inputSize, granule: granule, bus: bus, allocator: hostAllocator)
        var cd = ContextDescriptor.stage1(asid: asid, ttb0: s1.root, geometry: s1.geometry, ips: .bits48)
        configureCD(&cd)
        let cdAddress = try allocateHost(64)
        try writeCD(cd, at: cdAddress)
        var ste = StreamTableEntry.stage1(contextPtr: cdAddress)
        ste.s2VMID = Self.vmid
        try setSTE(sid, ste)
        return s1
    }

    /// Stage 2 only: host tables, STE Config=0b110.
    func makeStage2(sid: UInt32, granule: Granule = .size4K, inputSize: Int = 48, vmid: VMID = TranslationHarness.vmid,
                    record: Bool = true) throws -> PageTableBuilder {
        let s2 = try PageTableBuilder(stage2InputSize: inputSize, granule: granule, bus: bus, allocator: hostAllocator)
        try setSTE(sid, .stage2(vmid: vmid, ttb: PhysicalAddress(s2.root), geometry: s2.geometry, outputSize: .bits48, record: record))
        return s2
    }

    /// Nested: a guest stage 1 (tables and CD in guest RAM, addressed by IPA) over a host stage 2
    /// that page-maps the guest RAM window.
    func makeNested(sid: UInt32, s1Granule: Granule = .size4K, s1InputSize: Int = 48, s2Granule: Granule = .size4K,
                    s2InputSize: Int = 48, asid: ASID = TranslationHarness.asid, vmid: VMID = TranslationHarness.vmid,
                    s2Record: Bool = true,
                    configureCD: (inout ContextDescriptor) -> Void = { _ in }) throws -> (s1: PageTableBuilder, s2: PageTableBuilder, cdIPA: UInt64) {
        let s2 = try hostStage2(granule: s2Granule, inputSize: s2InputSize)
        let s1 = try guestStage1(granule: s1Granule, inputSize: s1InputSize)
        var cd = ContextDescriptor.stage1(asid: asid, ttb0: s1.root, geometry: s1.geometry, ips: .bits48)
        configureCD(&cd)
        let cdIPA = try allocateGuest(64)
        try writeCD(cd, at: cdIPA + Self.guestOffset)
        try setSTE(sid, .nested(contextPtr: cdIPA, vmid: vmid, s2TTB: PhysicalAddress(s2.root), s2Geometry: s2.geometry,
                                outputSize: .bits48, record: s2Record))
        return (s1, s2, cdIPA)
    }

    /// Guest data IPAs: the upper half of the guest RAM window.
    static let guestDataIPA: UInt64 = guestIPABase + 0x20_0000
}
