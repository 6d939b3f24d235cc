import Testing
import Bus
import PCI
import SMMUv3
@testable import LinuxKernel

/// `/sys/kernel/iommu_groups/N/type` (`iommu_group_store_type`) and driver bind/unbind
/// (`really_probe` / `__device_release_driver` with `iommu_device_use/unuse_default_domain`)
/// on a booted qemu-virt host whose function 00:01.0 has StreamID 0x8.
@Suite("IOMMU group type and driver binding")
struct IOMMUGroupTypeTests {
    static let sid = StreamID(0x8)

    /// A DMA-API driver's probe: enable + bus master.
    static func bind(_ k: LinuxKernel, _ pci: PCIDevice) throws {
        try k.pci.probeDriver(pci, name: "test-driver") { () throws(Errno) in
            try k.pci.enableDevice(pci)
            try k.pci.setMaster(pci)
        }
    }

    @Test("a bound DMA-API driver holds owner_cnt = 1 (iommu_device_use_default_domain): writing identity/DMA/auto is EPERM; after unbind owner_cnt is 0 and the write goes through")
    func boundDriverRefuses() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        #expect(group.ownerCount == 0, "probe into the group claims nothing")
        try Self.bind(k, pci)
        #expect(group.ownerCount == 1 && k.pci.isDriverBound(pci))
        for value in ["identity", "DMA", "auto"] {
            #expect(throws: Errno.EPERM, "\(value): iommu.c 'ensure that device exists and no driver is bound'") {
                try k.iommu.setGroupType(group, value)
            }
        }
        #expect(k.iommu.groupTypeName(group) == "DMA")
        try k.pci.releaseDriver(pci) { () throws(Errno) in try k.pci.standardRemove(pci) }
        #expect(group.ownerCount == 0 && !k.pci.isDriverBound(pci))
        try k.iommu.setGroupType(group, "identity")
        #expect(k.iommu.groupTypeName(group) == "identity")
    }

    @Test("DMA → DMA-FQ is done in place with a driver bound: the same domain, a flush queue on its cookie, and unmaps stop issuing TLBIs at once")
    func dmaToFlushQueueInPlace() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        let smmu = try #require(k.iommu.driver(for: pci.device))
        try Self.bind(k, pci)
        let domain = try #require(group.defaultDomain)
        try k.iommu.setGroupType(group, "DMA-FQ\n")
        #expect(group.defaultDomain === domain && group.domain === domain, "iommu_dma_init_fq: the domain is kept")
        #expect(domain.type == .dmaFQ && k.iommu.groupTypeName(group) == "DMA-FQ")
        guard case .dmaIOVA(let cookie) = domain.cookie else { Issue.record("no IOVA cookie"); return }
        #expect(cookie.flushQueue != nil)
        let buffer = try k.pages.allocate(bytes: 0x1000)
        let iova = try k.dma.map(device: pci.device, physical: buffer, size: 0x1000, direction: .toDevice)
        smmu.resetCommandLog()
        k.dma.unmap(device: pci.device, iova: iova, size: 0x1000)
        #expect(smmu.count(of: .tlbiNHVA) == 0 && smmu.count(of: .sync) == 0, "lazy: the IOVA waits in the flush queue")
        #expect(cookie.flushQueue?.count == 1)
    }

    @Test("identity with no driver: the static identity domain, a bypass STE (CFGI_STE + SYNC), the CD cleared, the old domain freed (TLBI_NH_ASID); DMA then goes straight to the physical address and dma_map is dma-direct")
    func switchToIdentity() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        let smmu = try #require(k.iommu.driver(for: pci.device))
        let old = try #require(group.defaultDomain)
        guard case .stage1(let asid)? = (old.driverData as? ArmSMMUv3Domain)?.stage else { Issue.record("not stage 1"); return }
        #expect(try smmu.streamTableEntry(for: Self.sid)?.config == .stage1)
        smmu.resetCommandLog()
        try k.iommu.setGroupType(group, "identity")
        #expect(group.defaultDomain === smmu.identityDomain && group.domain === smmu.identityDomain)
        #expect(try smmu.streamTableEntry(for: Self.sid)?.config == .bypass, "arm_smmu_attach_dev_identity: bypass STE")
        #expect(try smmu.contextDescriptor(for: pci.device)?.valid == false, "then the CD is cleared")
        #expect(smmu.commandLog.contains(.cfgiSTE(Self.sid, leaf: true)))
        #expect(smmu.commandLog.contains(.tlbiNHASID(VMID(0), asid)), "iommu_domain_free(old): arm_smmu_domain_free_paging")
        #expect(old.cookieType == .none, "iommu_put_dma_cookie")
        // iommu_setup_dma_ops: no dma-iommu for an identity domain.
        let buffer = try k.pages.allocate(bytes: 0x1000)
        #expect(try k.dma.map(device: pci.device, physical: buffer, size: 0x1000, direction: .fromDevice).rawValue == buffer.rawValue)
        try k.pci.enableDevice(pci)
        try k.pci.setMaster(pci)
        #expect(h.functions[0].dma(.write, address: IOVA(buffer.rawValue), size: 4, data: 0x5A).result?.status == .completed)
        #expect(k.bus.ram.read(buffer.rawValue, size: 4) == 0x5A, "bypass: IOVA = PA")
    }

    @Test("identity → DMA: a new DMA domain (the freed ASID is taken again), the CD written first, then the S1 STE; dma_map goes through dma-iommu again")
    func identityBackToDMA() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        let smmu = try #require(k.iommu.driver(for: pci.device))
        let first = try #require(group.defaultDomain)
        guard case .stage1(let firstASID)? = (first.driverData as? ArmSMMUv3Domain)?.stage else { Issue.record("not stage 1"); return }
        try k.iommu.setGroupType(group, "identity")
        smmu.resetCommandLog()
        try k.iommu.setGroupType(group, "DMA")
        let domain = try #require(group.defaultDomain)
        #expect(domain !== first && domain.type == .dma && group.domain === domain)
        guard case .stage1(let asid)? = (domain.driverData as? ArmSMMUv3Domain)?.stage else { Issue.record("not stage 1"); return }
        #expect(asid == firstASID, "arm_smmu_asid_xa hands out the lowest free ASID, freed with the first domain")
        let cd = try #require(try smmu.contextDescriptor(for: pci.device))
        #expect(cd.valid && cd.asid == asid)
        #expect(try smmu.streamTableEntry(for: Self.sid)?.config == .stage1)
        let firstCFGICD = smmu.commandLog.firstIndex { if case .cfgiCD = $0 { return true } else { return false } }
        let firstCFGISTE = smmu.commandLog.firstIndex { if case .cfgiSTE = $0 { return true } else { return false } }
        #expect(firstCFGICD != nil && firstCFGISTE != nil && firstCFGICD! < firstCFGISTE!, "arm_smmu_attach_dev: CD before STE")
        let buffer = try k.pages.allocate(bytes: 0x1000)
        let iova = try k.dma.map(device: pci.device, physical: buffer, size: 0x1000, direction: .fromDevice)
        #expect(iova.rawValue != buffer.rawValue && k.iommu.iovaToPhys(domain, iova.rawValue) == buffer.rawValue)
    }

    @Test("writing the type the group has already changes nothing: iommu_group_alloc_default_domain returns the current domain, no command is issued")
    func sameTypeIsNoOp() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        let smmu = try #require(k.iommu.driver(for: pci.device))
        let domain = try #require(group.defaultDomain)
        smmu.resetCommandLog()
        try k.iommu.setGroupType(group, "DMA")
        try k.iommu.setGroupType(group, "auto")
        #expect(group.defaultDomain === domain)
        #expect(smmu.commandLog.isEmpty)
    }

    @Test("'auto' on a kernel booted with iommu.passthrough=1 returns an identity group to identity after DMA")
    func autoFollowsConfiguration() throws {
        let h = try HostHarness.make(configuration: KernelConfiguration(defaultDomain: .identity))
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        #expect(k.iommu.groupTypeName(group) == "identity")
        try k.iommu.setGroupType(group, "DMA")
        #expect(k.iommu.groupTypeName(group) == "DMA")
        try k.iommu.setGroupType(group, "auto")
        #expect(k.iommu.groupTypeName(group) == "identity")
    }

    @Test("bad writes: an unknown word (sysfs_streq is case-sensitive), types sysfs cannot ask for, and a DMA owner (VFIO) all fail; the domain stays")
    func refusals() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        let domain = try #require(group.defaultDomain)
        for value in ["dma", "DMA\n\n", "blocked", "unmanaged", ""] {
            #expect(throws: Errno.EINVAL, "\(value.debugDescription)") { try k.iommu.setGroupType(group, value) }
        }
        #expect(throws: Errno.EINVAL) { try k.iommu.setGroupType(group, IOMMUDomainType.blocked) }
        final class Owner {}
        let owner = Owner()
        try k.iommu.claimDMAOwner(group, owner: owner)
        #expect(throws: Errno.EPERM, "owner_cnt counts VFIO's claim too") { try k.iommu.setGroupType(group, "identity") }
        #expect(throws: Errno.EBUSY, "iommu_device_use_default_domain: owned and off the default domain") { try Self.bind(k, pci) }
        #expect(!k.pci.isDriverBound(pci))
        k.iommu.releaseDMAOwner(group)
        #expect(group.defaultDomain === domain && group.domain === domain)
    }

    @Test("unbind leaves the IOMMU alone: same domain, same STE words, a mapping the driver did not unmap still translates; a second bind takes owner_cnt again")
    func unbindKeepsDomain() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        let smmu = try #require(k.iommu.driver(for: pci.device))
        try Self.bind(k, pci)
        let buffer = try k.pages.allocate(bytes: 0x1000)
        let iova = try k.dma.map(device: pci.device, physical: buffer, size: 0x1000, direction: .fromDevice)
        let domain = try #require(group.domain)
        let ste = try #require(try smmu.streamTableEntry(for: Self.sid))
        smmu.resetCommandLog()
        try k.pci.releaseDriver(pci) { () throws(Errno) in try k.pci.disableDevice(pci) }
        #expect(group.domain === domain && group.defaultDomain === domain)
        #expect(try smmu.streamTableEntry(for: Self.sid) == ste)
        #expect(smmu.commandLog.isEmpty, "no CFGI, no TLBI")
        #expect(k.iommu.iovaToPhys(domain, iova.rawValue) == buffer.rawValue)
        if case .notSent(.busMasterDisabled) = h.functions[0].dma(.write, address: iova, size: 4, data: 1) {} else {
            Issue.record("pci_disable_device should have cleared Bus Master Enable")
        }
        try Self.bind(k, pci)
        #expect(group.ownerCount == 1)
        #expect(throws: Errno.EBUSY, "__driver_probe_device refuses a bound device") { try Self.bind(k, pci) }
        #expect(group.ownerCount == 1)
    }

    @Test("a probe that fails drops the default-domain claim and leaves no driver; a driver_managed_dma driver (vfio-pci style) claims nothing")
    func failedProbeAndManagedDMA() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        #expect(throws: Errno.ENODEV) {
            try k.pci.probeDriver(pci, name: "broken") { () throws(Errno) in throw .ENODEV }
        }
        #expect(group.ownerCount == 0 && !k.pci.isDriverBound(pci))
        try k.pci.probeDriver(pci, name: "managed", driverManagedDMA: true) { () throws(Errno) in }
        #expect(group.ownerCount == 0 && pci.device.driverName == "managed")
        try k.pci.releaseDriver(pci) { () throws(Errno) in }
        #expect(group.ownerCount == 0)
    }

    @Test("dma_map_resource: an address outside RAM gets an IOVA mapped IOMMU_MMIO with no RAM check; dma_unmap_resource removes it")
    func mapResource() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let domain = try #require(k.iommu.domain(for: pci.device))
        // The host bridge's 32-bit MMIO window: not RAM.
        let physical: UInt64 = 0x1000_0040
        #expect(!k.bus.isRAM(PhysicalAddress(physical)))
        let iova = try k.dma.mapResource(device: pci.device, physical: physical, size: 4, direction: .toDevice)
        #expect(iova.rawValue & 0xFFF == 0x40, "the offset in the granule is kept")
        #expect(k.iommu.iovaToPhys(domain, iova.rawValue & ~0xFFF) == physical & ~0xFFF)
        #expect(k.dma.unmapResource(device: pci.device, iova: iova, size: 4, direction: .toDevice) == 0x1000)
        #expect(k.iommu.iovaToPhys(domain, iova.rawValue & ~0xFFF) == nil)
    }
}

/// Random sequences of the sysfs and driver-core operations on one host function: whatever the
/// order, the group's state and the hardware agree.
@Suite("IOMMU group type: random operation sequences")
struct IOMMUGroupTypePropertyTests {
    @Test("bind/unbind/type writes (valid and not) and DMA in random order: owner_cnt counts the bound driver, a write succeeds exactly when iommu.c allows it, the STE's Config matches the default domain (bypass for identity, S1 for DMA/DMA-FQ), and a mapped buffer receives the device's write",
          arguments: [UInt64(1), 2])
    func randomSequences(seed: UInt64) throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: pci.device))
        let smmu = try #require(k.iommu.driver(for: pci.device))
        var rng = SeededGenerator(seed: seed)
        let values = ["identity", "DMA", "DMA-FQ", "auto", "dma", "blocked", "DMA-FQ\n", ""]
        for step in 0..<300 {
            let bound = k.pci.isDriverBound(pci)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0:
                if bound {
                    try k.pci.releaseDriver(pci) { () throws(Errno) in try k.pci.disableDevice(pci) }
                } else {
                    try IOMMUGroupTypeTests.bind(k, pci)
                }
            case 1, 2:
                let value = values[Int.random(in: 0..<values.count, using: &rng)]
                let before = group.defaultDomain?.type
                let word = value.hasSuffix("\n") ? String(value.dropLast()) : value
                let valid = ["identity", "DMA", "DMA-FQ", "auto"].contains(word)
                let inPlace = word == "DMA-FQ" && before == .dma
                do {
                    try k.iommu.setGroupType(group, value)
                    #expect(valid && (!bound || inPlace), "step \(step): \(value.debugDescription) accepted while bound = \(bound)")
                } catch {
                    #expect(error == (valid ? .EPERM : .EINVAL), "step \(step): \(value.debugDescription)")
                    #expect(group.defaultDomain?.type == before)
                }
            default:
                guard bound else { continue }
                let buffer = try k.pages.allocate(bytes: 0x1000)
                let iova = try k.dma.map(device: pci.device, physical: buffer, size: 0x1000, direction: .fromDevice)
                let data = UInt64(step) | 0xA500
                #expect(h.functions[0].dma(.write, address: iova, size: 8, data: data).result?.status == .completed, "step \(step)")
                #expect(k.bus.ram.read(buffer.rawValue, size: 8) == data)
                k.dma.unmap(device: pci.device, iova: iova, size: 0x1000)
            }
            #expect(group.ownerCount == (k.pci.isDriverBound(pci) ? 1 : 0))
            #expect(group.domain === group.defaultDomain)
            let config = try smmu.streamTableEntry(for: IOMMUGroupTypeTests.sid)?.config
            #expect(config == (group.defaultDomain?.type == .identity ? .bypass : .stage1), "step \(step)")
        }
    }
}
