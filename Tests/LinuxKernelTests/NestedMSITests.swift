import Testing
import Bus
import PCI
import SMMUv3
@testable import LinuxKernel

/// MSIs of a device attached to a nested HWPT, per host kernel version.
///
/// v6.15 (`iommu_dma_prepare_msi` → `iommufd_sw_msi`): the nested domain carries iommufd's
/// cookie (hw_pagetable.c `iommufd_viommu_alloc_hwpt_nested` sets `cookie_type =
/// IOMMU_COOKIE_IOMMUFD`), and `iommufd_sw_msi` maps the doorbell page into the PARENT
/// (`find_hwpt_paging`): IPA 0x0800_0000 → 0x0809_0000, message address 0x0800_0040.
///
/// v6.14 (the `legacy` strategy): dma-iommu.c `iommu_dma_prepare_msi` took
/// `iommu_get_domain_for_dev(dev)` — the NESTED domain — and with no `iova_cookie` on it set
/// `desc->iommu_cookie = NULL` and returned 0, so `iommu_dma_compose_msi_msg` left the ITS's
/// physical doorbell 0x0809_0040 in the message. The MSI cookie iommufd's
/// `iommufd_group_setup_msi` had put on the parent (`iommu_get_msi_cookie(hwpt_paging->
/// common.domain, sw_msi_start)`) was never consulted. (Proposals to look through a nested
/// domain — `iommu_dma_get_msi_mapping_domain`, `iommu_get_unmanaged_domain` — were posted but
/// not merged.) The device's write of 0x0809_0040 is a guest IOVA: stage 1 faults unless the
/// guest mapped it, and then stage 2 faults because the host never mapped that IPA.
@Suite("iommufd nesting: MSIs of a nested device (v6.15 sw_msi in the parent, v6.14 physical doorbell)", .serialized)
struct NestedMSITests {
    typealias F = NestedFixture

    /// VFIO_DEVICE_SET_IRQS for vector 0 with a fresh eventfd.
    static func enableVector0(_ f: F) throws -> EventFD {
        let (fd, eventfd) = f.process.eventfd()
        try f.file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        return eventfd
    }

    /// The function's MSI-X entry 0 address as the hardware holds it.
    static func msixAddress(_ f: F) throws -> UInt64 {
        let pdev = try #require(f.kernel.pci.device(RequesterID(bus: 0, device: 1, function: 0)))
        let base = try #require(try pdev.msixTableAddress).rawValue
        let lo = try f.kernel.bus.read(PhysicalAddress(base), size: 4, requester: .cpu(0))
        let hi = try f.kernel.bus.read(PhysicalAddress(base + 4), size: 4, requester: .cpu(0))
        return hi << 32 | lo
    }

    /// Maps one more 4K guest page outside the `gIOVA` 2 MiB block: an extra level-3 table at
    /// guest RAM + 0x5000 hung under level-2 index (iova >> 21) & 0x1FF (level 0/1 index 0).
    static func mapExtraGuestPage(_ f: F, iova: UInt64, to ipa: UInt64) throws {
        let l3 = F.guestBase + 0x5000
        try f.guestWrite64(F.tableIPAs[2] + ((iova >> 21) & 0x1FF) * 8, l3 | 0b11)
        try f.guestWrite64(l3 + ((iova >> 12) & 0x1FF) * 8, F.pageDescriptor(ipa))
    }

    @Test("v6.15: the nested device's MSI-X address is 0x0800_0040, mapped in the parent S2 at 0x0800_0000 → 0x0809_0000")
    func v615SoftwareMSIInParent() throws {
        let f = try F.make()
        try f.buildGuestStage1()
        let nestedID = try f.attachNested(F.translatingVSTE)
        let nested = try #require(f.iommufd.object(nestedID) as? IOMMUFDHWPTNested)
        #expect(nested.domain.cookieType == .iommufd)
        let eventfd = try Self.enableVector0(f)
        #expect(try Self.msixAddress(f) == 0x0800_0040)
        let parent = try #require(f.iommufd.object(f.parent) as? IOMMUFDHWPTPaging)
        #expect(f.kernel.iommu.iovaToPhys(parent.domain, 0x0800_0000) == 0x0809_0000, "sw_msi installed in the parent")
        #expect(parent.presentSWMSI.ids == [0])

        // The write is a guest IOVA: without a guest mapping of 0x0800_0000, stage 1 faults.
        _ = f.function.raise(vector: 0)
        let faults = try f.smmu.serviceEventQueue()
        #expect(faults.first?.eventID == 0x10 && faults.first?.stage2 == false && faults.first?.inputAddress == 0x0800_0040)
        #expect(eventfd.count == 0)

        // A guest whose stage 1 maps that window 1:1 (gIOVA 0x0800_0000 → IPA 0x0800_0000):
        // S1 → IPA 0x0800_0040 → the parent's sw_msi page → GITS_TRANSLATER → LPI → eventfd.
        try Self.mapExtraGuestPage(f, iova: 0x0800_0000, to: 0x0800_0000)
        _ = f.function.raise(vector: 0)
        _ = f.kernel.irq.handleInterrupts(cpu: 0)
        #expect(eventfd.count == 1)
    }

    @Test("v6.14 (legacy): the nested domain has no cookie, the host programs the physical doorbell 0x0809_0040 and the MSI faults at stage 1 (S2=0, CLASS=IN) — in the host event queue only (no vmaster before v6.15)")
    func v614PhysicalDoorbellFaultsAtStage1() throws {
        let f = try F.make(configuration: KernelConfiguration(version: .v6_14))
        try f.buildGuestStage1()
        let nestedID = try f.attachNested(F.translatingVSTE)
        let nested = try #require(f.iommufd.object(nestedID) as? IOMMUFDHWPTNested)
        #expect(nested.domain.cookieType == .none, "v6.14 iommufd gave nested domains no cookie")
        let parent = try #require(f.iommufd.object(f.parent) as? IOMMUFDHWPTPaging)
        #expect(parent.hasMSICookie, "iommufd_group_setup_msi put the MSI cookie on the parent")
        let (queue, _) = try f.iommufd.veventqAlloc(viommuID: f.viommu)
        let eventfd = try Self.enableVector0(f)
        #expect(try Self.msixAddress(f) == 0x0809_0040, "the ITS's physical GITS_TRANSLATER")
        #expect(f.kernel.iommu.iovaToPhys(parent.domain, 0x0800_0000) == nil, "nothing mapped in the parent")

        _ = f.function.raise(vector: 0)
        _ = f.kernel.irq.handleInterrupts(cpu: 0)
        #expect(eventfd.count == 0, "nothing reaches the ITS")
        let host = try f.smmu.serviceEventQueue()
        #expect(host.count == 1)
        let event = try #require(host.first)
        #expect(event.eventID == 0x10 && event.streamID == F.pSID)
        #expect(event.inputAddress == 0x0809_0040, "InputAddr = the programmed address")
        #expect(!event.stage2 && event.faultClass == 0b10, "S2 = 0, CLASS = IN")
        #expect(!event.read, "a write")
        // v6.14 has no vmaster (KernelBehaviour.nestedVMaster, f0ea207ed781, v6.15): the
        // fault stays in the host's queue and nothing reaches the vEVENTQ.
        #expect(try f.iommufd.veventqRead(queue).isEmpty, "no vmaster on v6.14: the VM is not told")
    }

    @Test("v6.14: a guest that maps gIOVA 0x0809_0000 to its vITS IPA moves the fault to stage 2 — not the guest's to see")
    func v614GuestMappedDoorbellFaultsAtStage2() throws {
        let f = try F.make(configuration: KernelConfiguration(version: .v6_14))
        try f.buildGuestStage1()
        try f.attachNested(F.translatingVSTE)
        let (queue, _) = try f.iommufd.veventqAlloc(viommuID: f.viommu)
        let eventfd = try Self.enableVector0(f)
        // QEMU virt puts the guest's ITS at 0x0808_0000 too, so its doorbell IPA is 0x0809_0000.
        try Self.mapExtraGuestPage(f, iova: 0x0809_0000, to: 0x0809_0000)
        _ = f.function.raise(vector: 0)
        #expect(eventfd.count == 0)
        let host = try f.smmu.serviceEventQueue()
        let event = try #require(host.first)
        #expect(event.eventID == 0x10 && event.stage2, "stage 2 has no IPA 0x0809_0000: the host never mapped it")
        #expect(event.ipa == IPA(0x0809_0000), "the IPA field holds the faulting IPA's page")
        #expect(try f.iommufd.veventqRead(queue).isEmpty, "S2 faults are not forwarded (arm_smmu_handle_event: !event->s2)")
        #expect(f.smmu.forwardedEvents == 0)
    }
}
