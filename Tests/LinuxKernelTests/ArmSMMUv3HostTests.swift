import Testing
import Bus
import Machine
import PCI
import SMMUv3
@testable import LinuxKernel

@Suite("arm-smmu-v3: booted host, event queue overflow, io-pgtable properties")
struct ArmSMMUv3HostTests {
    @Test("booted qemu-virt host: dma_map through the default domain reaches RAM; a strict unmap issues one TLBI_NH_VA and the next DMA faults with F_TRANSLATION")
    func bootedHostDMAAndStrictUnmap() throws {
        let harness = try HostHarness.make()
        let kernel = harness.kernel
        let driver = try #require(kernel.smmuDrivers.first)
        let device = try #require(kernel.devices.first { $0.iommu?.streamIDs == [StreamID(0x8)] })
        #expect(try driver.streamTableEntry(for: StreamID(0x8))?.config == .stage1)
        harness.functions[0].configWrite(offset: 4, size: 2, value: 0x6)  // Bus Master Enable
        let buffer = try kernel.pages.allocate(bytes: 0x1000)
        let iova = try kernel.dma.map(device: device, physical: buffer, size: 0x1000, direction: .bidirectional)
        let write = harness.functions[0].dma(.write, address: IOVA(iova.rawValue + 0x20), size: 8, data: 0x5A5A_A5A5)
        #expect(write.result?.status == .completed)
        #expect(try harness.machine.bus.read64(PhysicalAddress(buffer.rawValue + 0x20)) == 0x5A5A_A5A5)
        let before = driver.count(of: .tlbiNHVA)
        _ = kernel.dma.unmap(device: device, iova: iova, size: 0x1000)
        // iommu.strict=1 (the arm64 default): one range TLBI for the one page, synced.
        #expect(driver.count(of: .tlbiNHVA) == before + 1)
        let after = harness.functions[0].dma(.write, address: IOVA(iova.rawValue + 0x20), size: 8, data: 1)
        #expect(after.result?.status == .aborted)
        let event = try #require(try driver.serviceEventQueue().first)
        #expect(event.type == .fTranslation && event.inputAddress == iova.rawValue + 0x20)
    }

    @Test("event queue overflow: with a 2-entry queue a third fault is lost, the driver logs it and acknowledges OVFLG in CONS")
    func eventQueueOverflow() throws {
        var smmu = SMMUConfiguration()
        smmu.eventQueueMaxLog2 = 1
        let f = try SMMUFixture.make(smmu: smmu)
        let device = try f.device("0000:00:01.0", sids: [0x8])
        let domain = try f.driver.allocatePagingDomain(for: device, flags: [])
        try f.driver.attach(domain, to: device)
        for page: UInt64 in 1...3 {
            _ = f.functions[0].dma(.write, address: IOVA(page << 12), size: 4, data: 0)
        }
        let records = try f.driver.serviceEventQueue()
        // Two records fit; the third toggled EVENTQ_PROD.OVFLG (§7.4).
        #expect(records.map(\.inputAddress) == [0x1000, 0x2000])
        #expect(f.driver.eventQueueOverflows == 1)
        #expect(f.kernel.log.lines.contains { $0.hasSuffix("EVTQ overflow detected -- events lost") })
        let base = f.driver.node.region.base.rawValue
        let prod = try f.machine.bus.read(PhysicalAddress(base + SMMURegisterOffset.eventqProd), size: 4)
        let cons = try f.machine.bus.read(PhysicalAddress(base + SMMURegisterOffset.eventqCons), size: 4)
        #expect(prod.bit(31) && cons.bit(31))   // OVACKFLG = OVFLG: overflow acknowledged
        // A new fault after the acknowledgement is recorded again.
        _ = f.functions[0].dma(.write, address: IOVA(0x9000), size: 4, data: 0)
        #expect(try f.driver.serviceEventQueue().map(\.inputAddress) == [0x9000])
    }

    @Test("io-pgtable property: random maps and unmaps of 4 KiB–4 MiB ranges agree with a reference map in iova_to_phys, and every unmap returns what was mapped", arguments: [UInt64(1), 0xD00B_E11])
    func randomMapUnmapMatchesReference(seed: UInt64) throws {
        let f = try SMMUFixture.make()
        let device = try f.device("0000:00:01.0", sids: [0x8])
        let domain = try f.driver.allocatePagingDomain(for: device, flags: [])
        let ops = try #require(domain.operations)
        var rng = SeededGenerator(seed: seed)
        // Slots of 4 MiB in a 1 GiB window; each slot holds at most one live mapping.
        var live: [Int: (iova: UInt64, pa: UInt64, size: UInt64)] = [:]
        let physicalBase = try f.kernel.pages.allocate(bytes: 0x40_0000, alignment: 0x20_0000).rawValue
        for _ in 0..<300 {
            let slot = Int.random(in: 0..<256, using: &rng)
            if let mapping = live[slot] {
                var gather = IOTLBGather()
                #expect(ops.unmap(iova: mapping.iova, size: mapping.size, gather: &gather) == mapping.size)
                ops.iotlbSync(gather)
                #expect(ops.iovaToPhys(mapping.iova) == nil)
                live[slot] = nil
            } else {
                // 1 page up to 4 MiB, sometimes 2 MiB-aligned so blocks are used.
                let pages = UInt64.random(in: 1...1024, using: &rng)
                let size = pages << 12
                let iova = 0x4000_0000 + (UInt64(slot) << 22)
                let offset = Bool.random(using: &rng) ? 0 : UInt64.random(in: 0..<512, using: &rng) << 12
                let pa = physicalBase + (offset % 0x20_0000)
                try ops.map(iova: iova, physical: PhysicalAddress(pa), size: min(size, 0x40_0000), protection: [.read, .write])
                live[slot] = (iova, pa, min(size, 0x40_0000))
            }
            // Check a random live mapping at a random offset.
            if let (_, mapping) = live.sorted(by: { $0.key < $1.key }).first {
                let probe = UInt64.random(in: 0..<mapping.size, using: &rng)
                #expect(ops.iovaToPhys(mapping.iova + probe) == PhysicalAddress(mapping.pa + probe))
            }
        }
    }

    @Test("bad arguments never trap: misaligned, zero-sized and overflowing maps are -EINVAL/-ERANGE; an odd gather page size still syncs")
    func badArgumentsAreErrors() throws {
        let f = try SMMUFixture.make()
        let device = try f.device("0000:00:01.0", sids: [0x8])
        let domain = try f.driver.allocatePagingDomain(for: device, flags: [])
        let ops = try #require(domain.operations)
        #expect(throws: Errno.EINVAL) { try ops.map(iova: 0x1001, physical: PhysicalAddress(0x4000_0000), size: 0x1000, protection: [.read]) }
        #expect(throws: Errno.EINVAL) { try ops.map(iova: 0x1000, physical: PhysicalAddress(0x4000_0000), size: 0, protection: [.read]) }
        #expect(throws: Errno.ERANGE) { try ops.map(iova: UInt64.max - 0xFFF, physical: PhysicalAddress(0x4000_0000), size: 0x2000, protection: [.read]) }
        // Beyond the 48-bit aperture.
        #expect(throws: Errno.ERANGE) { try ops.map(iova: 1 << 48, physical: PhysicalAddress(0x4000_0000), size: 0x1000, protection: [.read]) }
        var gather = IOTLBGather()
        gather.pageSize = 1
        gather.add(iova: 0, size: 0x1000)
        ops.iotlbSync(gather)
        var empty = IOTLBGather()
        #expect(ops.unmap(iova: 0x7000_0000, size: 0x1000, gather: &empty) == 0)
    }

    @Test("40-bit OAS: stage 2 uses two concatenated level-1 tables (S2T0SZ 24, SL0 1, S2PS 40-bit) and DMA walks them; stage 1 keeps a 48-bit input with IPS 40-bit")
    func concatenatedStage2ForSmallIPA() throws {
        var smmu = SMMUConfiguration()
        smmu.outputAddressSize = .bits40
        let f = try SMMUFixture.make(smmu: smmu)
        let device = try f.device("0000:00:01.0", sids: [0x8])
        let s2 = try f.driver.allocatePagingDomain(for: device, flags: .nestParent)
        let table = try #require((s2.driverData as? ArmSMMUv3Domain)?.pageTable)
        // 40 − 12 = 28 bits over 9-bit levels: 4 levels from L0 with a 2-entry pgd; ≤ 16 entries,
        // so io-pgtable starts at L1 with 2 concatenated 512-entry tables (8 KiB, 8 KiB-aligned).
        #expect(table.geometry.startLevel == 1 && table.geometry.concatenatedTables == 2)
        #expect(table.root.rawValue % 0x2000 == 0)
        try f.driver.attach(s2, to: device)
        let ste = try #require(try f.driver.streamTableEntry(for: StreamID(0x8)))
        #expect(ste.s2T0SZ == 24 && ste.s2SL0 == 1 && ste.s2PS == 2)
        let page = try f.buffer()
        // An IPA in the second concatenated table (bit 39 set).
        try s2.operations?.map(iova: 0x80_0000_0000, physical: page, size: 0x1000, protection: [.read, .write])
        let dma = f.functions[0].dma(.write, address: IOVA(0x80_0000_0010), size: 4, data: 0x77)
        #expect(dma.result?.status == .completed)
        #expect(try f.ram(page.rawValue + 0x10) & 0xFF == 0x77)
        let s1 = try f.driver.allocatePagingDomain(for: device, flags: [])
        try f.driver.attach(s1, to: device)
        let cd = try #require(try f.driver.contextDescriptor(for: device))
        #expect(cd.t0sz == 16 && cd.ips == 2)
    }
}
