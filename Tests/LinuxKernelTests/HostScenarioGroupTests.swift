import Testing
import Bus
import PCI
@testable import LinuxKernel

/// Two functions of one multi-function device share an IOMMU group, hence a default domain, and
/// so one MSI doorbell page (a second device in the same group reuses that page: `iommu_dma_get_msi_page`
/// finds it in the cookie's list).
@Suite("Host scenarios: shared group")
struct HostScenarioGroupTests {
    @Test("00:01.0 and 00:01.1 of a multi-function device (no ACS) share a group, a DMA domain and the doorbell IOVA 0xFFFF_F040")
    func multifunctionSharesDoorbellPage() throws {
        // Every function of the device sets Header Type bit 7 (pci_setup_device reads it per
        // function into pdev->multifunction). pci_device_group → get_pci_function_alias_group:
        // functions of a multi-function device
        // without ACS isolation are grouped together (drivers/iommu/iommu.c). Their default
        // domain is one DMA domain, whose dma-iommu cookie holds one MSI page per doorbell page
        // (iommu_dma_get_msi_page reuses an entry with the same physical page), so the second
        // function's vectors get the first one's IOVA, 0x1_0000_0000 − 0x1000 + 0x40.
        let h = try HostHarness.make(endpoints: [
            HostHarness.Endpoint(requesterID: RequesterID(bus: 0, device: 1, function: 0), vectors: 2, name: "fn0", multifunction: true),
            HostHarness.Endpoint(requesterID: RequesterID(bus: 0, device: 1, function: 1), vectors: 2, name: "fn1", multifunction: true),
        ])
        let k = h.kernel
        let first = try #require(HostScenario.pciDevice(h, 0))
        let second = try #require(HostScenario.pciDevice(h, 1))
        let group = try #require(k.iommu.group(of: first.device))
        #expect(k.iommu.group(of: second.device) === group)
        let domain = try #require(group.domain)
        #expect(k.iommu.domain(for: second.device) === domain)

        let counter = HostScenario.Counter()
        let firstIRQs = try HostScenario.probe(k, first, vectors: 2, counter: counter)
        let secondIRQs = try HostScenario.probe(k, second, vectors: 2, counter: counter)
        for vector in 0..<2 {
            #expect(HostScenario.entry(h.functions[0], vector).address == 0xFFFF_F040)
            #expect(HostScenario.entry(h.functions[1], vector).address == 0xFFFF_F040, "same page, not a second allocation")
        }
        #expect(k.iommu.iovaToPhys(domain, 0xFFFF_F000) == 0x0809_0000)
        #expect(k.iommu.iovaToPhys(domain, 0xFFFF_E000) == nil)
        // Each function's MSI travels with its own StreamID and DeviceID (0x8, 0x9) through the
        // shared domain and reaches its own handler.
        #expect(h.functions[1].raise(vector: 1).result?.status == .completed)
        #expect(k.irq.handleInterrupts(cpu: 0) == 1)
        #expect(counter.values[secondIRQs[1]] == 1)
        #expect(counter.values[firstIRQs[1]] == nil)
    }
}
