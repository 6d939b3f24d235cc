import Bus
import SMMUv3

/// drivers/iommu/io-pgtable-arm.c for the 64-bit LPAE formats ARM_64_LPAE_S1 and ARM_64_LPAE_S2:
/// page tables in kernel pages, written by the CPU, walked by the SMMU.
///
/// Facts followed (checked against io-pgtable-arm.c):
/// - the granule and block sizes come from `arm_lpae_restrict_pgsizes` (`restrictPageSizes`):
///   the kernel's PAGE_SIZE when the SMMU has it, else the largest size below it, else the
///   smallest above; 4K → 4K|2M|1G, 16K → 16K|32M, 64K → 64K|512M (+4T with oas > 48);
///   ias and oas are clipped to 48 bits, 52 for 64K (`max_addr_bits`);
/// - table and leaf addresses go through `paddr_to_iopte` / `iopte_to_paddr`: with the 64K
///   granule PA[51:48] is packed into PTE[15:12];
/// - both stages start at the level that resolves `ias` bits with the fewest levels
///   (`arm_lpae_alloc_pgtable`: levels = ⌈(ias − pg_shift) / bits_per_level⌉, start_level =
///   4 − levels); stage 2 then goes one level lower with concatenated start tables only where
///   the architecture requires it (`arm_lpae_concat_mandatory`, `stage2Geometry`);
/// - leaves come from `arm_lpae_prot_to_pte`: S1: nG, AP_UNPRIV unless IOMMU_PRIV, AP_RDONLY
///   for read-only, AttrIndx DEV (2) for IOMMU_MMIO or CACHE (1) for IOMMU_CACHE else NC (0);
///   S2: HAP_READ/HAP_WRITE, MemAttr DEV 0x1 / OIWB 0xF / NC 0x5; both: SH_IS with
///   IOMMU_CACHE else SH_OS, XN (bits 54:53) for IOMMU_NOEXEC, AF;
/// - a map over a valid leaf is -EEXIST (`arm_lpae_init_pte` / `__arm_lpae_map`: "We require
///   an unmap first"); a block over a (left-over) table replaces the table after unmapping it
///   with a walk flush; a mapping with neither read nor write is a no-op;
/// - unmapping part of a block unmaps nothing and returns 0 (commit 33729a5fc0ca "Remove
///   split on unmap behavior", v6.13); unmapping a whole table entry flushes the walk immediately
///   (`io_pgtable_tlb_flush_walk`) and drops the table.
public final class IOPageTableARM {
    public enum Format: Hashable, Sendable { case stage1, stage2 }

    public let format: Format
    public let geometry: WalkGeometry
    /// `cfg.ias` / `cfg.oas`.
    public let inputBits: Int
    public let outputBits: Int
    /// `cfg.pgsize_bitmap` after `arm_lpae_restrict_pgsizes`.
    public let pageSizeBitmap: UInt64
    /// The start table: TTBR (stage 1) or VTTBR (stage 2).
    public let root: PhysicalAddress
    /// Table pages in use, including the root (for tests).
    public private(set) var tablePages = 1

    unowned(safe) let kernel: LinuxKernel
    /// `iommu_flush_ops.tlb_flush_walk`: called when unmap drops a whole table.
    var flushWalk: ((_ iova: UInt64, _ size: UInt64, _ granule: UInt64) -> Void)?

    /// `alloc_io_pgtable_ops(ARM_64_LPAE_S1/S2, cfg)` → `arm_lpae_alloc_pgtable`: the sizes
    /// restricted for the kernel's PAGE_SIZE, ias and oas clipped, the granule = the smallest
    /// size left (`pg_shift = __ffs(pgsize_bitmap)`). Where io-pgtable returns NULL (no
    /// 4K/16K/64K granule left, or a stage-2 concatenation beyond 16 tables) the error is
    /// -ENOMEM, as `arm_smmu_domain_finalise` reports a NULL `alloc_io_pgtable_ops`.
    init(kernel: LinuxKernel, format: Format, inputBits: Int, outputBits: Int, smmuPageSizes: UInt64) throws(Errno) {
        self.kernel = kernel
        self.format = format
        let restricted = Self.restrictPageSizes(smmuPageSizes, kernelPageSize: kernel.pageSize,
                                                inputBits: inputBits, outputBits: outputBits)
        pageSizeBitmap = restricted.pageSizes
        self.inputBits = restricted.inputBits
        self.outputBits = restricted.outputBits
        let ias = restricted.inputBits
        guard let granule = Granule(pageSize: UInt64(1) << UInt64(pageSizeBitmap.trailingZeroBitCount & 63)),
              pageSizeBitmap != 0, ias > granule.shift else { throw .ENOMEM }
        switch format {
        case .stage1:
            geometry = WalkGeometry(granule: granule, inputSize: ias,
                                    startLevel: WalkGeometry.stage1StartLevel(granule: granule, inputSize: ias))
        case .stage2:
            // `arm_64_lpae_alloc_pgtable_s2` → NULL when the mandatory concatenation would need
            // more than 16 tables; `arm_smmu_domain_finalise` turns a NULL into -ENOMEM.
            guard let g = Self.stage2Geometry(granule: granule, inputBits: ias, outputBits: restricted.outputBits) else {
                throw .ENOMEM
            }
            geometry = g
        }
        // The pgd is at least 64 bytes and aligned to its size (`__arm_lpae_alloc_pages`).
        let bytes = max(geometry.startTableBytes, 64)
        root = try kernel.pages.allocate(bytes: bytes, alignment: max(bytes, 4096))
    }

    /// A forked world's copy of `other` on `kernel`: the same geometry and root (the tables
    /// themselves are in the fork's copy of RAM). `flushWalk` is left for the owning domain,
    /// whose `init` installs its own.
    init(copying other: IOPageTableARM, kernel: LinuxKernel) {
        self.kernel = kernel
        format = other.format
        geometry = other.geometry
        inputBits = other.inputBits
        outputBits = other.outputBits
        pageSizeBitmap = other.pageSizeBitmap
        root = other.root
        tablePages = other.tablePages
    }

    /// `arm_lpae_restrict_pgsizes(cfg)`: "Aim to match the CPU page size if possible, otherwise
    /// prefer smaller sizes" — the granule is PAGE_SIZE if the SMMU offers it, else the largest
    /// offered size below PAGE_SIZE (`__fls(bitmap & ~PAGE_MASK)`), else the smallest above
    /// (`__ffs(bitmap & PAGE_MASK)`); the bitmap keeps that granule's page and block sizes
    /// (4K|2M|1G, 16K|32M, 64K|512M and 4T when oas > 48), nothing for any other granule;
    /// ias/oas are clipped to `max_addr_bits` (48, 52 for 64K).
    public static func restrictPageSizes(_ bitmap: UInt64, kernelPageSize: UInt64, inputBits: Int, outputBits: Int)
        -> (pageSizes: UInt64, inputBits: Int, outputBits: Int) {
        let pageMask = ~(kernelPageSize &- 1)
        var granule: UInt64 = 0
        if bitmap & kernelPageSize != 0 {
            granule = kernelPageSize
        } else if bitmap & ~pageMask != 0 {
            granule = UInt64(1) << UInt64(63 - (bitmap & ~pageMask).leadingZeroBitCount)
        } else if bitmap & pageMask != 0 {
            granule = UInt64(1) << UInt64((bitmap & pageMask).trailingZeroBitCount)
        }
        var maxAddressBits = 48
        var sizes: UInt64
        switch granule {
        case 1 << 12: sizes = (1 << 12) | (1 << 21) | (1 << 30)
        case 1 << 14: sizes = (1 << 14) | (1 << 25)
        case 1 << 16:
            maxAddressBits = 52
            sizes = (1 << 16) | (1 << 29)
            if outputBits > 48 { sizes |= 1 << 42 }   // 4TB
        default: sizes = 0
        }
        return (bitmap & sizes, min(inputBits, maxAddressBits), min(outputBits, maxAddressBits))
    }

    // MARK: Stage-2 start level and concatenation

    /// ARM_LPAE_S2_MAX_CONCAT_PAGES: at most 16 concatenated start tables (Arm ARM
    /// AArch64.S2InconsistentSL: the start level resolves at most a stride + 4 bits).
    public static let stage2MaxConcatenatedTables = 16

    /// The stage-2 walk `arm_64_lpae_alloc_pgtable_s2` sets up for `ias`/`oas` (after
    /// `arm_lpae_restrict_pgsizes` clipped them):
    /// - `arm_lpae_alloc_pgtable`: va_bits = ias − pg_shift, levels = ⌈va_bits /
    ///   bits_per_level⌉, start_level = 4 − levels, pgd_bits = va_bits − bits_per_level ×
    ///   (levels − 1);
    /// - `arm_lpae_concat_mandatory` (Arm DDI 0487 K.a R_DXBSH and R_SRKBC, "after
    ///   de-ciphering the table for PA size and valid initial lookup"): 16K starting at level 0
    ///   when oas = 48 or ias = 48; 4K starting at level 0 when oas = 40 or 42; 16K starting at
    ///   level 1 when oas = 40. Only then does the walk start one level lower with
    ///   pgd_bits + bits_per_level bits resolved by 2^pgd_bits concatenated tables (2 for
    ///   4K/40, 8 for 4K/42, 16 for 16K/40, 2 for 16K/48 when ias = oas), and more than
    ///   ARM_LPAE_S2_MAX_CONCAT_PAGES is a WARN_ON and NULL (nil here). The 64K granule never
    ///   concatenates: its walk never starts at level 0 (ias ≤ 52).
    /// - VTCR: T0SZ = 64 − ias, SL0 = ~sl & 3 with sl = start_level (+1 for 4K) (`sl0`).
    ///
    /// Release: this is commit 4dcac8407fe1 ("iommu/io-pgtable-arm: Fix stage-2 concatenation
    /// with 16K", Mostafa Saleh) with b7b8a6305557 ("Fix cfg reading in
    /// arm_lpae_concat_mandatory()", which makes it read the caller's cfg instead of a copy not
    /// yet filled in); both went in through the iommu tree for the v6.14 merge window, so
    /// v6.14, v6.15 and v6.19 all have them and no `KernelBehaviour` is needed. Before them a
    /// walk starting at level 0 was concatenated whenever its pgd had ≤ 16 entries, whatever
    /// the oas, and the 16K/oas-40 case (start level 1, SL0 = 2, which needs PAMax ≥ 42 and so
    /// an SMMU with a 40-bit OAS rejects as C_BAD_STE) was missed.
    ///
    /// With the SMMUv3 driver ias = max(oas, 40 if IDR0.TTF has AArch32) and oas = IDR5.OAS,
    /// so ias = oas except on an SMMU that also walks AArch32 tables and has an OAS of 32 or
    /// 36 bits; there a 4K walk of ias 40 starts at level 0 unconcatenated (SL0 = 2), which
    /// such an SMMU (PAMax < 44) cannot walk — what v6.14+ does, modelled as it is.
    public static func stage2Geometry(granule: Granule, inputBits ias: Int, outputBits oas: Int) -> WalkGeometry? {
        let vaBits = ias - granule.shift
        guard vaBits > 0 else { return nil }
        let levels = (vaBits + granule.stride - 1) / granule.stride
        guard levels <= 4 else { return nil }
        var start = 4 - levels
        let pgdBits = vaBits - granule.stride * (levels - 1)
        if concatenationMandatory(granule: granule, startLevel: start, inputBits: ias, outputBits: oas) {
            guard 1 << pgdBits <= stage2MaxConcatenatedTables else { return nil }
            start += 1
        }
        return WalkGeometry(granule: granule, inputSize: ias, startLevel: start)
    }

    /// `arm_lpae_concat_mandatory(cfg, data)`, on the start level before concatenation.
    public static func concatenationMandatory(granule: Granule, startLevel: Int, inputBits ias: Int, outputBits oas: Int) -> Bool {
        switch (granule, startLevel) {
        case (.size16K, 0): oas == 48 || ias == 48     // R_DXBSH; R_SRKBC d)
        case (.size4K, 0): oas == 40 || oas == 42      // R_SRKBC a), c)
        case (.size16K, 1): oas == 40                  // R_SRKBC b)
        default: false
        }
    }

    // MARK: Configuration registers io-pgtable hands to the driver

    /// `arm_lpae_s1_cfg.mair`: NC 0x44 at index 0, WBRWA 0xFF at 1, DEVICE 0x04 at 2,
    /// INC_OWBRWA 0xF4 at 3 (`ARM_LPAE_MAIR_ATTR_*`, `ARM_LPAE_MAIR_ATTR_IDX_*`).
    public static let mair: UInt64 = 0xF4_04_FF_44

    /// The TCR/VTCR fields for a coherent walk: T0SZ = 64 − ias, TG = the granule, IRGN/ORGN =
    /// WBWA (1), SH = IS (3), (I)PS from oas, and for stage 2 SL0 from the start level.
    public var tableSize: Int { 64 - inputBits }
    public var physicalSizeField: UInt64 { ArmSMMUv3Features.physicalSizeField(bits: outputBits) }
    /// `cfg.oas` as the STE.S2PS / CD.IPS encoding (`physicalSizeField`).
    public var outputSize: OutputAddressSize { OutputAddressSize(field: physicalSizeField) }
    public var startLevelField: Int { WalkGeometry.sl0(granule: geometry.granule, startLevel: geometry.startLevel) }

    // MARK: PTE encoding

    static let typeTable = ArmLPAEPTE.typeTable, typePage = ArmLPAEPTE.typePage, typeBlock = ArmLPAEPTE.typeBlock

    /// `arm_lpae_prot_to_pte` plus the type bits of `arm_lpae_init_pte`.
    func leafPTE(physical: UInt64, level: Int, protection prot: IOMMUProtection) -> UInt64 {
        typealias P = ArmLPAEPTE
        var pte: UInt64 = 0
        switch format {
        case .stage1:
            pte |= P.notGlobal
            if !prot.contains(.write) && prot.contains(.read) { pte |= P.apReadOnly }
            if !prot.contains(.priv) { pte |= P.apUnprivileged }
            if prot.contains(.mmio) { pte |= 2 << P.attributeIndexShift }          // ATTR_IDX_DEV
            else if prot.contains(.cache) { pte |= 1 << P.attributeIndexShift }   // ATTR_IDX_CACHE
        case .stage2:
            if prot.contains(.read) { pte |= P.hapRead }
            if prot.contains(.write) { pte |= P.hapWrite }
            if prot.contains(.mmio) { pte |= 0x1 << P.memoryAttributesShift }      // MEMATTR_DEV
            else if prot.contains(.cache) { pte |= 0xF << P.memoryAttributesShift } // MEMATTR_OIWB
            else { pte |= 0x5 << P.memoryAttributesShift }                        // MEMATTR_NC
        }
        pte |= prot.contains(.cache) ? P.shareableInner : P.shareableOuter
        if prot.contains(.noExec) { pte |= P.executeNever }
        pte |= P.accessFlag
        pte |= level == 3 ? P.typePage : P.typeBlock
        pte |= P.outputAddressField(physical)
        return pte
    }

    func tablePTE(_ table: UInt64) -> UInt64 { ArmLPAEPTE.outputAddressField(table) | ArmLPAEPTE.typeTable }

    /// `paddr_to_iopte` (`ArmLPAEPTE.outputAddressField`).
    static func addressToPTE(_ address: UInt64) -> UInt64 { ArmLPAEPTE.outputAddressField(address) }

    /// `iopte_to_paddr` (`ArmLPAEPTE.outputAddress`).
    func pteToAddress(_ pte: UInt64) -> UInt64 { ArmLPAEPTE.outputAddress(pte, granule: geometry.granule) }

    static func isValid(_ pte: UInt64) -> Bool { pte & 1 != 0 }
    func isLeaf(_ pte: UInt64, level: Int) -> Bool { level == 3 || pte & 3 == Self.typeBlock }
    func outputAddress(_ pte: UInt64, level: Int) -> UInt64 {
        pteToAddress(pte) & ~UInt64.lowMask(geometry.granule.levelShift(level))
    }

    func blockSize(level: Int) -> UInt64 { UInt64(1) << UInt64(geometry.granule.levelShift(level)) }

    func level(forPageSize size: UInt64) -> Int? {
        for level in max(geometry.startLevel, 1)...3 where blockSize(level: level) == size { return level }
        return nil
    }

    // MARK: Memory

    func read(_ address: UInt64) throws(Errno) -> UInt64 {
        do { return try kernel.bus.read(PhysicalAddress(address), size: 8, requester: .cpu(0)) } catch { throw .EIO }
    }

    func write(_ address: UInt64, _ value: UInt64) throws(Errno) {
        do { try kernel.bus.write(PhysicalAddress(address), size: 8, value: value, requester: .cpu(0)) } catch { throw .EIO }
    }

    // MARK: Operations

    /// `arm_lpae_map_pages` for one page size: maps `count` pages of `pageSize` at iova.
    /// Returns the bytes mapped before an error, and the error.
    func mapPages(iova: UInt64, physical: UInt64, pageSize: UInt64, count: Int, protection: IOMMUProtection) -> (mapped: UInt64, error: Errno?) {
        guard let targetLevel = level(forPageSize: pageSize), pageSizeBitmap & pageSize != 0 else { return (0, .EINVAL) }
        guard (iova | physical) & (pageSize - 1) == 0 else { return (0, .EINVAL) }
        // "If no access, then nothing to do".
        guard !protection.isDisjoint(with: [.read, .write]) else { return (UInt64(count) &* pageSize, nil) }
        var mapped: UInt64 = 0
        for i in 0..<count {
            let (va, o1) = iova.addingReportingOverflow(UInt64(i) &* pageSize)
            let (pa, o2) = physical.addingReportingOverflow(UInt64(i) &* pageSize)
            guard !o1, !o2, va >> UInt64(inputBits) == 0, inputBits >= 64 || (va &+ pageSize &- 1) >> UInt64(inputBits) == 0 else { return (mapped, .ERANGE) }
            guard outputBits >= 64 || (pa &+ pageSize &- 1) >> UInt64(outputBits) == 0 else { return (mapped, .ERANGE) }
            do {
                try installLeaf(va: va, pa: pa, level: targetLevel, protection: protection)
            } catch {
                return (mapped, error)
            }
            mapped &+= pageSize
        }
        return (mapped, nil)
    }

    private func installLeaf(va: UInt64, pa: UInt64, level targetLevel: Int, protection: IOMMUProtection) throws(Errno) {
        var table = root.rawValue
        var level = geometry.startLevel
        while true {
            let slot = table &+ geometry.index(of: va, at: level) &* 8
            let pte = try read(slot)
            if level == targetLevel {
                if Self.isValid(pte) {
                    // A leaf here: "We require an unmap first".
                    if isLeaf(pte, level: level) { throw .EEXIST }
                    // A table where a block goes: `arm_lpae_init_pte` unmaps and frees the old
                    // table first (flushing the walk), then installs the block.
                    try write(slot, 0)
                    flushWalk?(va, blockSize(level: level), geometry.granule.size)
                    tablePages -= 1
                }
                try write(slot, leafPTE(physical: pa, level: level, protection: protection))
                return
            }
            if !Self.isValid(pte) {
                let next = try kernel.pages.allocate(bytes: geometry.granule.size, alignment: geometry.granule.size)
                tablePages += 1
                try write(slot, tablePTE(next.rawValue))
                table = next.rawValue
            } else if isLeaf(pte, level: level) {
                throw .EEXIST
            } else {
                table = pteToAddress(pte)
            }
            level += 1
        }
    }

    /// `arm_lpae_unmap_pages` for one page size. Each unmapped leaf is reported to
    /// `addPage` (io_pgtable_tlb_add_page) unless the gather is queued (lazy mode).
    func unmapPages(iova: UInt64, pageSize: UInt64, count: Int, queued: Bool, addPage: (UInt64, UInt64) -> Void) -> UInt64 {
        guard let targetLevel = level(forPageSize: pageSize), count > 0 else { return 0 }
        var unmapped: UInt64 = 0
        for i in 0..<count {
            let (va, overflow) = iova.addingReportingOverflow(UInt64(i) &* pageSize)
            guard !overflow, va >> UInt64(min(inputBits, 63)) == 0 else { break }
            guard let freed = try? unmapOne(va: va, targetLevel: targetLevel, queued: queued, addPage: addPage), freed else { break }
            unmapped &+= pageSize
        }
        return unmapped
    }

    private func unmapOne(va: UInt64, targetLevel: Int, queued: Bool, addPage: (UInt64, UInt64) -> Void) throws(Errno) -> Bool {
        var table = root.rawValue
        var level = geometry.startLevel
        while level <= 3 {
            let slot = table &+ geometry.index(of: va, at: level) &* 8
            let pte = try read(slot)
            guard Self.isValid(pte) else { return false }   // WARN_ON(!pte): nothing to unmap
            if level == targetLevel {
                try write(slot, 0)
                if !isLeaf(pte, level: level) {
                    // A whole table goes: flush the walk now, then free it.
                    flushWalk?(va, blockSize(level: level), geometry.granule.size)
                    tablePages -= 1
                } else if !queued {
                    addPage(va, blockSize(level: level))
                }
                return true
            }
            // A block larger than the request: no split since v6.13.
            if isLeaf(pte, level: level) { return false }
            table = pteToAddress(pte)
            level += 1
        }
        return false
    }

    /// `arm_lpae_iova_to_phys`.
    public func iovaToPhys(_ iova: UInt64) -> UInt64? {
        guard inputBits >= 64 || iova >> UInt64(inputBits) == 0 else { return nil }
        var table = root.rawValue
        var level = geometry.startLevel
        while level <= 3 {
            guard let pte = try? read(table &+ geometry.index(of: iova, at: level) &* 8), Self.isValid(pte) else { return nil }
            if isLeaf(pte, level: level) {
                return outputAddress(pte, level: level) | (iova & (blockSize(level: level) - 1))
            }
            table = pteToAddress(pte)
            level += 1
        }
        return nil
    }

    /// The leaf PTE and its level for `iova`, for tests.
    public func leaf(for iova: UInt64) -> (pte: UInt64, level: Int)? {
        guard inputBits >= 64 || iova >> UInt64(inputBits) == 0 else { return nil }
        var table = root.rawValue
        var level = geometry.startLevel
        while level <= 3 {
            guard let pte = try? read(table &+ geometry.index(of: iova, at: level) &* 8), Self.isValid(pte) else { return nil }
            if isLeaf(pte, level: level) { return (pte, level) }
            table = pteToAddress(pte)
            level += 1
        }
        return nil
    }
}
