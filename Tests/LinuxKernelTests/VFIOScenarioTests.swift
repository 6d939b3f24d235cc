import Testbed
import Testing
import Foundation
import Bus
import Firmware
import GIC
import Machine
import PCI
@testable import LinuxKernel

/// The issue's VFIO / iommufd scenarios on qemu-virt: a user process (the VMM) drives the uAPI,
/// the kernel model programs the SMMU, the ITS and the function's MSI-X table through MMIO, and
/// the function's own MSI write travels RC → SMMU → ITS → CPU until the eventfd counts it.
///
/// Where the expected numbers come from:
/// - SW_MSI window 0x0800_0000 / 1 MiB: `arm_smmu_get_resv_regions` (MSI_IOVA_BASE/LENGTH).
/// - The ITS doorbell 0x0809_0040: qemu-virt's ITS at 0x0808_0000 + GITS_TRANSLATER 0x1_0040,
///   so the doorbell page is 0x0809_0000 and the in-page offset 0x40.
/// - type1: `iommu_get_msi_cookie(domain, 0x0800_0000)` hands out pages upwards from the base,
///   so the first doorbell page is 0x0800_0000 → MSI-X address 0x0800_0040.
/// - iommufd: the first sw_msi map of the file has pgoff 0 → IOVA 0x0800_0000 → 0x0800_0040.
@Suite("VFIO and iommufd scenarios", .serialized)
struct VFIOScenarioTests {
    static let ep0 = RequesterID(bus: 0, device: 1, function: 0)
    static let ep1 = RequesterID(bus: 0, device: 2, function: 0)
    static let readWrite = VFIOType1.mapFlagRead | VFIOType1.mapFlagWrite

    struct Setup {
        let harness: HostHarness
        let process: UserProcess
        var kernel: LinuxKernel { harness.kernel }
        func pci(_ rid: RequesterID) throws -> PCIDevice { try #require(kernel.pci.device(rid)) }
        /// The function's MSI-X table entry as the hardware holds it (read over the bus, like a
        /// debugger would): (address, data).
        func msixEntry(_ rid: RequesterID, _ vector: Int) throws -> (UInt64, UInt32) {
            let base = try #require(try pci(rid).msixTableAddress).rawValue + UInt64(vector) * 16
            let lo = try kernel.bus.read(PhysicalAddress(base), size: 4, requester: .cpu(0))
            let hi = try kernel.bus.read(PhysicalAddress(base + 4), size: 4, requester: .cpu(0))
            let data = try kernel.bus.read(PhysicalAddress(base + 8), size: 4, requester: .cpu(0))
            return (hi << 32 | lo, UInt32(truncatingIfNeeded: data))
        }
    }

    static func setup(configuration: KernelConfiguration = KernelConfiguration()) throws -> Setup {
        let harness = try HostHarness.make(configuration: configuration)
        return Setup(harness: harness, process: UserProcess(kernel: harness.kernel))
    }

    /// The legacy path up to an open device: bind vfio-pci, container, group, TYPE1v2, device fd,
    /// bus mastering on.
    static func openType1(_ s: Setup, _ rid: RequesterID, container existing: VFIOContainer? = nil) throws -> (VFIOContainer, VFIODeviceFile) {
        let pdev = try s.pci(rid)
        try s.kernel.vfio.bindVFIOPCI(pdev.device)
        let container = existing ?? s.kernel.vfio.openContainer(process: s.process)
        let groupID = try #require(pdev.device.iommu?.group?.id)
        let group = try s.kernel.vfio.openGroup(groupID)
        try group.setContainer(container)
        if container.type1 == nil { try container.setIOMMU(VFIOContainer.type1v2IOMMU) }
        let file = try group.getDeviceFD(pdev.device.name)
        try file.writeCommand(0x0006)  // Memory Space + Bus Master
        return (container, file)
    }

    /// The cdev path up to a bound device with bus mastering on.
    static func openCdev(_ s: Setup, _ rid: RequesterID, iommufd: IOMMUFD) throws -> (VFIODeviceFile, UInt32) {
        let vdev = try s.kernel.vfio.bindVFIOPCI(try s.pci(rid).device)
        let file = try s.kernel.vfio.openDevice(vdev.cdevName, process: s.process)
        let devID = try file.bindIOMMUFD(iommufd)
        try file.writeCommand(0x0006)
        return (file, devID)
    }

    // MARK: type1

    @Test("type1: MSI-X entry 0x0800_0040, the doorbell page mapped at 0x0800_0000, and a fired vector signals the eventfd")
    func type1DoorbellAtWindowBase() throws {
        let s = try Self.setup()
        let (container, file) = try Self.openType1(s, Self.ep0)
        let va = try s.process.mmap(length: 0x4000)
        try container.mapDMA(flags: Self.readWrite, vaddr: va, iova: 0x1000_0000, size: 0x4000)
        let (fd, eventfd) = s.process.eventfd()
        try file.setIRQs(.trigger(start: 0, eventfds: [fd]))

        let (address, _) = try s.msixEntry(Self.ep0, 0)
        #expect(address == 0x0800_0040)
        let domain = try #require(container.type1?.domains.first?.domain)
        #expect(s.kernel.iommu.iovaToPhys(domain, 0x0800_0000) == 0x0809_0000)
        #expect(domain.cookieType == .dmaMSI, "vfio_iommu_has_sw_msi → iommu_get_msi_cookie")

        // The device's own write: RC → SMMU (IOVA 0x0800_0040 → 0x0809_0040) → ITS → LPI.
        _ = s.harness.functions[0].raise(vector: 0)
        _ = s.kernel.irq.handleInterrupts(cpu: 0)
        #expect(eventfd.count == 1)

        // And its DMA reaches the VMM's page behind IOVA 0x1000_1000.
        _ = s.harness.functions[0].dma(.write, address: IOVA(0x1000_1008), size: 4, data: 0xCAFE_F00D)
        #expect(try s.process.read(vaddr: va + 0x1008, count: 4) == [0x0D, 0xF0, 0xFE, 0xCA])
    }

    @Test("type1: two devices in one container share the domain and its single doorbell mapping")
    func type1SharedDoorbell() throws {
        let s = try Self.setup()
        let (container, file0) = try Self.openType1(s, Self.ep0)
        let (_, file1) = try Self.openType1(s, Self.ep1, container: container)
        let (fd0, e0) = s.process.eventfd(), (fd1, e1) = s.process.eventfd()
        try file0.setIRQs(.trigger(start: 0, eventfds: [fd0]))
        try file1.setIRQs(.trigger(start: 0, eventfds: [fd1]))
        #expect(container.type1?.domains.count == 1, "the second group reuses the first domain (same iommu_ops)")
        #expect(try s.msixEntry(Self.ep0, 0).0 == 0x0800_0040)
        #expect(try s.msixEntry(Self.ep1, 0).0 == 0x0800_0040)
        let domain = try #require(container.type1?.domains.first?.domain)
        guard case .dmaMSI(let cookie) = domain.cookie else { Issue.record("no MSI cookie"); return }
        #expect(cookie.msiPages.count == 1, "iommu_dma_get_msi_page finds the page the first device mapped")
        _ = s.harness.functions[1].raise(vector: 0)
        _ = s.kernel.irq.handleInterrupts(cpu: 0)
        #expect(e1.count == 1 && e0.count == 0)
    }

    @Test("type1 MAP_DMA errnos: unaligned → EINVAL, overlap → EEXIST, into the SW_MSI window → EINVAL, no R/W → EINVAL, unbacked → EFAULT; nothing changes")
    func type1MapErrors() throws {
        let s = try Self.setup()
        let (container, _) = try Self.openType1(s, Self.ep0)
        let va = try s.process.mmap(length: 0x4000)
        try container.mapDMA(flags: Self.readWrite, vaddr: va, iova: 0x1000_0000, size: 0x2000)
        let before = container.type1?.dmaList
        #expect(throws: Errno.EINVAL) { try container.mapDMA(flags: Self.readWrite, vaddr: va, iova: 0x2000_0000, size: 0x1800) }
        #expect(throws: Errno.EINVAL) { try container.mapDMA(flags: Self.readWrite, vaddr: va + 8, iova: 0x2000_0000, size: 0x1000) }
        #expect(throws: Errno.EEXIST) { try container.mapDMA(flags: Self.readWrite, vaddr: va, iova: 0x1000_1000, size: 0x2000) }
        #expect(throws: Errno.EINVAL) { try container.mapDMA(flags: Self.readWrite, vaddr: va, iova: 0x0800_0000, size: 0x1000) }
        #expect(throws: Errno.EINVAL) { try container.mapDMA(flags: 0, vaddr: va, iova: 0x2000_0000, size: 0x1000) }
        #expect(throws: Errno.EFAULT) { try container.mapDMA(flags: Self.readWrite, vaddr: 0x10_0000_0000, iova: 0x2000_0000, size: 0x1000) }
        #expect(container.type1?.dmaList == before)
        // v2 unmap may not bisect a mapping.
        #expect(throws: Errno.EINVAL) { try container.unmapDMA(iova: 0x1000_1000, size: 0x1000) }
        #expect(try container.unmapDMA(iova: 0x1000_0000, size: 0x2000) == 0x2000)
    }

    // MARK: cdev + iommufd

    @Test("cdev + iommufd: MSI-X entry 0x0800_0040 with the doorbell page at sw_msi pgoff 0 in the attached domain")
    func iommufdDoorbellAtPgoff0() throws {
        let s = try Self.setup()
        let iommufd = s.kernel.openIOMMUFD()
        iommufd.process = s.process
        let (file, devID) = try Self.openCdev(s, Self.ep0, iommufd: iommufd)
        let ioas = try iommufd.ioasAlloc()
        let va = try s.process.mmap(length: 0x4000)
        _ = try iommufd.ioasMap(ioasID: ioas, flags: [.fixedIOVA, .readable, .writeable], userVA: va, length: 0x4000, iova: 0x1000_0000)
        let hwptID = try file.attachIOMMUFDPT(ioas)
        #expect(hwptID != ioas && hwptID != devID, "an auto domain HWPT was created with its own id")
        let (fd, eventfd) = s.process.eventfd()
        try file.setIRQs(.trigger(start: 0, eventfds: [fd]))

        #expect(try s.msixEntry(Self.ep0, 0).0 == 0x0800_0040)
        let hwpt = try #require(iommufd.object(hwptID) as? IOMMUFDHWPTPaging)
        #expect(s.kernel.iommu.iovaToPhys(hwpt.domain, 0x0800_0000) == 0x0809_0000)
        #expect(iommufd.swMSITable.maps.map(\.pageOffset) == [0])
        #expect(hwpt.presentSWMSI.ids == [0])
        // The SW_MSI window is reserved in the IOAS: a user mapping there is refused.
        #expect(throws: Errno.EINVAL) {
            try iommufd.ioasMap(ioasID: ioas, flags: [.fixedIOVA, .readable], userVA: va, length: 0x1000, iova: 0x0800_0000)
        }
        _ = s.harness.functions[0].raise(vector: 0)
        _ = s.kernel.irq.handleInterrupts(cpu: 0)
        #expect(eventfd.count == 1)
    }

    @Test("cdev + iommufd: two devices sharing the doorbell share one sw_msi map and one mapping")
    func iommufdSharedDoorbell() throws {
        let s = try Self.setup()
        let iommufd = s.kernel.openIOMMUFD()
        iommufd.process = s.process
        let (file0, _) = try Self.openCdev(s, Self.ep0, iommufd: iommufd)
        let (file1, _) = try Self.openCdev(s, Self.ep1, iommufd: iommufd)
        let ioas = try iommufd.ioasAlloc()
        let hwpt0 = try file0.attachIOMMUFDPT(ioas)
        let hwpt1 = try file1.attachIOMMUFDPT(ioas)
        #expect(hwpt0 == hwpt1, "the second attach reuses the IOAS's auto domain")
        let (fd0, _) = s.process.eventfd(), (fd1, _) = s.process.eventfd()
        try file0.setIRQs(.trigger(start: 0, eventfds: [fd0]))
        try file1.setIRQs(.trigger(start: 0, eventfds: [fd1]))
        #expect(try s.msixEntry(Self.ep0, 0).0 == 0x0800_0040)
        #expect(try s.msixEntry(Self.ep1, 0).0 == 0x0800_0040)
        #expect(iommufd.swMSITable.maps.count == 1)
    }

    @Test("iommufd: the 65th distinct doorbell page is EOVERFLOW and maps nothing")
    func iommufdSixtyFifthPage() throws {
        let s = try Self.setup()
        let iommufd = s.kernel.openIOMMUFD()
        iommufd.process = s.process
        let (file, _) = try Self.openCdev(s, Self.ep0, iommufd: iommufd)
        let ioas = try iommufd.ioasAlloc()
        let hwpt = try #require(iommufd.object(try file.attachIOMMUFDPT(ioas)) as? IOMMUFDHWPTPaging)
        let device = try s.pci(Self.ep0).device
        // iommu_dma_prepare_msi as an irqchip would call it, once per distinct doorbell page.
        var descriptors: [MSIDescriptor] = []
        for i in 0..<65 {
            let d = MSIDescriptor(index: 1000 + i)
            device.msiDescriptors.append(d)
            descriptors.append(d)
        }
        defer { device.msiDescriptors.removeAll { d in descriptors.contains { $0 === d } } }
        for i in 0..<64 {
            try s.kernel.iommu.prepareMSI(descriptors[i], device: device, msiAddress: 0x4000_0040 + UInt64(i) * 0x1_0000)
            #expect(descriptors[i].iommuMSIIOVA << 12 == 0x0800_0000 + UInt64(i) * 0x1000, "pgoff \(i)")
        }
        #expect(throws: Errno.EOVERFLOW) {
            try s.kernel.iommu.prepareMSI(descriptors[64], device: device, msiAddress: 0x4000_0040 + 64 * 0x1_0000)
        }
        #expect(s.kernel.iommu.iovaToPhys(hwpt.domain, 0x0800_0000 + 64 * 0x1000) == nil)
        #expect(iommufd.swMSITable.maps.count == 64)
    }

    @Test("iommufd: replacing the domain keeps MSIs flowing — the new domain gets the doorbell page before the switch")
    func iommufdReplaceKeepsMSI() throws {
        let s = try Self.setup()
        let iommufd = s.kernel.openIOMMUFD()
        iommufd.process = s.process
        let (file, devID) = try Self.openCdev(s, Self.ep0, iommufd: iommufd)
        let ioas = try iommufd.ioasAlloc()
        let first = try file.attachIOMMUFDPT(ioas)
        let (fd, eventfd) = s.process.eventfd()
        try file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        _ = s.harness.functions[0].raise(vector: 0)
        _ = s.kernel.irq.handleInterrupts(cpu: 0)
        #expect(eventfd.count == 1)

        // A user HWPT (a nest parent, as a VMM builds for nested translation) on a second IOAS.
        let ioas2 = try iommufd.ioasAlloc()
        let second = try iommufd.hwptAlloc(deviceID: devID, ptID: ioas2, flags: [.nestParent])
        #expect(try file.attachIOMMUFDPT(second) == second, "a second ATTACH is a replace")
        let hwpt2 = try #require(iommufd.object(second) as? IOMMUFDHWPTPaging)
        #expect(s.kernel.iommu.domain(for: try s.pci(Self.ep0).device) === hwpt2.domain)
        #expect(s.kernel.iommu.iovaToPhys(hwpt2.domain, 0x0800_0000) == 0x0809_0000, "iommufd_group_setup_msi installed the required map")
        #expect(iommufd.object(first) == nil, "the old auto domain lost its last device and was destroyed")
        #expect(try s.msixEntry(Self.ep0, 0).0 == 0x0800_0040, "the programmed address did not change")
        _ = s.harness.functions[0].raise(vector: 0)
        _ = s.kernel.irq.handleInterrupts(cpu: 0)
        #expect(eventfd.count == 2)
    }

    @Test("iommufd uAPI errnos: overlap EEXIST, unaligned size EINVAL, unknown ids ENOENT, wrong types; nothing changes")
    func iommufdBadInput() throws {
        let s = try Self.setup()
        let iommufd = s.kernel.openIOMMUFD()
        iommufd.process = s.process
        let (file, devID) = try Self.openCdev(s, Self.ep0, iommufd: iommufd)
        let ioas = try iommufd.ioasAlloc()
        _ = try file.attachIOMMUFDPT(ioas)
        let va = try s.process.mmap(length: 0x8000)
        _ = try iommufd.ioasMap(ioasID: ioas, flags: [.fixedIOVA, .readable, .writeable], userVA: va, length: 0x4000, iova: 0x1000_0000)
        let iopt = try #require(iommufd.object(ioas) as? IOMMUFDIOAS).iopt
        let areas = iopt.areas, reserved = iopt.reservedRanges, ids = iommufd.objects.ids

        // iopt_check_iova: overlapping an existing area → EEXIST.
        #expect(throws: Errno.EEXIST) { try iommufd.ioasMap(ioasID: ioas, flags: [.fixedIOVA, .readable], userVA: va, length: 0x2000, iova: 0x1000_2000) }
        // With a 4K-page domain the IOAS alignment is 4K: a 0x1800 length → EINVAL.
        #expect(throws: Errno.EINVAL) { try iommufd.ioasMap(ioasID: ioas, flags: [.readable], userVA: va, length: 0x1800) }
        #expect(throws: Errno.EINVAL) { try iommufd.ioasMap(ioasID: ioas, flags: [.fixedIOVA, .readable], userVA: va, length: 0x1000, iova: 0x2000_0800) }
        #expect(throws: Errno.EINVAL) { try iommufd.ioasMap(ioasID: ioas, flags: [.fixedIOVA], userVA: va, length: 0x1000, iova: 0x2000_0000) }
        #expect(throws: Errno.EOPNOTSUPP) { try iommufd.ioasMap(ioasID: ioas, flags: IOMMUFD.IOASMapFlags(rawValue: 1 << 5), userVA: va, length: 0x1000) }
        // Unknown ids and ids of the wrong type.
        #expect(throws: Errno.ENOENT) { try iommufd.ioasMap(ioasID: 999, flags: [.readable], userVA: va, length: 0x1000) }
        #expect(throws: Errno.ENOENT) { try iommufd.ioasMap(ioasID: devID, flags: [.readable], userVA: va, length: 0x1000) }
        #expect(throws: Errno.ENOENT) { try iommufd.hwptAlloc(deviceID: 999, ptID: ioas) }
        #expect(throws: Errno.ENOENT) { try iommufd.hwptAlloc(deviceID: devID, ptID: 999) }
        #expect(throws: Errno.EINVAL) { try iommufd.hwptAlloc(deviceID: devID, ptID: devID) }
        #expect(throws: Errno.ENOENT) { try file.attachIOMMUFDPT(999) }
        #expect(throws: Errno.EINVAL) { try file.attachIOMMUFDPT(devID) }
        #expect(throws: Errno.ENOENT) { try iommufd.destroy(999) }
        #expect(throws: Errno.EBUSY) { try iommufd.destroy(ioas) }
        #expect(throws: Errno.EBUSY) { try iommufd.destroy(devID) }
        #expect(throws: Errno.ENOENT) { try iommufd.ioasUnmap(ioasID: ioas, iova: 0x1000_1000, length: 0x1000) }

        #expect(iopt.areas == areas && iopt.reservedRanges == reserved && iommufd.objects.ids == ids)
    }

    // MARK: isolation

    static func itsOffSetup(configuration: KernelConfiguration = KernelConfiguration()) throws -> Setup {
        let machine = try Machine(topology: try Topology(dtb: try VFIOFixture.bytes("qemu-virt/virt-smmu-itsoff.dtb")), name: "virt-smmu-itsoff")
        var functions: [PCIFunction] = []
        for endpoint in HostHarness.defaultEndpoints {
            let function = try PCIFunction(name: endpoint.name, requesterID: endpoint.requesterID, vendorID: 0x1AF4, deviceID: 0x1041,
                                           bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                           msix: MSIXConfiguration(tableSize: endpoint.vectors))
            try machine.rootComplexes[0].attach(function)
            functions.append(function)
        }
        let kernel = try HostMachine(machine).bootHost(configuration)
        let harness = HostHarness(machine: machine, kernel: kernel, functions: functions)
        return Setup(harness: harness, process: UserProcess(kernel: kernel))
    }

    @Test("no ITS (virt-smmu-itsoff): type1 SET_IOMMU and iommufd bind are EPERM, and the group keeps its domain and owner")
    func attachWithoutIsolation() throws {
        let s = try Self.itsOffSetup()
        let pdev = try s.pci(Self.ep0)
        let group = try #require(pdev.device.iommu?.group)
        let domainBefore = group.domain
        try s.kernel.vfio.bindVFIOPCI(pdev.device)

        let iommufd = s.kernel.openIOMMUFD()
        let vdev = try #require(s.kernel.vfio.devices.first)
        let cdev = try s.kernel.vfio.openDevice(vdev.cdevName, process: s.process)
        #expect(throws: Errno.EPERM) { try cdev.bindIOMMUFD(iommufd) }
        #expect(group.domain === domainBefore && group.owner == nil)
        #expect(iommufd.objects.count == 0)
        cdev.close()

        let container = s.kernel.vfio.openContainer(process: s.process)
        let groupFile = try s.kernel.vfio.openGroup(group.id)
        try groupFile.setContainer(container)
        #expect(throws: Errno.EPERM) { try container.setIOMMU(VFIOContainer.type1v2IOMMU) }
        #expect(container.type1 == nil)
        #expect(group.domain === group.blockingDomain, "detached back to the blocking domain VFIO's ownership put it on")
        try groupFile.unsetContainer()
        #expect(group.domain === domainBefore && group.owner == nil)
    }

    @Test("no ITS but allow_unsafe_interrupts: both paths attach")
    func attachUnsafeAllowed() throws {
        let s = try Self.itsOffSetup(configuration: KernelConfiguration(allowUnsafeInterrupts: true))
        let pdev = try s.pci(Self.ep0)
        let vdev = try s.kernel.vfio.bindVFIOPCI(pdev.device)
        let iommufd = s.kernel.openIOMMUFD()
        let cdev = try s.kernel.vfio.openDevice(vdev.cdevName, process: s.process)
        _ = try cdev.bindIOMMUFD(iommufd)
        _ = try cdev.attachIOMMUFDPT(try iommufd.ioasAlloc())
        #expect(s.kernel.iommu.domain(for: pdev.device)?.cookieType == .iommufd)
    }
}

/// Test fixtures of the repository (Tests/Fixtures).
enum VFIOFixture {
    static func bytes(_ relative: String) throws -> [UInt8] {
        let tests = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false).dropLast(2).joined(separator: "/")
        return try DeviceTreeFile.read(path: tests + "/Fixtures/" + relative)
    }
    enum FixtureError: Error { case missing(String) }
}
