import Bus
import Testing
@testable import LinuxKernel

/// irq-gic-v2m.c / irq-gic-v3-mbi.c allocation and compose, without a machine.
@Suite("GICv2m and MBI MSI domains")
struct GICSPIMSIDomainTests {
    func v2m(start: UInt32 = 80, count: UInt32 = 64, offset: UInt32? = nil) -> GICSPIMSIDomain.Range {
        GICSPIMSIDomain.Range(kind: .v2m, path: "/v2m", doorbell: PhysicalAddress(0x0802_0040), spiStart: start, spiCount: count, spiOffset: offset)
    }

    @Test("bitmap_find_free_region: runs of 2^get_count_order(n) SPIs, naturally aligned, first fit; freed SPIs are reused")
    func allocation() throws {
        let domain = GICSPIMSIDomain(kind: .v2m, ranges: [v2m()])
        #expect(try domain.allocate(count: 1).hwirq == 80)
        #expect(try domain.allocate(count: 3).hwirq == 84, "4 SPIs, 4-aligned offset: 80 is taken, so offset 4")
        #expect(try domain.allocate(count: 1).hwirq == 81)
        let range = domain.ranges[0]
        domain.free(range: range, hwirq: 80, count: 1)
        #expect(try domain.allocate(count: 1).hwirq == 80)
        #expect(range.allocated == [80, 81, 84, 85, 86, 87])
    }

    @Test("a full frame moves on to the next; with none left the alloc is -ENOSPC")
    func exhaustion() throws {
        let first = v2m(start: 80, count: 2)
        let second = GICSPIMSIDomain.Range(kind: .v2m, path: "/v2m1", doorbell: PhysicalAddress(0x0803_0040), spiStart: 200, spiCount: 2, spiOffset: nil)
        let domain = GICSPIMSIDomain(kind: .v2m, ranges: [first, second])
        #expect(try domain.allocate(count: 2).range === first)
        let next = try domain.allocate(count: 1)
        #expect(next.range === second && next.hwirq == 200)
        #expect(throws: Errno.ENOSPC) { try domain.allocate(count: 2) }
    }

    @Test("compose: address = frame + 0x40, data = the SPI; X-Gene's erratum subtracts spi_start, NS2's 32")
    func compose() {
        #expect(v2m().composePhysical(hwirq: 82) == MSIMessage(address: 0x0802_0040, data: 82))
        #expect(v2m(offset: 80).composePhysical(hwirq: 82).data == 2)
        #expect(v2m(offset: 32).composePhysical(hwirq: 82).data == 50)
    }

    @Test("get_count_order rounds up to a power of two")
    func countOrder() {
        #expect([1, 2, 3, 4, 5, 32, 33].map(GICSPIMSIDomain.countOrder) == [0, 1, 2, 2, 3, 5, 6])
    }
}
