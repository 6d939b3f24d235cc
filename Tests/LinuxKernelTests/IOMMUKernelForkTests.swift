import Testing
import Bus
import Machine
import PCI
@testable import LinuxKernel

/// The IOMMU side of a booted host forked with its machine and kernel (`map.clone(machine)`,
/// `map.clone(kernel)`, `finish`): the DMA API, an iommufd context with a VFIO cdev attached to
/// an auto domain, and iommufd's SW_MSI doorbell mapping (the hook the copied IOMMU core carries)
/// go on in the copy exactly as in the original, each in its own machine's memory and SMMU.
@Suite("IOMMU fork with the machine and kernel")
struct IOMMUKernelForkTests {
    /// The 8 STE words of `sid` in `kernel`'s RAM.
    static func ste(_ kernel: LinuxKernel, sid: UInt32) throws -> [UInt64] {
        let address = try #require(kernel.smmuDrivers[0].streamTable?.steAddress(for: sid))
        return (0..<8).map { kernel.bus.ram.read(address.rawValue + UInt64($0) * 8, size: 8) }
    }

    @Test("a forked host: ep0 under VFIO + iommufd and ep1 under the DMA API map, signal and unmap as the original does, in their own machine")
    func vfioIOMMUFDAndDMA() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        // ep1 on the DMA API: two buffers mapped, the first unmapped again.
        let pci1 = try #require(HostScenario.pciDevice(h, 1))
        try k.pci.enableDevice(pci1)
        try k.pci.setMaster(pci1)
        let pool = try k.pages.allocate(bytes: 0x4_0000)
        let first = try k.dma.map(device: pci1.device, physical: pool, size: 0x3000, direction: .bidirectional)
        _ = try k.dma.map(device: pci1.device, physical: PhysicalAddress(pool.rawValue + 0x1_0000), size: 0x1000, direction: .toDevice)
        k.dma.unmap(device: pci1.device, iova: first, size: 0x3000)
        // ep0 through a VFIO cdev bound to iommufd, attached to an IOAS with 16 KiB mapped.
        let process = UserProcess(kernel: k)
        let iommufd = k.openIOMMUFD()
        iommufd.process = process
        let ioas = try iommufd.ioasAlloc()
        let va = try process.mmap(length: 0x1_0000)
        let vdev = try k.vfio.bindVFIOPCI(try #require(HostScenario.pciDevice(h, 0)).device)
        let file = try k.vfio.openDevice(vdev.cdevName, process: process)
        _ = try file.bindIOMMUFD(iommufd)
        try file.writeCommand(0x0006)
        let hwpt = try file.attachIOMMUFDPT(ioas)
        _ = try iommufd.ioasMap(ioasID: ioas, flags: [.readable, .writeable], userVA: va, length: 0x4000)

        let f = try h.forked()
        let k2 = f.kernel
        let iommufd2 = try #require(f.map.copy(of: iommufd)), file2 = try #require(f.map.copy(of: file))
        let process2 = try #require(f.map.copy(of: process))
        let pci1b = try #require(k2.pci.device(f.functions[1].requesterID))
        #expect(k2.iommufdContexts.count == 1 && k2.iommufdContexts[0] === iommufd2 && iommufd2.process === process2)
        #expect(process2.kernel === k2 && file2.vdev === k2.vfio.devices[0] && k2.vfio.devices[0].pdev === k2.pci.device(f.functions[0].requesterID))
        #expect(k2.iommu.iommufdSWMSI != nil, "iommufd's SW_MSI hook, installed on the copied IOMMU core")
        #expect(k2.smmuDrivers[0].kernel === k2 && k2.iommu.kernel === k2 && k2.dma.kernel === k2)
        let hwpt1 = try #require(iommufd.object(hwpt) as? IOMMUFDHWPTPaging), hwpt2 = try #require(iommufd2.object(hwpt) as? IOMMUFDHWPTPaging)
        let group1 = try #require(k.devices.first { $0 === file.vdev.device }?.iommu?.group)
        let group2 = try #require(file2.vdev.device.iommu?.group)
        #expect(group2.domain === hwpt2.domain && group1.domain === hwpt1.domain && group2.owner == ObjectIdentifier(iommufd2))
        for (a, b) in [(hwpt1, hwpt2), (hwpt1.domain, hwpt2.domain), (group1, group2), (k.smmuDrivers[0], k2.smmuDrivers[0])] as [(AnyObject, AnyObject)] {
            let copied = ObjectIdentifier(a) != ObjectIdentifier(b)
            #expect(copied, "\(type(of: a)) was not copied")
            // A group's `owner` is the identity of its claimant, which is the claimant's copy (above).
            #expect(CloneMap.valueFieldsThatDiffer(a, b).filter { $0 != "owner" } == [], "\(type(of: a))")
        }
        let sids = [try #require(file.vdev.device.iommu?.streamIDs.first).rawValue, try #require(pci1.device.iommu?.streamIDs.first).rawValue]
        for sid in sids { #expect(try Self.ste(k2, sid: sid) == Self.ste(k, sid: sid)) }

        // MSI-X vector 0 of ep0 to an eventfd, on the copy first: iommufd_sw_msi maps the ITS
        // page into the copy's domain only.
        let (fd2, eventfd2) = process2.eventfd()
        try file2.setIRQs(.trigger(start: 0, eventfds: [fd2]))
        #expect(k.iommu.iovaToPhys(hwpt1.domain, 0x0800_0000) == nil)
        #expect(k2.iommu.iovaToPhys(hwpt2.domain, 0x0800_0000) != nil)
        let (fd1, eventfd1) = process.eventfd()
        #expect(fd1 == fd2)
        try file.setIRQs(.trigger(start: 0, eventfds: [fd1]))
        #expect(HostScenario.entry(h.functions[0], 0).address == HostScenario.entry(f.functions[0], 0).address)
        #expect(HostScenario.entry(h.functions[0], 0).data == HostScenario.entry(f.functions[0], 0).data)
        _ = f.functions[0].raise(vector: 0)
        _ = k2.irq.handleInterrupts(cpu: 0)
        #expect(eventfd2.count == 1 && eventfd1.count == 0)
        _ = h.functions[0].raise(vector: 0)
        _ = k.irq.handleInterrupts(cpu: 0)
        #expect(eventfd1.count == 1 && eventfd2.count == 1)

        // The same IOAS_MAP and dma_map on both: the same IOVAs; DMA lands in its own machine.
        let iova1 = try iommufd.ioasMap(ioasID: ioas, flags: [.readable, .writeable], userVA: va + 0x8000, length: 0x4000)
        let iova2 = try iommufd2.ioasMap(ioasID: ioas, flags: [.readable, .writeable], userVA: va + 0x8000, length: 0x4000)
        #expect(iova1 == iova2)
        let page = try #require(process2.physicalPage(of: va + 0x8000))
        #expect(f.functions[0].dma(.write, address: IOVA(iova2 + 8), size: 8, data: 0x5A5A).result?.status == .completed)
        #expect(k2.bus.ram.read(page.rawValue + 8, size: 8) == 0x5A5A && k.bus.ram.read(page.rawValue + 8, size: 8) == 0)
        let next1 = try k.dma.map(device: pci1.device, physical: PhysicalAddress(pool.rawValue + 0x2_0000), size: 0x2000, direction: .bidirectional)
        let next2 = try k2.dma.map(device: pci1b.device, physical: PhysicalAddress(pool.rawValue + 0x2_0000), size: 0x2000, direction: .bidirectional)
        #expect(next1 == next2)
        #expect(k.smmuDrivers[0].commandLog == k2.smmuDrivers[0].commandLog)
        for sid in sids { #expect(try Self.ste(k2, sid: sid) == Self.ste(k, sid: sid)) }

        // Unmaps on the copy only.
        #expect(k2.dma.unmap(device: pci1b.device, iova: next2, size: 0x2000) == 0x2000)
        #expect(try iommufd2.ioasUnmap(ioasID: ioas, iova: iova2, length: 0x4000) == 0x4000)
        #expect(f.functions[1].dma(.write, address: next2, size: 1, data: 1).result?.status == .aborted)
        #expect(h.functions[1].dma(.write, address: next1, size: 1, data: 1).result?.status == .completed)
        #expect(f.functions[0].dma(.write, address: IOVA(iova2), size: 1, data: 1).result?.status == .aborted)
        #expect(h.functions[0].dma(.write, address: IOVA(iova1), size: 1, data: 1).result?.status == .completed)
    }

    @Test("nesting forked with the machine: the copy's vSMMU turns a new guest STE into the original's physical STE, and a stage-1 fault reaches only the copy's vEVENTQ")
    func nested() throws {
        let original = try NestedFixture.make()
        try original.buildGuestStage1()
        let hwpt = try original.attachNested(NestedFixture.translatingVSTE)
        let (queue, _) = try original.iommufd.veventqAlloc(viommuID: original.viommu, type: .armSMMUv3, depth: 8)
        let f = try original.harness.forked()
        let copy = NestedFixture(harness: HostHarness(machine: f.machine, kernel: f.kernel, functions: f.functions),
                                 process: try #require(f.map.copy(of: original.process)),
                                 iommufd: try #require(f.map.copy(of: original.iommufd)), file: try #require(f.map.copy(of: original.file)),
                                 deviceID: original.deviceID, ioas: original.ioas, parent: original.parent, viommu: original.viommu,
                                 vdevice: original.vdevice, guestVA: original.guestVA)
        let nested1 = try #require(original.iommufd.object(hwpt) as? IOMMUFDHWPTNested)
        let nested2 = try #require(copy.iommufd.object(hwpt) as? IOMMUFDHWPTNested)
        let viommu2 = try #require(copy.iommufd.object(copy.viommu) as? IOMMUFDVIOMMU)
        let copied = ObjectIdentifier(nested1) != ObjectIdentifier(nested2)
        #expect(copied && nested2.viommu === viommu2 && viommu2.vsmmu.core === viommu2 && viommu2.vsmmu.driver === copy.smmu)
        #expect((nested2.domain.driverData as? ArmSMMUv3NestedDomain)?.vsmmu === viommu2.vsmmu)
        #expect(try copy.physicalSTE() == original.physicalSTE())
        #expect(copy.dmaWrite(NestedFixture.gIOVA + 8, 0x77) == .completed)
        #expect(try copy.guestRead64(NestedFixture.bufferIPA + 8) == 0x77 && original.guestRead64(NestedFixture.bufferIPA + 8) == 0)

        // The guest moves its device to abort (V=1, Config=abort) on the copy only, then on both.
        let abortVSTE: [UInt64] = [1, 0]
        try copy.attachNested(abortVSTE)
        #expect(try copy.physicalSTE() != original.physicalSTE())
        #expect(copy.dmaWrite(NestedFixture.gIOVA + 8, 1) == .aborted && original.dmaWrite(NestedFixture.gIOVA + 8, 1) == .completed)
        try original.attachNested(abortVSTE)
        #expect(try copy.physicalSTE() == original.physicalSTE())
        #expect(original.smmu.commandLog == copy.smmu.commandLog)

        // Back to translating, then a stage-1 fault on the copy: only the copy's vEVENTQ has it.
        try copy.attachNested(NestedFixture.translatingVSTE)
        try original.attachNested(NestedFixture.translatingVSTE)
        let unmapped = NestedFixture.gIOVA + 0x20_0000 + 0x40
        #expect(copy.dmaWrite(unmapped, 7) == .aborted)
        #expect(try copy.smmu.serviceEventQueue().count == 1)
        #expect(try original.iommufd.veventqRead(queue).isEmpty)
        let records = try copy.iommufd.veventqRead(queue)
        #expect(records.count == 1 && records.first.map { $0.data[0] >> 32 } == NestedFixture.vSID)
    }

    @Test("dma-lazy forked with the machine: the copy's flush queue flushes the copy's SMMU, then frees the IOVA the original frees")
    func lazyFlushQueue() throws {
        let h = try HostHarness.make(configuration: KernelConfiguration(defaultDomain: .dmaLazy))
        let pci = try #require(HostScenario.pciDevice(h, 0))
        try h.kernel.pci.enableDevice(pci)
        try h.kernel.pci.setMaster(pci)
        let buffer = try h.kernel.pages.allocate(bytes: 0x1000)
        let iova = try h.kernel.dma.map(device: pci.device, physical: buffer, size: 0x1000, direction: .bidirectional)
        h.kernel.dma.unmap(device: pci.device, iova: iova, size: 0x1000)
        let f = try h.forked()
        let pci2 = try #require(f.kernel.pci.device(f.functions[0].requesterID))
        guard case .dmaIOVA(let cookie1) = try #require(h.kernel.iommu.dmaDomain(for: pci.device)).cookie,
              case .dmaIOVA(let cookie2) = try #require(f.kernel.iommu.dmaDomain(for: pci2.device)).cookie else {
            Issue.record("no DMA cookie")
            return
        }
        let queue1 = try #require(cookie1.flushQueue), queue2 = try #require(cookie2.flushQueue)
        #expect(queue2.count == 1 && queue2.timerArmed && CloneMap.valueFieldsThatDiffer(queue1, queue2) == [])
        let log1 = h.kernel.smmuDrivers[0].commandLog, log2 = f.kernel.smmuDrivers[0].commandLog
        #expect(log1 == log2)
        f.kernel.dma.flushQueueTimeout(device: pci2.device)
        #expect(h.kernel.smmuDrivers[0].commandLog == log1 && f.kernel.smmuDrivers[0].commandLog.count > log2.count)
        #expect(queue2.count == 0 && queue1.count == 1)
        h.kernel.dma.flushQueueTimeout(device: pci.device)
        #expect(h.kernel.smmuDrivers[0].commandLog == f.kernel.smmuDrivers[0].commandLog)
        #expect(cookie1.iovad.allocatedRanges == cookie2.iovad.allocatedRanges)
    }

    @Test("a forked kernel's SMMU driver starts with no entry-write observer and reports nothing to the original's")
    func observerNotCopied() throws {
        let h = try HostHarness.make()
        var writes = 0
        h.kernel.smmuDrivers[0].entryWriteObserver = { _, _, _ in writes += 1 }
        let f = try h.forked()
        #expect(f.kernel.smmuDrivers[0].entryWriteObserver == nil)
        let pci = try #require(f.kernel.pci.device(f.functions[0].requesterID))
        let vdev = try f.kernel.vfio.bindVFIOPCI(pci.device)
        let iommufd = f.kernel.openIOMMUFD()
        let file = try f.kernel.vfio.openDevice(vdev.cdevName, process: iommufd.process)
        _ = try file.bindIOMMUFD(iommufd)
        _ = try file.attachIOMMUFDPT(try iommufd.ioasAlloc())
        #expect(writes == 0 && f.kernel.smmuDrivers[0].commandLog.count > h.kernel.smmuDrivers[0].commandLog.count)
    }
}
