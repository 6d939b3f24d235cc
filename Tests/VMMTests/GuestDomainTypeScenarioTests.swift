import Testing
import Bus
import LinuxKernel
import PCI
import SMMUv3
@testable import VMM

/// Events `guest-domain identity|dma|detach` under an accelerated vSMMU with a v6.15 host: the
/// guest kernel writes its group's sysfs `type` (`iommu_group_store_type`) or unbinds its
/// driver, its arm-smmu-v3 driver rewrites the STE through the vSMMU's command queue, and the
/// VMM turns the guest STE into a new nested HWPT (`installGuestSTE`).
///
/// Expected values: the guest function is 00:01.0 (vSID 0x8), the host function 00:01.0
/// (pSID 0x8); a guest identity domain is a bypass vSTE, which the host makes the stage-2-only
/// STE of the nest parent (`arm_smmu_make_nested_domain_ste`: Config = S2, the vIOMMU's VMID);
/// a guest DMA domain is an S1 vSTE, which becomes Config = nested. With a v6.15 host the
/// physical MSI-X entries hold 0x0800_0040 (the SW_MSI page in the parent): reachable through
/// stage 2 alone (identity guest), but not through a guest stage 1 that does not map it (DMA
/// guest: the seed's stage-1 fault, VMMScenarioTests.nestedV615).
@Suite("Guest default-domain changes through the vSMMU", .serialized)
struct GuestDomainTypeScenarioTests {
    static let vsid = StreamID(0x8)

    /// The host's physical STE for the passthrough function.
    static func hostSTE(_ h: VMMHarness) throws -> StreamTableEntry? {
        try h.host.smmuDrivers.first?.streamTableEntry(for: StreamID(UInt32(VMMHarness.hostRID.rawValue)))
    }

    @Test("guest-domain with the driver bound: EPERM (owner_cnt = 1), and nothing reaches the vSMMU")
    func boundRefuses() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3)
        let counter = VMMScenarioTests.Counter()
        _ = try GuestAdversary.bindDriver(h, counter: counter)
        let g = try #require(h.guestDevice)
        let group = try #require(h.guest.iommu.group(of: g.device))
        let vsmmu = try #require(h.vmm.vsmmu)
        let consumed = vsmmu.consumedCommands.count
        #expect(throws: Errno.EPERM) { try h.guest.iommu.setGroupType(group, "identity") }
        #expect(vsmmu.consumedCommands.count == consumed)
        #expect(h.guest.iommu.groupTypeName(group) == "DMA")
    }

    @Test("guest-domain detach (unbind): owner_cnt drops to 0, but the guest STE, the nested HWPT and the host STE stay as they were; no STE or CD command reaches the vSMMU; the MSI pages dma-iommu mapped stay in the domain")
    func detachKeepsEverything() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3)
        let counter = VMMScenarioTests.Counter()
        _ = try GuestAdversary.bindDriver(h, counter: counter)
        let g = try #require(h.guestDevice)
        let group = try #require(h.guest.iommu.group(of: g.device))
        let vsmmu = try #require(h.vmm.vsmmu)
        let guestSTE = try vsmmu.guestStreamTableEntry(Self.vsid)
        let hostSTE = try Self.hostSTE(h)
        let hwpt = h.vmm.nestedHWPTID
        let domain = try #require(group.domain)
        guard case .dmaIOVA(let cookie) = domain.cookie else { Issue.record("no IOVA cookie"); return }
        let msiPages = cookie.msiPages.map(\.iova)
        #expect(!msiPages.isEmpty, "its_irq_domain_alloc → iommu_dma_prepare_msi mapped the vITS doorbell page")
        let consumed = vsmmu.consumedCommands.count
        try GuestAdversary.unbindDriver(h)
        #expect(group.ownerCount == 0 && !h.guest.pci.isDriverBound(g) && !g.isBusMaster)
        #expect(group.domain === domain)
        #expect(try vsmmu.guestStreamTableEntry(Self.vsid) == guestSTE)
        #expect(try Self.hostSTE(h) == hostSTE && h.vmm.nestedHWPTID == hwpt)
        let stCommands = vsmmu.consumedCommands.dropFirst(consumed).filter {
            switch $0 { case .cfgiSTE, .cfgiSTERange, .cfgiCD, .cfgiCDAll: true; default: false }
        }
        #expect(stCommands.isEmpty)
        #expect(cookie.msiPages.map(\.iova) == msiPages)
        for page in msiPages { #expect(h.guest.iommu.iovaToPhys(domain, page) == GuestMemoryMap.virt.msiGPA & ~0xFFF) }
    }

    @Test("guest-domain identity then dma: identity makes the guest STE bypass (CFGI_STE to the vSMMU), the VMM installs a new nested HWPT, the host STE becomes the parent's S2-only STE, and with the driver bound again every vector is delivered; back to DMA the S1 vSTE returns, the host STE is nested again and the MSIs fault at stage 1 as in nestedV615")
    func identityThenDMA() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3)
        var counter = VMMScenarioTests.Counter()
        _ = try GuestAdversary.bindDriver(h, counter: counter)
        let g = try #require(h.guestDevice)
        let group = try #require(h.guest.iommu.group(of: g.device))
        let vsmmu = try #require(h.vmm.vsmmu)
        let hostSMMU = try #require(h.host.smmuDrivers.first)
        #expect(try Self.hostSTE(h)?.config == .nested)
        try GuestAdversary.unbindDriver(h)

        // identity
        let consumed = vsmmu.consumedCommands.count
        try h.guest.iommu.setGroupType(group, "identity")
        #expect(h.guest.iommu.groupTypeName(group) == "identity")
        #expect(try vsmmu.guestStreamTableEntry(Self.vsid).config == .bypass)
        #expect(vsmmu.consumedCommands.dropFirst(consumed).contains(.cfgiSTE(Self.vsid, leaf: true)))
        // The hitless writer's break-before-make steps each end in CFGI_STE, so the VMM
        // installs (and iommufd numbers, reusing freed ids) one HWPT per step; the last one
        // holds the bypass vSTE.
        let nestedID = try #require(h.vmm.nestedHWPTID)
        let nested = try #require(h.vmm.iommufd.object(nestedID) as? IOMMUFDHWPTNested)
        let vste = try #require(nested.domain.driverData as? ArmSMMUv3NestedDomain).ste
        #expect(vste.0.bits(3, 1) == StreamConfig.bypass.rawValue && vste.0 & 1 == 1, "the nested domain keeps the guest's bypass vSTE")
        let s2Only = try #require(try Self.hostSTE(h))
        #expect(s2Only.config == .stage2)
        let viommuID = try #require(h.vmm.viommuID)
        let viommu = try #require(h.vmm.iommufd.object(viommuID) as? IOMMUFDVIOMMU)
        #expect(s2Only.s2VMID == viommu.vsmmu.vmid)
        counter = VMMScenarioTests.Counter()
        let irqs = try GuestAdversary.bindDriver(h, counter: counter)
        for (v, entry) in h.vmm.function.entries.enumerated() {
            #expect(entry.address == GuestMemoryMap.virt.msiGPA, "vector \(v): identity, the guest writes its physical doorbell")
        }
        for v in 0..<irqs.count {
            #expect(h.fire(v, guestCPUs: 2) == (1, 1), "vector \(v) delivered")
        }
        #expect(try hostSMMU.serviceEventQueue().isEmpty)
        // DMA: dma-direct in the guest, bus address = GPA, through the host's stage 2 only.
        let buffer = try h.guest.pages.allocate(bytes: 0x1000)
        let dmaAddress = try h.guest.dma.map(device: g.device, physical: buffer, size: 0x1000, direction: .fromDevice)
        #expect(dmaAddress.rawValue == buffer.rawValue)
        #expect(h.function.dma(.write, address: dmaAddress, size: 8, data: 0x1D).result?.status == .completed)
        let hostPage = try #require(h.hostPhysical(ofGuest: buffer.rawValue))
        #expect(h.machine.bus.ram.read(hostPage.rawValue, size: 8) == 0x1D)
        try GuestAdversary.unbindDriver(h)

        // back to DMA
        try h.guest.iommu.setGroupType(group, "DMA")
        #expect(try vsmmu.guestStreamTableEntry(Self.vsid).config == .stage1)
        #expect(try Self.hostSTE(h)?.config == .nested)
        counter = VMMScenarioTests.Counter()
        _ = try GuestAdversary.bindDriver(h, counter: counter)
        #expect(h.fire(0, guestCPUs: 2) == (0, 0))
        let event = try #require(try hostSMMU.serviceEventQueue().first)
        #expect(event.eventID == 0x10 && event.inputAddress == 0x0800_0040 && !event.stage2, "the seed's stage-1 fault")
        #expect(h.vmm.pollVirtualEvents() == 1, "a stage-1 event of a vmaster goes to the VM")
    }

    @Test("guest DMA → DMA-FQ with the driver bound: no STE change at all (the same domain gets a flush queue), so the vSMMU sees no CFGI; a guest unmap then sends no TLBI until the flush-queue timeout, when TLBI_NH_ASID reaches the host with the vIOMMU's VMID")
    func flushQueueInPlace() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3)
        let counter = VMMScenarioTests.Counter()
        _ = try GuestAdversary.bindDriver(h, counter: counter)
        let g = try #require(h.guestDevice)
        let group = try #require(h.guest.iommu.group(of: g.device))
        let vsmmu = try #require(h.vmm.vsmmu)
        let hostSMMU = try #require(h.host.smmuDrivers.first)
        let hwpt = h.vmm.nestedHWPTID
        let buffer = try h.guest.pages.allocate(bytes: 0x1000)
        let iova = try h.guest.dma.map(device: g.device, physical: buffer, size: 0x1000, direction: .fromDevice)
        #expect(h.function.dma(.write, address: iova, size: 8, data: 0).result?.status == .completed, "the host SMMU's TLB now holds the translation")
        let consumed = vsmmu.consumedCommands.count
        try h.guest.iommu.setGroupType(group, "DMA-FQ")
        #expect(vsmmu.consumedCommands.count == consumed && h.vmm.nestedHWPTID == hwpt)
        let hostCommands = hostSMMU.commandLog.count
        h.guest.dma.unmap(device: g.device, iova: iova, size: 0x1000)
        #expect(vsmmu.consumedCommands.count == consumed, "lazy: nothing sent")
        #expect(h.function.dma(.write, address: iova, size: 8, data: 1).result?.status == .completed,
                "the stale IOTLB entry still translates until the flush (the lazy-mode window)")
        h.guest.dma.flushQueueTimeout(device: g.device)
        let viommuID = try #require(h.vmm.viommuID)
        let viommu = try #require(h.vmm.iommufd.object(viommuID) as? IOMMUFDVIOMMU)
        let flushed = hostSMMU.commandLog.dropFirst(hostCommands).contains {
            if case .tlbiNHASID(let vmid, _) = $0 { return vmid == viommu.vsmmu.vmid }
            return false
        }
        #expect(flushed, "fq_flush_timeout → flush_iotlb_all → TLBI_NH_ASID, VMID forced by arm_vsmmu_convert_user_cmd")
        #expect(h.function.dma(.write, address: iova, size: 8, data: 2).result?.status == .aborted)
    }
}
