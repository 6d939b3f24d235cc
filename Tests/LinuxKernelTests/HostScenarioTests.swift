import Testbed
import Testing
import Bus
import Machine
import PCI
import SMMUv3
@testable import LinuxKernel

/// Host scenarios on `qemu-virt`: the kernel model boots on the bare machine, a driver
/// enables MSI-X on a function and maps DMA buffers, and the hardware function (standing in for
/// the device) raises vectors and issues DMA. Each expected value is derived in the test from the
/// Linux rule it follows.
@Suite("Host scenarios (qemu-virt)")
struct HostScenarioTests {
    /// qemu-virt's ITS is at 0x0808_0000; GITS_TRANSLATER = ITS base + 0x1_0040.
    static let physicalDoorbell: UInt64 = 0x0809_0040

    /// The first IOVA page of a fresh 4K-granule DMA domain for a PCI function: the SMMU's page
    /// sizes are 4K|2M|1G, so the granule is 4K; a PCI device tries below 4 GiB first
    /// (`pci_32bit_workaround`), and iova.c searches top-down, so the first page is
    /// 0x1_0000_0000 − 0x1000.
    static let firstIOVAPage: UInt64 = 0xFFFF_F000

    @Test("default DMA domain: every MSI-X entry holds 0xFFFF_F040 with the EventID as data, and the MSI reaches CPU 0 as the mapped LPI")
    func defaultDMADomain() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        let domain = try #require(group.domain)
        #expect(domain.type == .dma, "iommu.strict=1 (arm64 default): IOMMU_DOMAIN_DMA")
        #expect(domain.cookieType == .dmaIOVA)

        let counter = HostScenario.Counter()
        let irqs = try HostScenario.probe(k, pci, counter: counter)
        #expect(irqs.count == 4)
        for (vector, irq) in irqs.enumerated() {
            let entry = HostScenario.entry(h.functions[0], vector)
            // msi_msg_set_addr: the doorbell page's IOVA with GITS_TRANSLATER's offset 0x40.
            #expect(entry.address == Self.firstIOVAPage | 0x40)
            let descriptor = try #require(k.irq.descriptor(irq))
            #expect(entry.data == descriptor.eventID, "its_irq_compose_msi_msg: data = EventID")
        }
        // One doorbell page for four vectors, mapped to the ITS translation page.
        #expect(k.iommu.iovaToPhys(domain, Self.firstIOVAPage) == 0x0809_0000)
        #expect(k.iommu.iovaToPhys(domain, Self.firstIOVAPage - 0x1000) == nil, "the other vectors reused the page")

        // The device raises vector 2: the SMMU translates 0xFFFF_F040 → 0x0809_0040, the ITS
        // turns (DeviceID 8, EventID) into the LPI its driver mapped, and CPU 0 runs its handler.
        let outcome = h.functions[0].raise(vector: 2)
        #expect(outcome.result?.status == .completed)
        #expect(outcome.transaction?.address == IOVA(Self.firstIOVAPage | 0x40))
        #expect(k.irq.handleInterrupts(cpu: 0) == 1)
        #expect(counter.values == [irqs[2]: 1])
    }

    @Test("each group has its own DMA domain, so the second function's doorbell is also its domain's first page")
    func secondGroupOwnDomain() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let a = try #require(HostScenario.pciDevice(h, 0)), b = try #require(HostScenario.pciDevice(h, 1))
        let ga = try #require(k.iommu.group(of: a.device)), gb = try #require(k.iommu.group(of: b.device))
        #expect(ga !== gb, "distinct RIDs without aliases or shared StreamIDs: pci_device_group gives two groups")
        #expect(ga.domain !== gb.domain)
        let counter = HostScenario.Counter()
        let irqsA = try HostScenario.probe(k, a, counter: counter)
        let irqsB = try HostScenario.probe(k, b, counter: counter)
        #expect(HostScenario.entry(h.functions[1], 0).address == Self.firstIOVAPage | 0x40)
        h.functions[0].raise(vector: 1)
        h.functions[1].raise(vector: 3)
        #expect(k.irq.handleInterrupts(cpu: 0) == 2)
        #expect(counter.values == [irqsA[1]: 1, irqsB[3]: 1], "same address and EventIDs, told apart by DeviceID at the ITS")
    }

    @Test("DMA to a mapped buffer lands in RAM; after a strict unmap the same IOVA faults")
    func dmaToMappedBuffer() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        try k.pci.enableDevice(pci)
        try k.pci.setMaster(pci)
        let buffer = try k.pages.allocate(bytes: 0x1000)
        let iova = try k.dma.map(device: pci.device, physical: PhysicalAddress(buffer.rawValue + 0x10), size: 0x100, direction: .fromDevice)
        // First allocation of the domain, with the buffer's 0x10 offset in its page kept.
        #expect(iova.rawValue == Self.firstIOVAPage + 0x10)
        let write = h.functions[0].dma(.write, address: IOVA(iova.rawValue + 8), size: 8, data: 0x1122_3344_5566_7788)
        #expect(write.result?.status == .completed)
        #expect(k.bus.ram.read(buffer.rawValue + 0x18, size: 8) == 0x1122_3344_5566_7788)
        // DMA_TO_DEVICE maps IOMMU_READ only (dma_info_to_prot), which io-pgtable-arm makes
        // AP_RDONLY at stage 1: the device may read the buffer but its write is refused.
        // (The reverse does not hold: stage 1 has no write-only permission, so the read of a
        // DMA_FROM_DEVICE buffer would complete.)
        let source = try k.dma.map(device: pci.device, physical: PhysicalAddress(buffer.rawValue + 0x800), size: 0x100, direction: .toDevice)
        #expect(h.functions[0].dma(.read, address: source, size: 4).result?.status == .completed)
        #expect(h.functions[0].dma(.write, address: source, size: 4, data: 1).result?.status == .aborted)
        #expect(k.bus.ram.read(buffer.rawValue + 0x800, size: 4) == 0)

        k.dma.unmap(device: pci.device, iova: iova, size: 0x100, direction: .fromDevice)
        let after = h.functions[0].dma(.write, address: iova, size: 8, data: 0xDEAD)
        #expect(after.result?.status == .aborted, "strict: the unmap's TLBI + CMD_SYNC removed any cached walk")
        #expect(k.bus.ram.read(buffer.rawValue + 0x10, size: 8) == 0)
        let events = try k.smmuDrivers[0].serviceEventQueue()
        #expect(events.contains { (e: EventRecord) in e.eventID == 0x10 && e.inputAddress == iova.rawValue && !e.read },
                "the SMMU reported F_TRANSLATION (0x10) for the write to the unmapped IOVA")
    }

    @Test("identity default domain (iommu.passthrough=1): the MSI-X address is the physical doorbell 0x0809_0040 and DMA addresses are physical")
    func identityDomain() throws {
        let h = try HostHarness.make(configuration: KernelConfiguration(defaultDomain: .identity))
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        #expect(k.iommu.domain(for: pci.device)?.type == .identity)
        let counter = HostScenario.Counter()
        let irqs = try HostScenario.probe(k, pci, counter: counter)
        #expect(HostScenario.entry(h.functions[0], 0).address == Self.physicalDoorbell, "iommu_dma_prepare_msi: an IDENTITY domain must pass through")
        h.functions[0].raise(vector: 0)
        #expect(k.irq.handleInterrupts(cpu: 0) == 1)
        #expect(counter.values == [irqs[0]: 1])
        let buffer = try k.pages.allocate(bytes: 0x1000)
        #expect(try k.dma.map(device: pci.device, physical: buffer, size: 0x1000, direction: .bidirectional).rawValue == buffer.rawValue,
                "dma-direct: no IOVA allocation")
    }

    @Test("no SMMU (QEMU virt without iommu=smmuv3): no group, no domain, the physical doorbell 0x0809_0040")
    func noSMMU() throws {
        let h = try HostScenario.host(dtb: "qemu-virt/virt-noiommu.dtb")
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        #expect(k.iommu.group(of: pci.device) == nil)
        #expect(k.iommu.groups.isEmpty)
        let counter = HostScenario.Counter()
        let irqs = try HostScenario.probe(k, pci, counter: counter)
        #expect(HostScenario.entry(h.functions[0], 0).address == Self.physicalDoorbell, "no group: iommu_dma_prepare_msi returns 0 at once")
        h.functions[0].raise(vector: 3)
        #expect(k.irq.handleInterrupts(cpu: 0) == 1)
        #expect(counter.values == [irqs[3]: 1])
    }

    @Test("reserved_regions as sysfs shows it: the SMMUv3 SW_MSI window, 0x08000000–0x080fffff")
    func reservedRegionsSysfs() throws {
        let h = try HostHarness.make()
        let group = try #require(h.kernel.iommu.groups.first)
        // arm_smmu_get_resv_regions: MSI_IOVA_BASE 0x8000000, MSI_IOVA_LENGTH 0x100000, IOMMU_RESV_SW_MSI
        // (printed "msi"); qemu-virt's DT has no reserved-memory/iommu-addresses for the bridge.
        #expect(h.kernel.iommu.reservedRegionsSysfs(group: group) == "0x0000000008000000 0x00000000080fffff msi\n")
    }

    @Test("the DMA allocator never hands out the host bridge's memory windows: 256 MiB buffers stop at 0x4000_0000")
    func allocatorSkipsReservedWindows() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        pci.device.dmaMask = dmaBitMask(32)
        let size: UInt64 = 0x1000_0000
        var got: [UInt64] = []
        while let iova = try? k.dma.map(device: pci.device, physical: PhysicalAddress(0x4000_0000), size: size, direction: .toDevice) {
            got.append(iova.rawValue)
            if got.count > 16 { break }
        }
        // 65536 pages (not rounded: ≥ 32), size-aligned, top-down from 4 GiB: 0xF000_0000,
        // 0xE000_0000, … 0x4000_0000. iova_reserve_pci_windows reserved qemu-virt's 32-bit window
        // (bus 0x1000_0000 + 0x2EFF_0000 → up to 0x3EFE_FFFF), and below it the only aligned
        // candidate is 0, under start_pfn 1: the 13th map fails.
        #expect(got == stride(from: UInt64(0xF000_0000), through: 0x4000_0000, by: -Int(size)).map { $0 })
        let regions = k.iommu.reservedRegions(group: try #require(k.iommu.group(of: pci.device)))
        for iova in got {
            #expect(!(0x1000_0000...0x3EFE_FFFF).overlaps(iova...(iova + size - 1)))
            for region in regions where region.type != .swMSI {
                #expect(!(region.start...region.end).overlaps(iova...(iova + size - 1)))
            }
        }
    }

    @Test("ITS not translated by the SMMU: a hardware MSI region, and the physical doorbell in DMA and identity domains alike")
    func untranslatedITS() throws {
        for configuration in [KernelConfiguration(), KernelConfiguration(defaultDomain: .identity)] {
            let h = try HostHarness.make(preset: .qemuVirtUntranslatedITS, configuration: configuration)
            let k = h.kernel
            let pci = try #require(HostScenario.pciDevice(h, 0))
            let group = try #require(k.iommu.group(of: pci.device))
            // iommu_dma_get_resv_regions: IOMMU_RESV_MSI over [ITS base + 64K, +64K).
            #expect(k.iommu.reservedRegionsSysfs(group: group) ==
                    "0x0000000008000000 0x00000000080fffff msi\n0x0000000008090000 0x000000000809ffff msi\n")
            let counter = HostScenario.Counter()
            let irqs = try HostScenario.probe(k, pci, counter: counter)
            #expect(HostScenario.entry(h.functions[0], 0).address == Self.physicalDoorbell,
                    "cookie_init_hw_msi_region: identity MSI pages, found by iommu_dma_get_msi_page")
            if let domain = group.domain, domain.type == .dma {
                #expect(k.iommu.iovaToPhys(domain, Self.firstIOVAPage) == nil, "no SW_MSI page was allocated or mapped")
                #expect(k.iommu.iovaToPhys(domain, 0x0809_0000) == nil, "nor is the doorbell mapped: the write bypasses the SMMU")
                if case .dmaIOVA(let cookie) = domain.cookie {
                    #expect(cookie.iovad.isAllocated(address: 0x0809_0000) && cookie.iovad.isAllocated(address: 0x0809_F000),
                            "iova_reserve_iommu_regions keeps the hardware MSI region out of the allocator")
                }
            }
            h.functions[0].raise(vector: 1)
            #expect(k.irq.handleInterrupts(cpu: 0) == 1)
            #expect(counter.values == [irqs[1]: 1])
        }
    }

    @Test("strict vs lazy: a burst of 16 unmaps costs 16 TLBI_NH_VA in strict mode, none in lazy mode until one TLBI_NH_ASID at the flush-queue timeout")
    func strictVersusLazy() throws {
        func burst(_ mode: KernelConfiguration.DefaultDomain) throws -> (va: Int, asid: Int, afterTimeout: (va: Int, asid: Int)) {
            let h = try HostHarness.make(configuration: KernelConfiguration(defaultDomain: mode))
            let k = h.kernel
            let pci = try #require(HostScenario.pciDevice(h, 0))
            let smmu = k.smmuDrivers[0]
            let buffer = try k.pages.allocate(bytes: 0x1_0000)
            var iovas: [IOVA] = []
            for i in 0..<16 {
                iovas.append(try k.dma.map(device: pci.device, physical: PhysicalAddress(buffer.rawValue + UInt64(i) * 0x1000), size: 0x1000, direction: .bidirectional))
            }
            let va0 = smmu.commandCounts[.tlbiNHVA] ?? 0, asid0 = smmu.commandCounts[.tlbiNHASID] ?? 0
            for iova in iovas { k.dma.unmap(device: pci.device, iova: iova, size: 0x1000) }
            let va1 = smmu.commandCounts[.tlbiNHVA] ?? 0, asid1 = smmu.commandCounts[.tlbiNHASID] ?? 0
            k.dma.flushQueueTimeout(device: pci.device)
            let va2 = smmu.commandCounts[.tlbiNHVA] ?? 0, asid2 = smmu.commandCounts[.tlbiNHASID] ?? 0
            return (va1 - va0, asid1 - asid0, (va2 - va1, asid2 - asid1))
        }
        let strict = try burst(.dmaStrict)
        // __iommu_dma_unmap without a flush queue: iommu_iotlb_sync per unmap → one leaf TLBI per 4K page.
        #expect(strict.va == 16 && strict.asid == 0)
        #expect(strict.afterTimeout.va == 0 && strict.afterTimeout.asid == 0, "no flush queue in strict mode")
        let lazy = try burst(.dmaLazy)
        // DMA-FQ: gather.queued, no iotlb_sync; 16 entries fit the 256-entry ring, so nothing
        // until fq_flush_timeout → flush_iotlb_all (TLBI_NH_ASID for a stage-1 domain).
        #expect(lazy.va == 0 && lazy.asid == 0)
        #expect(lazy.afterTimeout.va == 0 && lazy.afterTimeout.asid == 1)
    }

    @Test("v6.14 composes the same message through iommu_dma_compose_msi_msg: 0xFFFF_F040")
    func legacyKernelSameAddress() throws {
        let h = try HostHarness.make(configuration: KernelConfiguration(version: .v6_14))
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let counter = HostScenario.Counter()
        let irqs = try HostScenario.probe(k, pci, counter: counter)
        #expect(HostScenario.entry(h.functions[0], 0).address == Self.firstIOVAPage | 0x40)
        #expect(k.irq.descriptor(irqs[0])?.msiDescriptor?.iommuMSIShift == 0, "v6.14 keeps the page in iommu_cookie, not in the shift")
        h.functions[0].raise(vector: 0)
        #expect(k.irq.handleInterrupts(cpu: 0) == 1)
    }

    @Test("behind a PCIe-to-PCI bridge: the first function joins the bridge's group and domain; arm-smmu-v3 refuses the second (aliasing StreamID 0x200)")
    func behindPCIeToPCIBridge() throws {
        let machine = try MachinePreset.qemuVirt.makeMachine()
        let rc = machine.rootComplexes[0]
        let bridge = try PCIToPCIBridge(name: "pcie-to-pci", requesterID: RequesterID(bus: 0, device: 2, function: 0), kind: .pcieToPCI,
                                        vendorID: 0x1B36, deviceID: 0x000E, secondaryBus: 2, subordinateBus: 2)
        try rc.attach(bridge)
        var functions: [PCIFunction] = []
        for slot in [3, 4] as [UInt8] {
            let function = try PCIFunction(name: "legacy\(slot)", requesterID: RequesterID(bus: 2, device: slot, function: 0),
                                           vendorID: 0x8086, deviceID: 0x100E,
                                           bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)], msix: MSIXConfiguration(tableSize: 4))
            try rc.attach(function, behind: bridge)
            functions.append(function)
        }
        let k = try HostMachine(machine).bootHost()
        let bridgeDevice = try #require(k.pci.device(bridge.requesterID)?.device)
        let first = try #require(k.pci.device(functions[0].requesterID))
        let second = try #require(k.pci.device(functions[1].requesterID))
        // pci_for_each_dma_alias: 02:03.0 itself, then PCI_DEVID(2, 0) from the PCIe-to-PCI bridge.
        #expect(first.device.iommu?.streamIDs == [StreamID(0x218), StreamID(0x200)])
        let group = try #require(k.iommu.group(of: first.device))
        #expect(group === k.iommu.group(of: bridgeDevice), "get_pci_alias_or_group finds the bridge's group")
        #expect(second.device.iommu == nil, "arm_smmu_insert_master: StreamID 0x200 already belongs to another master")
        // The first function's MSI is the first page of the shared domain.
        let counter = HostScenario.Counter()
        let irqs = try HostScenario.probe(k, first, counter: counter)
        #expect(HostScenario.entry(functions[0], 0).address == Self.firstIOVAPage | 0x40)
        functions[0].raise(vector: 0)
        #expect(k.irq.handleInterrupts(cpu: 0) == 1)
        #expect(counter.values == [irqs[0]: 1])
    }
}

extension HostScenarioTests {
    @Test("the host view of a device: group, DMA domain with its cookie, the SW_MSI window, the doorbell page")
    func hostView() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        _ = try HostScenario.probe(k, pci, counter: HostScenario.Counter())
        let view = k.iommu.view(of: pci.device)
        #expect(view.group == 0 && view.groupDevices == ["0000:00:01.0"])
        #expect(view.domainType == "DMA" && view.isDefaultDomain && view.cookie == "IOMMU_COOKIE_DMA_IOVA")
        #expect(view.streamIDs == [0x8])
        #expect(view.reservedRegions == ["0x0000000008000000 0x00000000080fffff msi"])
        #expect(view.msiPages == [.init(iova: Self.firstIOVAPage, physical: 0x0809_0000)])
        #expect(view.description.hasSuffix("msi page iova 0xffff_f000 -> 0x0809_0000"))
    }
}

extension HostScenarioTests {
    @Test("iommu.forcedac=1: no 32-bit-first try, so a 64-bit device's doorbell page is the top of the 48-bit aperture, 0xFFFF_FFFF_F040")
    func forceDAC() throws {
        let h = try HostHarness.make(boot: false)
        let k = h.kernel
        k.iommu.forceDAC = true
        try k.boot()
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let counter = HostScenario.Counter()
        let irqs = try HostScenario.probe(k, pci, counter: counter)
        // dma_limit = min(DMA_BIT_MASK(64), aperture_end = 2^48 − 1 for a 48-bit IAS stage 1).
        #expect(HostScenario.entry(h.functions[0], 0).address == 0xFFFF_FFFF_F040)
        h.functions[0].raise(vector: 0)
        #expect(k.irq.handleInterrupts(cpu: 0) == 1)
        #expect(counter.values == [irqs[0]: 1])
    }

    @Test("lazy mode: 300 unmaps flush the IOTLB once, when the 256-entry ring is full, and free what that flush covered")
    func lazyRingFull() throws {
        let h = try HostHarness.make(configuration: KernelConfiguration(defaultDomain: .dmaLazy))
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let smmu = k.smmuDrivers[0]
        let buffer = try k.pages.allocate(bytes: 0x1000)
        var iovas: [IOVA] = []
        for _ in 0..<300 { iovas.append(try k.dma.map(device: pci.device, physical: buffer, size: 0x1000, direction: .toDevice)) }
        let asid0 = smmu.commandCounts[.tlbiNHASID] ?? 0
        for (n, iova) in iovas.enumerated() {
            k.dma.unmap(device: pci.device, iova: iova, size: 0x1000, direction: .toDevice)
            // fq_full when tail + 1 == head: the 256th queue_iova finds 255 entries and flushes.
            let flushes = (smmu.commandCounts[.tlbiNHASID] ?? 0) - asid0
            #expect(flushes == (n < 255 ? 0 : 1), "after unmap \(n + 1)")
        }
        #expect(smmu.commandCounts[.tlbiNHVA] ?? 0 == 0, "no per-page invalidation in lazy mode")
    }
}
