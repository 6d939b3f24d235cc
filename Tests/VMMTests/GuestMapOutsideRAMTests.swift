import Testing
import Bus
import LinuxKernel
import PCI
import SMMUv3
@testable import VMM

/// Event `guest-map-outside-ram`: the guest points a stage-1 IOVA of its device's DMA domain at
/// an IPA that is not its RAM — with `iommu_map` on the domain, or the DMA API's
/// `dma_map_resource` — and the device writes there. Neither Linux path checks for RAM, so
/// the guest's own page tables accept it; containment is the host's stage 2 (the nest parent,
/// which maps guest RAM only, plus the v6.15 SW_MSI page).
///
/// Expected values: guest RAM is [0x4000_0000, +16 MiB) (VMM default, QEMU virt base), so IPA
/// 0x5000_0000 is outside it and outside every window the VMM mapped into the IOAS; stage 2
/// has no entry → F_TRANSLATION (0x10) with S2 = 1, CLASS = IN (0b10, the input IPA itself,
/// not a table walk), IPA = 0x5000_0000 (SMMUv3 §7.3.12). `arm_smmu_handle_event` hands only
/// stage-1 events (S2 = 0) of a vmaster to the vIOMMU, so this one is dumped by the host and
/// the guest's vEVENTQ stays empty.
@Suite("Guest maps a stage-1 IOVA outside its RAM", .serialized)
struct GuestMapOutsideRAMTests {
    static let outsideIPA: UInt64 = 0x5000_0000

    static func boundGuest() throws -> (VMMHarness, PCIDevice) {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3)
        let counter = VMMScenarioTests.Counter()
        _ = try GuestAdversary.bindDriver(h, counter: counter)
        return (h, try #require(h.guestDevice))
    }

    /// Writes 8 bytes at `iova` from the device and checks the stage-2 fault, the host-only
    /// event and that the write changed no host frame but the host SMMU's event queue.
    static func expectStage2Fault(_ h: VMMHarness, iova: UInt64, ipa: UInt64) throws {
        let hostSMMU = try #require(h.host.smmuDrivers.first)
        _ = try hostSMMU.serviceEventQueue()
        let forwarded = hostSMMU.forwardedEvents
        let eventQueue = try GuestAdversary.hostEventQueueFrames(h)
        let watch = GuestAdversary.Watch(h, allowed: eventQueue)
        let outcome = h.function.dma(.write, address: IOVA(iova), size: 8, data: 0xBAD0_BAD0_BAD0_BAD0)
        #expect(outcome.result?.status == .aborted)
        #expect(watch.changedFrames(h).isEmpty, "the write landed nowhere; only the SMMU's event record was written")
        let events = try hostSMMU.serviceEventQueue()
        #expect(events.count == 1)
        let event = try #require(events.first)
        #expect(event.eventID == 0x10, "F_TRANSLATION")
        #expect(event.streamID == StreamID(UInt32(VMMHarness.hostRID.rawValue)), "the physical StreamID")
        #expect(event.stage2 && event.faultClass == 0b10, "stage 2, CLASS = IN")
        #expect(event.inputAddress == iova)
        #expect(event.ipa == IPA(ipa & ~0xFFF), "IPA[55:12] of the address stage 1 produced (§7.3.12)")
        #expect(hostSMMU.forwardedEvents == forwarded, "arm_smmu_handle_event: S2 events are not the VM's")
        #expect(h.vmm.pollVirtualEvents() == 0)
        let guestSMMU = try #require(h.guest.smmuDrivers.first)
        #expect(try guestSMMU.serviceEventQueue().isEmpty, "the guest hears nothing")
    }

    @Test("iommu_map(domain, iova, 0x5000_0000, 4K, R|W) on the guest's DMA domain succeeds (no RAM check); the device's write faults at stage 2 on the host, the event stays on the host, no host memory changes")
    func iommuMapOutsideRAM() throws {
        let (h, g) = try Self.boundGuest()
        let domain = try #require(h.guest.iommu.dmaDomain(for: g.device))
        #expect(domain.type == .dma)
        // An IOVA the guest's allocator does not hand out: low, below every DMA allocation
        // (dma-iommu allocates top-down under 4 GiB).
        let iova: UInt64 = 0x10_0000
        try h.guest.iommu.map(domain, iova: iova, physical: Self.outsideIPA, size: 0x1000, protection: [.read, .write])
        #expect(h.guest.iommu.iovaToPhys(domain, iova) == Self.outsideIPA, "the guest's stage 1 maps it")
        #expect(h.vmm.vm.hostPhysical(ofGuest: Self.outsideIPA) == nil, "not guest RAM")
        try Self.expectStage2Fault(h, iova: iova + 0x18, ipa: Self.outsideIPA + 0x18)
    }

    @Test("dma_map_resource(0x5000_0040, 4, DMA_FROM_DEVICE): dma-iommu gives an IOVA (offset 0x40 kept) mapped IOMMU_MMIO; the write to it faults at stage 2 the same way")
    func dmaMapResourceOutsideRAM() throws {
        let (h, g) = try Self.boundGuest()
        let iova = try h.guest.dma.mapResource(device: g.device, physical: Self.outsideIPA + 0x40, size: 4, direction: .fromDevice)
        #expect(iova.rawValue & 0xFFF == 0x40)
        try Self.expectStage2Fault(h, iova: iova.rawValue, ipa: Self.outsideIPA + 0x40)
    }

    @Test("stage 2 faulting does not depend on the host address equal to the IPA: the host RAM page at PA 0x5000_0000 (if any) keeps its contents")
    func identityAddressUntouched() throws {
        let (h, g) = try Self.boundGuest()
        let domain = try #require(h.guest.iommu.dmaDomain(for: g.device))
        let before = h.machine.bus.ram.read(Self.outsideIPA, size: 8)
        try h.guest.iommu.map(domain, iova: 0x10_0000, physical: Self.outsideIPA, size: 0x1000, protection: [.write])
        #expect(h.function.dma(.write, address: IOVA(0x10_0000), size: 8, data: 0x1234).result?.status == .aborted)
        #expect(h.machine.bus.ram.read(Self.outsideIPA, size: 8) == before)
    }

    @Test("an IPA outside RAM that stage 2 DOES map: 0x0800_0000 is the v6.15 host's SW_MSI page (iommufd_sw_msi put the physical GITS_TRANSLATER page there in the nest parent). A guest mapping an IOVA to it reaches the physical ITS with its device's own DeviceID: vector 0's EventID raises vector 0 in the guest; an EventID the device was never given is dropped (isolation, GICv3 §5.2)")
    func swMSIPageIsReachable() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3)
        let counter = VMMScenarioTests.Counter()
        _ = try GuestAdversary.bindDriver(h, counter: counter)
        let g = try #require(h.guestDevice)
        let domain = try #require(h.guest.iommu.dmaDomain(for: g.device))
        #expect(h.vmm.vm.hostPhysical(ofGuest: 0x0800_0000) == nil, "the guest's GICD frame, not RAM")
        let iova: UInt64 = 0x10_0000
        try h.guest.iommu.map(domain, iova: iova, physical: 0x0800_0000, size: 0x1000, protection: [.write, .mmio])
        let hostDev = try #require(h.host.pci.device(VMMHarness.hostRID))
        let hostTable = try #require(hostDev.msixTableAddress).rawValue
        let eventID = try h.machine.bus.read(PhysicalAddress(hostTable + 8), size: 4)
        var journal = Journal()
        h.machine.journal = journal
        #expect(h.function.dma(.write, address: IOVA(iova + 0x40), size: 4, data: eventID).result?.status == .completed)
        let record = try #require(itsTranslations(journal).first)
        #expect(record.deviceID == DeviceID(UInt32(VMMHarness.hostRID.rawValue)), "the RID's DeviceID: the device cannot speak for another")
        #expect(record.eventID == UInt32(eventID))
        #expect(h.host.irq.handleInterrupts(cpu: 0) == 1)
        for cpu in 0..<2 { _ = h.guest.irq.handleInterrupts(cpu: cpu) }
        #expect(counter.hits == [0: 1], "vector 0's guest handler, as if the device had raised vector 0")
        journal = Journal()
        h.machine.journal = journal
        #expect(h.function.dma(.write, address: IOVA(iova + 0x40), size: 4, data: 999).result?.status == .completed)
        h.machine.journal = nil
        if case .dropped? = itsTranslations(journal).first?.result {} else { Issue.record("EventID 999 should be dropped: \(journal.entries)") }
        #expect(h.host.irq.handleInterrupts(cpu: 0) == 0)
    }
}

/// The ITS translations a journal recorded: (DeviceID, EventID, result).
private func itsTranslations(_ journal: Journal) -> [(deviceID: DeviceID, eventID: UInt32, result: JournalITSResult)] {
    journal.entries.compactMap {
        if case .itsTranslate(_, let deviceID, let eventID, let result) = $0 { (deviceID, eventID, result) } else { nil }
    }
}
