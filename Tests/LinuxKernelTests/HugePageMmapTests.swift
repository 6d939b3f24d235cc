import Testing
import Bus
@testable import LinuxKernel

/// `mmap` with MADV_HUGEPAGE (what QEMU asks for guest RAM): whole HPAGE_SIZE pieces are
/// physically contiguous and HPAGE_SIZE aligned, the tail is small pages, and without the advice
/// nothing is promised beyond PAGE_SIZE.
@Suite("mmap with transparent huge pages")
struct HugePageMmapTests {
    @Test("5 MiB + 4 KiB with MADV_HUGEPAGE: two 2 MiB huge pages, each contiguous and 2 MiB aligned, then 257 small pages")
    func hugePieces() throws {
        let harness = try HostHarness.make(boot: false)
        let process = UserProcess(kernel: harness.kernel)
        let huge = harness.kernel.hugePageSize
        #expect(huge == 0x20_0000, "4K pages: PMD_SIZE is 2 MiB")
        let length: UInt64 = 0x50_1000
        let va = try process.mmap(length: length, hugePages: true)
        for piece in 0..<2 {
            let base = try #require(process.physicalPage(of: va + UInt64(piece) * huge))
            #expect(base.rawValue & (huge - 1) == 0, "huge page \(piece) is 2 MiB aligned")
            for offset in stride(from: UInt64(0), to: huge, by: 0x1000) {
                #expect(process.physicalPage(of: va + UInt64(piece) * huge + offset)?.rawValue == base.rawValue + offset)
            }
        }
        #expect(process.physicalPage(of: va + length - 1) != nil)
        #expect(process.physicalPage(of: va + length + 0x1000) == nil, "the one-page hole after the VMA")
    }
}
