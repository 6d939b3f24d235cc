import Testing
import Bus
import SMMUv3
@testable import LinuxKernel

/// io-pgtable-arm's boot-time selftest (`arm_lpae_do_selftests` / `arm_lpae_run_tests`, in
/// io-pgtable-arm.c and, in newer trees, io-pgtable-arm-selftests.c) run against the model:
/// for each page-size set (4K|2M|1G, 16K|32M, 64K|512M) and each (ias, oas) with ias ≤ oas
/// from {32, 36, 40, 42, 44, 48} ("Don't use ias > oas as it is not valid for stage-2", the OAS
/// coverage of commit 376ce8b35ed1), both ARM_64_LPAE_S1 and ARM_64_LPAE_S2:
/// - an empty table translates nothing (42, 1G + 42, 2G + 42);
/// - per page size, at iova = n × 1G: map iova → iova (READ|WRITE|NOEXEC|CACHE) succeeds, a
///   second map over it fails (-EEXIST, "We require an unmap first"), iova_to_phys(iova + 42)
///   = iova + 42;
/// - per page size: unmap returns the size, iova_to_phys is then 0, a remap (WRITE only)
///   translates again;
/// - the last largest page of the IAS, (1 << ias) − size, maps and unmaps whole ("this can
///   trigger corner cases in the concatenated page tables");
/// - the dummy TLB ops WARN when a flushed size is not in pgsize_bitmap: here every
///   `tlb_flush_walk` / `tlb_add_page` size must be in the bitmap.
/// The kernel has 4K pages, so `arm_lpae_restrict_pgsizes` keeps each set whole (16K and 64K
/// are "the smallest above PAGE_SIZE").
@Suite("io-pgtable-arm selftests (arm_lpae_do_selftests)")
struct IOPageTableARMSelftests {
    static let pageSizeSets: [UInt64] = [
        (1 << 12) | (1 << 21) | (1 << 30),   // SZ_4K | SZ_2M | SZ_1G
        (1 << 14) | (1 << 25),               // SZ_16K | SZ_32M
        (1 << 16) | (1 << 29),               // SZ_64K | SZ_512M
    ]
    static let addressSizes = [32, 36, 40, 42, 44, 48]
    static let gigabyte: UInt64 = 1 << 30
    static let readWriteNoExecCache: IOMMUProtection = [.read, .write, .noExec, .cache]

    /// (pgsize_bitmap, ias, oas) exactly as the selftest's three nested loops visit them.
    static var matrix: [(UInt64, Int, Int)] {
        var cases: [(UInt64, Int, Int)] = []
        for sizes in pageSizeSets {
            for (j, oas) in addressSizes.enumerated() {
                for ias in addressSizes[0...j] { cases.append((sizes, ias, oas)) }
            }
        }
        return cases
    }

    /// The page sizes of `bitmap`, smallest first (`for_each_set_bit`).
    static func sizes(_ bitmap: UInt64) -> [UInt64] {
        (0..<64).compactMap { bit in bitmap & (UInt64(1) << UInt64(bit)) != 0 ? UInt64(1) << UInt64(bit) : nil }
    }

    @Test("the selftest matrix: 3 page-size sets × 21 (ias, oas) with ias ≤ oas", arguments: matrix)
    func runTests(_ c: (UInt64, Int, Int)) throws {
        let (pageSizes, ias, oas) = c
        let f = try SMMUFixture.make()
        for format in [IOPageTableARM.Format.stage1, .stage2] {
            let table = try IOPageTableARM(kernel: f.kernel, format: format, inputBits: ias, outputBits: oas, smmuPageSizes: pageSizes)
            let label = "\(format) pgsize 0x\(String(pageSizes, radix: 16)) ias \(ias) oas \(oas)"
            #expect(table.pageSizeBitmap == pageSizes, "\(label): arm_lpae_restrict_pgsizes keeps the whole set")
            var flushedSizes: [UInt64] = []
            table.flushWalk = { _, size, _ in flushedSizes.append(size) }
            let addPage: (UInt64, UInt64) -> Void = { _, size in flushedSizes.append(size) }

            // Initial sanity checks: empty page tables provide no translation.
            for iova in [42, Self.gigabyte + 42, 2 * Self.gigabyte + 42] {
                #expect(table.iovaToPhys(iova) == nil, "\(label): empty table translates 0x\(String(iova, radix: 16))")
            }

            // Distinct mappings of different granule sizes.
            var iova: UInt64 = 0
            for size in Self.sizes(table.pageSizeBitmap) {
                let map = table.mapPages(iova: iova, physical: iova, pageSize: size, count: 1, protection: Self.readWriteNoExecCache)
                #expect(map.error == nil && map.mapped == size, "\(label): map 0x\(String(size, radix: 16)) at 0x\(String(iova, radix: 16))")
                // Overlapping mappings.
                let overlap = table.mapPages(iova: iova, physical: iova + size, pageSize: size, count: 1, protection: [.read, .noExec])
                #expect(overlap.error == .EEXIST && overlap.mapped == 0, "\(label): overlapping map of 0x\(String(size, radix: 16))")
                #expect(table.iovaToPhys(iova + 42) == iova + 42, "\(label): iova_to_phys after mapping 0x\(String(size, radix: 16))")
                iova += Self.gigabyte
            }

            // Full unmap, then remap with IOMMU_WRITE alone.
            iova = 0
            for size in Self.sizes(table.pageSizeBitmap) {
                #expect(table.unmapPages(iova: iova, pageSize: size, count: 1, queued: false, addPage: addPage) == size,
                        "\(label): unmap 0x\(String(size, radix: 16))")
                #expect(table.iovaToPhys(iova + 42) == nil, "\(label): unmapped 0x\(String(size, radix: 16)) still translates")
                let remap = table.mapPages(iova: iova, physical: iova, pageSize: size, count: 1, protection: [.write])
                #expect(remap.error == nil && remap.mapped == size, "\(label): remap 0x\(String(size, radix: 16))")
                #expect(table.iovaToPhys(iova + 42) == iova + 42, "\(label): iova_to_phys after remapping 0x\(String(size, radix: 16))")
                iova += Self.gigabyte
            }

            // Map/unmap the last largest supported page of the IAS.
            let largest = UInt64(1) << UInt64(63 - table.pageSizeBitmap.leadingZeroBitCount)
            let top = (UInt64(1) << UInt64(table.inputBits)) - largest
            let last = table.mapPages(iova: top, physical: top, pageSize: largest, count: 1, protection: Self.readWriteNoExecCache)
            #expect(last.error == nil && last.mapped == largest, "\(label): map the last 0x\(String(largest, radix: 16)) page of the IAS")
            #expect(table.iovaToPhys(top + 42) == top + 42, "\(label): the last page translates")
            #expect(table.unmapPages(iova: top, pageSize: largest, count: 1, queued: false, addPage: addPage) == largest,
                    "\(label): unmap the last page of the IAS")

            // dummy_tlb_flush: WARN_ON(!(size & cfg_cookie->pgsize_bitmap)).
            #expect(!flushedSizes.isEmpty && flushedSizes.allSatisfy { $0 & table.pageSizeBitmap != 0 }, "\(label): TLB flush sizes")
        }
    }

    @Test("a map with neither READ nor WRITE is a no-op that succeeds (\"If no access, then nothing to do\")")
    func noAccessIsNoOp() throws {
        let f = try SMMUFixture.make()
        let table = try IOPageTableARM(kernel: f.kernel, format: .stage2, inputBits: 40, outputBits: 40, smmuPageSizes: Self.pageSizeSets[0])
        let result = table.mapPages(iova: 0x1000, physical: 0x1000, pageSize: 0x1000, count: 1, protection: [.noExec, .cache])
        #expect(result.error == nil && result.mapped == 0x1000)
        #expect(table.iovaToPhys(0x1000) == nil)
        #expect(table.tablePages == 1, "no table was allocated")
    }
}
