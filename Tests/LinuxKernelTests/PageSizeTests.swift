import Testing
import Bus
import GIC
import Machine
import PCI
import SMMUv3
@testable import LinuxKernel

/// A kernel built with 64K (or 16K) pages: KernelConfiguration.pageSize.
///
/// Where the expected values come from:
/// - io-pgtable-arm.c `arm_lpae_restrict_pgsizes`: the granule is PAGE_SIZE when the SMMU has
///   it (qemu-virt's SMMU sets IDR5.GRAN4K/16K/64K), and the sizes kept are 64K | 512M for a
///   64K granule (0x2001_0000), 16K | 32M for 16K (0x0200_4000), 4K | 2M | 1G for 4K;
/// - dma-iommu `iommu_dma_init_domain`: the IOVA granule is the domain's smallest page;
///   `cookie_msi_granule`: that granule for a DMA domain, PAGE_SIZE for an MSI cookie;
/// - iommufd `iommufd_sw_msi`: IOVA = sw_msi_start + pgoff × PAGE_SIZE;
/// - qemu-virt: SW_MSI window 0x0800_0000 (MSI_IOVA_BASE), ITS 0 at 0x0808_0000 so
///   GITS_TRANSLATER 0x0809_0040 in the 64K-aligned page 0x0809_0000; qemu-virt-two-its adds
///   ITS 1 at 0x0910_0000 (doorbell 0x0911_0040, page 0x0911_0000); ep0 is StreamID 0x8.
@Suite("Kernel PAGE_SIZE 16K/64K")
struct PageSizeTests {
    static let ep0 = RequesterID(bus: 0, device: 1, function: 0)
    static let kernel64K = KernelConfiguration(pageSize: .size64K)

    /// What the SMMU itself reports for a device read at `iova` from StreamID `sid`.
    static func smmuTranslation(_ h: HostHarness, _ iova: UInt64, sid: UInt32 = 8) -> TranslationResult? {
        let t = DeviceTransaction(kind: .read, address: IOVA(iova), size: 4, streamID: StreamID(sid), deviceID: DeviceID(sid))
        guard case .translated(let result) = h.machine.smmus[0].translator.translate(t) else { return nil }
        return result
    }

    // MARK: io-pgtable granule choice

    @Test("arm_lpae_restrict_pgsizes: PAGE_SIZE if the SMMU has it, else the largest below, else the smallest above; ias/oas clipped to 48 (52 for 64K)",
          arguments: [
              // (SMMU bitmap, PAGE_SIZE, oas) → (sizes kept, ias, oas); ias 52 goes in
              (0x2201_6000 | 0x4020_1000, 0x1000, 48, 0x4020_1000, 48, 48),           // all three, 4K kernel
              (0x2201_6000 | 0x4020_1000, 0x1_0000, 48, 0x2001_0000, 52, 48),          // all three, 64K kernel
              (0x2201_6000 | 0x4020_1000, 0x4000, 48, 0x0200_4000, 48, 48),            // all three, 16K kernel
              (0x4020_1000, 0x1_0000, 48, 0x4020_1000, 48, 48),                          // 4K-only SMMU, 64K kernel: largest below
              (0x2001_0000, 0x1000, 48, 0x2001_0000, 52, 48),                            // 64K-only SMMU, 4K kernel: smallest above
              (0x2001_0000 | 0x0200_4000, 0x1000, 48, 0x0200_4000, 48, 48),              // 16K+64K SMMU, 4K kernel: 16K
              (0x2001_0000 | 0x4020_1000 | 1 << 42, 0x1_0000, 52, 0x2001_0000 | 1 << 42, 52, 52), // 52-bit OA: the 4TB block
              (0x2001_0000 | 0x4020_1000 | 1 << 42, 0x1000, 52, 0x4020_1000, 48, 48),    // 4K granule clips oas to 48
              (0, 0x1000, 48, 0, 48, 48),                                                // nothing left
          ] as [(UInt64, UInt64, Int, UInt64, Int, Int)])
    func restrictPageSizes(_ c: (UInt64, UInt64, Int, UInt64, Int, Int)) {
        let r = IOPageTableARM.restrictPageSizes(c.0, kernelPageSize: c.1, inputBits: 52, outputBits: c.2)
        #expect(r.pageSizes == c.3)
        #expect(r.inputBits == c.4 && r.outputBits == c.5)
    }

    @Test("an SMMU with a 52-bit OAS: a 4K kernel's stage-1 and stage-2 tables are clipped to 48 bits (VTCR.PS/CD.IPS 48-bit); a 64K kernel's keep 52 and gain the 4TB level-1 block",
          arguments: [(Granule.size4K, 48, 0x4020_1000), (Granule.size64K, 52, 0x2001_0000 | 1 << 42)] as [(Granule, Int, UInt64)])
    func outputAddress52(_ c: (Granule, Int, UInt64)) throws {
        var options = MachinePreset.qemuVirt.options
        options.smmu.outputAddressSize = .bits52
        let machine = try Machine(topology: try MachinePreset.qemuVirt.topology(), options: options, name: "qemu-virt-oas52")
        let h = try HostHarness.make(machine: machine, configuration: KernelConfiguration(pageSize: c.0))
        let driver = try #require(h.kernel.smmuDrivers.first)
        #expect(driver.features.outputAddressBits == 52 && driver.features.inputAddressBits == 52)
        #expect(driver.pageSizeBitmap == c.2)
        let device = try #require(HostScenario.pciDevice(h, 0)).device
        let s2 = try driver.allocatePagingDomain(for: device, flags: .nestParent)
        let table = try #require((s2.driverData as? ArmSMMUv3Domain)?.pageTable)
        #expect(table.inputBits == c.1 && table.outputBits == c.1, "arm_lpae_restrict_pgsizes: min(ias/oas, max_addr_bits)")
        #expect(table.geometry.inputSize == c.1 && table.geometry.granule == c.0)
        #expect(table.physicalSizeField == (c.1 == 52 ? 6 : 5))
        #expect(s2.pageSizeBitmap == c.2 && s2.apertureEnd == (UInt64(1) << UInt64(c.1)) - 1)
        let dma = try #require(h.kernel.iommu.dmaDomain(for: device))
        #expect((dma.driverData as? ArmSMMUv3Domain)?.pageTable.outputBits == c.1, "stage 1: oas = smmu->ias, clipped")
    }

    // MARK: kernel DMA domain

    @Test("a DMA domain on a kernel with PAGE_SIZE = granule: that granule's sizes, IOVA granule, page-table geometry, and the SMMU walks a leaf of that size",
          arguments: Granule.allCases)
    func dmaDomainGranule(_ granule: Granule) throws {
        let h = try HostHarness.make(configuration: KernelConfiguration(pageSize: granule))
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        try k.pci.enableDevice(pci)
        try k.pci.setMaster(pci)
        let expectedSizes: UInt64 = switch granule {
        case .size4K: 0x4020_1000
        case .size16K: 0x0200_4000
        case .size64K: 0x2001_0000
        }
        let domain = try #require(k.iommu.dmaDomain(for: pci.device))
        #expect(domain.pageSizeBitmap == expectedSizes)
        #expect(try #require(k.smmuDrivers.first).pageSizeBitmap == expectedSizes, "arm_smmu_ops.pgsize_bitmap after io-pgtable")
        let smmuDomain = try #require(domain.driverData as? ArmSMMUv3Domain)
        #expect(smmuDomain.pageTable.geometry.granule == granule)
        guard case .dmaIOVA(let cookie) = domain.cookie else { Issue.record("no IOVA cookie"); return }
        #expect(cookie.iovad.granule == granule.size, "iommu_dma_init_domain: order = __ffs(pgsize_bitmap)")

        // A 0x800-byte buffer at offset 0x234 of a granule: the offset is kept and the whole
        // granule is mapped (one IOVA granule, the top one below 4 GiB).
        let pool = try k.pages.allocate(bytes: granule.size * 2, alignment: granule.size)
        let physical = pool.rawValue + 0x234
        let iova = try k.dma.map(device: pci.device, physical: PhysicalAddress(physical), size: 0x800, direction: .bidirectional)
        #expect(iova.rawValue == 0x1_0000_0000 - granule.size + 0x234)
        let leaf = try #require(smmuDomain.pageTable.leaf(for: iova.rawValue))
        #expect(leaf.level == 3, "a page descriptor")
        let walked = try #require(Self.smmuTranslation(h, iova.rawValue))
        #expect(walked.pageSize == granule.size, "the SMMU reports the leaf's size")
        #expect(walked.output.rawValue == physical)
        // The rest of the granule is reachable too: that is what a bigger page means.
        let lastByte = iova.rawValue - 0x234 + granule.size - 1
        #expect(Self.smmuTranslation(h, lastByte)?.output.rawValue == pool.rawValue + granule.size - 1)
        #expect(k.dma.unmap(device: pci.device, iova: iova, size: 0x800) == granule.size)
        #expect(Self.smmuTranslation(h, iova.rawValue) == nil, "strict unmap: TLBI + SYNC, then the walk faults")
        // The range TLBI used TG = the granule (TTL 3 for a leaf): the SMMU accepted every command.
        #expect(try #require(k.smmuDrivers.first).commandErrors.isEmpty)
    }

    @Test("64K host: dma_alloc_coherent rounds to PAGE_SIZE and returns a 64K-aligned page; the device reads what the CPU wrote")
    func coherent64K() throws {
        let h = try HostHarness.make(configuration: Self.kernel64K)
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        try k.pci.enableDevice(pci)
        try k.pci.setMaster(pci)
        let (physical, iova) = try k.dma.allocateCoherent(device: pci.device, size: 0x1800)
        #expect(physical.rawValue & 0xFFFF == 0)
        #expect(iova.rawValue == 0xFFFF_0000, "PAGE_ALIGN(0x1800) = one 64K page, the top one below 4 GiB")
        k.bus.ram.write(physical.rawValue + 0xF000, size: 8, value: 0xCAFE)
        #expect(h.functions[0].dma(.read, address: IOVA(iova.rawValue + 0xF000), size: 8).result?.data == 0xCAFE)
    }

    @Test("64K host: the SMMU queues follow Q_MAX_SZ_SHIFT = PAGE_SHIFT + 8, so IDR1's 2^19 entries fit; 4K caps the command queue at 2^16, the event queue at 2^15")
    func queueSizes() throws {
        let big = try HostHarness.make(configuration: Self.kernel64K)
        let small = try HostHarness.make()
        let f64 = try #require(big.kernel.smmuDrivers.first).features
        let f4 = try #require(small.kernel.smmuDrivers.first).features
        #expect(f64.commandQueueShift == 19 && f64.eventQueueShift == 19)
        #expect(f4.commandQueueShift == 16 && f4.eventQueueShift == 15)
        #expect(big.machine.smmus[0].isEnabled)
    }

    @Test("64K host, driver MSI-X on a DMA domain: the MSI page is one 64K IOVA granule mapped to the ITS page 0x0809_0000; the entry keeps offset 0x40; delivery works")
    func dmaDomainMSIPage() throws {
        let h = try HostHarness.make(configuration: Self.kernel64K)
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let counter = HostScenario.Counter()
        let irqs = try HostScenario.probe(k, pci, vectors: 2, counter: counter)
        let domain = try #require(k.iommu.dmaDomain(for: pci.device))
        guard case .dmaIOVA(let cookie) = domain.cookie else { Issue.record("no IOVA cookie"); return }
        #expect(cookie.msiPages.count == 1)
        let page = try #require(cookie.msiPages.first)
        #expect(page.physical == 0x0809_0000 && page.iova & 0xFFFF == 0)
        #expect(page.iova == 0xFFFF_0000, "the first IOVA granule allocated below 4 GiB (pci_32bit_workaround)")
        for v in 0..<2 {
            #expect(HostScenario.entry(h.functions[0], v).address == page.iova + 0x40)
        }
        #expect(Self.smmuTranslation(h, page.iova + 0x40)?.pageSize == 0x1_0000)
        _ = h.functions[0].raise(vector: 1)
        #expect(k.irq.handleInterrupts(cpu: 0) == 1)
        #expect(counter.values[irqs[1]] == 1)
    }

    // MARK: VFIO type1 (MSI cookie)

    @Test("64K host, VFIO type1: the MSI cookie's page is PAGE_SIZE (64K) at 0x0800_0000; the MSI-X entry still reads 0x0800_0040; the SMMU walks a 64K leaf; the vector signals the eventfd")
    func type1MSICookie64K() throws {
        let h = try HostHarness.make(configuration: Self.kernel64K)
        let k = h.kernel
        let process = UserProcess(kernel: k)
        let pdev = try #require(k.pci.device(Self.ep0))
        try k.vfio.bindVFIOPCI(pdev.device)
        let container = k.vfio.openContainer(process: process)
        let group = try k.vfio.openGroup(try #require(pdev.device.iommu?.group?.id))
        try group.setContainer(container)
        try container.setIOMMU(VFIOContainer.type1v2IOMMU)
        let file = try group.getDeviceFD(pdev.device.name)
        try file.writeCommand(0x0006)
        let type1 = try #require(container.type1)
        #expect(type1.pageSizeBitmap == 0x2001_0000, "vfio_update_pgsize_bitmap: the domain's sizes, nothing below PAGE_SIZE")

        // User memory comes in 64K pages; a 4K-sized map is below the smallest page.
        let va = try process.mmap(length: 0x1000)
        #expect(va & 0xFFFF == 0 && process.mappings.last?.length == 0x1_0000)
        #expect(throws: Errno.EINVAL) {
            try container.mapDMA(flags: VFIOType1.mapFlagRead | VFIOType1.mapFlagWrite, vaddr: va, iova: 0x1000_0000, size: 0x1000)
        }
        try container.mapDMA(flags: VFIOType1.mapFlagRead | VFIOType1.mapFlagWrite, vaddr: va, iova: 0x1000_0000, size: 0x1_0000)

        let (fd, eventfd) = process.eventfd()
        try file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        let domain = try #require(type1.domains.first?.domain)
        guard case .dmaMSI(let cookie) = domain.cookie else { Issue.record("no MSI cookie"); return }
        #expect(cookie.msiGranule == 0x1_0000, "cookie_msi_granule: PAGE_SIZE")
        #expect(cookie.msiPages.map(\.iova) == [0x0800_0000] && cookie.msiPages.map(\.physical) == [0x0809_0000])
        #expect(cookie.nextIOVA == 0x0801_0000, "the bump allocator advanced by one 64K page")
        #expect(HostScenario.entry(h.functions[0], 0).address == 0x0800_0040)
        #expect(k.iommu.iovaToPhys(domain, 0x0800_FFF8) == 0x0809_FFF8, "the whole 64K ITS page is mapped")
        let walked = try #require(Self.smmuTranslation(h, 0x0800_0040))
        #expect(walked.pageSize == 0x1_0000 && walked.output.rawValue == 0x0809_0040)
        _ = h.functions[0].raise(vector: 0)
        _ = k.irq.handleInterrupts(cpu: 0)
        #expect(eventfd.count == 1)
    }

    // MARK: iommufd sw_msi

    @Test("64K host, iommufd with two ITSs: the sw_msi pgoff step is 64K — doorbell pages 0x0809_0000 and 0x0911_0000 at 0x0800_0000 and 0x0801_0000; entries 0x0800_0040 and 0x0801_0040; both deliver")
    func iommufdTwoDoorbells64K() throws {
        let h = try HostHarness.make(preset: .qemuVirtTwoITS, endpoints: [HostHarness.Endpoint(requesterID: Self.ep0)],
                                     configuration: Self.kernel64K, boot: false)
        let port = try PCIToPCIBridge(requesterID: RequesterID(bus: 0, device: 2, function: 0), kind: .rootPort, secondaryBus: 1)
        try h.machine.rootComplexes[0].attach(port)
        let farRID = RequesterID(bus: 1, device: 0, function: 0)
        let far = try PCIFunction(name: "far", requesterID: farRID, vendorID: 0x1AF4, deviceID: 0x1041,
                                  bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)], msix: MSIXConfiguration(tableSize: 2))
        try h.machine.rootComplexes[0].attach(far, behind: port)
        let k = h.kernel
        try k.boot()
        let process = UserProcess(kernel: k)
        let iommufd = k.openIOMMUFD()
        iommufd.process = process
        let ioas = try iommufd.ioasAlloc()
        var files: [VFIODeviceFile] = []
        var eventfds: [EventFD] = []
        var hwptIDs: [UInt32] = []
        for rid in [Self.ep0, farRID] {
            let vdev = try k.vfio.bindVFIOPCI(try #require(k.pci.device(rid)).device)
            let file = try k.vfio.openDevice(vdev.cdevName, process: process)
            _ = try file.bindIOMMUFD(iommufd)
            try file.writeCommand(0x0006)
            hwptIDs.append(try file.attachIOMMUFDPT(ioas))
            let (fd, eventfd) = process.eventfd()
            try file.setIRQs(.trigger(start: 0, eventfds: [fd]))
            files.append(file)
            eventfds.append(eventfd)
        }
        #expect(hwptIDs[0] == hwptIDs[1], "one auto domain for the IOAS")
        let ioasObject = try #require(iommufd.object(ioas) as? IOMMUFDIOAS)
        #expect(ioasObject.iopt.iovaAlignment == 0x1_0000, "iopt_table_add_domain: the domain's smallest page, ≤ PAGE_SIZE")
        #expect(iommufd.swMSITable.maps.map(\.msiAddress) == [0x0809_0000, 0x0911_0000])
        #expect(iommufd.swMSITable.maps.map(\.pageOffset) == [0, 1])
        #expect(iommufd.swMSITable.maps.map(\.iova) == [0x0800_0000, 0x0801_0000])
        #expect(HostScenario.entry(h.functions[0], 0).address == 0x0800_0040)
        #expect(HostScenario.entry(far, 0).address == 0x0801_0040)
        let hwpt = try #require(iommufd.object(hwptIDs[0]) as? IOMMUFDHWPTPaging)
        #expect(k.iommu.iovaToPhys(hwpt.domain, 0x0801_0040) == 0x0911_0040)
        #expect(hwpt.presentSWMSI.ids == [0, 1])
        _ = h.functions[0].raise(vector: 0)
        _ = far.raise(vector: 0)
        _ = k.irq.handleInterrupts(cpu: 0)
        #expect(eventfds.map(\.count) == [1, 1])
    }

    @Test("iommufd IOAS on a 64K host: allocations come from [PAGE_SIZE, …] at 64K alignment, and an unaligned length is EINVAL once a 64K domain is attached")
    func ioasAlignment64K() throws {
        let h = try HostHarness.make(configuration: Self.kernel64K)
        let k = h.kernel
        let process = UserProcess(kernel: k)
        let iommufd = k.openIOMMUFD()
        iommufd.process = process
        let ioas = try iommufd.ioasAlloc()
        let va = try process.mmap(length: 0x2_0000)
        // No domain yet: alignment 1, but the lowest IOVA handed out is PAGE_SIZE.
        #expect(try iommufd.ioasMap(ioasID: ioas, flags: [.readable], userVA: va, length: 0x1_0000) == 0x1_0000)
        let vdev = try k.vfio.bindVFIOPCI(try #require(k.pci.device(Self.ep0)).device)
        let file = try k.vfio.openDevice(vdev.cdevName, process: process)
        _ = try file.bindIOMMUFD(iommufd)
        _ = try file.attachIOMMUFDPT(ioas)
        #expect(throws: Errno.EINVAL) {
            try iommufd.ioasMap(ioasID: ioas, flags: [.readable], userVA: va + 0x1_0000, length: 0x1000)
        }
        #expect(try iommufd.ioasMap(ioasID: ioas, flags: [.readable], userVA: va + 0x1_0000, length: 0x1_0000) == 0x2_0000)
    }

    // MARK: KVM

    @Test("64K host: a KVM memslot must be 64K aligned in size, GPA and user address (EINVAL otherwise)")
    func memslotAlignment64K() throws {
        let h = try HostHarness.make(configuration: Self.kernel64K)
        let process = UserProcess(kernel: h.kernel)
        let kvm = h.kernel.kvm.createVM(process: process)
        let va = try process.mmap(length: 0x4_0000)
        #expect(throws: Errno.EINVAL) { try kvm.setUserMemoryRegion(slot: 0, guestPhysical: 0x4000_0000, size: 0x1000, userVA: va) }
        #expect(throws: Errno.EINVAL) { try kvm.setUserMemoryRegion(slot: 0, guestPhysical: 0x4000_1000, size: 0x1_0000, userVA: va) }
        try kvm.setUserMemoryRegion(slot: 0, guestPhysical: 0x4000_0000, size: 0x4_0000, userVA: va)
        #expect(kvm.hostPhysical(ofGuest: 0x4001_2345) == process.physicalPage(of: va + 0x1_0000).map { PhysicalAddress($0.rawValue + 0x2345) })
    }
}
