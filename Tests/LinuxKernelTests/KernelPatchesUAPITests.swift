import Testing
import Bus
import Firmware
import Machine
import PCI
@testable import LinuxKernel

/// The uAPI of each `KernelPatches` member, patched and unpatched, on a qemu-virt host driven by
/// a user process through VFIO (cdev or type1) and iommufd.
///
/// Where the expected values come from:
/// - unpatched answers: unknown VFIO flag bits fail `vfio_set_irqs_validate_and_prepare`'s mask
///   test (EINVAL); `iommufd_option` answers an unknown option id with EOPNOTSUPP
///   (drivers/iommu/iommufd/main.c); an ioctl beyond iommufd's table is ENOTTY;
/// - PREPARE's errnos are RFCv1 7/7's `vfio_pci_set_msi_prepare` (and RFCv2's ictx check);
/// - SW_MSI_START/SIZE errnos are Part-2 v2 4/7's `iommufd_option_sw_msi` and
///   `iommufd_option_sw_msi_test` (1 MiB alignment, size in MiB, EBUSY once attached);
/// - qemu-virt's ITS is at 0x0808_0000, so every device's doorbell is GITS_TRANSLATER
///   0x0809_0040 on page 0x0809_0000; the SMMU's SW_MSI window is 0x0800_0000 / 1 MiB.
@Suite("Kernel patches: uAPI", .serialized)
struct KernelPatchesUAPITests {
    typealias S = VFIOScenarioTests
    static let ep0 = VFIOScenarioTests.ep0
    static let ep1 = VFIOScenarioTests.ep1

    static func config(_ patches: KernelPatches) -> KernelConfiguration { KernelConfiguration(patches: patches) }

    /// A cdev bound to a fresh iommufd with 16 KiB of process memory mapped at IOVA 0x1000_0000.
    struct Cdev {
        let s: VFIOScenarioTests.Setup
        let iommufd: IOMMUFD
        let file: VFIODeviceFile
        let deviceID: UInt32
        let ioas: UInt32
    }

    static func cdev(_ patches: KernelPatches, rid: RequesterID = ep0) throws -> Cdev {
        let s = try S.setup(configuration: config(patches))
        let iommufd = s.kernel.openIOMMUFD()
        iommufd.process = s.process
        let (file, devID) = try S.openCdev(s, rid, iommufd: iommufd)
        let ioas = try iommufd.ioasAlloc()
        let va = try s.process.mmap(length: 0x4000)
        _ = try iommufd.ioasMap(ioasID: ioas, flags: [.fixedIOVA, .readable, .writeable], userVA: va, length: 0x4000, iova: 0x1000_0000)
        return Cdev(s: s, iommufd: iommufd, file: file, deviceID: devID, ioas: ioas)
    }

    // MARK: .vfioMSIIOVAPrepare

    @Test("unpatched VFIO: ACTION_PREPARE (bit 7) and DATA_MSI_IOVA (bit 6) are unknown flag bits: EINVAL, nothing stored")
    func prepareUnpatched() throws {
        let c = try Self.cdev([])
        #expect(throws: Errno.EINVAL) { try c.file.setIRQs(.prepare(start: 0, iovas: [0xFFBF_0040])) }
        #expect(throws: Errno.EINVAL) { try c.file.setIRQs(.prepareClear()) }
        // DATA_MSI_IOVA with a known action is as unknown.
        #expect(throws: Errno.EINVAL) {
            try c.file.setIRQs(VFIOIRQSet(flags: VFIOIRQSet.actionTrigger | VFIOIRQSet.dataMSIIOVA, index: VFIOIRQSet.msixIndex,
                                          start: 0, count: 1, data: [UInt8](repeating: 0, count: 8)))
        }
        #expect(c.file.vdev.msiIOVAs.isEmpty)
    }

    @Test("PREPARE: one LE u64 per vector lands at start+k; argsz short of count×8 is EINVAL; BOOL/EVENTFD data is EOPNOTSUPP; ERR index is ENOTTY; count-0 DATA_NONE is EINVAL; DATA_NONE frees the whole array")
    func prepareErrnos() throws {
        let c = try Self.cdev([.vfioMSIIOVAPrepare])
        try c.file.setIRQs(.prepare(start: 1, iovas: [0xFFBF_0040, 0x1_2345_6040]))
        #expect(c.file.vdev.msiIOVAs == [1: 0xFFBF_0040, 2: 0x1_2345_6040])
        // 8 bytes per entry (RFCv1: size = sizeof(uint64_t)): 15 bytes for two entries is short.
        var short = VFIOIRQSet.prepare(start: 0, iovas: [1, 2])
        short.argsz = VFIOIRQSet.minimumSize + 15
        #expect(throws: Errno.EINVAL) { try c.file.setIRQs(short) }
        // Past the 4-entry table.
        #expect(throws: Errno.EINVAL) { try c.file.setIRQs(.prepare(start: 3, iovas: [1, 2])) }
        #expect(throws: Errno.EOPNOTSUPP) {
            try c.file.setIRQs(VFIOIRQSet(flags: VFIOIRQSet.actionPrepare | VFIOIRQSet.dataBool, index: VFIOIRQSet.msixIndex,
                                          start: 0, count: 1, data: [1]))
        }
        let (fd, _) = c.s.process.eventfd()
        #expect(throws: Errno.EOPNOTSUPP) {
            var e = VFIOIRQSet.trigger(start: 0, eventfds: [fd])
            e.flags = VFIOIRQSet.actionPrepare | VFIOIRQSet.dataEventFD
            try c.file.setIRQs(e)
        }
        // vfio_pci_set_irqs_ioctl registers PREPARE for MSI/MSI-X only.
        #expect(throws: Errno.ENOTTY) { try c.file.setIRQs(.prepare(index: VFIOIRQSet.errIndex, start: 0, iovas: [1])) }
        #expect(throws: Errno.EINVAL) {
            try c.file.setIRQs(VFIOIRQSet(flags: VFIOIRQSet.actionPrepare | VFIOIRQSet.dataNone, index: VFIOIRQSet.msixIndex, start: 0, count: 0))
        }
        #expect(c.file.vdev.msiIOVAs.count == 2, "failed calls changed nothing")
        try c.file.setIRQs(.prepareClear())
        #expect(c.file.vdev.msiIOVAs.isEmpty, "RFCv1: FIXME support partial unset — all freed")
    }

    /// 00:03.0 (RID 0x18) with MSI (2 vectors) and MSI-X (4), bound to a fresh iommufd.
    static func dualCdev(_ patches: KernelPatches) throws -> (Cdev, PCIFunction) {
        let h = try HostHarness.make(endpoints: [], configuration: config(patches), boot: false)
        let function = try PCIFunction(name: "dual", requesterID: dual, vendorID: 0x1AF4, deviceID: 0x1041,
                                       bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                       msi: MSIConfiguration(vectorsLog2: 1), msix: MSIXConfiguration(tableSize: 4))
        try h.machine.rootComplexes[0].attach(function)
        try h.kernel.boot()
        let s = VFIOScenarioTests.Setup(harness: h, process: UserProcess(kernel: h.kernel))
        let iommufd = s.kernel.openIOMMUFD()
        iommufd.process = s.process
        let (file, devID) = try S.openCdev(s, dual, iommufd: iommufd)
        let ioas = try iommufd.ioasAlloc()
        return (Cdev(s: s, iommufd: iommufd, file: file, deviceID: devID, ioas: ioas), function)
    }

    static let dual = RequesterID(bus: 0, device: 3, function: 0)

    @Test("PREPARE with the other interrupt type on is EINVAL (irq_is || is_irq_none); RFCv1 frees the IOVAs when MSI-X is disabled")
    func prepareAgainstIRQType() throws {
        let (c, _) = try Self.dualCdev([.vfioMSIIOVAPrepare])
        _ = try c.file.attachIOMMUFDPT(c.ioas)
        let (fd, _) = c.s.process.eventfd()
        try c.file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        try c.file.setIRQs(.prepare(start: 0, iovas: [0xFFBF_0040]))
        #expect(c.file.vdev.msiIOVAs[0] == 0xFFBF_0040, "irq_is(vdev, MSIX): allowed while MSI-X is on")
        #expect(throws: Errno.EINVAL) { try c.file.setIRQs(.prepare(index: VFIOIRQSet.msiIndex, start: 0, iovas: [1])) }
        try c.file.setIRQs(.disable())
        #expect(c.file.vdev.msiIOVAs.isEmpty, "vfio_pci_set_msi_trigger disable: kfree(vdev->msi_iovas)")
    }

    @Test("irqchip-relay on MSI: the one descriptor takes iovas[0]; both vectors' messages share it (multi-message MSI)")
    func irqchipRelayMSI() throws {
        let (c, function) = try Self.dualCdev([.vfioMSIIOVAPrepare, .irqchipMSIIOVA])
        _ = try c.file.attachIOMMUFDPT(c.ioas)
        try c.file.setIRQs(.prepare(index: VFIOIRQSet.msiIndex, start: 0, iovas: [0x0805_0040]))
        let (fd0, _) = c.s.process.eventfd()
        let (fd1, _) = c.s.process.eventfd()
        try c.file.setIRQs(.trigger(index: VFIOIRQSet.msiIndex, start: 0, eventfds: [fd0, fd1]))
        let pdev = try c.s.pci(Self.dual)
        let cap = try #require(pdev.msiCapability)
        let lo = try pdev.readConfig32(cap + 4)
        let hi = try pdev.readConfig32(cap + 8)
        #expect(UInt64(hi) << 32 | UInt64(lo) == 0x0805_0040)
        #expect(c.iommufd.swMSITable.maps.isEmpty)
        _ = function
    }

    @Test("RFCv2 layout (.iommufdMSIIOVA): PREPARE needs an iommufd-bound device (EOPNOTSUPP on type1), reaches the iommufd device, survives MSI-X disable, and DATA_NONE unsets only its range")
    func prepareRFCv2() throws {
        let patches: KernelPatches = [.vfioMSIIOVAPrepare, .iommufdMSIIOVA]
        let s = try S.setup(configuration: Self.config(patches))
        let (_, type1File) = try S.openType1(s, Self.ep1)
        #expect(throws: Errno.EOPNOTSUPP) { try type1File.setIRQs(.prepare(start: 0, iovas: [0xFFBF_0040])) }

        let c = try Self.cdev(patches)
        _ = try c.file.attachIOMMUFDPT(c.ioas)
        let idev = try #require(c.file.iommufdDevice)
        try c.file.setIRQs(.prepare(start: 0, iovas: [0xFFBF_0040, 0xFFBF_0040, 0xEEEE_0040]))
        #expect(idev.numberOfMSIIOVAs == 3 && idev.msiIOVAs == [0: 0xFFBF_0040, 1: 0xFFBF_0040, 2: 0xEEEE_0040])
        let (fd, _) = c.s.process.eventfd()
        try c.file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        try c.file.setIRQs(.disable())
        #expect(idev.msiIOVAs.count == 3, "RFCv2 unsets start..<start+count of the count-0 disable: nothing")
        try c.file.setIRQs(VFIOIRQSet(flags: VFIOIRQSet.actionPrepare | VFIOIRQSet.dataNone, index: VFIOIRQSet.msixIndex, start: 1, count: 1))
        #expect(idev.msiIOVAs == [0: 0xFFBF_0040, 2: 0xEEEE_0040])
    }

    // MARK: .irqchipMSIIOVA and .vfioMSIOverride without nesting

    @Test("irqchip-relay, host only: the preset IOVA is the MSI-X address, no sw_msi page is mapped, and with IOAS_MAP_MSI at its page the vector is delivered — also after deactivate + activate")
    func irqchipRelayHostOnly() throws {
        let c = try Self.cdev([.vfioMSIIOVAPrepare, .irqchipMSIIOVA, .iommufdIOASMapMSI])
        let hwptID = try c.file.attachIOMMUFDPT(c.ioas)
        try c.iommufd.ioasMapMSI(ioasID: c.ioas, deviceID: c.deviceID, iova: 0x0805_0000)
        try c.file.setIRQs(.prepare(start: 0, iovas: [0x0805_0040]))
        let (fd, eventfd) = c.s.process.eventfd()
        try c.file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        #expect(try c.s.msixEntry(Self.ep0, 0).0 == 0x0805_0040, "msg->address = desc->msi_iova")
        let pdev = try c.s.pci(Self.ep0)
        #expect(pdev.device.msiDescriptors.first?.presetIOVA == 0x0805_0040)
        #expect(c.iommufd.swMSITable.maps.isEmpty, "its_irq_domain_alloc skipped iommu_dma_prepare_msi")
        let hwpt = try #require(c.iommufd.object(hwptID) as? IOMMUFDHWPTPaging)
        #expect(c.s.kernel.iommu.iovaToPhys(hwpt.domain, 0x0800_0000) == nil)
        #expect(c.s.kernel.iommu.iovaToPhys(hwpt.domain, 0x0805_0040) == 0x0809_0040)
        _ = c.s.harness.functions[0].raise(vector: 0)
        _ = c.s.kernel.irq.handleInterrupts(cpu: 0)
        #expect(eventfd.count == 1)
        let irq = try c.s.kernel.pci.irqVector(pdev, 0)
        try c.s.kernel.irq.deactivate(irq: irq)
        #expect(try c.s.msixEntry(Self.ep0, 0).0 == 0, "msi_domain_deactivate writes a zero message")
        try c.s.kernel.irq.activate(irq: irq)
        #expect(try c.s.msixEntry(Self.ep0, 0).0 == 0x0805_0040, "the preset stays in msi_desc")
        _ = c.s.harness.functions[0].raise(vector: 0)
        _ = c.s.kernel.irq.handleInterrupts(cpu: 0)
        #expect(eventfd.count == 2)
    }

    @Test("irqchip-relay with dynamic MSI-X: a vector VFIO allocates after enable (pci_msix_alloc_irq_at) takes its preset from the same vdev->msi_iovas")
    func irqchipRelayDynamicVector() throws {
        let c = try Self.cdev([.vfioMSIIOVAPrepare, .irqchipMSIIOVA])
        _ = try c.file.attachIOMMUFDPT(c.ioas)
        try c.file.setIRQs(.prepare(start: 0, iovas: [0x0805_0040, 0x0805_0040, 0x0806_0040]))
        // QEMU's vfio_enable_msix_no_vec: one vector, no eventfd.
        try c.file.setIRQs(.trigger(start: 0, eventfds: [-1]))
        let pdev = try c.s.pci(Self.ep0)
        #expect(pdev.device.msiDescriptors.map(\.index) == [0])
        let (fd, _) = c.s.process.eventfd()
        try c.file.setIRQs(.trigger(start: 2, eventfds: [fd]))
        #expect(pdev.device.msiDescriptors.map(\.index) == [0, 2], "vector 2 allocated dynamically")
        #expect(try c.s.msixEntry(Self.ep0, 2).0 == 0x0806_0040)
        #expect(try c.s.msixEntry(Self.ep0, 0).0 == 0x0805_0040)
    }

    @Test("vits-direct, host only: iommufd_sw_msi uses the vector's IOVA when VFIO handed one down and the SW_MSI slot otherwise")
    func vitsDirectHostOnly() throws {
        let c = try Self.cdev([.vfioMSIIOVAPrepare, .iommufdMSIIOVA, .iommufdIOASMapMSI])
        let hwptID = try c.file.attachIOMMUFDPT(c.ioas)
        try c.iommufd.ioasMapMSI(ioasID: c.ioas, deviceID: c.deviceID, iova: 0x0805_0000)
        try c.file.setIRQs(.prepare(start: 0, iovas: [0x0805_0040]))
        let (fd0, e0) = c.s.process.eventfd()
        let (fd1, e1) = c.s.process.eventfd()
        try c.file.setIRQs(.trigger(start: 0, eventfds: [fd0, fd1]))
        #expect(try c.s.msixEntry(Self.ep0, 0).0 == 0x0805_0040, "msi_desc_set_iommu_msi_iova(desc, 0x0805_0040, PAGE_SHIFT) + msi_msg_set_addr")
        #expect(try c.s.msixEntry(Self.ep0, 1).0 == 0x0800_0040, "no IOVA for index 1: pgoff 0 of the SW_MSI window")
        let hwpt = try #require(c.iommufd.object(hwptID) as? IOMMUFDHWPTPaging)
        #expect(c.s.kernel.iommu.iovaToPhys(hwpt.domain, 0x0805_0040) == 0x0809_0040)
        for v in 0..<2 { _ = c.s.harness.functions[0].raise(vector: v) }
        _ = c.s.kernel.irq.handleInterrupts(cpu: 0)
        #expect(e0.count == 1 && e1.count == 1)
    }

    @Test("vfio-override keys on IOMMU_DOMAIN_NESTED: on a paging domain the PREPAREd IOVA is ignored and the sw_msi address stays")
    func overrideNeedsNested() throws {
        let c = try Self.cdev([.vfioMSIIOVAPrepare, .vfioMSIOverride])
        _ = try c.file.attachIOMMUFDPT(c.ioas)
        try c.file.setIRQs(.prepare(start: 0, iovas: [0xFFBF_0040]))
        let (fd, _) = c.s.process.eventfd()
        try c.file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        #expect(try c.s.msixEntry(Self.ep0, 0).0 == 0x0800_0040)
    }

    // MARK: .iommufdSWMSIWindow

    @Test("unpatched iommufd: SW_MSI_START/SIZE and any unknown option id are EOPNOTSUPP; RLIMIT_MODE and HUGE_PAGES answer as upstream")
    func optionUnpatched() throws {
        let c = try Self.cdev([])
        #expect(throws: Errno.EOPNOTSUPP) { try c.iommufd.setOption(.swMSIStart, objectID: c.deviceID, value: 0xA000_0000) }
        #expect(throws: Errno.EOPNOTSUPP) { _ = try c.iommufd.getOption(.swMSISize, objectID: c.deviceID) }
        #expect(throws: Errno.EOPNOTSUPP) { try c.iommufd.setOption(IOMMUFDOption(rawValue: 4), objectID: 0, value: 0) }
        // RLIMIT_MODE: object 0 only; SET once objects exist is EBUSY.
        #expect(try c.iommufd.getOption(.rlimitMode, objectID: 0) == 0)
        #expect(throws: Errno.EOPNOTSUPP) { _ = try c.iommufd.getOption(.rlimitMode, objectID: c.ioas) }
        #expect(throws: Errno.EBUSY) { try c.iommufd.setOption(.rlimitMode, objectID: 0, value: 1) }
        let fresh = c.s.kernel.openIOMMUFD()
        #expect(throws: Errno.EINVAL) { try fresh.setOption(.rlimitMode, objectID: 0, value: 2) }
        try fresh.setOption(.rlimitMode, objectID: 0, value: 1)
        #expect(try fresh.getOption(.rlimitMode, objectID: 0) == 1)
        // HUGE_PAGES: per IOAS (a device id is ENOENT), default 1, only 0/1.
        #expect(try c.iommufd.getOption(.hugePages, objectID: c.ioas) == 1)
        #expect(throws: Errno.ENOENT) { _ = try c.iommufd.getOption(.hugePages, objectID: c.deviceID) }
        #expect(throws: Errno.EINVAL) { try c.iommufd.setOption(.hugePages, objectID: c.ioas, value: 2) }
        try c.iommufd.setOption(.hugePages, objectID: c.ioas, value: 0)
        #expect(try c.iommufd.getOption(.hugePages, objectID: c.ioas) == 0)
    }

    @Test("SW_MSI_START/SIZE errnos: device ids only (ENOENT), 1 MiB alignment (EINVAL), SIZE before START (EINVAL), size in MiB bounded by SIZE_MAX>>20 (EINVAL), a wrapping window (EOVERFLOW), EBUSY for SET and GET once attached")
    func optionErrnos() throws {
        let c = try Self.cdev([.iommufdSWMSIWindow])
        #expect(try c.iommufd.getOption(.swMSIStart, objectID: c.deviceID) == UInt64.max, "unset: PHYS_ADDR_MAX")
        #expect(try c.iommufd.getOption(.swMSISize, objectID: c.deviceID) == 0)
        #expect(throws: Errno.ENOENT) { try c.iommufd.setOption(.swMSIStart, objectID: c.ioas, value: 0xA000_0000) }
        #expect(throws: Errno.ENOENT) { try c.iommufd.setOption(.swMSIStart, objectID: 999, value: 0xA000_0000) }
        #expect(throws: Errno.EINVAL) { try c.iommufd.setOption(.swMSISize, objectID: c.deviceID, value: 1) }
        #expect(throws: Errno.EINVAL) { try c.iommufd.setOption(.swMSIStart, objectID: c.deviceID, value: 0xA008_0000) }
        try c.iommufd.setOption(.swMSIStart, objectID: c.deviceID, value: 0xFFFF_FFFF_FFF0_0000)
        #expect(throws: Errno.EOVERFLOW) { try c.iommufd.setOption(.swMSISize, objectID: c.deviceID, value: 2) }
        #expect(throws: Errno.EINVAL) { try c.iommufd.setOption(.swMSISize, objectID: c.deviceID, value: UInt64(1) << 44) }
        try c.iommufd.setOption(.swMSIStart, objectID: c.deviceID, value: 0xA000_0000)
        try c.iommufd.setOption(.swMSISize, objectID: c.deviceID, value: 2)
        #expect(try c.iommufd.getOption(.swMSIStart, objectID: c.deviceID) == 0xA000_0000)
        #expect(try c.iommufd.getOption(.swMSISize, objectID: c.deviceID) == 2, "in MiB")
        _ = try c.file.attachIOMMUFDPT(c.ioas)
        #expect(throws: Errno.EBUSY) { try c.iommufd.setOption(.swMSISize, objectID: c.deviceID, value: 1) }
        #expect(throws: Errno.EBUSY) { _ = try c.iommufd.getOption(.swMSIStart, objectID: c.deviceID) }
        try c.file.detachIOMMUFDPT()
        #expect(try c.iommufd.getOption(.swMSISize, objectID: c.deviceID) == 2, "detached: readable again")
    }

    @Test("SW_MSI_START overlapping one of the device's other reserved regions is EADDRINUSE: on an untranslated-ITS platform the ITS page is an IOMMU_RESV_MSI region [0x0809_0000, +64K); the driver's own SW_MSI window never conflicts")
    func optionOverlapsReserved() throws {
        let harness = try HostHarness.make(preset: .qemuVirtUntranslatedITS, configuration: Self.config([.iommufdSWMSIWindow]))
        let s = VFIOScenarioTests.Setup(harness: harness, process: UserProcess(kernel: harness.kernel))
        let iommufd = s.kernel.openIOMMUFD()
        iommufd.process = s.process
        let (_, devID) = try S.openCdev(s, Self.ep0, iommufd: iommufd)
        #expect(throws: Errno.EADDRINUSE) { try iommufd.setOption(.swMSIStart, objectID: devID, value: 0x0800_0000) }
        #expect(try iommufd.getOption(.swMSIStart, objectID: devID) == UInt64.max, "the refused value was not stored")
        try iommufd.setOption(.swMSIStart, objectID: devID, value: 0x0810_0000)
        // On the translated platform the same start is fine: only the SW_MSI region is there.
        let c = try Self.cdev([.iommufdSWMSIWindow])
        try c.iommufd.setOption(.swMSIStart, objectID: c.deviceID, value: 0x0800_0000)
        try c.iommufd.setOption(.swMSISize, objectID: c.deviceID, value: 1)
    }

    @Test("sw-msi-window, host only: the window set before attach replaces SW_MSI in the IOAS; sw_msi maps the doorbell at its base; the MSI-X entry is W + 0x40 and the vector is delivered")
    func swMSIWindowMovesDoorbell() throws {
        let c = try Self.cdev([.iommufdSWMSIWindow])
        let window: UInt64 = 0xA000_0000
        try c.iommufd.setOption(.swMSIStart, objectID: c.deviceID, value: window)
        try c.iommufd.setOption(.swMSISize, objectID: c.deviceID, value: 1)
        let hwptID = try c.file.attachIOMMUFDPT(c.ioas)
        let ioas = try #require(c.iommufd.object(c.ioas) as? IOMMUFDIOAS)
        #expect(ioas.iopt.reservedRanges.contains(window...(window + 0xF_FFFF)))
        #expect(!ioas.iopt.reservedRanges.contains { $0.contains(0x0800_0000) }, "the driver's window is not reserved")
        let (fd, eventfd) = c.s.process.eventfd()
        try c.file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        #expect(try c.s.msixEntry(Self.ep0, 0).0 == window + 0x40)
        let hwpt = try #require(c.iommufd.object(hwptID) as? IOMMUFDHWPTPaging)
        #expect(c.s.kernel.iommu.iovaToPhys(hwpt.domain, window) == 0x0809_0000)
        #expect(c.iommufd.swMSITable.maps.first?.swMSIStart == window)
        _ = c.s.harness.functions[0].raise(vector: 0)
        _ = c.s.kernel.irq.handleInterrupts(cpu: 0)
        #expect(eventfd.count == 1)
        // User memory can now go where the driver's window was.
        let va = try c.s.process.mmap(length: 0x1000)
        #expect(try c.iommufd.ioasMap(ioasID: c.ioas, flags: [.fixedIOVA, .readable], userVA: va, length: 0x1000, iova: 0x0800_0000) == 0x0800_0000)
    }

    @Test("sw-msi-window unpatched behaviour is today's: without the options the doorbell stays at 0x0800_0040 with the patch applied")
    func swMSIWindowDefault() throws {
        let c = try Self.cdev([.iommufdSWMSIWindow])
        _ = try c.file.attachIOMMUFDPT(c.ioas)
        let (fd, _) = c.s.process.eventfd()
        try c.file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        #expect(try c.s.msixEntry(Self.ep0, 0).0 == 0x0800_0040, "size 0: the driver's IOMMU_RESV_SW_MSI window")
    }

    // MARK: .iommufdIOASMapMSI

    @Test("IOAS_MAP_MSI: ENOTTY unpatched; patched: EOVERFLOW, ENOENT (IOAS, device), EINVAL (unaligned, reserved non-SW_MSI IOVA), EEXIST over user memory; inside the SW_MSI window it maps the ITS page into every domain of the IOAS, now and later, and IOAS_UNMAP removes it")
    func ioasMapMSI() throws {
        let u = try Self.cdev([])
        #expect(throws: Errno.ENOTTY) { try u.iommufd.ioasMapMSI(ioasID: u.ioas, deviceID: u.deviceID, iova: 0x0809_0000) }

        let c = try Self.cdev([.iommufdIOASMapMSI])
        #expect(throws: Errno.EOVERFLOW) { try c.iommufd.ioasMapMSI(ioasID: c.ioas, deviceID: c.deviceID, iova: UInt64.max) }
        #expect(throws: Errno.ENOENT) { try c.iommufd.ioasMapMSI(ioasID: c.deviceID, deviceID: c.deviceID, iova: 0x0809_0000) }
        #expect(throws: Errno.ENOENT) { try c.iommufd.ioasMapMSI(ioasID: c.ioas, deviceID: c.ioas, iova: 0x0809_0000) }
        #expect(throws: Errno.EINVAL) { try c.iommufd.ioasMapMSI(ioasID: c.ioas, deviceID: c.deviceID, iova: 0x0809_0040) }
        #expect(throws: Errno.EEXIST) { try c.iommufd.ioasMapMSI(ioasID: c.ioas, deviceID: c.deviceID, iova: 0x1000_1000) }
        let first = try c.file.attachIOMMUFDPT(c.ioas)
        let ioas = try #require(c.iommufd.object(c.ioas) as? IOMMUFDIOAS)
        let firstDomain = try #require((c.iommufd.object(first) as? IOMMUFDHWPTPaging)?.domain)
        // Above the SMMU's input range the domain's aperture reservation is not an SW_MSI window.
        let beyond = firstDomain.apertureEnd &+ 1
        #expect(throws: Errno.EINVAL) { try c.iommufd.ioasMapMSI(ioasID: c.ioas, deviceID: c.deviceID, iova: beyond) }
        // Inside the attached device's SW_MSI window: allowed, and mapped R/W/MMIO.
        try c.iommufd.ioasMapMSI(ioasID: c.ioas, deviceID: c.deviceID, iova: 0x0809_0000)
        #expect(c.s.kernel.iommu.iovaToPhys(firstDomain, 0x0809_0040) == 0x0809_0040)
        let area = try #require(ioas.iopt.areas.first { $0.doorbell != nil })
        #expect(area.start == 0x0809_0000 && area.length == 0x1000 && area.doorbell == 0x0809_0000)
        #expect(area.protection == [.read, .write, .mmio])
        // Same page, same IOVA: nothing new; an overlapping user mapping is EEXIST.
        try c.iommufd.ioasMapMSI(ioasID: c.ioas, deviceID: c.deviceID, iova: 0x0809_0000)
        #expect(ioas.iopt.areas.filter { $0.doorbell != nil }.count == 1)
        // A second domain on the IOAS (a nest parent here) gets it too.
        let parent = try c.iommufd.hwptAlloc(deviceID: c.deviceID, ptID: c.ioas, flags: .nestParent)
        let parentDomain = try #require((c.iommufd.object(parent) as? IOMMUFDHWPTPaging)?.domain)
        #expect(c.s.kernel.iommu.iovaToPhys(parentDomain, 0x0809_0000) == 0x0809_0000)
        #expect(try c.iommufd.ioasUnmap(ioasID: c.ioas, iova: 0x0809_0000, length: 0x1000) == 0x1000)
        #expect(c.s.kernel.iommu.iovaToPhys(firstDomain, 0x0809_0000) == nil)
        #expect(c.s.kernel.iommu.iovaToPhys(parentDomain, 0x0809_0000) == nil)
    }

    @Test("IOAS_MAP_MSI before attach: the device's SW_MSI reservation still succeeds around the doorbell area")
    func ioasMapMSIBeforeAttach() throws {
        let c = try Self.cdev([.iommufdIOASMapMSI])
        try c.iommufd.ioasMapMSI(ioasID: c.ioas, deviceID: c.deviceID, iova: 0x0809_0000)
        let hwpt = try c.file.attachIOMMUFDPT(c.ioas)
        let domain = try #require((c.iommufd.object(hwpt) as? IOMMUFDHWPTPaging)?.domain)
        #expect(c.s.kernel.iommu.iovaToPhys(domain, 0x0809_0000) == 0x0809_0000)
        let ioas = try #require(c.iommufd.object(c.ioas) as? IOMMUFDIOAS)
        #expect(ioas.iopt.reservedRanges.contains(0x0800_0000...0x080F_FFFF))
    }

    @Test("several pITS behind one vITS: a device behind ITS 1 (doorbell page 0x0911_0000) cannot take the IOVA that already maps ITS 0's page (EEXIST); a device on the same ITS can; another IOVA works")
    func ioasMapMSITwoITS() throws {
        let h = try HostHarness.make(preset: .qemuVirtTwoITS, endpoints: [HostHarness.Endpoint(requesterID: Self.ep0)],
                                     configuration: Self.config([.iommufdIOASMapMSI]), boot: false)
        let port = try PCIToPCIBridge(requesterID: RequesterID(bus: 0, device: 2, function: 0), kind: .rootPort, secondaryBus: 1)
        try h.machine.rootComplexes[0].attach(port)
        let farRID = RequesterID(bus: 1, device: 0, function: 0)
        let far = try PCIFunction(name: "far", requesterID: farRID, vendorID: 0x1AF4, deviceID: 0x1041,
                                  bars: [BaseAddressRegister(index: 0, size: 0x4000)], msix: MSIXConfiguration(tableSize: 2))
        try h.machine.rootComplexes[0].attach(far, behind: port)
        try h.kernel.boot()
        let s = VFIOScenarioTests.Setup(harness: h, process: UserProcess(kernel: h.kernel))
        let iommufd = s.kernel.openIOMMUFD()
        iommufd.process = s.process
        let (_, nearID) = try S.openCdev(s, Self.ep0, iommufd: iommufd)
        let (_, farID) = try S.openCdev(s, farRID, iommufd: iommufd)
        let ioas = try iommufd.ioasAlloc()
        #expect(try iommufd.doorbellPage(of: try s.pci(farRID).device) == 0x0911_0000)
        try iommufd.ioasMapMSI(ioasID: ioas, deviceID: nearID, iova: 0x0809_0000)
        #expect(throws: Errno.EEXIST) { try iommufd.ioasMapMSI(ioasID: ioas, deviceID: farID, iova: 0x0809_0000) }
        try iommufd.ioasMapMSI(ioasID: ioas, deviceID: farID, iova: 0x0808_0000)
        let io = try #require(iommufd.object(ioas) as? IOMMUFDIOAS)
        #expect(io.iopt.areas.compactMap(\.doorbell) == [0x0911_0000, 0x0809_0000], "sorted by IOVA")
    }
}
