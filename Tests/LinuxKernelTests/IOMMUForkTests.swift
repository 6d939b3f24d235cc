import Testing
import Bus
import PCI
@testable import LinuxKernel

/// Forks the IOMMU side of a booted host kernel (IOMMU core, DMA API, arm-smmu-v3 driver and
/// its domains, masters and io-pgtables, iommufd, VFIO, the user process) onto a twin.
///
/// These tests fork the IOMMU side alone (IOMMUKernelForkTests forks the whole kernel with its
/// machine), onto a twin: a second host booted from the same preset and driven through the same
/// operations, so its machine, RAM and core kernel state equal the original's. The twin's
/// kernel and devices are recorded as the copies of the original's, and its IOMMU-side objects
/// are replaced by copies of the original's made through one `CloneMap`. From then on, the twin
/// behaves as the original only if those copies carried everything over; and it must do so
/// with objects of its own.
enum IOMMUForkSupport {
    static func fork(_ original: HostHarness, onto twin: HostHarness) -> CloneMap {
        fork(original.kernel, onto: twin.kernel)
    }

    static func fork(_ k1: LinuxKernel, onto k2: LinuxKernel, devices extra: [(Device, Device)] = []) -> CloneMap {
        precondition(k1.devices.count == k2.devices.count, "the twin must have the original's devices")
        var map = CloneMap()
        for (d1, d2) in extra { map.record(d1, as: d2) }
        map.record(k1, as: k2)
        map.record(k1.refusals, as: k2.refusals)
        map.record(k1.log, as: k2.log)
        for (d1, d2) in zip(k1.devices, k2.devices) {
            map.record(d1, as: d2)
            if let p1 = d1.pci, let p2 = d2.pci { map.record(p1, as: p2) }
        }
        k2.iommu = map.clone(k1.iommu)
        k2.dma = map.clone(k1.dma)
        k2.smmuDrivers = map.clone(k1.smmuDrivers)
        k2.armSMMUDrivers = map.clone(k1.armSMMUDrivers)
        k2.vfio = map.clone(k1.vfio)
        k2.iommufdContexts = map.clone(k1.iommufdContexts)
        for (d1, d2) in zip(k1.devices, k2.devices) { d2.iommu = map.clone(d1.iommu) }
        map.finish()
        return map
    }

    /// The 64-byte STE of `sid` as the SMMU would fetch it from `kernel`'s RAM.
    static func ste(_ kernel: LinuxKernel, sid: UInt32) throws -> [UInt64] {
        let address = try #require(kernel.smmuDrivers[0].streamTable?.steAddress(for: sid))
        return (0..<8).map { kernel.bus.ram.read(address.rawValue + UInt64($0) * 8, size: 8) }
    }
}

@Suite("IOMMU fork (DMA API, arm-smmu-v3, iommufd, VFIO)")
struct IOMMUForkTests {
    /// Enables ep0 and maps three buffers, unmapping the middle one (its IOVA goes to the range
    /// cache): the same on both hosts.
    static func prepareDMA(_ h: HostHarness) throws -> (PCIDevice, PhysicalAddress, [IOVA]) {
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        try k.pci.enableDevice(pci)
        try k.pci.setMaster(pci)
        let pool = try k.pages.allocate(bytes: 0x10_0000)
        var iovas: [IOVA] = []
        for i in 0..<3 {
            iovas.append(try k.dma.map(device: pci.device, physical: PhysicalAddress(pool.rawValue + UInt64(i) * 0x4000),
                                       size: 0x2000, direction: .bidirectional))
        }
        k.dma.unmap(device: pci.device, iova: iovas[1], size: 0x2000)
        return (pci, pool, iovas)
    }

    @Test("dma_map on a forked host: every copied part holds the original's values, the next IOVA is the original's, and each host's unmap is its own")
    func dmaMap() throws {
        let original = try HostHarness.make(), twin = try HostHarness.make()
        let (pci1, pool, _) = try Self.prepareDMA(original)
        let (pci2, _, _) = try Self.prepareDMA(twin)
        let map = IOMMUForkSupport.fork(original, onto: twin)
        let k1 = original.kernel, k2 = twin.kernel

        // Every part is a new object holding the original's values.
        let group1 = try #require(k1.iommu.group(of: pci1.device)), group2 = try #require(k2.iommu.group(of: pci2.device))
        let domain1 = try #require(group1.defaultDomain), domain2 = try #require(group2.defaultDomain)
        guard case .dmaIOVA(let cookie1) = domain1.cookie, case .dmaIOVA(let cookie2) = domain2.cookie else {
            Issue.record("the default domain has no DMA cookie")
            return
        }
        let smmu1 = try #require(domain1.driverData as? ArmSMMUv3Domain), smmu2 = try #require(domain2.driverData as? ArmSMMUv3Domain)
        let master1 = try k1.smmuDrivers[0].master(of: pci1.device), master2 = try k2.smmuDrivers[0].master(of: pci2.device)
        let pairs: [(AnyObject, AnyObject)] = [
            (k1.iommu, k2.iommu), (group1, group2), (domain1, domain2), (cookie1, cookie2), (cookie1.iovad, cookie2.iovad),
            (k1.smmuDrivers[0], k2.smmuDrivers[0]), (smmu1, smmu2), (smmu1.pageTable, smmu2.pageTable),
            (master1, master2), (try #require(k1.smmuDrivers[0].streamTable), try #require(k2.smmuDrivers[0].streamTable)),
            (try #require(pci1.device.iommu), try #require(pci2.device.iommu)),
        ]
        for (a, b) in pairs {
            let copied = ObjectIdentifier(a) != ObjectIdentifier(b)
            #expect(copied, "\(type(of: a)) was not copied")
            // `deviceStates` is keyed by device identity: the copy's keys are its own devices.
            let differ = CloneMap.valueFieldsThatDiffer(a, b).filter { $0 != "deviceStates" }
            #expect(differ == [], "\(type(of: a)): \(differ)")
        }
        #expect(k2.smmuDrivers[0].streams.keys.sorted() == k1.smmuDrivers[0].streams.keys.sorted())
        #expect(k2.smmuDrivers[0].streams[master1.streamIDs[0].rawValue] === master2)
        #expect(k2.iommu.kernel === k2 && smmu2.driver === k2.smmuDrivers[0] && master2.device === pci2.device)
        #expect(smmu2.attachedMasters.count == 1 && smmu2.attachedMasters[0] === master2 && master2.domain === domain2)
        #expect(k2.iommu.state(of: pci2.device)?.usesDMAIOMMU == true)
        #expect(map.copy(of: domain1) === domain2 && map.copy(of: group1) === group2)

        // The same next dma_map on both: the range cache's IOVA, then a new one.
        let physical = PhysicalAddress(pool.rawValue + 0x8_0000)
        let next1 = try k1.dma.map(device: pci1.device, physical: physical, size: 0x2000, direction: .bidirectional)
        let next2 = try k2.dma.map(device: pci2.device, physical: physical, size: 0x2000, direction: .bidirectional)
        #expect(next1 == next2)
        let more1 = try k1.dma.map(device: pci1.device, physical: physical, size: 0x5000, direction: .toDevice)
        let more2 = try k2.dma.map(device: pci2.device, physical: physical, size: 0x5000, direction: .toDevice)
        #expect(more1 == more2 && more1 != next1)
        #expect(cookie2.iovad.allocatedRanges == cookie1.iovad.allocatedRanges)
        #expect(k2.smmuDrivers[0].commandLog == k1.smmuDrivers[0].commandLog)

        // Each device's DMA lands in its own host's RAM.
        #expect(twin.functions[0].dma(.write, address: IOVA(next2.rawValue + 8), size: 8, data: 0x7777).result?.status == .completed)
        #expect(k2.bus.ram.read(physical.rawValue + 8, size: 8) == 0x7777)
        #expect(k1.bus.ram.read(physical.rawValue + 8, size: 8) == 0)

        // An unmap on the twin (strict: TLBI + CMD_SYNC on the twin's SMMU) leaves the original mapped.
        let commands1 = k1.smmuDrivers[0].commandLog.count
        #expect(k2.dma.unmap(device: pci2.device, iova: next2, size: 0x2000) == 0x2000)
        #expect(k1.smmuDrivers[0].commandLog.count == commands1 && k2.smmuDrivers[0].commandLog.count > commands1)
        #expect(twin.functions[0].dma(.write, address: next2, size: 1, data: 1).result?.status == .aborted)
        #expect(original.functions[0].dma(.write, address: next1, size: 1, data: 1).result?.status == .completed)
        #expect(cookie1.iovad.isAllocated(address: next1.rawValue) || cookie1.iovad.rangeCache.cachedCounts.reduce(0, +) > 0)
        #expect(k1.iommu.iovaToPhys(domain1, next1.rawValue) == physical.rawValue)
        #expect(k2.iommu.iovaToPhys(domain2, next2.rawValue) == nil)
        // Then the original does the same, and the two agree again.
        #expect(k1.dma.unmap(device: pci1.device, iova: next1, size: 0x2000) == 0x2000)
        #expect(k1.smmuDrivers[0].commandLog == k2.smmuDrivers[0].commandLog)
        #expect(original.functions[0].dma(.write, address: next1, size: 1, data: 1).result?.status == .aborted)
    }

    @Test("dma-lazy: a forked flush queue flushes through the twin's own domain, and frees what the original would")
    func lazyFlushQueue() throws {
        let configuration = KernelConfiguration(defaultDomain: .dmaLazy)
        let original = try HostHarness.make(configuration: configuration), twin = try HostHarness.make(configuration: configuration)
        let (pci1, _, iovas1) = try Self.prepareDMA(original)
        let (pci2, _, iovas2) = try Self.prepareDMA(twin)
        #expect(iovas1 == iovas2)
        _ = IOMMUForkSupport.fork(original, onto: twin)
        let k1 = original.kernel, k2 = twin.kernel
        guard case .dmaIOVA(let cookie1) = try #require(k1.iommu.dmaDomain(for: pci1.device)).cookie,
              case .dmaIOVA(let cookie2) = try #require(k2.iommu.dmaDomain(for: pci2.device)).cookie else {
            Issue.record("no DMA cookie")
            return
        }
        let queue1 = try #require(cookie1.flushQueue), queue2 = try #require(cookie2.flushQueue)
        let distinct = queue1 !== queue2, ownAllocator = queue2.iovad === cookie2.iovad
        #expect(distinct && ownAllocator)
        #expect(CloneMap.valueFieldsThatDiffer(queue1, queue2) == [])
        #expect(queue2.count == 1 && queue2.timerArmed, "the middle buffer's IOVA waits for a flush")
        // The twin's timer fires: one CMD_TLBI_NH_ASID + CMD_SYNC on the twin's SMMU only.
        let before1 = k1.smmuDrivers[0].commandLog, before2 = k2.smmuDrivers[0].commandLog
        k2.dma.flushQueueTimeout(device: pci2.device)
        #expect(k1.smmuDrivers[0].commandLog == before1)
        #expect(k2.smmuDrivers[0].commandLog.count > before2.count)
        #expect(queue2.count == 0 && !queue2.timerArmed && queue1.count == 1 && queue1.timerArmed)
        k1.dma.flushQueueTimeout(device: pci1.device)
        #expect(k1.smmuDrivers[0].commandLog == k2.smmuDrivers[0].commandLog)
        #expect(CloneMap.valueFieldsThatDiffer(queue1, queue2) == [])
        #expect(cookie1.iovad.allocatedRanges == cookie2.iovad.allocatedRanges)
    }

    /// VFIO-binds ep0 and opens it for an iommufd context with an IOAS and 64 KiB of user
    /// memory: the same on both hosts.
    static func prepareIOMMUFD(_ h: HostHarness) throws -> (IOMMUFD, VFIODeviceFile, UInt32, UInt64) {
        let k = h.kernel
        let process = UserProcess(kernel: k)
        let iommufd = k.openIOMMUFD()
        iommufd.process = process
        let ioas = try iommufd.ioasAlloc()
        let va = try process.mmap(length: 0x1_0000)
        let vdev = try k.vfio.bindVFIOPCI(try #require(HostScenario.pciDevice(h, 0)).device)
        let file = try k.vfio.openDevice(vdev.cdevName, process: process)
        _ = try file.bindIOMMUFD(iommufd)
        try file.writeCommand(0x0006)   // memory space + bus master
        return (iommufd, file, ioas, va)
    }

    @Test("iommufd after a fork: attach writes the same STE bytes into each host's own stream table, IOAS_MAP returns the same IOVAs, and one host's unmap is not the other's")
    func iommufdAttachAndMap() throws {
        let original = try HostHarness.make(), twin = try HostHarness.make()
        let (fd1, file1, ioas, va) = try Self.prepareIOMMUFD(original)
        _ = try Self.prepareIOMMUFD(twin)
        let map = IOMMUForkSupport.fork(original, onto: twin)
        let k1 = original.kernel, k2 = twin.kernel
        let fd2 = try #require(map.copy(of: fd1)), file2 = try #require(map.copy(of: file1))
        #expect(k2.iommufdContexts.count == 1 && k2.iommufdContexts[0] === fd2)
        #expect(fd2.process === map.copy(of: fd1.process) && fd2.process.kernel === k2)
        #expect(file2.vdev === k2.vfio.devices[0] && file2.iommufd === fd2 && file2.iommufdDevice?.device === k2.devices[0])
        #expect(fd2.objects.ids == fd1.objects.ids)
        let group1 = try #require(k1.devices[0].iommu?.group), group2 = try #require(k2.devices[0].iommu?.group)
        #expect(group1.owner == ObjectIdentifier(fd1) && group2.owner == ObjectIdentifier(fd2),
                "iommufd_device_bind claimed DMA ownership: the copy's claim is the copy's")
        let idev1 = try #require(file1.iommufdDevice), idev2 = try #require(file2.iommufdDevice)
        let state1 = try #require(k1.iommu.state(of: k1.devices[0])), state2 = try #require(k2.iommu.state(of: k2.devices[0]))
        let pairs: [(AnyObject, AnyObject)] = [
            (fd1.process, fd2.process), (file1, file2), (file1.vdev, file2.vdev), (idev1, idev2), (idev1.igroup, idev2.igroup),
            (k1.vfio, k2.vfio), (state1, state2), (k1.dma, k2.dma),
        ]
        for (a, b) in pairs {
            let copied = ObjectIdentifier(a) != ObjectIdentifier(b)
            #expect(copied, "\(type(of: a)) was not copied")
            #expect(CloneMap.valueFieldsThatDiffer(a, b) == [], "\(type(of: a))")
        }
        #expect(idev2.igroup.group === group2 && idev2.device === k2.devices[0] && fd2.groups[group2.id] === idev2.igroup)
        let sid = try #require(k1.devices[0].iommu?.streamIDs.first).rawValue
        let ste = try IOMMUForkSupport.ste(k1, sid: sid)
        #expect(try IOMMUForkSupport.ste(k2, sid: sid) == ste)

        // The twin attaches first: its STE changes, the original's does not.
        let hwpt2 = try file2.attachIOMMUFDPT(ioas)
        let attached = try IOMMUForkSupport.ste(k2, sid: sid)
        #expect(attached != ste)
        #expect(try IOMMUForkSupport.ste(k1, sid: sid) == ste)
        #expect(k1.iommu.domain(for: k1.devices[0]) === group1.blockingDomain)
        // The original does the same: the same HWPT id and the same STE bytes in its own RAM.
        let hwpt1 = try file1.attachIOMMUFDPT(ioas)
        #expect(hwpt1 == hwpt2)
        #expect(try IOMMUForkSupport.ste(k1, sid: sid) == attached)
        #expect(k1.smmuDrivers[0].commandLog == k2.smmuDrivers[0].commandLog)

        // IOAS_MAP: the same IOVAs; the twin's unmap leaves the original's mapping.
        let iova1 = try fd1.ioasMap(ioasID: ioas, flags: [.readable, .writeable], userVA: va, length: 0x4000)
        let iova2 = try fd2.ioasMap(ioasID: ioas, flags: [.readable, .writeable], userVA: va, length: 0x4000)
        #expect(iova1 == iova2)
        let page1 = try #require(fd1.process.physicalPage(of: va)), page2 = try #require(fd2.process.physicalPage(of: va))
        #expect(page1 == page2)
        #expect(twin.functions[0].dma(.write, address: IOVA(iova2 + 0x10), size: 8, data: 0xABCD).result?.status == .completed)
        #expect(k2.bus.ram.read(page2.rawValue + 0x10, size: 8) == 0xABCD && k1.bus.ram.read(page1.rawValue + 0x10, size: 8) == 0)
        #expect(try fd2.ioasUnmap(ioasID: ioas, iova: iova2, length: 0x4000) == 0x4000)
        #expect(twin.functions[0].dma(.write, address: IOVA(iova2), size: 1, data: 1).result?.status == .aborted)
        #expect(original.functions[0].dma(.write, address: IOVA(iova1), size: 1, data: 1).result?.status == .completed)
        let ioas1 = try #require(fd1.object(ioas) as? IOMMUFDIOAS), ioas2 = try #require(fd2.object(ioas) as? IOMMUFDIOAS)
        #expect(ioas1.iopt.areas.count == 1 && ioas2.iopt.areas.isEmpty)
        let distinct = ioas1 !== ioas2, ownProcess = ioas2.iopt.process === fd2.process
        #expect(distinct && ownProcess)
    }

    @Test("IOMMU device state of a device the kernel no longer lists: kept under the device's copy when something copied the device, dropped when nothing did")
    func unlistedDeviceState() throws {
        let original = try HostHarness.make(), twin = try HostHarness.make()
        let kept = Device(name: "kept"), dropped = Device(name: "dropped")
        for device in [kept, dropped] {
            let state = IOMMUDeviceState()
            state.device = device
            state.requireDirect = device === kept
            original.kernel.iommu.deviceStates[ObjectIdentifier(device)] = state
        }
        let keptCopy = Device(name: "kept")
        let listed = original.kernel.iommu.deviceStates.count - 2
        _ = IOMMUForkSupport.fork(original.kernel, onto: twin.kernel, devices: [(kept, keptCopy)])
        let states = twin.kernel.iommu.deviceStates
        #expect(states.count == listed + 1)
        let copied = try #require(states[ObjectIdentifier(keptCopy)])
        #expect(copied.requireDirect && copied.device === keptCopy)
        #expect(copied !== original.kernel.iommu.deviceStates[ObjectIdentifier(kept)])
        #expect(states[ObjectIdentifier(dropped)] == nil && states[ObjectIdentifier(kept)] == nil)
    }

    @Test("a forked driver starts with no entry-write observer: the copy's STE writes are not reported to the original's observer")
    func entryWriteObserver() throws {
        let original = try HostHarness.make(), twin = try HostHarness.make()
        var seen = 0
        original.kernel.smmuDrivers[0].entryWriteObserver = { _, _, _ in seen += 1 }
        let (_, file1, ioas, _) = try Self.prepareIOMMUFD(original)
        _ = try Self.prepareIOMMUFD(twin)
        let map = IOMMUForkSupport.fork(original, onto: twin)
        #expect(twin.kernel.smmuDrivers[0].entryWriteObserver == nil)
        let before = seen
        _ = try #require(map.copy(of: file1)).attachIOMMUFDPT(ioas)
        #expect(seen == before)
        _ = try file1.attachIOMMUFDPT(ioas)
        #expect(seen > before)
    }
}
