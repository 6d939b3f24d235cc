import Testing
import Bus
import Firmware
import LinuxKernel
import PCI
import SMMUv3
@testable import VMM

/// Plain MSI (no MSI-X) passthrough: the VMM emulates the MSI capability and drives VFIO's MSI
/// index (VFIO_PCI_MSI_IRQ_INDEX = 1) with all vectors at once, as QEMU's `vfio_msi_enable`.
/// The function: 64-bit MSI with per-vector masking, Multiple Message Capable 2 (4 vectors).
@Suite("Plain MSI passthrough", .serialized)
struct MSIPassthroughTests {
    static let fourVectors = MSIConfiguration(is64Bit: true, perVectorMasking: true, vectorsLog2: 2)

    /// Enables 4 MSI vectors in the guest, requests them, spreads them over the vCPUs.
    static func guestMSI(_ h: VMMHarness, count: Int = 4, counter: VMMScenarioTests.Counter) throws -> [Int] {
        let g = try #require(h.guestDevice)
        try h.guest.pci.enableDevice(g)
        try h.guest.pci.setMaster(g)
        #expect(try h.guest.pci.allocateIRQVectors(g, min: count, max: count, flags: .msi) == count)
        var irqs: [Int] = []
        for v in 0..<count {
            let irq = try h.guest.pci.irqVector(g, v)
            try h.guest.irq.requestIRQ(irq, name: "guest-msi[\(v)]") { _, _ in counter.hits[v, default: 0] += 1; return .handled }
            try h.guest.irq.setAffinity(irq: irq, cpu: v % 2)
            irqs.append(irq)
        }
        return irqs
    }

    @Test("no vIOMMU: the guest enables 4 MSI vectors; the VMM enables VFIO's MSI index with 4 eventfds, one KVM route per vector (guest doorbell 0x0809_0040, data base|vector, DeviceID 0x8) and every vector reaches its vCPU")
    func msiNoVIOMMU() throws {
        let h = try VMMHarness.make(viommu: .none, plainMSI: Self.fourVectors)
        let f = h.vmm.function
        #expect(f.msixCapability == nil && f.msi != nil)
        #expect(h.vmm.devices[0].vectorCapacity == 4)
        let counter = VMMScenarioTests.Counter()
        let irqs = try Self.guestMSI(h, counter: counter)
        let msi = try #require(f.msi)
        #expect(msi.enabled && msi.allocatedVectors == 4)
        #expect(msi.address == 0x0809_0040, "no IOMMU: the guest's vITS doorbell")
        #expect(h.vmm.deviceFile.vdev.irqType == VFIOIRQSet.msiIndex)
        #expect(h.vmm.deviceFile.vdev.contexts.count == 4)
        #expect(h.vmm.devices[0].msiEnabledVectors == 4)
        for v in 0..<4 {
            let route = try #require(h.vmm.vectors[v]?.route)
            #expect(route.gsi == 256 + UInt32(v))
            #expect(route.address == 0x0809_0040 && route.devid == 0x8)
            #expect(route.data == UInt32(msi.data) & ~3 | UInt32(v), "msi_get_message: the low log2(4) bits are the vector")
        }
        for v in 0..<4 {
            #expect(h.fire(v, guestCPUs: 2) == (1, 1), "vector \(v)")
            let desc = try #require(h.guest.irq.descriptor(irqs[v]))
            #expect(desc.perCPUCount[v % 2] == 1)
        }
        #expect(counter.hits == [0: 1, 1: 1, 2: 1, 3: 1])
    }

    @Test("accelerated vSMMU, v6.15 host, guest RMR 0x0800_0000/1 MiB: the host's physical MSI capability holds 0x0800_0040, routes use msi-gpa, all 4 MSI vectors reach the guest")
    func msiAcceleratedRMR() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, msi: .rmrIdentity, plainMSI: Self.fourVectors)
        let counter = VMMScenarioTests.Counter()
        _ = try Self.guestMSI(h, counter: counter)
        let hostDev = try #require(h.host.pci.device(VMMHarness.hostRID))
        let cap = try #require(h.function.msi)
        #expect(cap.address(in: h.function.config) == 0x0800_0040, "iommufd_sw_msi: pgoff 0 of the SW_MSI window")
        #expect(hostDev.msiEnabled)
        for v in 0..<4 { #expect(h.vmm.vectors[v]?.route.address == GuestMemoryMap.virt.msiGPA) }
        for v in 0..<4 { #expect(h.fire(v, guestCPUs: 2) == (1, 1), "vector \(v)") }
        #expect(counter.hits == [0: 1, 1: 1, 2: 1, 3: 1])
        let hostSMMU = try #require(h.host.smmuDrivers.first)
        #expect(try hostSMMU.serviceEventQueue().isEmpty)
    }

    @Test("accelerated vSMMU, v6.15 host, no guest window (the seed's shape with MSI): the MSI to 0x0800_0040 faults at the guest's stage 1, nothing reaches the guest")
    func msiAcceleratedNoWindow() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, plainMSI: Self.fourVectors)
        let counter = VMMScenarioTests.Counter()
        _ = try Self.guestMSI(h, counter: counter)
        #expect(h.fire(0, guestCPUs: 2) == (0, 0))
        let hostSMMU = try #require(h.host.smmuDrivers.first)
        let event = try #require(try hostSMMU.serviceEventQueue().first)
        #expect(event.eventID == 0x10 && event.inputAddress == 0x0800_0040 && !event.stage2)
        #expect(counter.hits.isEmpty)
    }

    @Test("the guest turning MSI off and on again with a new vector count: vfio_msi_disable (VFIO MSI index off, irqfds and routes gone), then vfio_msi_enable with 2 vectors; both arrive")
    func msiReenableWithNewCount() throws {
        let h = try VMMHarness.make(viommu: .none, plainMSI: Self.fourVectors)
        let g = try #require(h.guestDevice)
        let counter = VMMScenarioTests.Counter()
        let irqs = try Self.guestMSI(h, counter: counter)
        for irq in irqs { try h.guest.irq.freeIRQ(irq) }
        try h.guest.pci.freeIRQVectors(g)
        #expect(!h.vmm.function.msiEnabled)
        #expect(h.vmm.vectors.isEmpty && h.vmm.vm.gsiRoutes.isEmpty && h.vmm.vm.assignedIRQFDs.isEmpty)
        #expect(h.vmm.deviceFile.vdev.irqType == VFIOIRQSet.numIRQs)
        #expect(h.vmm.devices[0].msiEnabledVectors == 0)
        let again = VMMScenarioTests.Counter()
        _ = try Self.guestMSI(h, count: 2, counter: again)
        #expect(h.vmm.devices[0].msiEnabledVectors == 2)
        #expect(h.vmm.vm.gsiRoutes.map(\.gsi) == [256, 257])
        #expect(h.vmm.deviceFile.vdev.contexts.count == 2)
        for v in 0..<2 { #expect(h.fire(v, guestCPUs: 2) == (1, 1), "vector \(v)") }
        #expect(again.hits == [0: 1, 1: 1])
    }

    @Test("the emulated capability: Message Control shows MMC 2, 64-bit and per-vector masking but not Extended Message Data Capable; Address bits 1:0 read 0; Mask Bits keep only the 4 vectors' bits; Pending is read-only; a write with Enable clear changes no VFIO state")
    func emulatedCapabilityRegisters() throws {
        let h = try VMMHarness.make(viommu: .none, plainMSI: MSIConfiguration(is64Bit: true, perVectorMasking: true, vectorsLog2: 2,
                                                                              extendedMessageData: true))
        let f = h.vmm.function
        let cap = try #require(f.msiCapability)
        let control = f.readConfig(cap + 2, size: 2)
        #expect(control & 0x000E == 2 << 1 && control & 0x0080 != 0 && control & 0x0100 != 0)
        #expect(control & 0x0200 == 0, "QEMU's msi_init never advertises extended data")
        f.writeConfig(cap + 4, size: 4, value: 0x1234_5677)
        #expect(f.readConfig(cap + 4, size: 4) == 0x1234_5674)
        f.writeConfig(cap + 0x10, size: 4, value: 0xFFFF_FFFF)
        #expect(f.readConfig(cap + 0x10, size: 4) == 0xF)
        f.writeConfig(cap + 0x14, size: 4, value: 0xFFFF_FFFF)
        #expect(f.readConfig(cap + 0x14, size: 4) == 0)
        #expect(h.vmm.deviceFile.vdev.irqType == VFIOIRQSet.numIRQs)
        #expect(h.vmm.vectors.isEmpty)
    }
}
