import Testing
import Bus
import LinuxKernel
import PCI
import SMMUv3
@testable import VMM

/// The host-kernel halves of the MSI strategies, end to end: a patched host, the VMM with an
/// accelerated vSMMU, a guest with a DMA domain (nested S1 + S2, the seed's case). The VMM
/// itself has no strategy plan yet, so the test plays the VMM's part with the real uAPI after
/// the guest has programmed its vMSI-X table (a test-only VMM step):
/// 1. IOMMUFD_CMD_IOAS_MAP_MSI at the vITS doorbell page IPA 0x0809_0000 (the page the guest's
///    stage 1 maps its MSI IOVA to: vITS 0x0808_0000 + 0x1_0000);
/// 2. VFIO_DEVICE_SET_IRQS disable, ACTION_PREPARE with the guest's vMSI-X addresses, and
///    ACTION_TRIGGER again with the VMM's own irqfd eventfds — RFCv1 frees the IOVAs on
///    disable, so PREPARE sits between the two, and the vectors must be allocated after it
///    (the preset is taken at descriptor setup).
///
/// Expected values: the guest's MSI IOVA is an address of its own dma-iommu domain whose stage
/// 1 maps the vITS page (checked through the guest's own page tables); its in-page offset is
/// GITS_TRANSLATER's 0x40. The host's physical ITS is at 0x0808_0000 too, so the stage-2 target
/// of IPA 0x0809_0000 is PA 0x0809_0000. The SW_MSI window iommufd_sw_msi uses is 0x0800_0000.
@Suite("Strategies: host kernel patches end to end", .serialized)
struct StrategyKernelScenarioTests {
    typealias Counter = VMMScenarioTests.Counter
    static let vitsPage: UInt64 = 0x0809_0000

    static func harness(_ patches: KernelPatches) throws -> VMMHarness {
        try VMMHarness.make(viommu: .acceleratedSMMUv3, host: KernelConfiguration(patches: patches))
    }

    /// The host function's MSI-X table entry address, read over the bus.
    static func hostEntry(_ h: VMMHarness, _ vector: Int) throws -> UInt64 {
        let hostDev = try #require(h.host.pci.device(VMMHarness.hostRID))
        let base = try #require(hostDev.msixTableAddress).rawValue + UInt64(vector) * 16
        let lo = try h.machine.bus.read(PhysicalAddress(base), size: 4)
        let hi = try h.machine.bus.read(PhysicalAddress(base + 4), size: 4)
        return hi << 32 | lo
    }

    /// The test-only VMM step (see the suite comment). Returns the guest's vMSI-X addresses.
    @discardableResult
    static func relayGuestIOVAs(_ h: VMMHarness) throws -> [UInt64] {
        let guestAddresses = h.vmm.function.entries.map(\.address)
        try h.vmm.iommufd.ioasMapMSI(ioasID: h.vmm.ioasID, deviceID: h.vmm.iommufdDeviceID, iova: vitsPage)
        let fds = try (0..<guestAddresses.count).map { v in try #require(h.vmm.vectors[v]).fd }
        try h.vmm.deviceFile.setIRQs(.disable())
        try h.vmm.deviceFile.setIRQs(.prepare(start: 0, iovas: guestAddresses))
        try h.vmm.deviceFile.setIRQs(.trigger(start: 0, eventfds: fds))
        return guestAddresses
    }

    /// Checks the guest programmed IOVAs of its own stage 1 that map the vITS doorbell.
    static func expectGuestIOVAs(_ h: VMMHarness, _ addresses: [UInt64]) throws {
        let g = try #require(h.guestDevice)
        let domain = try #require(h.guest.iommu.domain(for: g.device))
        for address in addresses {
            #expect(address & 0xFFF == 0x40 && address != GuestMemoryMap.virt.msiGPA)
            #expect(h.guest.iommu.iovaToPhys(domain, address) == GuestMemoryMap.virt.msiGPA)
        }
    }

    /// Fires every vector; returns how many the guest handled (each on the vCPU it chose).
    static func fireAll(_ h: VMMHarness, counter: Counter, irqs: [Int]) throws -> Int {
        var handled = 0
        for v in 0..<irqs.count {
            let before = counter.hits[v, default: 0]
            let (_, guestHandled) = h.fire(v, guestCPUs: 2)
            handled += guestHandled
            if counter.hits[v, default: 0] == before + 1 {
                let desc = try #require(h.guest.irq.descriptor(irqs[v]))
                #expect(desc.effectiveCPU == v % 2)
            }
        }
        return handled
    }

    /// `irq_domain_deactivate_irq` + `irq_domain_activate_irq` of the host interrupt of
    /// `vector`: the message is zeroed, then recomposed by the ITS driver and written again.
    static func reactivateHostIRQ(_ h: VMMHarness, vector: Int) throws {
        let hostDev = try #require(h.host.pci.device(VMMHarness.hostRID))
        let irq = try h.host.pci.irqVector(hostDev, vector)
        try h.host.irq.deactivate(irq: irq)
        #expect(try hostEntry(h, vector) == 0)
        try h.host.irq.activate(irq: irq)
    }

    /// Stage 2 (the nest parent's domain) maps the vITS page to the physical ITS page.
    static func expectStage2Doorbell(_ h: VMMHarness) throws {
        let parent = try #require(h.vmm.iommufd.object(h.vmm.stage2HWPTID) as? IOMMUFDHWPTPaging)
        #expect(h.host.iommu.iovaToPhys(parent.domain, vitsPage) == 0x0809_0000)
    }

    // MARK: irqchip-relay

    @Test("irqchip-relay: PREPARE + IOAS_MAP_MSI → the host MSI-X entries hold the guest IOVA | 0x40 (no sw_msi page), every vector reaches the guest's LPI on its vCPU, and after deactivate + activate the ITS composes the preset again")
    func irqchipRelay() throws {
        let h = try Self.harness([.vfioMSIIOVAPrepare, .irqchipMSIIOVA, .iommufdIOASMapMSI])
        let counter = Counter()
        let irqs = try VMMScenarioTests.guestVectors(h, counter: counter)
        #expect(try Self.hostEntry(h, 0) == 0x0800_0040, "before the VMM step: iommufd_sw_msi's window, which the guest's S1 does not map")
        let guest = try Self.relayGuestIOVAs(h)
        try Self.expectGuestIOVAs(h, guest)
        for v in 0..<4 { #expect(try Self.hostEntry(h, v) == guest[v], "vector \(v)") }
        try Self.expectStage2Doorbell(h)
        let hostDev = try #require(h.host.pci.device(VMMHarness.hostRID))
        #expect(hostDev.device.msiDescriptors.allSatisfy { $0.iommuMSIShift == 0 }, "iommu_dma_prepare_msi was bypassed")
        #expect(try Self.fireAll(h, counter: counter, irqs: irqs) == 4)
        #expect((0..<4).allSatisfy { counter.hits[$0] == 1 })

        try Self.reactivateHostIRQ(h, vector: 0)
        #expect(try Self.hostEntry(h, 0) == guest[0], "the preset lives in msi_desc")
        #expect(try Self.fireAll(h, counter: counter, irqs: irqs) == 4)
        #expect(counter.hits[0] == 2)
    }

    // MARK: vfio-override

    @Test("vfio-override: the nested domain makes vfio_msi_set_vector_signal write the guest IOVA | 0x40 and vectors reach the guest; after deactivate + activate the ITS writes its own sw_msi address 0x0800_0040 again and that vector faults at stage 1")
    func vfioOverride() throws {
        let h = try Self.harness([.vfioMSIIOVAPrepare, .vfioMSIOverride, .iommufdIOASMapMSI])
        let counter = Counter()
        let irqs = try VMMScenarioTests.guestVectors(h, counter: counter)
        let guest = try Self.relayGuestIOVAs(h)
        try Self.expectGuestIOVAs(h, guest)
        let hostDev = try #require(h.host.pci.device(VMMHarness.hostRID))
        #expect(h.host.iommu.domain(for: hostDev.device)?.type == .nested)
        for v in 0..<4 {
            #expect(try Self.hostEntry(h, v) == guest[v], "vector \(v)")
            // pci_write_msi_msg cached the override (__pci_write_msi_msg sets desc->msg).
            #expect(hostDev.device.msiDescriptors.first { $0.index == v }?.message.address == guest[v])
        }
        try Self.expectStage2Doorbell(h)
        #expect(try Self.fireAll(h, counter: counter, irqs: irqs) == 4)

        try Self.reactivateHostIRQ(h, vector: 0)
        #expect(try Self.hostEntry(h, 0) == 0x0800_0040, "irq_chip_compose_msi_msg: the irqchip knows nothing of the override")
        #expect(try Self.hostEntry(h, 1) == guest[1], "vectors not recomposed keep it")
        let hostSMMU = try #require(h.host.smmuDrivers.first)
        _ = try hostSMMU.serviceEventQueue()
        let before = counter.hits[0, default: 0]
        let (_, guestHandled) = h.fire(0, guestCPUs: 2)
        #expect(guestHandled == 0 && counter.hits[0, default: 0] == before)
        let event = try #require(try hostSMMU.serviceEventQueue().first)
        #expect(event.eventID == 0x10 && event.inputAddress == 0x0800_0040 && !event.stage2, "F_TRANSLATION at stage 1")
    }

    // MARK: vits-direct

    @Test("vits-direct: PREPARE reaches iommufd, iommufd_sw_msi sets each descriptor's IOVA to the guest's page and maps nothing; entries hold the guest IOVA | 0x40, vectors reach the guest, and deactivate + activate composes the same address")
    func vitsDirect() throws {
        let h = try Self.harness([.vfioMSIIOVAPrepare, .iommufdMSIIOVA, .iommufdIOASMapMSI])
        let counter = Counter()
        let irqs = try VMMScenarioTests.guestVectors(h, counter: counter)
        let guest = try Self.relayGuestIOVAs(h)
        try Self.expectGuestIOVAs(h, guest)
        let idev = try #require(h.vmm.deviceFile.iommufdDevice)
        #expect((0..<4).map { idev.msiIOVAs[$0] } == guest.map { Optional($0) })
        let hostDev = try #require(h.host.pci.device(VMMHarness.hostRID))
        for v in 0..<4 {
            #expect(try Self.hostEntry(h, v) == guest[v], "vector \(v)")
            let desc = try #require(hostDev.device.msiDescriptors.first { $0.index == v })
            #expect(desc.iommuMSIShift == 12 && desc.iommuMSIIOVA == guest[v] >> 12, "msi_desc_set_iommu_msi_iova(desc, iova, PAGE_SHIFT)")
        }
        try Self.expectStage2Doorbell(h)
        #expect(try Self.fireAll(h, counter: counter, irqs: irqs) == 4)

        try Self.reactivateHostIRQ(h, vector: 2)
        #expect(try Self.hostEntry(h, 2) == guest[2], "msi_msg_set_addr with the stored IOVA")
        #expect(try Self.fireAll(h, counter: counter, irqs: irqs) == 4)
        #expect(counter.hits[2] == 2)
    }

    @Test("unpatched v6.15 host: the same VMM step fails where the uAPI does not exist (IOAS_MAP_MSI ENOTTY, PREPARE EINVAL) and the entries keep 0x0800_0040")
    func unpatchedRefusesTheStep() throws {
        let h = try Self.harness([])
        let counter = Counter()
        _ = try VMMScenarioTests.guestVectors(h, counter: counter)
        #expect(throws: Errno.ENOTTY) {
            try h.vmm.iommufd.ioasMapMSI(ioasID: h.vmm.ioasID, deviceID: h.vmm.iommufdDeviceID, iova: Self.vitsPage)
        }
        #expect(throws: Errno.EINVAL) { try h.vmm.deviceFile.setIRQs(.prepare(start: 0, iovas: h.vmm.function.entries.map(\.address))) }
        for v in 0..<4 { #expect(try Self.hostEntry(h, v) == 0x0800_0040) }
    }

    // MARK: sw-msi-window

    @Test("sw-msi-window: the VMM's window W = 0x0C00_0000 (set while detached, before re-attaching the nested HWPT) moves the host-programmed address to W + 0x40, stage 2 maps W to the ITS page, and — without a guest RMR at W — the MSI faults at stage 1 at W + 0x40")
    func swMSIWindow() throws {
        let h = try Self.harness([.iommufdSWMSIWindow])
        let window: UInt64 = 0x0C00_0000
        let nested = try #require(h.vmm.nestedHWPTID)
        // Test-only VMM step: the option needs a detached device (EBUSY otherwise).
        #expect(throws: Errno.EBUSY) { try h.vmm.iommufd.setOption(.swMSIStart, objectID: h.vmm.iommufdDeviceID, value: window) }
        try h.vmm.deviceFile.detachIOMMUFDPT()
        try h.vmm.iommufd.setOption(.swMSIStart, objectID: h.vmm.iommufdDeviceID, value: window)
        try h.vmm.iommufd.setOption(.swMSISize, objectID: h.vmm.iommufdDeviceID, value: 1)
        #expect(try h.vmm.deviceFile.attachIOMMUFDPT(nested) == nested)
        let ioas = try #require(h.vmm.iommufd.object(h.vmm.ioasID) as? IOMMUFDIOAS)
        #expect(ioas.iopt.reservedRanges.contains(window...(window + 0xF_FFFF)))

        let counter = Counter()
        _ = try VMMScenarioTests.guestVectors(h, counter: counter)
        for v in 0..<4 { #expect(try Self.hostEntry(h, v) == window + 0x40, "vector \(v)") }
        let parent = try #require(h.vmm.iommufd.object(h.vmm.stage2HWPTID) as? IOMMUFDHWPTPaging)
        #expect(h.host.iommu.iovaToPhys(parent.domain, window) == 0x0809_0000)
        #expect(h.host.iommu.iovaToPhys(parent.domain, 0x0800_0000) == nil)
        let hostSMMU = try #require(h.host.smmuDrivers.first)
        let (_, guestHandled) = h.fire(0, guestCPUs: 2)
        #expect(guestHandled == 0)
        let event = try #require(try hostSMMU.serviceEventQueue().first)
        #expect(event.eventID == 0x10 && event.inputAddress == window + 0x40 && !event.stage2)
    }
}
