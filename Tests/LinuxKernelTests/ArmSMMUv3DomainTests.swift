import Testing
import Bus
import Machine
import PCI
import SMMUv3
@testable import LinuxKernel

@Suite("arm-smmu-v3: domains, STEs/CDs, DMA and invalidation")
struct ArmSMMUv3DomainTests {
    /// ep0 (RID 0x0008) as a probed device, and a stage-1 paging domain attached to it.
    func attachedS1(_ f: SMMUFixture) throws -> (Device, IOMMUDomain, ArmSMMUv3Domain) {
        let device = try f.device("0000:00:01.0", sids: [0x8])
        let domain = try f.driver.allocatePagingDomain(for: device, flags: [])
        try f.driver.attach(domain, to: device)
        let smmuDomain = try #require(domain.driverData as? ArmSMMUv3Domain)
        return (device, domain, smmuDomain)
    }

    @Test("S1 DMA domain: the CD is arm_smmu_make_s1_cd's and the STE arm_smmu_make_cdtable_ste's (S1DSS=SSID0)")
    func stage1EntriesAsLinuxWritesThem() throws {
        let f = try SMMUFixture.make()
        let (device, domain, smmuDomain) = try attachedS1(f)
        // First ASID from XA_LIMIT(1, …) is 1.
        #expect(smmuDomain.stage == .stage1(ASID(1)))
        #expect(domain.pageSizeBitmap == 0x4020_1000)
        #expect(domain.apertureEnd == (1 << 48) - 1)
        let cd = try #require(try f.driver.contextDescriptor(for: device))
        #expect(cd.valid && cd.aa64 && cd.record && cd.abort && cd.aset && cd.epd1 && !cd.epd0)
        #expect(cd.asid == ASID(1))
        #expect(cd.t0sz == 16)                  // 64 − 48-bit ias
        #expect(cd.tg0 == .size4K)
        #expect(cd.ir0 == 1 && cd.or0 == 1 && cd.sh0 == 3)  // WBWA, inner shareable
        #expect(cd.ips == 4)                    // 44-bit output: smmu->ias = QEMU's IDR5.OAS
        #expect(cd.ttb0 == smmuDomain.pageTable.root.rawValue)
        #expect(cd.mair == 0xF404_FF44)         // NC, WBRWA, DEVICE, INC_OWBRWA
        let master = try f.driver.master(of: device)
        let ste = try #require(try f.driver.streamTableEntry(for: StreamID(0x8)))
        #expect(ste.valid && ste.config == .stage1)
        #expect(ste.s1ContextPtr == master.cdTable?.rawValue)
        #expect(ste.s1CDMax == 0 && ste.s1Fmt == 0)
        #expect(ste.s1DSS == 2)
        #expect(ste.s1CIR == 1 && ste.s1COR == 1 && ste.s1CSH == 3)
        #expect(!ste.s1StallDisable && ste.strw == 0 && ste.s2VMID == VMID(0))
    }

    @Test("identity → bypass STE (Config 0b100), blocked → abort STE (V=1, Config 0) and the CD invalidated")
    func identityAndBlockedDomains() throws {
        let f = try SMMUFixture.make()
        let (device, _, _) = try attachedS1(f)
        try f.driver.attach(f.driver.identityDomain, to: device)
        var ste = try #require(try f.driver.streamTableEntry(for: StreamID(0x8)))
        #expect(ste == ArmSMMUv3Entries.bypassSTE(features: f.driver.features))
        #expect(ste.dw1 == 0)                   // no ATTR_TYPES_OVR, so no SHCFG
        #expect(try f.driver.contextDescriptor(for: device)?.valid == false)
        // DMA under identity reaches the PA unchanged.
        let page = try f.buffer()
        _ = f.functions[0].dma(.write, address: IOVA(page.rawValue + 8), size: 8, data: 0x1122_3344_5566_7788)
        #expect(try f.ram(page.rawValue + 8) == 0x1122_3344_5566_7788)
        try f.driver.attach(f.driver.blockedDomain, to: device)
        ste = try #require(try f.driver.streamTableEntry(for: StreamID(0x8)))
        #expect(ste.valid && ste.config == .abort && ste.dw1 == 0)
        // Abort STE: the DMA is aborted and no event is recorded (§5.2 Config=0b000).
        let outcome = f.functions[0].dma(.write, address: IOVA(page.rawValue), size: 8, data: 1)
        #expect(outcome.result?.status == .aborted)
        #expect(try f.driver.serviceEventQueue().isEmpty)
    }

    @Test("a device's DMA through a mapped S1 domain lands at the mapped PA, reads come back, and iova_to_phys agrees")
    func deviceDMAThroughMappedDomain() throws {
        let f = try SMMUFixture.make()
        let (_, domain, _) = try attachedS1(f)
        let ops = try #require(domain.operations)
        let page = try f.buffer()
        try ops.map(iova: 0xFFFF_F000, physical: page, size: 0x1000, protection: [.read, .write])
        let write = f.functions[0].dma(.write, address: IOVA(0xFFFF_F010), size: 8, data: 0xCAFE_F00D)
        #expect(write.result?.status == .completed)
        #expect(try f.ram(page.rawValue + 0x10) == 0xCAFE_F00D)
        let read = f.functions[0].dma(.read, address: IOVA(0xFFFF_F010), size: 8)
        #expect(read.result?.data == 0xCAFE_F00D)
        #expect(ops.iovaToPhys(0xFFFF_F123) == PhysicalAddress(page.rawValue + 0x123))
        #expect(ops.iovaToPhys(0xFFFF_E000) == nil)
    }

    @Test("io-pgtable leaves: S1 page with nG, AP_UNPRIV, AF, XN for NOEXEC, AttrIndx DEV for MMIO; read-only sets AP_RDONLY; 2 MiB block at level 2")
    func pageTableDescriptors() throws {
        let f = try SMMUFixture.make()
        let (_, domain, smmuDomain) = try attachedS1(f)
        let ops = try #require(domain.operations)
        try ops.map(iova: 0x0800_0000, physical: PhysicalAddress(0x0809_0000), size: 0x1000, protection: [.write, .noExec, .mmio])
        let mmio = try #require(smmuDomain.pageTable.leaf(for: 0x0800_0000))
        #expect(mmio.level == 3)
        // page type 0b11 | AttrIndx 2 <<2 | AP_UNPRIV | SH_OS (no CACHE) | AF | nG | XN (53,54) | OA.
        #expect(mmio.pte == 0x0060_0000_0809_0000 | 0xE4B)
        let ro = try f.buffer()
        try ops.map(iova: 0x1000_0000, physical: ro, size: 0x1000, protection: [.read, .cache])
        let leaf = try #require(smmuDomain.pageTable.leaf(for: 0x1000_0000))
        #expect(leaf.pte.bit(7))                // AP_RDONLY
        #expect(leaf.pte.bits(9, 8) == 3)       // SH_IS with IOMMU_CACHE
        #expect(leaf.pte.bits(4, 2) == 1)       // AttrIndx CACHE
        // A read-only mapping refuses the device's write with a permission fault.
        let write = f.functions[0].dma(.write, address: IOVA(0x1000_0000), size: 4, data: 1)
        #expect(write.result?.status == .aborted)
        #expect(try f.driver.serviceEventQueue().first?.type == .fPermission)
        // iommu_pgsize picks a 2 MiB block when iova, paddr and size allow it.
        let big = try f.kernel.pages.allocate(bytes: 0x20_0000, alignment: 0x20_0000)
        try ops.map(iova: 0x4000_0000, physical: big, size: 0x20_0000, protection: [.read, .write])
        #expect(smmuDomain.pageTable.leaf(for: 0x4000_0000)?.level == 2)
        // Mapping over it again is -EEXIST ("We require an unmap first").
        #expect(throws: Errno.EEXIST) { try ops.map(iova: 0x4000_0000, physical: big, size: 0x1000, protection: [.read]) }
    }

    @Test("DMA to an unmapped IOVA: aborted, F_TRANSLATION in the event queue, decoded and logged (\"event 0x10 received\")")
    func faultIsReadFromEventQueue() throws {
        let f = try SMMUFixture.make()
        let (_, _, _) = try attachedS1(f)
        let outcome = f.functions[0].dma(.write, address: IOVA(0x1234_5000), size: 4, data: 7)
        #expect(outcome.result?.status == .aborted)
        let records = try f.driver.serviceEventQueue()
        let record = try #require(records.first)
        #expect(records.count == 1)
        #expect(record.type == .fTranslation)
        #expect(record.streamID == StreamID(0x8))
        #expect(record.inputAddress == 0x1234_5000)
        #expect(!record.read)                   // RnW = 0: a write
        #expect(!record.stage2 && record.faultClass == 2)   // stage-1 fault, CLASS=IN
        #expect(f.kernel.log.lines.contains { $0.hasSuffix("event 0x10 received:") })
        #expect(f.kernel.log.lines.contains { $0.hasSuffix("event: F_TRANSLATION client: 0000:00:01.0 sid: 0x8 ssid: 0 iova: 0x12345000 ipa: 0") })
        #expect(f.kernel.log.lines.contains { $0.hasSuffix("unpriv data write s1 \"Input address caused fault\" stag: 0") })
        // CONS caught up with PROD, so a second service reads nothing.
        #expect(try f.driver.serviceEventQueue().isEmpty)
        #expect(f.driver.events.count == 1)
    }

    @Test("strict unmap: one TLBI_NH_VA per gathered range + CMD_SYNC, range form with TG=4K, TTL=3, NUM/SCALE covering the pages")
    func strictUnmapInvalidation() throws {
        let f = try SMMUFixture.make()
        let (_, domain, _) = try attachedS1(f)
        let ops = try #require(domain.operations)
        let pages = try f.kernel.pages.allocate(bytes: 0x3000)
        try ops.map(iova: 0x2000_0000, physical: pages, size: 0x3000, protection: [.read, .write])
        // Prime the SMMU's TLB: a DMA hit before the unmap.
        _ = f.functions[0].dma(.write, address: IOVA(0x2000_1000), size: 4, data: 5)
        f.driver.resetCommandLog()
        var gather = IOTLBGather()
        #expect(ops.unmap(iova: 0x2000_0000, size: 0x3000, gather: &gather) == 0x3000)
        ops.iotlbSync(gather)
        // One command: 3 pages = (NUM 2 + 1) × 2^SCALE 0, leaf level 3 (4 − (12 − 3)/(12 − 3)).
        #expect(f.driver.commandLog == [
            .tlbiNHVA(VMID(0), ASID(1), address: 0x2000_0000, leaf: true, range: TLBIRangeFields(num: 2, scale: 0, ttl: 3, tg: 1)),
            f.driver.commandLog.last ?? .tlbiNSNHAll,
        ])
        #expect(f.driver.count(of: .sync) == 1)
        // The invalidation really dropped the cached translation: the same DMA now faults.
        let after = f.functions[0].dma(.write, address: IOVA(0x2000_1000), size: 4, data: 6)
        #expect(after.result?.status == .aborted)
    }

    @Test("range TLBI split: 33 pages → NUM/SCALE chunks of (1 × 2^0) and (1 × 2^5)")
    func rangeInvalidationChunks() throws {
        let f = try SMMUFixture.make()
        let (_, _, smmuDomain) = try attachedS1(f)
        f.driver.resetCommandLog()
        smmuDomain.invalidateRange(iova: 0x1000_0000, size: 33 * 0x1000, granule: 0x1000, leaf: true)
        // __arm_smmu_tlb_inv_range: scale = ffs(pages), num = (pages >> scale) & 31.
        // 33 = 0b100001: first scale 0, num 1 (1 page); then 32 pages: scale 5, num 1.
        let tlbis = f.driver.commandLog.filter { $0.opcode == .tlbiNHVA }
        #expect(tlbis == [
            .tlbiNHVA(VMID(0), ASID(1), address: 0x1000_0000, leaf: true, range: TLBIRangeFields(num: 0, scale: 0, ttl: 3, tg: 1)),
            .tlbiNHVA(VMID(0), ASID(1), address: 0x1000_1000, leaf: true, range: TLBIRangeFields(num: 0, scale: 5, ttl: 3, tg: 1)),
        ])
    }

    @Test("without IDR3.RIL: one non-range TLBI_NH_VA per granule")
    func invalidationWithoutRangeSupport() throws {
        var smmu = SMMUConfiguration()
        smmu.rangeInvalidation = false
        let f = try SMMUFixture.make(smmu: smmu)
        let (_, _, smmuDomain) = try attachedS1(f)
        f.driver.resetCommandLog()
        smmuDomain.invalidateRange(iova: 0x1000_0000, size: 3 * 0x1000, granule: 0x1000, leaf: true)
        #expect(f.driver.commandLog.filter { $0.opcode == .tlbiNHVA } == [0x1000_0000, 0x1000_1000, 0x1000_2000].map {
            Command.tlbiNHVA(VMID(0), ASID(1), address: $0, leaf: true, range: .none)
        })
        #expect(f.driver.count(of: .sync) == 1)
    }

    @Test("a queued (lazy) gather records nothing; flush_iotlb_all issues TLBI_NH_ASID + SYNC")
    func lazyGatherAndFlushAll() throws {
        let f = try SMMUFixture.make()
        let (_, domain, _) = try attachedS1(f)
        let ops = try #require(domain.operations)
        let page = try f.buffer()
        try ops.map(iova: 0x3000_0000, physical: page, size: 0x1000, protection: [.read, .write])
        f.driver.resetCommandLog()
        var gather = IOTLBGather()
        gather.queued = true
        #expect(ops.unmap(iova: 0x3000_0000, size: 0x1000, gather: &gather) == 0x1000)
        ops.iotlbSync(gather)
        #expect(f.driver.commandLog.isEmpty)
        ops.flushIOTLBAll()
        #expect(f.driver.commandLog.first == .tlbiNHASID(VMID(0), ASID(1)))
        #expect(f.driver.count(of: .sync) == 1)
    }

    @Test("nest-parent S2 domain on QEMU's 44-bit SMMU: arm_smmu_make_s2_domain_ste (VMID 1, S2T0SZ 20, SL0 2, 4K, S2PS/VTCR.PS 44, S2AA64/S2PTW/S2R) and TLBI_S2_IPA then TLBI_NH_ALL")
    func nestParentStage2() throws {
        let f = try SMMUFixture.make()
        let device = try f.device("0000:00:01.0", sids: [0x8])
        let domain = try f.driver.allocatePagingDomain(for: device, flags: .nestParent)
        let smmuDomain = try #require(domain.driverData as? ArmSMMUv3Domain)
        #expect(smmuDomain.stage == .stage2(VMID(1)))
        #expect(domain.isNestParent)
        try f.driver.attach(domain, to: device)
        let ste = try #require(try f.driver.streamTableEntry(for: StreamID(0x8)))
        #expect(ste.valid && ste.config == .stage2)
        #expect(ste.s2VMID == VMID(1))
        // Stage 2's ias = oas = smmu->ias = 44 (IDR5.OAS): S2T0SZ = 64 − 44.
        #expect(ste.s2T0SZ == 20)
        // 44-bit IPA with 4K: 32 level-0 entries > ARM_LPAE_S2_MAX_CONCAT_PAGES (16), so no
        // concatenation: start level 0, SL0 = ~(0 + 1) & 3 = 2.
        #expect(ste.s2SL0 == 2)
        // VTCR.PS from io-pgtable's oas 44: ARM_LPAE_TCR_PS_44_BIT (0b100).
        #expect(ste.s2Granule == .size4K && ste.s2PS == 4)
        #expect(ste.s2AA64 && ste.s2PTW && ste.s2R && !ste.s2S)
        #expect(ste.s2IR0 == 1 && ste.s2OR0 == 1 && ste.s2SH0 == 3)
        #expect(ste.s2TTB == smmuDomain.pageTable.root.rawValue)
        let ops = try #require(domain.operations)
        let page = try f.buffer()
        try ops.map(iova: 0x4000_0000, physical: page, size: 0x1000, protection: [.read, .write])
        let dma = f.functions[0].dma(.write, address: IOVA(0x4000_0008), size: 4, data: 0xABCD)
        #expect(dma.result?.status == .completed)
        #expect(try f.ram(page.rawValue + 8) & 0xFFFF_FFFF == 0xABCD)
        // S2 leaf: HAP read|write, MemAttr NC (no IOMMU_CACHE), SH_OS, AF.
        let leaf = try #require(smmuDomain.pageTable.leaf(for: 0x4000_0000))
        #expect(leaf.pte.bits(7, 6) == 3 && leaf.pte.bits(5, 2) == 0x5 && leaf.pte.bits(9, 8) == 2 && leaf.pte.bit(10))
        f.driver.resetCommandLog()
        var gather = IOTLBGather()
        _ = ops.unmap(iova: 0x4000_0000, size: 0x1000, gather: &gather)
        ops.iotlbSync(gather)
        #expect(f.driver.commandLog.map(\.opcode) == [.tlbiS2IPA, .sync, .tlbiNHAll, .sync])
        #expect(f.driver.commandLog.last(where: { $0.opcode == .tlbiNHAll }) == .tlbiNHAll(VMID(1)))
    }

    @Test("hitless STE update: abort → S1 changes one used qword, so qword 1 is written first and CFGI_STE is issued twice")
    func hitlessSTEUpdate() throws {
        let f = try SMMUFixture.make()
        let device = try f.device("0000:00:01.0", sids: [0x8])
        let domain = try f.driver.allocatePagingDomain(for: device, flags: [])
        f.driver.resetCommandLog()
        try f.driver.attach(domain, to: device)
        // The CD first, in two steps (everything but V while V=0 makes the rest unused, then
        // qword 0 with V), then the STE in two steps (qword 1 while Config still says abort,
        // then qword 0), then PREFETCH_CFG without a sync.
        #expect(f.driver.commandLog.map(\.opcode) == [.cfgiCD, .sync, .cfgiCD, .sync, .cfgiSTE, .sync, .cfgiSTE, .sync, .prefetchConfig])
        // S1 → S2 changes qwords 0, 1, 2 and 3: break-before-make, V=0 first (three steps).
        let s2 = try f.driver.allocatePagingDomain(for: device, flags: .nestParent)
        f.driver.resetCommandLog()
        try f.driver.attach(s2, to: device)
        #expect(f.driver.count(of: .cfgiSTE) == 3)
    }

    @Test("reserved regions: the SW_MSI window, and with an untranslated ITS also its GITS_TRANSLATER page as a hardware MSI region")
    func reservedRegions() throws {
        let f = try SMMUFixture.make()
        let device = try f.device("0000:00:01.0", sids: [0x8])
        let regions = f.driver.reservedRegions(for: device)
        #expect(regions == [ReservedRegion(start: 0x0800_0000, length: 0x10_0000, protection: [.write, .noExec, .mmio], type: .swMSI)])
        #expect(regions.map(\.description) == ["0x0000000008000000 0x00000000080fffff msi"])
        let u = try SMMUFixture.make(preset: .qemuVirtUntranslatedITS)
        let other = try u.device("0000:00:01.0", sids: [0x8])
        let withITS = u.driver.reservedRegions(for: other)
        // qemu-virt's ITS at 0x0808_0000: its translation frame is the next 64 KiB page.
        #expect(withITS.count == 2)
        #expect(withITS.last == ReservedRegion(start: 0x0809_0000, length: 0x1_0000, protection: [.write, .noExec, .mmio], type: .msi))
    }

    @Test("CMD_SYNC completes by MSI polling on an SMMU with IDR0.MSI (not QEMU's): CS=SIG_IRQ, MSIAddress = its own slot, MSIData 0, and the slot's first word is zero afterwards")
    func syncByMSIPolling() throws {
        var smmu = SMMUConfiguration.qemuVirt
        smmu.msi = true
        let f = try SMMUFixture.make(smmu: smmu)
        #expect(f.driver.features.msiPolling)
        f.driver.resetCommandLog()
        try f.driver.issueWithSync([.tlbiNSNHAll])
        guard case .sync(let sync) = try #require(f.driver.commandLog.last) else {
            Issue.record("last command is not a CMD_SYNC")
            return
        }
        #expect(sync.completionSignal == .interrupt)
        #expect(sync.msiData == 0 && sync.msiShareability == 3 && sync.msiAttributes == 0xF)
        // The reset issued 4 commands; NSNH_ALL is slot 4, this SYNC slot 5.
        let queue = try #require(f.driver.commandQueue)
        #expect(sync.msiAddress == queue.base.rawValue + 5 * 16)
        #expect(try f.machine.bus.read(PhysicalAddress(sync.msiAddress), size: 4) == 0)
    }

    @Test("without MSI: CMD_SYNC uses CS=SIG_SEV and completion is seen in CMDQ_CONS")
    func syncByConsumerPolling() throws {
        var smmu = SMMUConfiguration()
        smmu.msi = false
        let f = try SMMUFixture.make(smmu: smmu)
        #expect(!f.driver.features.msiPolling)
        f.driver.resetCommandLog()
        try f.driver.issueWithSync([.tlbiNSNHAll])
        guard case .sync(let sync) = try #require(f.driver.commandLog.last) else {
            Issue.record("last command is not a CMD_SYNC")
            return
        }
        #expect(sync.completionSignal == .sendEvent && sync.msiAddress == 0)
    }

    @Test("arm_smmu_cmdq_skip_err: an illegal command (TLBI_EL2_ALL without HYP) is replaced by a CMD_SYNC, GERRORN acked, and the batch's SYNC completes")
    func commandErrorRecovery() throws {
        let f = try SMMUFixture.make()
        try f.driver.issueWithSync([.tlbiEL2All, .tlbiNSNHAll])
        #expect(f.driver.commandErrors == [.illegal])
        #expect(f.kernel.log.lines.contains { $0.contains("CMDQ error (cons 0x01000004): Illegal command") })
        #expect(f.kernel.log.lines.contains { $0.hasSuffix("skipping command in error state:") })
        // The bad slot now holds a CMD_SYNC with CS=SEV.
        let queue = try #require(f.driver.commandQueue)
        let w0 = try f.ram(queue.base.rawValue + 4 * 16)
        #expect(w0 & 0xFF == UInt64(CommandOpcode.sync.rawValue) && w0.bits(13, 12) == 2)
        // GERROR acknowledged; the queue consumed everything (6 reset/issued + this batch's 3).
        let base = f.driver.node.region.base.rawValue
        let gerror = try f.machine.bus.read(PhysicalAddress(base + SMMURegisterOffset.gerror), size: 4)
        let gerrorn = try f.machine.bus.read(PhysicalAddress(base + SMMURegisterOffset.gerrorn), size: 4)
        #expect(gerror == gerrorn)
        let cons = try f.machine.bus.read(PhysicalAddress(base + SMMURegisterOffset.cmdqCons), size: 4)
        #expect(cons & 0xFF_FFFF == 7)
    }

    @Test("probe_device: a StreamID owned by another master is -ENODEV (\"Aliasing StreamID 0x8 … unsupported\"), one beyond the table -ERANGE")
    func probeDeviceStreamChecks() throws {
        let f = try SMMUFixture.make()
        _ = try f.device("a", sids: [0x8, 0x8])
        #expect(throws: Errno.ENODEV) { _ = try f.device("b", sids: [0x8]) }
        #expect(f.kernel.log.lines.contains("arm-smmu-v3: b: Aliasing StreamID 0x8 (from a) unsupported, expect DMA to be broken"))
        #expect(throws: Errno.ERANGE) { _ = try f.device("c", sids: [0x1_0000]) }
    }
}
