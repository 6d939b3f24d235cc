import Testing
import Bus
import Machine
import PCI
import SMMUv3
import Testbed
@testable import LinuxKernel

/// The other ways a device reaches the IOMMU, forked the same way as `IOMMUForkTests` (onto an
/// identically driven twin standing in for the kernel's own clone): VFIO type1 through a
/// container, iommufd nesting (vIOMMU, vDEVICE, nested HWPT on a nest parent), and the arm-smmu
/// (SMMUv2) driver.
@Suite("IOMMU fork (VFIO type1, nesting, arm-smmu)")
struct IOMMUForkPathTests {
    static let readWrite = VFIOType1.mapFlagRead | VFIOType1.mapFlagWrite

    /// Legacy VFIO for ep0: container, group, TYPE1v2, device fd with bus mastering, 64 KiB of
    /// user memory with its first 16 KiB mapped at IOVA 0x1000_0000.
    static func prepareType1(_ h: HostHarness) throws -> (VFIOContainer, VFIOGroupFile, VFIODeviceFile, UInt64) {
        let k = h.kernel
        let process = UserProcess(kernel: k)
        let pdev = try #require(HostScenario.pciDevice(h, 0))
        try k.vfio.bindVFIOPCI(pdev.device)
        let container = k.vfio.openContainer(process: process)
        let group = try k.vfio.openGroup(try #require(pdev.device.iommu?.group?.id))
        try group.setContainer(container)
        try container.setIOMMU(VFIOContainer.type1v2IOMMU)
        let file = try group.getDeviceFD(pdev.device.name)
        try file.writeCommand(0x0006)
        let va = try process.mmap(length: 0x1_0000)
        try container.mapDMA(flags: readWrite, vaddr: va, iova: 0x1000_0000, size: 0x4000)
        return (container, group, file, va)
    }

    @Test("VFIO type1: the forked container, group file and backend carry the DMA list and the group's claim; MAP_DMA and UNMAP_DMA then act on one host only")
    func type1() throws {
        let original = try HostHarness.make(), twin = try HostHarness.make()
        let (container1, group1, file1, va) = try Self.prepareType1(original)
        _ = try Self.prepareType1(twin)
        let map = IOMMUForkSupport.fork(original, onto: twin)
        let k1 = original.kernel, k2 = twin.kernel
        let container2 = try #require(map.copy(of: container1)), group2 = try #require(map.copy(of: group1))
        let file2 = try #require(map.copy(of: file1))
        let type1a = try #require(container1.type1), type1b = try #require(container2.type1)
        let pairs: [(AnyObject, AnyObject)] = [
            (container1, container2), (group1, group2), (file1, file2), (type1a, type1b),
            (type1a.domains[0], type1b.domains[0]), (type1a.domains[0].domain, type1b.domains[0].domain),
            (container1.process, container2.process), (k1.vfio.devices[0], k2.vfio.devices[0]),
        ]
        for (a, b) in pairs {
            let copied = ObjectIdentifier(a) != ObjectIdentifier(b)
            #expect(copied, "\(type(of: a)) was not copied")
            #expect(CloneMap.valueFieldsThatDiffer(a, b) == [], "\(type(of: a))")
        }
        #expect(k2.vfio.groupFiles.keys.sorted() == k1.vfio.groupFiles.keys.sorted())
        #expect(group2.container === container2 && container2.groups[0] === group2 && file2.vdev === k2.vfio.devices[0])
        #expect(type1b.domains[0].groups[0] === group2.group && group2.group === k2.devices[0].iommu?.group)
        #expect(group1.group.owner == ObjectIdentifier(group1) && group2.group.owner == ObjectIdentifier(group2),
                "vfio_group_ioctl_set_container claimed the group with the group file as owner")
        #expect(k2.vfio.devices[0].openFile === file2)

        // The same MAP_DMA on both; device DMA lands in each host's own page.
        try container1.mapDMA(flags: Self.readWrite, vaddr: va + 0x8000, iova: 0x2000_0000, size: 0x4000)
        try container2.mapDMA(flags: Self.readWrite, vaddr: va + 0x8000, iova: 0x2000_0000, size: 0x4000)
        #expect(type1a.dmaList == type1b.dmaList && type1a.dmaAvailable == type1b.dmaAvailable)
        #expect(k1.smmuDrivers[0].commandLog == k2.smmuDrivers[0].commandLog)
        let page = try #require(container2.process.physicalPage(of: va + 0x8000))
        #expect(twin.functions[0].dma(.write, address: IOVA(0x2000_0008), size: 8, data: 0x55).result?.status == .completed)
        #expect(k2.bus.ram.read(page.rawValue + 8, size: 8) == 0x55 && k1.bus.ram.read(page.rawValue + 8, size: 8) == 0)

        // UNMAP_DMA on the twin only.
        #expect(try container2.unmapDMA(iova: 0x1000_0000, size: 0x4000) == 0x4000)
        #expect(type1b.dmaList.count == 1 && type1a.dmaList.count == 2)
        #expect(twin.functions[0].dma(.write, address: IOVA(0x1000_0000), size: 1, data: 1).result?.status == .aborted)
        #expect(original.functions[0].dma(.write, address: IOVA(0x1000_0000), size: 1, data: 1).result?.status == .completed)
    }

    /// The twin's nesting fixture: the copies of the original's process, iommufd and file.
    static func forkNested(_ original: NestedFixture, onto twin: NestedFixture) throws -> (NestedFixture, CloneMap) {
        let map = IOMMUForkSupport.fork(original.harness, onto: twin.harness)
        let copy = NestedFixture(harness: twin.harness, process: try #require(map.copy(of: original.process)),
                                 iommufd: try #require(map.copy(of: original.iommufd)), file: try #require(map.copy(of: original.file)),
                                 deviceID: original.deviceID, ioas: original.ioas, parent: original.parent, viommu: original.viommu,
                                 vdevice: original.vdevice, guestVA: original.guestVA)
        return (copy, map)
    }

    @Test("nesting: the forked vIOMMU, vDEVICE and vSMMU turn the same guest STE into the same physical STE in each host's RAM; the guest's DMA lands in each host's own buffer")
    func nested() throws {
        let original = try NestedFixture.make()
        let (twin, map) = try Self.forkNested(original, onto: try NestedFixture.make())
        let viommu1 = try #require(original.iommufd.object(original.viommu) as? IOMMUFDVIOMMU)
        let viommu2 = try #require(twin.iommufd.object(twin.viommu) as? IOMMUFDVIOMMU)
        let vdevice1 = try #require(original.iommufd.object(original.vdevice) as? IOMMUFDVDevice)
        let vdevice2 = try #require(twin.iommufd.object(twin.vdevice) as? IOMMUFDVDevice)
        let parent1 = try #require(original.iommufd.object(original.parent) as? IOMMUFDHWPTPaging)
        let parent2 = try #require(twin.iommufd.object(twin.parent) as? IOMMUFDHWPTPaging)
        let pairs: [(AnyObject, AnyObject)] = [
            (viommu1, viommu2), (vdevice1, vdevice2), (viommu1.vsmmu, viommu2.vsmmu), (parent1, parent2),
            (parent1.ioas, parent2.ioas), (parent1.ioas.iopt, parent2.ioas.iopt), (original.iommufd, twin.iommufd),
        ]
        for (a, b) in pairs {
            let copied = ObjectIdentifier(a) != ObjectIdentifier(b)
            #expect(copied, "\(type(of: a)) was not copied")
            #expect(CloneMap.valueFieldsThatDiffer(a, b) == [], "\(type(of: a))")
        }
        #expect(viommu2.vsmmu.core === viommu2 && viommu2.vsmmu.driver === twin.smmu && viommu2.vsmmu.s2Parent === parent2.domain.driverData)
        #expect(vdevice2.viommu === viommu2 && vdevice2.idev.vdevice === vdevice2 && viommu2.vdevices[NestedFixture.vSID] === vdevice2)
        #expect(viommu2.findDevice(virtualID: NestedFixture.vSID) === twin.kernel.devices[0])
        #expect(parent2.ioas.hwpts.contains { $0 === parent2 })
        #expect(map.copy(of: viommu1.vsmmu) === viommu2.vsmmu)

        // The guest builds its stage 1 in its RAM, then the VMM installs the nested STE: the
        // twin first, so its STE changes while the original's does not.
        let before = try original.physicalSTE()
        try twin.buildGuestStage1()
        let hwpt2 = try twin.attachNested(NestedFixture.translatingVSTE)
        #expect(try original.physicalSTE() == before)
        try original.buildGuestStage1()
        let hwpt1 = try original.attachNested(NestedFixture.translatingVSTE)
        #expect(hwpt1 == hwpt2)
        #expect(try original.physicalSTE() == twin.physicalSTE())
        let master2 = try twin.smmu.master(of: twin.kernel.devices[0])
        #expect(master2.vmaster?.vsmmu === viommu2.vsmmu && master2.vmaster?.virtualStreamID == NestedFixture.vSID)

        #expect(twin.dmaWrite(NestedFixture.gIOVA + 8, 0x1234) == .completed)
        #expect(try twin.guestRead64(NestedFixture.bufferIPA + 8) == 0x1234)
        #expect(try original.guestRead64(NestedFixture.bufferIPA + 8) == 0)
        #expect(original.dmaWrite(NestedFixture.gIOVA + 8, 0x99) == .completed)
        #expect(try original.guestRead64(NestedFixture.bufferIPA + 8) == 0x99 && twin.guestRead64(NestedFixture.bufferIPA + 8) == 0x1234)
        #expect(original.smmu.commandLog == twin.smmu.commandLog)
    }

    @Test("nesting, forked while attached: the nested HWPT, its nested domain and the vEVENTQ are copies; a stage-1 fault on one host queues a vEVENT on that host only")
    func nestedAttachedAndEvents() throws {
        var fixtures: [(NestedFixture, UInt32, UInt32)] = []
        for _ in 0..<2 {
            let f = try NestedFixture.make()
            try f.buildGuestStage1()
            let hwpt = try f.attachNested(NestedFixture.translatingVSTE)
            let (queue, _) = try f.iommufd.veventqAlloc(viommuID: f.viommu, type: .armSMMUv3, depth: 8)
            fixtures.append((f, hwpt, queue))
        }
        let (original, hwpt, queueID) = fixtures[0]
        let (twin, _) = try Self.forkNested(original, onto: fixtures[1].0)
        let nested1 = try #require(original.iommufd.object(hwpt) as? IOMMUFDHWPTNested)
        let nested2 = try #require(twin.iommufd.object(hwpt) as? IOMMUFDHWPTNested)
        let queue1 = try #require(original.iommufd.object(queueID) as? IOMMUFDVEventQueue)
        let queue2 = try #require(twin.iommufd.object(queueID) as? IOMMUFDVEventQueue)
        let domain1 = try #require(nested1.domain.driverData as? ArmSMMUv3NestedDomain)
        let domain2 = try #require(nested2.domain.driverData as? ArmSMMUv3NestedDomain)
        let pairs: [(AnyObject, AnyObject)] = [
            (nested1, nested2), (nested1.domain, nested2.domain), (domain1, domain2), (queue1, queue2),
            (try original.smmu.master(of: original.kernel.devices[0]), try twin.smmu.master(of: twin.kernel.devices[0])),
        ]
        for (a, b) in pairs {
            let copied = ObjectIdentifier(a) != ObjectIdentifier(b)
            #expect(copied, "\(type(of: a)) was not copied")
            #expect(CloneMap.valueFieldsThatDiffer(a, b) == [], "\(type(of: a))")
        }
        let viommu2 = try #require(twin.iommufd.object(twin.viommu) as? IOMMUFDVIOMMU)
        #expect(domain2.vsmmu === viommu2.vsmmu && nested2.viommu === viommu2 && queue2.viommu === viommu2)
        #expect(viommu2.veventQueues.count == 1 && viommu2.veventQueues[0] === queue2)
        #expect(twin.kernel.iommu.domain(for: twin.kernel.devices[0]) === nested2.domain)
        #expect(try twin.physicalSTE() == original.physicalSTE())

        // A stage-1 fault (gIOVA + 2 MiB is in no guest table) on the twin only.
        let unmapped = NestedFixture.gIOVA + 0x20_0000 + 0x40
        #expect(twin.dmaWrite(unmapped, 7) == .aborted)
        #expect(try twin.smmu.serviceEventQueue().count == 1)
        #expect(queue2.pendingCount == 1 && queue1.pendingCount == 0)
        #expect(twin.smmu.forwardedEvents == original.smmu.forwardedEvents + 1)
        // The original faults the same way and reads the same record.
        #expect(original.dmaWrite(unmapped, 7) == .aborted)
        #expect(try original.smmu.serviceEventQueue().count == 1)
        #expect(try original.iommufd.veventqRead(queueID) == twin.iommufd.veventqRead(queueID))
        #expect(original.smmu.events == twin.smmu.events)
    }

    @Test("arm-smmu (SMMUv2): the forked driver keeps its stream map and context banks; the next dma_map gets the original's IOVA and an unmap on one host leaves the other mapped")
    func armSMMU() throws {
        let original = try ArmSMMUHostTests.boot(), twin = try ArmSMMUHostTests.boot()
        for booted in [original, twin] {
            try booted.kernel.pci.enableDevice(booted.device)
            try booted.kernel.pci.setMaster(booted.device)
        }
        let buffer = try original.kernel.pages.allocate(bytes: 0x2_0000, alignment: 0x1_0000)
        #expect(try twin.kernel.pages.allocate(bytes: 0x2_0000, alignment: 0x1_0000) == buffer)
        let first = try original.kernel.dma.map(device: original.device.device, physical: buffer, size: 0x1000, direction: .bidirectional)
        #expect(try twin.kernel.dma.map(device: twin.device.device, physical: buffer, size: 0x1000, direction: .bidirectional) == first)
        let map = IOMMUForkSupport.fork(original.kernel, onto: twin.kernel)
        let driver1 = try #require(original.kernel.armSMMUDrivers.first), driver2 = try #require(twin.kernel.armSMMUDrivers.first)
        let domain1 = try #require(original.kernel.iommu.dmaDomain(for: original.device.device))
        let domain2 = try #require(twin.kernel.iommu.dmaDomain(for: twin.device.device))
        let smmuDomain1 = try #require(domain1.driverData as? ArmSMMUDomain), smmuDomain2 = try #require(domain2.driverData as? ArmSMMUDomain)
        let master1 = try #require(original.device.device.iommu?.driverData as? ArmSMMUMaster)
        let master2 = try #require(twin.device.device.iommu?.driverData as? ArmSMMUMaster)
        let pairs: [(AnyObject, AnyObject)] = [
            (driver1, driver2), (domain1, domain2), (smmuDomain1, smmuDomain2), (smmuDomain1.pageTable, smmuDomain2.pageTable),
            (master1, master2),
        ]
        for (a, b) in pairs {
            let copied = ObjectIdentifier(a) != ObjectIdentifier(b)
            #expect(copied, "\(type(of: a)) was not copied")
            #expect(CloneMap.valueFieldsThatDiffer(a, b) == [], "\(type(of: a))")
        }
        #expect(smmuDomain2.driver === driver2 && master2.device === twin.device.device && map.copy(of: driver1) === driver2)
        #expect(domain2.driver as AnyObject === driver2)

        let next1 = try original.kernel.dma.map(device: original.device.device, physical: PhysicalAddress(buffer.rawValue + 0x1_0000),
                                                size: 0x1000, direction: .bidirectional)
        let next2 = try twin.kernel.dma.map(device: twin.device.device, physical: PhysicalAddress(buffer.rawValue + 0x1_0000),
                                            size: 0x1000, direction: .bidirectional)
        #expect(next1 == next2 && next1 != first)
        #expect(twin.function.dma(.write, address: IOVA(next2.rawValue + 8), size: 8, data: 0x42).result?.status == .completed)
        #expect(twin.kernel.bus.ram.read(buffer.rawValue + 0x1_0008, size: 8) == 0x42)
        #expect(original.kernel.bus.ram.read(buffer.rawValue + 0x1_0008, size: 8) == 0)
        #expect(twin.kernel.dma.unmap(device: twin.device.device, iova: first, size: 0x1000) == 0x1000)
        #expect(twin.kernel.iommu.iovaToPhys(domain2, first.rawValue) == nil)
        #expect(original.kernel.iommu.iovaToPhys(domain1, first.rawValue) == buffer.rawValue)
        #expect(original.function.dma(.write, address: first, size: 1, data: 1).result?.status == .completed)
    }
}
