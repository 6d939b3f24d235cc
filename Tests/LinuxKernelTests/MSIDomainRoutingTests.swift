import Testing
import Bus
import GIC
@testable import LinuxKernel
import Machine
import PCI

/// Which ITS and DeviceID a function's MSIs get: msi-map through the DMA alias, as
/// `pci_msi_domain_get_msi_rid` + `of_msi_map_id` do.
@Suite("MSI domain routing (msi-map, several ITSs, no ITS)")
struct MSIDomainRoutingTests {
    @Test("qemu-virt-two-its: a function on bus 1 (behind a root port) gets ITS 1 and DeviceID 0x100; bus 0 stays on ITS 0")
    func twoITSs() throws {
        let h = try HostHarness.make(preset: .qemuVirtTwoITS, endpoints: [HostHarness.Endpoint(requesterID: RequesterID(bus: 0, device: 1, function: 0))],
                                     configuration: KernelConfiguration(defaultDomain: .identity), boot: false)
        let port = try PCIToPCIBridge(requesterID: RequesterID(bus: 0, device: 2, function: 0), kind: .rootPort, secondaryBus: 1)
        try h.machine.rootComplexes[0].attach(port)
        let far = try PCIFunction(name: "far", requesterID: RequesterID(bus: 1, device: 0, function: 0), vendorID: 0x1AF4, deviceID: 0x1041,
                                  bars: [BaseAddressRegister(index: 0, size: 0x4000)], msix: MSIXConfiguration(tableSize: 2))
        try h.machine.rootComplexes[0].attach(far, behind: port)
        try h.kernel.boot()
        #expect(h.kernel.itsDrivers.count == 2)
        #expect(h.kernel.itsDrivers.map(\.msiBase) == [0x0809_0040, 0x0911_0040])
        // Both ITSs map a collection for the CPU.
        #expect(h.machine.its.allSatisfy { $0.enabled && $0.errorLog.isEmpty })
        let near = try h.bind(0)
        let farDev = try h.bind(0, function: far)
        #expect(try h.kernel.pci.msiDomain(of: near).its == 0)
        let route = try h.kernel.pci.msiDomain(of: farDev)
        #expect(route.its == 1 && route.deviceID == 0x100, "msi-map <0x100 &its1 0x100 0xff00>")
        try h.kernel.pci.allocateIRQVectors(farDev, min: 2, max: 2, flags: [.msix])
        #expect(far.msixTable?.messageAddress(1) == 0x0911_0040 && far.msixTable?.messageData(1) == 1)
        #expect(h.kernel.itsDrivers[1].device(0x100) != nil && h.kernel.itsDrivers[0].device(0x100) == nil)
        let irq = try h.kernel.pci.irqVector(farDev, 1)
        var hits = 0
        try h.kernel.irq.requestIRQ(irq, name: "far") { _, _ in hits += 1; return .handled }
        #expect(far.raise(vector: 1).result?.status == .completed)
        #expect(h.kernel.irq.handleInterrupts(cpu: 0) == 1 && hits == 1)
        // LPIs come from one allocator shared by both ITSs (its_lpi_alloc is global).
        try h.kernel.pci.allocateIRQVectors(near, min: 2, max: 2, flags: [.msix])
        #expect(h.kernel.itsDrivers[0].device(0x8)?.lpiBase == 8194)
    }

    @Test("a GICv3 without an ITS (QEMU its=off): boot succeeds with no ITS driver and MSI allocation fails with ENODEV")
    func noITS() throws {
        let h = try PCIKernelHost.make(fixture: "qemu-virt/virt-smmu-itsoff.dtb")
        #expect(h.kernel.itsDrivers.isEmpty)
        #expect(h.machine.gic?.redistributors[0].enableLPIs == true, "LPIs are still set up on the redistributor")
        let dev = try h.bind(0)
        #expect(throws: Errno.ENODEV) { try h.kernel.pci.allocateIRQVectors(dev, min: 1, max: 4, flags: [.msix]) }
        #expect(!dev.msixEnabled)
    }
}
