import Testing
import Bus
import LinuxKernel
import PCI
@testable import VMM

/// The guest's view of the vfio-pci function: emulated BARs (sizing, the guest's own
/// addresses), the trapped MSI-X table, ECAM decoding, and VFIO's region rules underneath.
@Suite("Passthrough function (guest view)", .serialized)
struct PassthroughFunctionTests {
    static let ecam: UInt64 = GuestMemoryMap.virt.ecam.base
    /// Guest 00:01.0 config space in ECAM: bus 0, device 1 → offset 1 << 15.
    static let fn: UInt64 = ecam + (1 << 15)

    @Test("BAR sizing is emulated: all-ones reads back the 16 KiB size mask with the 64-bit type bits; the upper half takes all ones; the guest's address is restored")
    func barSizing() throws {
        let h = try VMMHarness.make(viommu: .none)
        let bus = h.vmm.vm.guestBus
        let original = try bus.read(PhysicalAddress(Self.fn + 0x10), size: 4, requester: .cpu(0))
        let originalHi = try bus.read(PhysicalAddress(Self.fn + 0x14), size: 4, requester: .cpu(0))
        // The guest assigned BAR 0 from its 32-bit window (its log: BAR0 0x1000_0000).
        #expect(original & ~0xF == 0x1000_0000 && originalHi == 0)
        try bus.write(PhysicalAddress(Self.fn + 0x10), size: 4, value: 0xFFFF_FFFF, requester: .cpu(0))
        try bus.write(PhysicalAddress(Self.fn + 0x14), size: 4, value: 0xFFFF_FFFF, requester: .cpu(0))
        // 16 KiB → address bits [31:14] writable; bits [2:1] = 0b10 (64-bit), bit 3 = 0.
        #expect(try bus.read(PhysicalAddress(Self.fn + 0x10), size: 4, requester: .cpu(0)) == 0xFFFF_C004)
        #expect(try bus.read(PhysicalAddress(Self.fn + 0x14), size: 4, requester: .cpu(0)) == 0xFFFF_FFFF)
        try bus.write(PhysicalAddress(Self.fn + 0x10), size: 4, value: original, requester: .cpu(0))
        try bus.write(PhysicalAddress(Self.fn + 0x14), size: 4, value: originalHi, requester: .cpu(0))
        #expect(h.vmm.function.guestBARAddress(0) == nil, "memory decoding still off")
        try h.guest.pci.enableDevice(try #require(h.guestDevice))
        #expect(h.vmm.function.guestBARAddress(0) == 0x1000_0000)
        #expect(h.vmm.function.command & 0x2 != 0)
        // An empty slot has no function: Vendor ID reads all ones.
        #expect(try bus.read(PhysicalAddress(Self.ecam + (2 << 15)), size: 4, requester: .cpu(0)) == 0xFFFF_FFFF)
        // Vendor/Device come from the real function through VFIO.
        #expect(try bus.read(PhysicalAddress(Self.fn), size: 4, requester: .cpu(0)) == 0x1041_1AF4)
    }

    @Test("the guest's MSI-X table is the VMM's: the function's physical table keeps the host's messages; VFIO's BAR region hides the table (all ones) but not the PBA")
    func msixTableTrapped() throws {
        let h = try VMMHarness.make(viommu: .none)
        let g = try #require(h.guestDevice)
        try h.guest.pci.enableDevice(g)
        _ = try h.guest.pci.allocateIRQVectors(g, min: 4, max: 4, flags: .msix)
        for v in 0..<4 { try h.guest.irq.requestIRQ(try h.guest.pci.irqVector(g, v), name: "g\(v)") { _, _ in .handled } }
        let hostDev = try #require(h.host.pci.device(VMMHarness.hostRID))
        let hostTable = try #require(hostDev.msixTableAddress).rawValue
        for v in 0..<4 {
            let guestEntry = h.vmm.function.entries[v]
            let hostLo = try h.machine.bus.read(PhysicalAddress(hostTable + UInt64(v) * 16), size: 4)
            // Host: iommufd's sw_msi window (0x0800_0040); guest: its vITS doorbell (no vIOMMU).
            #expect(hostLo == 0x0800_0040 && guestEntry.address == 0x0809_0040, "vector \(v)")
        }
        #expect(try h.vmm.deviceFile.readBAR(0, offset: 0, size: 4) == 0xFFFF_FFFF)
        #expect(try h.vmm.deviceFile.readBAR(0, offset: 0x800, size: 8) == 0, "PBA: nothing pending")
        #expect(throws: Errno.EINVAL) { try h.vmm.deviceFile.readBAR(0, offset: 0x4000, size: 4) }
        #expect(throws: Errno.EINVAL) { try h.vmm.deviceFile.readBAR(1, offset: 0, size: 4) }
        // A guest write to the table's words reads back from the VMM's copy.
        let tableGPA = try #require(h.vmm.function.guestBARAddress(0))
        try h.vmm.vm.guestBus.write(PhysicalAddress(tableGPA + 8), size: 4, value: 0x77, requester: .cpu(0))
        #expect(h.vmm.function.entries[0].data == 0x77)
        #expect(try h.machine.bus.read(PhysicalAddress(hostTable + 8), size: 4) != 0x77)
    }

    @Test("the guest turning MSI-X off tears the VM's vectors down: irqfds deassigned, routes gone, VFIO's MSI-X disabled on the host; turning it on again rebuilds them")
    func msixDisableAndReenable() throws {
        let h = try VMMHarness.make(viommu: .none)
        let g = try #require(h.guestDevice)
        try h.guest.pci.enableDevice(g)
        try h.guest.pci.setMaster(g)
        _ = try h.guest.pci.allocateIRQVectors(g, min: 2, max: 2, flags: .msix)
        for v in 0..<2 { try h.guest.irq.requestIRQ(try h.guest.pci.irqVector(g, v), name: "g\(v)") { _, _ in .handled } }
        #expect(h.vmm.vectors.count == 2 && h.vmm.vm.gsiRoutes.count == 2 && h.vmm.vm.assignedIRQFDs.count == 2)
        #expect(h.vmm.deviceFile.vdev.irqType == VFIOIRQSet.msixIndex)
        for v in 0..<2 { try h.guest.irq.freeIRQ(try h.guest.pci.irqVector(g, v)) }
        try h.guest.pci.freeIRQVectors(g)
        #expect(!h.vmm.function.msixEnabled)
        #expect(h.vmm.vectors.isEmpty && h.vmm.vm.gsiRoutes.isEmpty && h.vmm.vm.assignedIRQFDs.isEmpty)
        #expect(h.vmm.deviceFile.vdev.irqType == VFIOIRQSet.numIRQs, "no interrupt type on the host")
        _ = try h.guest.pci.allocateIRQVectors(g, min: 1, max: 1, flags: .msix)
        let irq = try h.guest.pci.irqVector(g, 0)
        var hits = 0
        try h.guest.irq.requestIRQ(irq, name: "again") { _, _ in hits += 1; return .handled }
        #expect(h.vmm.vectors.count == 1)
        #expect(h.fire(0, guestCPUs: 2) == (1, 1))
        #expect(hits == 1)
    }

    @Test("a vector the guest masks does not reach it: the host trigger is switched to the VMM's eventfd, the guest's PBA bit sets; unmasking delivers it once and clears the bit")
    func maskedVectorPends() throws {
        let h = try VMMHarness.make(viommu: .none)
        let g = try #require(h.guestDevice)
        try h.guest.pci.enableDevice(g)
        try h.guest.pci.setMaster(g)
        _ = try h.guest.pci.allocateIRQVectors(g, min: 4, max: 4, flags: .msix)
        var hits = 0
        try h.guest.irq.requestIRQ(try h.guest.pci.irqVector(g, 1), name: "g1") { _, _ in hits += 1; return .handled }
        let bar = try #require(h.vmm.function.guestBARAddress(0))
        let bus = h.vmm.vm.guestBus
        // The guest's pci_msix_mask on entry 1: Vector Control (entry + 12) Mask = 1.
        try bus.write(PhysicalAddress(bar + 16 + 12), size: 4, value: 1, requester: .cpu(0))
        #expect(h.vmm.vectors[1]?.maskedByGuest == true)
        #expect(h.fire(1, guestCPUs: 2) == (1, 0), "the host takes it, the guest does not")
        #expect(hits == 0)
        // The PBA at BAR 0 + 0x800 shows vector 1 pending (bit 1 of QWORD 0).
        #expect(try bus.read(PhysicalAddress(bar + 0x800), size: 8, requester: .cpu(0)) == 0b10)
        try bus.write(PhysicalAddress(bar + 16 + 12), size: 4, value: 0, requester: .cpu(0))
        #expect(h.guest.irq.handleInterrupts(cpu: 0) + h.guest.irq.handleInterrupts(cpu: 1) == 1)
        #expect(hits == 1)
        #expect(try bus.read(PhysicalAddress(bar + 0x800), size: 8, requester: .cpu(0)) == 0)
        // Unmasked again: straight through the irqfd.
        #expect(h.fire(1, guestCPUs: 2) == (1, 1))
        #expect(hits == 2)
    }
}
