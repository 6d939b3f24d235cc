import Testing
@testable import LinuxKernel

/// `iommu_insert_resv_region` and the sysfs file built from it.
@Suite("IOMMU reserved regions")
struct IOMMUReservedRegionTests {
    let swMSI = ReservedRegion(start: 0x0800_0000, length: 0x10_0000, protection: [.write, .noExec, .mmio], type: .swMSI)

    @Test("regions are sorted by start; sysfs prints start and last byte with the type name")
    func sortedAndPrinted() {
        var list: [ReservedRegion] = []
        let its = ReservedRegion(start: 0x0809_0000, length: 0x1_0000, protection: [.write, .noExec, .mmio], type: .msi)
        IOMMUSubsystem.insertReservedRegion(its, into: &list)
        IOMMUSubsystem.insertReservedRegion(swMSI, into: &list)
        #expect(list.map(\.description) == [
            "0x0000000008000000 0x00000000080fffff msi",
            "0x0000000008090000 0x000000000809ffff msi",
        ])
    }

    @Test("the same region from two devices of a group appears once; touching regions of one type merge")
    func sameTypeMerges() {
        var list: [ReservedRegion] = []
        IOMMUSubsystem.insertReservedRegion(swMSI, into: &list)
        IOMMUSubsystem.insertReservedRegion(swMSI, into: &list)
        #expect(list == [swMSI])
        let next = ReservedRegion(start: 0x0810_0000, length: 0x1000, protection: [.read], type: .swMSI)
        IOMMUSubsystem.insertReservedRegion(next, into: &list)
        #expect(list.count == 1)
        #expect(list.first?.end == 0x0810_0FFF, "adjacent (start == top_end + 1) merges")
    }

    @Test("overlapping regions of different types are kept apart, ordered by type at the same start")
    func differentTypesStay() {
        var list: [ReservedRegion] = []
        let direct = ReservedRegion(start: 0x0800_0000, length: 0x1000, protection: [.read, .write], type: .direct)
        IOMMUSubsystem.insertReservedRegion(swMSI, into: &list)
        IOMMUSubsystem.insertReservedRegion(direct, into: &list)
        #expect(list.map(\.type) == [.direct, .swMSI], "IOMMU_RESV_DIRECT (0) sorts before IOMMU_RESV_SW_MSI (4)")
    }
}
