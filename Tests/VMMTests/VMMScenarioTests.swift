import Testing
import Bus
import Firmware
import LinuxKernel
import PCI
import SMMUv3
@testable import VMM

/// The VM scenarios: a host kernel, a VMM using only the host's uAPI, and a guest
/// kernel (the same Linux model) driving the passthrough function.
///
/// Where the expected values come from:
/// - guest RAM at 0x4000_0000 (QEMU virt), the guest function at 00:01.0 = RID/DeviceID 0x8
///   (identity msi-map), so KVM routes carry devid 0x8;
/// - the guest's ITS doorbell 0x0809_0040 = vITS 0x0808_0000 + GITS_TRANSLATER 0x1_0040.
@Suite("VMM scenarios", .serialized)
struct VMMScenarioTests {
    final class Counter { var hits: [Int: Int] = [:] }

    /// Requests all four vectors in the guest, spreads them over the vCPUs (vector v → vCPU
    /// v % 2, a guest `irq_set_affinity`, i.e. MOVI on the vITS) and returns the guest IRQs.
    static func guestVectors(_ h: VMMHarness, counter: Counter) throws -> [Int] {
        let g = try #require(h.guestDevice)
        try h.guest.pci.enableDevice(g)
        try h.guest.pci.setMaster(g)
        #expect(try h.guest.pci.allocateIRQVectors(g, min: 4, max: 4, flags: .msix) == 4)
        var irqs: [Int] = []
        for v in 0..<4 {
            let irq = try h.guest.pci.irqVector(g, v)
            try h.guest.irq.requestIRQ(irq, name: "guest-ep0[\(v)]") { _, _ in counter.hits[v, default: 0] += 1; return .handled }
            try h.guest.irq.setAffinity(irq: irq, cpu: v % 2)
            irqs.append(irq)
        }
        return irqs
    }

    @Test("no vIOMMU: every vector reaches the guest's LPI on its vCPU; the KVM route is the guest's own doorbell; guest DMA to a GPA lands in the host page behind it")
    func noVIOMMU() throws {
        let h = try VMMHarness.make(viommu: .none)
        #expect(h.guest.smmuDrivers.isEmpty)
        let counter = Counter()
        let irqs = try Self.guestVectors(h, counter: counter)
        // The guest programmed its vMSI-X entries with its ITS doorbell (no IOMMU: physical).
        for (v, entry) in h.vmm.function.entries.enumerated() {
            #expect(entry.address == GuestMemoryMap.virt.msiGPA, "vector \(v)")
            #expect(!entry.masked)
            let route = try #require(h.vmm.vectors[v]?.route)
            #expect(route.address == 0x0809_0040 && route.devid == 0x8 && route.data == entry.data)
        }
        for v in 0..<4 {
            let before = h.vmm.vm.injections.count
            let (hostHandled, guestHandled) = h.fire(v, guestCPUs: 2)
            #expect(hostHandled == 1 && guestHandled == 1, "vector \(v)")
            #expect(counter.hits[v] == 1)
            let desc = try #require(h.guest.irq.descriptor(irqs[v]))
            #expect(desc.perCPUCount[v % 2] == 1, "taken on vCPU \(v % 2)")
            #expect(h.vmm.vm.injections.count == before + 1)
            #expect(h.vmm.vm.injections.last?.outcome == .delivered(intid: desc.hwirq, vcpu: v % 2))
        }
        // DMA: dma-direct in the guest (no IOMMU): the bus address is the GPA.
        let g = try #require(h.guestDevice)
        let buffer = try h.guest.pages.allocate(bytes: 0x1000)
        let dmaAddress = try h.guest.dma.map(device: g.device, physical: buffer, size: 0x1000, direction: .fromDevice)
        #expect(dmaAddress.rawValue == buffer.rawValue)
        let outcome = h.function.dma(.write, address: dmaAddress, size: 8, data: 0xD0_0DFEED)
        #expect(outcome.result?.status == .completed)
        let hostPage = try #require(h.hostPhysical(ofGuest: buffer.rawValue))
        #expect(h.machine.bus.ram.read(hostPage.rawValue, size: 8) == 0xD0_0DFEED)
        // And the guest reads it through its own bus.
        #expect(try h.guest.bus.read(buffer, size: 8) == 0xD0_0DFEED)
    }

    @Test("accelerated vSMMU, guest identity domain: the guest's bypass vSTE becomes an S2-only nested HWPT; vMSI-X holds the vITS doorbell, routes use msi-gpa, every vector reaches its vCPU; DMA to a GPA lands in the host page")
    func guestIdentity() throws {
        var guestConfig = KernelConfiguration()
        guestConfig.defaultDomain = .identity
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, guest: guestConfig)
        let vsmmu = try #require(h.vmm.vsmmu)
        #expect(h.guest.smmuDrivers.count == 1, "the guest probed the vSMMU")
        #expect(vsmmu.translationEnabled)
        // The guest wrote a bypass STE for its StreamID 8 and told the vSMMU with CFGI_STE.
        #expect(try vsmmu.guestStreamTableEntry(StreamID(8)).config == .bypass)
        #expect(vsmmu.consumedCommands.contains(.cfgiSTE(StreamID(8), leaf: true)))
        #expect(h.vmm.nestedHWPTID != nil)
        let counter = Counter()
        let irqs = try Self.guestVectors(h, counter: counter)
        for (v, entry) in h.vmm.function.entries.enumerated() {
            #expect(entry.address == 0x0809_0040, "identity: the guest's physical doorbell")
            #expect(h.vmm.vectors[v]?.route.address == GuestMemoryMap.virt.msiGPA)
        }
        for v in 0..<4 {
            let (hostHandled, guestHandled) = h.fire(v, guestCPUs: 2)
            #expect(hostHandled == 1 && guestHandled == 1, "vector \(v)")
            let desc = try #require(h.guest.irq.descriptor(irqs[v]))
            #expect(desc.perCPUCount[v % 2] == 1)
        }
        let g = try #require(h.guestDevice)
        let buffer = try h.guest.pages.allocate(bytes: 0x1000)
        let dmaAddress = try h.guest.dma.map(device: g.device, physical: buffer, size: 0x1000, direction: .fromDevice)
        #expect(dmaAddress.rawValue == buffer.rawValue, "identity: bus address = GPA")
        #expect(h.function.dma(.write, address: dmaAddress, size: 8, data: 0x1D).result?.status == .completed)
        let hostPage = try #require(h.hostPhysical(ofGuest: buffer.rawValue))
        #expect(h.machine.bus.ram.read(hostPage.rawValue, size: 8) == 0x1D)
    }

    @Test("accelerated vSMMU, guest DMA domain, host v6.14 (legacy): DMA through the guest's stage 1 lands; every MSI faults at stage 1 (pSID, InputAddr 0x0809_0040, S2=0, CLASS=IN) in the host queue only (v6.14 has no vmaster to forward it to the guest); nothing reaches the guest")
    func nestedLegacy() throws {
        var hostConfig = KernelConfiguration()
        hostConfig.version = .v6_14
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, host: hostConfig)
        let vsmmu = try #require(h.vmm.vsmmu)
        #expect(try vsmmu.guestStreamTableEntry(StreamID(8)).config == .stage1)
        let counter = Counter()
        _ = try Self.guestVectors(h, counter: counter)
        let g = try #require(h.guestDevice)
        // The guest's own view: its MSI IOVA page maps its vITS doorbell page at stage 1.
        let domain = try #require(h.guest.iommu.domain(for: g.device))
        for (v, entry) in h.vmm.function.entries.enumerated() {
            #expect(entry.address & 0xFFF == 0x040, "vector \(v): GITS_TRANSLATER's page offset")
            #expect(entry.address != 0x0809_0040, "a DMA domain: an IOVA, not the doorbell")
            #expect(h.guest.iommu.iovaToPhys(domain, entry.address) == 0x0809_0040)
            #expect(h.vmm.vectors[v]?.route.address == GuestMemoryMap.virt.msiGPA)
        }
        // DMA through the guest's stage 1 and the host's stage 2.
        let buffer = try h.guest.pages.allocate(bytes: 0x1000)
        let iova = try h.guest.dma.map(device: g.device, physical: buffer, size: 0x1000, direction: .fromDevice)
        #expect(iova.rawValue != buffer.rawValue)
        #expect(h.function.dma(.write, address: iova, size: 8, data: 0xAB).result?.status == .completed)
        let hostPage = try #require(h.hostPhysical(ofGuest: buffer.rawValue))
        #expect(h.machine.bus.ram.read(hostPage.rawValue, size: 8) == 0xAB)
        // MSIs: the host (v6.14, nested domain without a cookie) programmed the physical doorbell.
        let hostSMMU = try #require(h.host.smmuDrivers.first)
        let delivered = h.vmm.vm.counters.delivered
        for v in 0..<4 {
            let (hostHandled, guestHandled) = h.fire(v, guestCPUs: 2)
            #expect(hostHandled == 0 && guestHandled == 0, "vector \(v)")
            let events = try hostSMMU.serviceEventQueue()
            let event = try #require(events.first)
            #expect(event.eventID == 0x10, "F_TRANSLATION")
            #expect(event.streamID == StreamID(UInt32(VMMHarness.hostRID.rawValue)))
            #expect(event.inputAddress == 0x0809_0040 && !event.stage2 && event.faultClass == 0b10)
            // v6.14 has no vmaster (KernelBehaviour.nestedVMaster, v6.15): nothing is
            // forwarded to the VMM's vEVENTQ.
            #expect(h.vmm.pollVirtualEvents() == 0)
        }
        #expect(h.vmm.vm.counters.delivered == delivered)
        #expect(counter.hits.isEmpty)
        // The guest's event queue stays empty: the faults are only in the host's.
        let guestSMMU = try #require(h.guest.smmuDrivers.first)
        #expect(try guestSMMU.serviceEventQueue().isEmpty)
    }

    @Test("accelerated vSMMU, v6.15 host: the nested domain's iommufd cookie maps the doorbell in the parent at 0x0800_0000, but the device's MSI to 0x0800_0040 first walks the guest's stage 1, which does not map it: stage-1 fault, nothing delivered")
    func nestedV615() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3)
        let counter = Counter()
        _ = try Self.guestVectors(h, counter: counter)
        let hostDev = try #require(h.host.pci.device(VMMHarness.hostRID))
        let hostTable = try #require(hostDev.msixTableAddress).rawValue
        #expect(try h.machine.bus.read(PhysicalAddress(hostTable), size: 4) == 0x0800_0040, "iommufd_sw_msi: pgoff 0 of the SW_MSI window")
        let hostSMMU = try #require(h.host.smmuDrivers.first)
        let (hostHandled, guestHandled) = h.fire(0, guestCPUs: 2)
        #expect(hostHandled == 0 && guestHandled == 0)
        let events = try hostSMMU.serviceEventQueue()
        let event = try #require(events.first)
        #expect(event.eventID == 0x10 && event.inputAddress == 0x0800_0040 && !event.stage2)
        #expect(h.vmm.pollVirtualEvents() == 1)
        let guestSMMU = try #require(h.guest.smmuDrivers.first)
        #expect(try guestSMMU.serviceEventQueue().first?.inputAddress == 0x0800_0040)
    }

    @Test("guest stage-1 invalidation is forwarded: a strict guest unmap's TLBI_NH_VA reaches the host with the vIOMMU's VMID, and DMA to the unmapped IOVA then faults")
    func invalidationForwarded() throws {
        var hostConfig = KernelConfiguration()
        hostConfig.version = .v6_14
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, host: hostConfig)
        let g = try #require(h.guestDevice)
        try h.guest.pci.enableDevice(g)
        try h.guest.pci.setMaster(g)
        let buffer = try h.guest.pages.allocate(bytes: 0x1000)
        let iova = try h.guest.dma.map(device: g.device, physical: buffer, size: 0x1000, direction: .bidirectional)
        #expect(h.function.dma(.write, address: iova, size: 8, data: 1).result?.status == .completed)
        let hostSMMU = try #require(h.host.smmuDrivers.first)
        let before = hostSMMU.commandLog.count
        _ = h.guest.dma.unmap(device: g.device, iova: iova, size: 0x1000)
        let forwarded = hostSMMU.commandLog[before...].compactMap { command -> (VMID, UInt64)? in
            if case .tlbiNHVA(let vmid, _, let address, _, _) = command { return (vmid, address) }
            return nil
        }
        let viommuID = try #require(h.vmm.viommuID)
        let viommu = try #require(h.vmm.iommufd.object(viommuID) as? IOMMUFDVIOMMU)
        #expect(forwarded.count == 1)
        #expect(forwarded.first?.0 == viommu.vsmmu.vmid, "VMID forced to the vIOMMU's (arm_vsmmu_convert_user_cmd)")
        #expect(forwarded.first?.1 == iova.rawValue & ~0xFFF)
        #expect(h.function.dma(.write, address: iova, size: 8, data: 2).result?.status == .aborted)
        let hostPage = try #require(h.hostPhysical(ofGuest: buffer.rawValue))
        #expect(h.machine.bus.ram.read(hostPage.rawValue, size: 8) == 1)
    }
}
