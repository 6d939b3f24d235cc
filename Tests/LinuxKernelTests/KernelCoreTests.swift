import Testing
import Bus
@testable import LinuxKernel

@Suite("Kernel core")
struct KernelCoreTests {
    @Test("msi_msg_set_addr keeps the doorbell's in-page offset under the IOVA page, or the address itself without a shift")
    func msiMessageSetAddress() {
        // include/linux/msi.h (v6.15): address = (iommu_msi_iova << shift) | (msi_addr & (2^shift − 1)).
        let descriptor = MSIDescriptor(index: 0)
        var message = MSIMessage()
        descriptor.setAddress(of: &message, to: 0x0809_0040)
        #expect(message.address == 0x0809_0040, "no shift: the physical doorbell")
        descriptor.setIOMMUMSIIOVA(0xFFFF_F000, shift: 12)
        descriptor.setAddress(of: &message, to: 0x0809_0040)
        #expect(message.address == 0xFFFF_F040)
        descriptor.setIOMMUMSIIOVA(0x0800_0000, shift: 16)
        descriptor.setAddress(of: &message, to: 0x0809_0040)
        #expect(message.address == 0x0800_0040, "64K page: offset 0x0040 within the 0x0809_0000 page")
    }

    @Test("reserved regions print as sysfs reserved_regions lines")
    func reservedRegionSysfs() {
        let region = ReservedRegion(start: 0x0800_0000, length: 0x10_0000, protection: [.write, .noExec, .mmio], type: .swMSI)
        #expect(region.description == "0x0000000008000000 0x00000000080fffff msi")
    }

    @Test("the page allocator hands out zeroed, aligned pages from RAM and fails with ENOMEM past its end")
    func pages() throws {
        let bus = SystemBus()
        try bus.addRAM(base: PhysicalAddress(0x4000_0000), size: 0x10_0000)
        bus.ram.write(0x4000_1000, size: 8, value: 0xFFFF)
        let pages = PhysicalPages(bus: bus, ranges: [(0x4000_0000, 0x10_0000)])
        #expect(try pages.allocate(bytes: 1) == PhysicalAddress(0x4000_0000))
        let second = try pages.allocate(bytes: 0x1000)
        #expect(second == PhysicalAddress(0x4000_1000))
        #expect(bus.ram.read(0x4000_1000, size: 8) == 0, "dirty memory is zeroed on allocation")
        #expect(try pages.allocate(bytes: 0x1000, alignment: 0x1_0000) == PhysicalAddress(0x4001_0000))
        #expect(throws: Errno.ENOMEM) { try pages.allocate(bytes: 0x10_0000) }
    }

    @Test("a request that fits nowhere takes nothing: the next smaller one is served where it would have been (arm_smmu_init_one_queue's halving relies on it)")
    func failedAllocationTakesNothing() throws {
        let bus = SystemBus()
        try bus.addRAM(base: PhysicalAddress(0x4000_0000), size: 0x10_0000)
        try bus.addRAM(base: PhysicalAddress(0x5000_0000), size: 0x2_0000)
        let pages = PhysicalPages(bus: bus, ranges: [(0x4000_0000, 0x10_0000), (0x5000_0000, 0x2_0000)])
        #expect(try pages.allocate(bytes: 0x1000) == PhysicalAddress(0x4000_0000))
        #expect(throws: Errno.ENOMEM) { try pages.allocate(bytes: 0x10_0000, alignment: 0x10_0000) }
        #expect(try pages.allocate(bytes: 0x8_0000, alignment: 0x8_0000) == PhysicalAddress(0x4008_0000))
        // Bottom-up, never reusing the alignment hole: range 0 is used up, range 1 comes next.
        #expect(try pages.allocate(bytes: 0x1000) == PhysicalAddress(0x5000_0000))
    }
}
