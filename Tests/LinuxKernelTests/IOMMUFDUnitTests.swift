import Testing
import Bus
@testable import LinuxKernel

/// Pure iommufd logic: the object table, the sw_msi page table and the io_pagetable's interval
/// rules, without any hardware (a harness that is not booted only supplies RAM for user pages).
@Suite("iommufd units")
struct IOMMUFDUnitTests {
    final class Dummy: IOMMUFDObject {}

    @Test("object ids start at 1 and reuse the lowest free id (XA_FLAGS_ALLOC1, xa_alloc)")
    func objectIDs() throws {
        var table = IOMMUFDObjectTable()
        let a = Dummy(type: .ioas), b = Dummy(type: .ioas), c = Dummy(type: .device)
        #expect(try table.insert(a) == 1)
        #expect(try table.insert(b) == 2)
        _ = try table.remove(1)
        #expect(try table.insert(c) == 1, "id 1 is free again and xa_alloc takes the lowest")
        #expect(table.ids == [1, 2])
    }

    @Test("unknown ids and ids of another type are ENOENT; a held object is EBUSY to remove")
    func objectLookupErrors() throws {
        var table = IOMMUFDObjectTable()
        let ioas = Dummy(type: .ioas)
        let id = try table.insert(ioas)
        // iommufd_get_object: `obj->type != type` → -ENOENT, like a missing id.
        #expect(throws: Errno.ENOENT) { try table.get(99) }
        #expect(throws: Errno.ENOENT) { try table.get(id, type: .hwptPaging) }
        #expect(try table.get(id, type: .ioas) === ioas)
        ioas.holders = 1
        #expect(throws: Errno.EBUSY) { try table.remove(id) }
        #expect(table.count == 1, "a refused destroy leaves the object in place")
        #expect(throws: Errno.ENOENT) { try table.remove(42) }
    }

    @Test("sw_msi: the first doorbell page gets pgoff 0 at the window base; the same page is shared; new pages take the next pgoff")
    func swMSIPageOffsets() throws {
        var table = IOMMUFDSWMSITable()
        let first = try table.getMap(msiAddress: 0x0809_0000, swMSIStart: 0x0800_0000)
        #expect(first.pageOffset == 0 && first.id == 0 && first.iova == 0x0800_0000)
        let again = try table.getMap(msiAddress: 0x0809_0000, swMSIStart: 0x0800_0000)
        #expect(again == first, "iommufd_sw_msi_get_map returns the existing map for the same page")
        let second = try table.getMap(msiAddress: 0x0911_0000, swMSIStart: 0x0800_0000)
        #expect(second.pageOffset == 1 && second.id == 1 && second.iova == 0x0800_1000)
        // A different window numbers its pages from 0 again but shares the file's id space.
        let other = try table.getMap(msiAddress: 0x0809_0000, swMSIStart: 0xA000_0000)
        #expect(other.pageOffset == 0 && other.id == 2)
    }

    @Test("sw_msi: the 65th distinct doorbell page is EOVERFLOW (a 64-bit bitmap of ids), and the table is unchanged")
    func swMSIOverflow() throws {
        var table = IOMMUFDSWMSITable()
        for i in 0..<64 {
            let map = try table.getMap(msiAddress: 0x1000_0000 + UInt64(i) * 0x1_0000, swMSIStart: 0x0800_0000)
            #expect(map.pageOffset == UInt32(i))
        }
        let before = table
        #expect(throws: Errno.EOVERFLOW) { try table.getMap(msiAddress: 0x2000_0000, swMSIStart: 0x0800_0000) }
        #expect(table == before)
        // A page already known still resolves after the table is full.
        #expect(try table.getMap(msiAddress: 0x1000_0000, swMSIStart: 0x0800_0000).id == 0)
    }

    @Test("the sw_msi bitmaps hold ids 0…63 and ignore anything else")
    func swMSIBitmap() {
        var bitmap = SWMSIBitmap()
        bitmap.insert(0); bitmap.insert(63); bitmap.insert(64); bitmap.insert(-1)
        #expect(bitmap.ids == [0, 63])
        #expect(!bitmap.contains(64))
    }

    // MARK: io_pagetable

    static func table() throws -> (IOPageTable, UserProcess) {
        let harness = try HostHarness.make(boot: false)
        let process = UserProcess(kernel: harness.kernel)
        return (IOPageTable(process: process), process)
    }

    @Test("iopt_alloc_iova: the lowest free IOVA from PAGE_SIZE, aligned to the smaller of roundup_pow_of_two(length) and the user address's alignment")
    func allocationOrder() throws {
        let (iopt, _) = try Self.table()
        let user: UInt64 = 0x40_0000_0000  // 2^38-aligned, so the length decides the alignment
        // 0x3000 rounds up to 0x4000: the first 0x4000-aligned hole at or above 0x1000 is 0x4000.
        #expect(try iopt.mapUserPages(iova: nil, userVA: user, length: 0x3000, protection: [.read]) == 0x4000)
        // 0x1000 needs 0x1000 alignment: the hole [0x1000, 0x3FFF] below the first area.
        #expect(try iopt.mapUserPages(iova: nil, userVA: user, length: 0x1000, protection: [.read]) == 0x1000)
        // A user address aligned to 0x2000 only caps a 0x4000 mapping's alignment at 0x2000.
        #expect(try iopt.mapUserPages(iova: nil, userVA: user + 0x2000, length: 0x4000, protection: [.read]) == 0x8000)
        #expect(iopt.areas.map(\.start) == [0x1000, 0x4000, 0x8000])
    }

    @Test("a fixed IOVA overlapping a mapping is EEXIST, touching a reserved range EINVAL, wrapping EOVERFLOW; nothing changes")
    func fixedIOVAErrors() throws {
        let (iopt, _) = try Self.table()
        let owner = Dummy(type: .device)
        _ = try iopt.mapUserPages(iova: 0x10_0000, userVA: 0x40_0000_0000, length: 0x2000, protection: [.read, .write])
        try iopt.reserve(start: 0x0800_0000, last: 0x080F_FFFF, owner: owner)
        let areas = iopt.areas, reserved = iopt.reservedRanges
        #expect(throws: Errno.EEXIST) { try iopt.mapUserPages(iova: 0x10_1000, userVA: 0x40_0000_0000, length: 0x2000, protection: [.read]) }
        #expect(throws: Errno.EINVAL) { try iopt.mapUserPages(iova: 0x07FF_F000, userVA: 0x40_0000_0000, length: 0x2000, protection: [.read]) }
        #expect(throws: Errno.EOVERFLOW) { try iopt.mapUserPages(iova: UInt64.max - 0xFFF, userVA: 0x40_0000_0000, length: 0x2000, protection: [.read]) }
        #expect(throws: Errno.EINVAL) { try iopt.mapUserPages(iova: 0x20_0000, userVA: 0x40_0000_0000, length: 0, protection: [.read]) }
        #expect(iopt.areas == areas && iopt.reservedRanges == reserved)
        // Reserving over a mapping is EADDRINUSE (iopt_reserve_iova).
        #expect(throws: Errno.EADDRINUSE) { try iopt.reserve(start: 0x10_1000, last: 0x10_1FFF, owner: owner) }
    }

    @Test("unmap must cover whole mappings: a range cutting the first mapping is ENOENT and unmaps nothing")
    func unmapCoverage() throws {
        let (iopt, _) = try Self.table()
        _ = try iopt.mapUserPages(iova: 0x10_0000, userVA: 0x40_0000_0000, length: 0x4000, protection: [.read])
        _ = try iopt.mapUserPages(iova: 0x20_0000, userVA: 0x40_0000_0000, length: 0x1000, protection: [.read])
        #expect(throws: Errno.ENOENT) { try iopt.unmap(iova: 0x10_1000, length: 0x1000) }
        #expect(iopt.areas.count == 2)
        #expect(throws: Errno.EINVAL) { try iopt.unmap(iova: 0x10_0000, length: 0) }
        #expect(try iopt.unmap(iova: 0x30_0000, length: 0x1000) == 0, "a range with no mapping unmaps 0 bytes")
        #expect(try iopt.unmap(iova: 0x10_0000, length: 0x11_0000) == 0x5000)
        #expect(iopt.areas.isEmpty)
    }

    @Test("iopt_table_enforce_dev_resv_regions: SW_MSI with a hardware MSI region, or two SW_MSI, is EINVAL and reserves nothing")
    func reservedRegionCombinations() throws {
        let (iopt, _) = try Self.table()
        let device = Dummy(type: .device)
        let swMSI = ReservedRegion(start: 0x0800_0000, length: 0x10_0000, protection: [.write, .noExec, .mmio], type: .swMSI)
        let hwMSI = ReservedRegion(start: 0x0809_0000, length: 0x1_0000, protection: [.write, .noExec, .mmio], type: .msi)
        let relaxable = ReservedRegion(start: 0x1000_0000, length: 0x1000, protection: [.read], type: .directRelaxable)
        var start = UInt64.max
        #expect(throws: Errno.EINVAL) { try iopt.enforceDeviceReservedRegions([swMSI, hwMSI], owner: device, swMSIStart: &start, recordSWMSI: true) }
        #expect(iopt.reserved.isEmpty)
        #expect(throws: Errno.EINVAL) { try iopt.enforceDeviceReservedRegions([swMSI, swMSI], owner: device, swMSIStart: &start, recordSWMSI: true) }
        #expect(iopt.reserved.isEmpty)
        try iopt.enforceDeviceReservedRegions([swMSI, relaxable], owner: device, swMSIStart: &start, recordSWMSI: true)
        #expect(start == 0x0800_0000, "sw_msi_start records the SW_MSI base")
        #expect(iopt.reservedRanges == [0x0800_0000...0x080F_FFFF], "DIRECT_RELAXABLE is skipped")
        // A hardware MSI region alone is reserved but leaves sw_msi_start at PHYS_ADDR_MAX.
        let (other, _) = try Self.table()
        var none = UInt64.max
        try other.enforceDeviceReservedRegions([hwMSI], owner: device, swMSIStart: &none, recordSWMSI: true)
        #expect(none == .max)
        #expect(other.reservedRanges == [0x0809_0000...0x0809_FFFF])
    }

    @Test("property: allocated IOVAs never overlap each other or a reserved range, and are never 0", arguments: [1, 2, 3])
    func allocationProperty(seed: UInt64) throws {
        let (iopt, _) = try Self.table()
        var rng = SeededGenerator(seed: seed)
        let owner = Dummy(type: .device)
        try iopt.reserve(start: 0x0800_0000, last: 0x080F_FFFF, owner: owner)
        for _ in 0..<300 {
            let pages = UInt64.random(in: 1...64, using: &rng)
            let user = 0x40_0000_0000 &+ UInt64.random(in: 0..<1024, using: &rng) * 0x1000
            if Bool.random(using: &rng), let victim = iopt.areas.randomElement(using: &rng) {
                _ = try iopt.unmap(iova: victim.start, length: victim.length)
            }
            let iova = try iopt.mapUserPages(iova: nil, userVA: user, length: pages * 0x1000, protection: [.read])
            #expect(iova != 0)
            #expect(iova % 0x1000 == 0)
        }
        let sorted = iopt.areas.sorted { $0.start < $1.start }
        for (a, b) in zip(sorted, sorted.dropFirst()) { #expect(a.last < b.start) }
        for area in sorted { #expect(area.last < 0x0800_0000 || area.start > 0x080F_FFFF) }
    }
}
