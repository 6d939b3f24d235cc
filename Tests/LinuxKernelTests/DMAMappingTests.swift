import Testing
import Bus
import PCI
@testable import LinuxKernel

/// The DMA API over dma-iommu on a booted qemu-virt host, checked by the device's own DMA.
@Suite("DMA API (dma-iommu on qemu-virt)")
struct DMAMappingTests {
    @Test("property: random map/unmap sequences — live IOVA spans never overlap, device writes land at the mapped physical byte, a strictly unmapped IOVA faults",
          arguments: [11, 12] as [UInt64])
    func randomMapUnmap(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        try k.pci.enableDevice(pci)
        try k.pci.setMaster(pci)
        let pool = try k.pages.allocate(bytes: 0x10_0000)
        struct Live { var iova: UInt64; var physical: UInt64; var size: UInt64 }
        var live: [Live] = []
        for _ in 0..<250 {
            if !live.isEmpty && Bool.random(using: &rng) {
                let victim = live.remove(at: Int.random(in: 0..<live.count, using: &rng))
                #expect(k.dma.unmap(device: pci.device, iova: IOVA(victim.iova), size: victim.size) > 0)
                // No live mapping shares the victim's first page, so the write must fault.
                let page = victim.iova & ~0xFFF
                if !live.contains(where: { ($0.iova & ~0xFFF)...(($0.iova + $0.size - 1) | 0xFFF) ~= page }) {
                    #expect(h.functions[0].dma(.write, address: IOVA(victim.iova), size: 1, data: 0xEE).result?.status == .aborted)
                }
                continue
            }
            let size = UInt64.random(in: 1...0x6000, using: &rng)
            let physical = pool.rawValue + UInt64.random(in: 0...(0x10_0000 - 0x6000), using: &rng)
            let iova = try k.dma.map(device: pci.device, physical: PhysicalAddress(physical), size: size, direction: .bidirectional).rawValue
            #expect(iova & 0xFFF == physical & 0xFFF, "__iommu_dma_map keeps the offset in the granule")
            #expect(iova + size - 1 <= 0xFFFF_FFFF, "a PCI device gets 32-bit IOVAs first")
            let first = iova & ~0xFFF, last = (iova + size - 1) | 0xFFF
            for other in live {
                let otherFirst = other.iova & ~0xFFF, otherLast = (other.iova + other.size - 1) | 0xFFF
                #expect(last < otherFirst || first > otherLast, "IOVA spans overlap")
            }
            live.append(Live(iova: iova, physical: physical, size: size))
            let offset = UInt64.random(in: 0..<size, using: &rng)
            let value = UInt64.random(in: 1...0xFF, using: &rng)
            #expect(h.functions[0].dma(.write, address: IOVA(iova + offset), size: 1, data: value).result?.status == .completed)
            #expect(k.bus.ram.read(physical + offset, size: 1) == value)
        }
    }

    @Test("dma_alloc_coherent: zeroed pages mapped both ways; the device reads what the CPU wrote")
    func coherent() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        try k.pci.enableDevice(pci)
        try k.pci.setMaster(pci)
        let (physical, iova) = try k.dma.allocateCoherent(device: pci.device, size: 0x1800)
        #expect(iova.rawValue == 0xFFFF_E000, "PAGE_ALIGN(0x1800) = 2 pages → order 1, aligned to 2 pages below 4 GiB")
        k.bus.ram.write(physical.rawValue + 0x1000, size: 8, value: 0xCAFE)
        #expect(h.functions[0].dma(.read, address: IOVA(iova.rawValue + 0x1000), size: 8).result?.data == 0xCAFE)
        k.dma.freeCoherent(device: pci.device, iova: iova, size: 0x1800)
        #expect(h.functions[0].dma(.read, address: iova, size: 8).result?.status == .aborted)
    }
}
