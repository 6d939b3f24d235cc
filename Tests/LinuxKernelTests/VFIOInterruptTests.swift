import Testing
import Bus
import PCI
@testable import LinuxKernel

/// VFIO_DEVICE_SET_IRQS on MSI-X as drivers/vfio/pci/vfio_pci_intrs.c does it, on qemu-virt with
/// the device behind iommufd (the VMM's usual path), plus iommufd DMA and the v6.14 MSI path.
@Suite("VFIO interrupts", .serialized)
struct VFIOInterruptTests {
    typealias T = VFIOScenarioTests

    static func boundDevice(configuration: KernelConfiguration = KernelConfiguration()) throws
        -> (T.Setup, VFIODeviceFile, IOMMUFD, UInt32) {
        let s = try T.setup(configuration: configuration)
        let iommufd = s.kernel.openIOMMUFD()
        iommufd.process = s.process
        let (file, _) = try T.openCdev(s, T.ep0, iommufd: iommufd)
        let ioas = try iommufd.ioasAlloc()
        _ = try file.attachIOMMUFDPT(ioas)
        return (s, file, iommufd, ioas)
    }

    static func fire(_ s: T.Setup, vector: Int) {
        _ = s.harness.functions[0].raise(vector: vector)
        _ = s.kernel.irq.handleInterrupts(cpu: 0)
    }

    @Test("vectors added one at a time: the second comes from pci_msix_alloc_irq_at, both use the shared doorbell, each signals its own eventfd")
    func dynamicMSIX() throws {
        let (s, file, iommufd, _) = try Self.boundDevice()
        let pdev = try s.pci(T.ep0)
        let (fdA, a) = s.process.eventfd(), (fdB, b) = s.process.eventfd()
        try file.setIRQs(.trigger(start: 0, eventfds: [fdA]))
        // vfio_msi_enable asked pci_alloc_irq_vectors for start + count = 1 vector only.
        #expect(pdev.device.msiDescriptors.map(\.index) == [0])
        try file.setIRQs(.trigger(start: 1, eventfds: [fdB]))
        #expect(pdev.device.msiDescriptors.map(\.index) == [0, 1], "vector 1 was allocated dynamically")
        let (address0, data0) = try s.msixEntry(T.ep0, 0)
        let (address1, data1) = try s.msixEntry(T.ep0, 1)
        #expect(address0 == 0x0800_0040 && address1 == 0x0800_0040)
        #expect(data0 != data1, "two ITS events (EventIDs) of the same device")
        #expect(iommufd.swMSITable.maps.count == 1)
        Self.fire(s, vector: 1)
        #expect(a.count == 0 && b.count == 1)
        Self.fire(s, vector: 0)
        #expect(a.count == 1 && b.count == 1)
    }

    @Test("DATA_NONE with count 0 disables MSI-X: handlers freed, vectors freed, interrupt type none")
    func disable() throws {
        let (s, file, _, _) = try Self.boundDevice()
        let pdev = try s.pci(T.ep0)
        let (fd, e) = s.process.eventfd()
        try file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        try file.setIRQs(.disable())
        #expect(file.vdev.irqType == VFIOIRQSet.numIRQs)
        #expect(file.vdev.contexts.isEmpty)
        #expect(pdev.device.msiDescriptors.isEmpty && !pdev.msixEnabled, "pci_free_irq_vectors")
        Self.fire(s, vector: 0)
        #expect(e.count == 0)
        // Enabling again works from scratch.
        try file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        Self.fire(s, vector: 0)
        #expect(e.count == 1)
    }

    @Test("re-arming a vector frees the old trigger and rewrites the cached message over a corrupted MSI-X entry")
    func rearmRefreshesMessage() throws {
        let (s, file, _, _) = try Self.boundDevice()
        let (fdA, a) = s.process.eventfd(), (fdB, b) = s.process.eventfd()
        try file.setIRQs(.trigger(start: 0, eventfds: [fdA]))
        let entry = try s.msixEntry(T.ep0, 0)
        // A "backdoor reset": the entry's address and data are wiped behind the kernel's back.
        let base = try #require(try s.pci(T.ep0).msixTableAddress).rawValue
        for offset: UInt64 in [0, 4, 8] { try s.kernel.bus.write(PhysicalAddress(base + offset), size: 4, value: 0, requester: .cpu(0)) }
        #expect(try s.msixEntry(T.ep0, 0).0 == 0)
        try file.setIRQs(.trigger(start: 0, eventfds: [fdB]))
        // vfio_msi_set_vector_signal: get_cached_msi_msg + pci_write_msi_msg before request_irq.
        #expect(try s.msixEntry(T.ep0, 0) == entry)
        Self.fire(s, vector: 0)
        #expect(a.count == 0 && b.count == 1, "only the new trigger is signalled")
        // fd −1 tears the trigger down; the interrupt stays allocated until MSI-X is disabled.
        try file.setIRQs(.trigger(start: 0, eventfds: [-1]))
        #expect(file.vdev.contexts[0] == nil)
        #expect((try? s.kernel.pci.irqVector(try s.pci(T.ep0), 0)) != nil)
        Self.fire(s, vector: 0)
        #expect(b.count == 1)
    }

    @Test("a bad eventfd while enabling unwinds everything: EBADF, no vectors, no interrupt type")
    func badEventfdUnwinds() throws {
        let (s, file, _, _) = try Self.boundDevice()
        let pdev = try s.pci(T.ep0)
        let (fd, e) = s.process.eventfd()
        #expect(throws: Errno.EBADF) { try file.setIRQs(.trigger(start: 0, eventfds: [fd, 42])) }
        #expect(file.vdev.irqType == VFIOIRQSet.numIRQs && file.vdev.contexts.isEmpty)
        #expect(pdev.device.msiDescriptors.isEmpty)
        let other = s.process.openOtherFile("/dev/vfio/devices/vfio9")
        #expect(throws: Errno.EINVAL) { try file.setIRQs(.trigger(start: 0, eventfds: [other])) }
        Self.fire(s, vector: 0)
        #expect(e.count == 0)
    }

    @Test("SET_IRQS without a handler or access: MASK on MSI-X is ENOTTY, INTx has no vectors (EINVAL), an unbound cdev is EINVAL")
    func setIRQsRefusals() throws {
        let (s, file, _, _) = try Self.boundDevice()
        #expect(throws: Errno.ENOTTY) {
            try file.setIRQs(VFIOIRQSet(flags: VFIOIRQSet.actionMask | VFIOIRQSet.dataNone, index: VFIOIRQSet.msixIndex, start: 0, count: 1))
        }
        #expect(throws: Errno.EINVAL) {
            try file.setIRQs(VFIOIRQSet(flags: VFIOIRQSet.actionTrigger | VFIOIRQSet.dataNone, index: VFIOIRQSet.intxIndex, start: 0, count: 0))
        }
        // Loopback: DATA_NONE with a count signals the triggers without the device.
        let (fd, e) = s.process.eventfd()
        try file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        try file.setIRQs(VFIOIRQSet(flags: VFIOIRQSet.actionTrigger | VFIOIRQSet.dataNone, index: VFIOIRQSet.msixIndex, start: 0, count: 1))
        #expect(e.count == 1)
        // A second function's cdev, opened but not bound.
        let vdev = try s.kernel.vfio.bindVFIOPCI(try s.pci(T.ep1).device)
        let unbound = try s.kernel.vfio.openDevice(vdev.cdevName, process: s.process)
        #expect(throws: Errno.EINVAL) { try unbound.setIRQs(.trigger(start: 0, eventfds: [fd])) }
        #expect(throws: Errno.EINVAL) { try unbound.attachIOMMUFDPT(1) }
    }

    @Test("iommufd DMA: an allocated IOVA (lowest hole from PAGE_SIZE) carries the device's write into the VMM's page")
    func iommufdDMA() throws {
        let (s, _, iommufd, ioas) = try Self.boundDevice()
        let va = try s.process.mmap(length: 0x4000)
        // roundup_pow_of_two(0x4000) alignment, first hole above the 4K page: 0x4000.
        let iova = try iommufd.ioasMap(ioasID: ioas, flags: [.readable, .writeable], userVA: va, length: 0x4000)
        #expect(iova == 0x4000)
        _ = s.harness.functions[0].dma(.write, address: IOVA(iova + 0x2010), size: 4, data: 0x1234_5678)
        #expect(try s.process.read(vaddr: va + 0x2010, count: 4) == [0x78, 0x56, 0x34, 0x12])
        #expect(try iommufd.ioasUnmap(ioasID: ioas, iova: 0, length: UInt64.max) == 0x4000, "unmap-all")
    }

    @Test("v6.14: iommufd gives the paging domain a dma-iommu MSI cookie instead of sw_msi; the address is still 0x0800_0040")
    func iommufdBeforeV615() throws {
        let (s, file, iommufd, _) = try Self.boundDevice(configuration: KernelConfiguration(version: .v6_14))
        let (fd, e) = s.process.eventfd()
        try file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        let domain = try #require(s.kernel.iommu.domain(for: try s.pci(T.ep0).device))
        #expect(domain.cookieType == .dmaMSI)
        #expect(iommufd.swMSITable.maps.isEmpty)
        #expect(try s.msixEntry(T.ep0, 0).0 == 0x0800_0040)
        Self.fire(s, vector: 0)
        #expect(e.count == 1)
    }
}

@Suite("VFIO detach and teardown", .serialized)
struct VFIOTeardownTests {
    typealias T = VFIOScenarioTests

    @Test("DETACH_IOMMUFD_PT returns the group to its blocking domain and destroys the unused auto domain; closing releases ownership")
    func detachAndClose() throws {
        let (s, file, iommufd, ioas) = try VFIOInterruptTests.boundDevice()
        let device = try s.pci(T.ep0).device
        let group = try #require(device.iommu?.group)
        #expect(s.kernel.iommu.domain(for: device)?.cookieType == .iommufd)
        try file.detachIOMMUFDPT()
        #expect(group.domain === group.blockingDomain)
        #expect(iommufd.objects.ids.count == 2, "the device and the IOAS remain; the auto HWPT is gone")
        #expect(throws: Errno.EBUSY) { try iommufd.destroy(file.iommufdDevice?.id ?? 0) }
        try iommufd.destroy(ioas)
        file.close()
        #expect(group.domain === group.defaultDomain && group.owner == nil)
        #expect(iommufd.objects.count == 0)
    }

    @Test("type1: unsetting the last group's container unmaps every DMA mapping and gives the group back")
    func unsetContainer() throws {
        let s = try T.setup()
        let (container, file) = try T.openType1(s, T.ep0)
        let va = try s.process.mmap(length: 0x2000)
        try container.mapDMA(flags: T.readWrite, vaddr: va, iova: 0x1000_0000, size: 0x2000)
        let domain = try #require(container.type1?.domains.first?.domain)
        #expect(s.kernel.iommu.iovaToPhys(domain, 0x1000_0000) != nil)
        let group = try #require(try s.pci(T.ep0).device.iommu?.group)
        let groupFile = try #require(s.kernel.vfio.groupFiles[group.id])
        #expect(throws: Errno.EBUSY) { try groupFile.unsetContainer() }
        file.close()
        try groupFile.unsetContainer()
        #expect(container.type1 == nil)
        #expect(s.kernel.iommu.iovaToPhys(domain, 0x1000_0000) == nil, "vfio_iommu_unmap_unpin_all")
        #expect(group.domain === group.defaultDomain && group.owner == nil)
    }
}
