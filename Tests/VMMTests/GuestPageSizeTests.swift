import Testing
import Bus
import Firmware
import LinuxKernel
import PCI
import SMMUv3
@testable import VMM

/// A guest kernel with 64K pages on an accelerated vSMMU. The guest's PAGE_SIZE is its own
/// (KernelConfiguration of the guest), independent of the host's.
///
/// Where the expected values come from: the vSMMU advertises QEMU's IDR5.GRAN4K/16K/64K (all
/// three; `smmuv3_accel_check_hw_compatible` requires the host SMMU to match), so the guest's io-pgtable
/// picks its own PAGE_SIZE (`arm_lpae_restrict_pgsizes`): 64K | 512M, CD.TG0 = 0b01 (64K,
/// SMMUv3 §5.4), T0SZ = 64 − 48; its DMA domain's IOVA granule is 64K
/// (`iommu_dma_init_domain`), so dma-iommu's MSI page (`iommu_dma_get_msi_page`, granule
/// `cookie_msi_granule`) is a 64K-aligned IOVA and the vMSI-X address keeps GITS_TRANSLATER's
/// offset 0x40 in that page (the vITS doorbell 0x0809_0040 is in the 64K page 0x0809_0000).
///
/// The guest has 64 MiB of RAM: QEMU's vSMMU advertises CMDQS = EVENTQS = 19, and a 64K kernel
/// (Q_MAX_SZ_SHIFT = 16 + 8) sizes its queues from that alone (2^19 commands are 8 MiB, 2^19
/// events 16 MiB, each naturally aligned; `arm_smmu_init_one_queue` only shrinks a queue that
/// does not fit), which leaves a 16 MiB guest too little for the rest of its boot (ENOMEM).
@Suite("Guest PAGE_SIZE 64K on an accelerated vSMMU", .serialized)
struct GuestPageSizeTests {
    static let guest64K = KernelConfiguration(pageSize: .size64K)
    static let guestRAM: UInt64 = 0x400_0000

    /// The guest's CD for its StreamID 8, read where the physical SMMU reads it: the guest
    /// STE's S1ContextPtr (a GPA) in the host page behind it. S1CDMax = 0: a single CD.
    static func guestCD(_ h: VMMHarness) throws -> ContextDescriptor {
        let vsmmu = try #require(h.vmm.vsmmu)
        let ste = try vsmmu.guestStreamTableEntry(StreamID(8))
        #expect(ste.config == .stage1 && ste.s1CDMax == 0)
        let host = try #require(h.hostPhysical(ofGuest: ste.s1ContextPtr)).rawValue
        let words = try (0..<8).map { i throws in try h.machine.bus.read(PhysicalAddress(host + UInt64(i) * 8), size: 8, requester: .cpu(0)) }
        return ContextDescriptor(words: words)
    }

    @Test("64K guest on a 4K host: the guest's stage 1 uses the 64K granule (CD.TG0, 64K|512M, level-3 64K leaves); its MSI IOVA page is 64K aligned with the doorbell at offset 0x40; DMA through 64K stage 1 and 4K stage 2 lands")
    func guest64KOnHost4K() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, guest: Self.guest64K, ramSize: Self.guestRAM)
        #expect(h.host.pageSize == 0x1000 && h.guest.pageSize == 0x1_0000, "each kernel has its own PAGE_SIZE")
        let guestSMMU = try #require(h.guest.smmuDrivers.first)
        #expect(guestSMMU.pageSizeBitmap == 0x2001_0000)
        #expect(try #require(h.host.smmuDrivers.first).pageSizeBitmap == 0x4020_1000)
        let g = try #require(h.guestDevice)
        try h.guest.pci.enableDevice(g)
        try h.guest.pci.setMaster(g)
        #expect(try h.guest.pci.allocateIRQVectors(g, min: 4, max: 4, flags: .msix) == 4)

        let domain = try #require(h.guest.iommu.domain(for: g.device))
        let smmuDomain = try #require(domain.driverData as? ArmSMMUv3Domain)
        #expect(smmuDomain.pageTable.geometry.granule == .size64K)
        let cd = try Self.guestCD(h)
        #expect(cd.tg0 == .size64K && cd.t0sz == 16, "arm_smmu_make_s1_cd from io-pgtable's TCR")
        #expect(cd.ttb0 == smmuDomain.pageTable.root.rawValue)

        // The MSI page: one 64K IOVA granule of the guest's DMA domain.
        guard case .dmaIOVA(let cookie) = domain.cookie else { Issue.record("no IOVA cookie"); return }
        #expect(cookie.iovad.granule == 0x1_0000)
        let page = try #require(cookie.msiPages.first)
        #expect(cookie.msiPages.count == 1 && page.physical == 0x0809_0000 && page.iova & 0xFFFF == 0)
        #expect(smmuDomain.pageTable.leaf(for: page.iova)?.level == 3)
        for (v, entry) in h.vmm.function.entries.enumerated() {
            #expect(entry.address == page.iova + 0x40, "vector \(v): the 64K MSI page plus GITS_TRANSLATER's offset")
            #expect(h.guest.iommu.iovaToPhys(domain, entry.address) == 0x0809_0040)
        }

        // DMA: the guest maps 0x800 bytes at offset 0x234 of a 64K page; the device writes the
        // last byte of that 64K IOVA page, which the guest's 64K leaf covers.
        let buffer = try h.guest.pages.allocate(bytes: 0x1_0000, alignment: 0x1_0000)
        let iova = try h.guest.dma.map(device: g.device, physical: PhysicalAddress(buffer.rawValue + 0x234), size: 0x800, direction: .fromDevice)
        #expect(iova.rawValue & 0xFFFF == 0x234)
        let last = iova.rawValue - 0x234 + 0xFFF8
        #expect(h.function.dma(.write, address: IOVA(last), size: 8, data: 0x64).result?.status == .completed)
        let hostPage = try #require(h.hostPhysical(ofGuest: buffer.rawValue + 0xFFF8))
        #expect(h.machine.bus.ram.read(hostPage.rawValue, size: 8) == 0x64)
    }

    @Test("64K host and 64K guest: both stages use 64K granules, so the physical SMMU reports a 64K translation for the guest's DMA IOVA")
    func guest64KOnHost64K() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, host: KernelConfiguration(pageSize: .size64K), guest: Self.guest64K,
                                    ramSize: Self.guestRAM)
        #expect(try #require(h.host.smmuDrivers.first).pageSizeBitmap == 0x2001_0000)
        let g = try #require(h.guestDevice)
        try h.guest.pci.enableDevice(g)
        try h.guest.pci.setMaster(g)
        let buffer = try h.guest.pages.allocate(bytes: 0x1_0000, alignment: 0x1_0000)
        let iova = try h.guest.dma.map(device: g.device, physical: buffer, size: 0x1_0000, direction: .bidirectional)
        #expect(iova.rawValue & 0xFFFF == 0)
        let t = DeviceTransaction(kind: .read, address: iova, size: 8, streamID: StreamID(UInt32(VMMHarness.hostRID.rawValue)),
                                  deviceID: DeviceID(UInt32(VMMHarness.hostRID.rawValue)))
        guard case .translated(let result) = h.machine.smmus[0].translator.translate(t) else {
            Issue.record("the nested walk did not translate")
            return
        }
        #expect(result.pageSize == 0x1_0000, "min(stage-1 64K leaf, stage-2 64K leaf)")
        #expect(result.intermediate?.rawValue == buffer.rawValue, "stage 1 gives the guest physical address")
        #expect(result.output == h.hostPhysical(ofGuest: buffer.rawValue))
    }
}
