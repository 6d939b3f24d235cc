import Testing
import Bus
import Firmware
import GIC
import Machine
import PCI
@testable import LinuxKernel

/// Linux's "ITS: Socionext Synquacer pre-ITS" quirk (`its_enable_quirk_socionext_synquacer`,
/// drivers/irqchip/irq-gic-v3-its.c) on a TI K3 board and on a QEMU virt tree given the same
/// property: the doorbell is `pre_its_base + (DeviceID << 2)`, the window delivers it to the
/// right LPI, IRQ_DOMAIN_FLAG_ISOLATED_MSI is cleared, and VFIO type1 / iommufd refuse the
/// group with EPERM unless allow_unsafe_interrupts.
@Suite("pre-ITS quirk (SynQuacer / TI K3)", .serialized)
struct PreITSQuirkTests {
    static let windowBase: UInt64 = 0x0100_0000

    /// A TI K3 board (J721E common processor board by default), one endpoint where `msi` puts
    /// it on the first bridge.
    static func j721e(board: String = "ti_k3-j721e-common-proc-board", version: KernelConfiguration.Version = .v6_15,
                      tree edit: ((DeviceTree) -> DeviceTree?)? = nil) throws -> HostHarness {
        var tree = try DeviceTree(dtb: try HostScenario.fixture("boards/\(board).dtb"))
        if let edit { tree = try #require(edit(tree)) }
        let machine = try Machine(topology: try Topology(deviceTree: tree), name: "j721e")
        let rid = machine.endpointRequesterID(rootComplex: 0)
        return try HostHarness.make(machine: machine, endpoints: [HostHarness.Endpoint(requesterID: rid, vectors: 2, name: "ep0")],
                                    configuration: KernelConfiguration(version: version))
    }

    @Test("TI J721E boot: GITS_IIDR 0x0001143b matches, the quirk logs, sets pre_its_base 0x100_0000 and clears ISOLATED_MSI",
          arguments: KernelConfiguration.Version.allCases)
    func quirkApplies(version: KernelConfiguration.Version) throws {
        let h = try Self.j721e(version: version)
        let driver = try #require(h.kernel.itsDrivers.first)
        #expect(h.kernel.log.lines.contains("GIC: enabling workaround for ITS: Socionext Synquacer pre-ITS"))
        #expect(driver.preITSBase == Self.windowBase)
        #expect(!driver.isolatedMSI)
        // ilog2(0x40_0000) − 2 = 20 DeviceID bits; the machine's ITS has fewer, so no change.
        #expect(driver.deviceIDBits == h.machine.gic?.configuration.deviceIDBits)
        #expect(driver.msiBase(forDeviceID: 0x1_0000) == 0x0104_0000)
        #expect(driver.msiBase == 0x0182_0000 + 0x1_0040, "its_irq_get_msi_base is still GITS_TRANSLATER")
    }

    @Test("TI AM6548 IOT2050 (msi-map from DeviceID 0x1_0000): the MSI-X entry is pre_its_base + (DeviceID << 2) = 0x104_0000; the vector reaches its LPI through the window")
    func composedAndDelivered() throws {
        let h = try Self.j721e(board: "ti_k3-am6548-iot2050-advanced-pg2")
        let k = h.kernel
        // The board's only enabled bridge is host bridge 1 (pcie@5600000, PCI domain 1).
        let pci = try #require(k.pci.device(h.functions[0].requesterID, hostBridge: h.machine.hostBridgeIndices[0]))
        let domain = try k.pci.msiDomain(of: pci)
        #expect(domain.deviceID == 0x1_0000)
        #expect(HostScenario.entry(h.functions[0], 0).address == 0, "nothing composed before the driver allocates")
        let counter = HostScenario.Counter()
        let irqs = try HostScenario.probe(k, pci, vectors: 2, counter: counter)
        #expect(pci.device.iommu == nil, "nothing translates this board's PCIe")
        for v in 0..<2 {
            let entry = HostScenario.entry(h.functions[0], v)
            #expect(entry.address == 0x0104_0000, "vector \(v)")
            #expect(entry.address == Self.windowBase + UInt64(domain.deviceID) << 2, "vector \(v)")
        }
        let window = try #require(h.machine.preITS[0])
        let journal = Journal()
        h.machine.journal = journal
        _ = h.functions[0].raise(vector: 1)
        h.machine.journal = nil
        #expect(window.counters.forwarded == 1)
        #expect(itsTranslations(journal).map(\.deviceID) == [DeviceID(domain.deviceID)])
        let descriptor = try #require(k.irq.descriptors[irqs[1]])
        #expect(itsTranslations(journal).map(\.eventID) == [descriptor.eventID])
        #expect(k.irq.handleInterrupts(cpu: descriptor.effectiveCPU) == 1)
        #expect(counter.values[irqs[1]] == 1 && counter.values[irqs[0]] == nil)
        #expect(!k.iommu.deviceHasIsolatedMSI(pci.device))
    }

    @Test("a 64 KiB window limits the DeviceID to ilog2(0x1_0000) − 2 = 14 bits (GITS_TYPER.Devbits in its->typer)")
    func deviceIDLimit() throws {
        let h = try Self.j721e { tree in
            guard let path = tree.nodes.first(where: { $0.node.isCompatible(with: "arm,gic-v3-its") })?.path else { return nil }
            return tree.setting(DeviceTreeProperty(name: PreITSWindow.property, cells: [0x0100_0000, 0x1_0000]), at: path)
        }
        #expect(h.kernel.itsDrivers.first?.deviceIDBits == 14)
    }

    @Test("preITSLimitedTyper follows Linux's u32 arithmetic at the edges")
    func limitArithmetic() {
        let typer20 = UInt64(0).settingBits(17, 13, to: 19)   // 20 DeviceID bits
        func bits(_ t: UInt64) -> UInt64 { t.bits(17, 13) + 1 }
        #expect(bits(GICv3ITSDriver.preITSLimitedTyper(typer20, windowSize: 0x40_0000)) == 20)
        #expect(bits(GICv3ITSDriver.preITSLimitedTyper(typer20, windowSize: 0x10_0000)) == 18)
        #expect(bits(GICv3ITSDriver.preITSLimitedTyper(typer20, windowSize: 0x1_FFFF)) == 14, "ilog2 floors")
        #expect(bits(GICv3ITSDriver.preITSLimitedTyper(typer20, windowSize: 8)) == 1)
        // ids = 0: FIELD_PREP keeps the low 5 bits of 0xFFFF_FFFF → 32 bits.
        #expect(bits(GICv3ITSDriver.preITSLimitedTyper(typer20, windowSize: 4)) == 32)
        // ids wraps to 0xFFFF_FFFx below 4 bytes: nothing is limited.
        for size: UInt32 in [0, 1, 3] {
            #expect(GICv3ITSDriver.preITSLimitedTyper(typer20, windowSize: size) == typer20, "size \(size)")
        }
        // Other TYPER bits are untouched.
        let full = UInt64.max
        #expect(GICv3ITSDriver.preITSLimitedTyper(full, windowSize: 0x1_0000) == full.settingBits(17, 13, to: 13))
    }

    @Test("an ITS whose GITS_IIDR is not GIC-500 r1p1 gets no quirk, even with the property: GITS_TRANSLATER, isolated")
    func iidrMismatch() throws {
        let topology = try Topology(dtb: try HostScenario.fixture("boards/ti_k3-j721e-common-proc-board.dtb"))
        #expect(try Machine(topology: topology, name: "j721e").gic?.configuration.iidr == GICv3.gic500r1p1IIDR)
        // The same board's hardware without the property: QEMU's IIDR (0x43B), no window. The
        // kernel is still handed the description that has the property.
        var plain = topology
        if var gic = plain.gic {
            for i in gic.its.indices { gic.its[i].preITSWindow = nil }
            plain.gic = gic
        }
        let machine = try Machine(topology: plain, name: "j721e-plain")
        #expect(machine.gic?.configuration.iidr == GICv3.iidr && machine.preITS.allSatisfy { $0 == nil })
        let kernel = LinuxKernel(topology: topology, bus: machine.bus, cpuInterface: try #require(machine.gic))
        try kernel.boot()
        let driver = try #require(kernel.itsDrivers.first)
        #expect(driver.preITSBase == nil && driver.isolatedMSI)
        #expect(driver.msiBase(forDeviceID: 0x10) == driver.msiBase)
        #expect(!kernel.log.lines.contains { $0.contains("Synquacer") })
    }

    // MARK: An SMMUv3 platform with a pre-ITS: VFIO's side

    /// QEMU virt with its SMMUv3, and `socionext,synquacer-pre-its = <0x0c00_0000 0x40_0000>` on
    /// the ITS (0x0c00_0000 is free in virt's memory map below 4 GiB).
    static let virtWindow: UInt64 = 0x0C00_0000
    static func virtWithPreITS(_ configuration: KernelConfiguration = KernelConfiguration()) throws -> HostHarness {
        let tree = try DeviceTree(dtb: try HostScenario.fixture("qemu-virt/virt-smmu.dtb"))
        let edited = try #require(tree.setting(DeviceTreeProperty(name: PreITSWindow.property, cells: [UInt32(virtWindow), 0x40_0000]),
                                               at: "/intc@8000000/its@8080000"))
        let machine = try Machine(topology: try Topology(deviceTree: edited), name: "virt-smmu-preits")
        return try HostHarness.make(machine: machine, configuration: configuration)
    }

    static let ep0 = RequesterID(bus: 0, device: 1, function: 0)

    @Test("SMMUv3 + pre-ITS: the group lacks isolated MSI; type1 SET_IOMMU and iommufd bind are EPERM")
    func vfioRefuses() throws {
        let h = try Self.virtWithPreITS()
        let k = h.kernel
        let process = UserProcess(kernel: k)
        let pdev = try #require(k.pci.device(Self.ep0))
        let group = try #require(pdev.device.iommu?.group)
        #expect(!k.iommu.groupHasIsolatedMSI(group))
        let vdev = try k.vfio.bindVFIOPCI(pdev.device)

        let iommufd = k.openIOMMUFD()
        let cdev = try k.vfio.openDevice(vdev.cdevName, process: process)
        #expect(throws: Errno.EPERM) { try cdev.bindIOMMUFD(iommufd) }
        cdev.close()

        let container = k.vfio.openContainer(process: process)
        let groupFile = try k.vfio.openGroup(group.id)
        try groupFile.setContainer(container)
        #expect(throws: Errno.EPERM) { try container.setIOMMU(VFIOContainer.type1v2IOMMU) }
        #expect(container.type1 == nil)
        #expect(k.log.lines.contains { $0.contains("No interrupt remapping support.  Use the module param \"allow_unsafe_interrupts\"") })
    }

    @Test("SMMUv3 + pre-ITS with allow_unsafe_interrupts, type1: the MSI cookie maps the pre-ITS slot's page; the vector signals")
    func type1Allowed() throws {
        let h = try Self.virtWithPreITS(KernelConfiguration(allowUnsafeInterrupts: true))
        let k = h.kernel
        let process = UserProcess(kernel: k)
        let pdev = try #require(k.pci.device(Self.ep0))
        let deviceID = try k.pci.msiDomain(of: pdev).deviceID
        try k.vfio.bindVFIOPCI(pdev.device)
        let container = k.vfio.openContainer(process: process)
        let group = try k.vfio.openGroup(try #require(pdev.device.iommu?.group?.id))
        try group.setContainer(container)
        try container.setIOMMU(VFIOContainer.type1v2IOMMU)
        let file = try group.getDeviceFD(pdev.device.name)
        try file.writeCommand(0x0006)
        let (fd, eventfd) = process.eventfd()
        try file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        let slot = Self.virtWindow + UInt64(deviceID) << 2
        let domain = try #require(container.type1?.domains.first?.domain)
        guard case .dmaMSI(let cookie) = domain.cookie else { Issue.record("no MSI cookie"); return }
        #expect(cookie.msiPages.map(\.physical) == [slot & ~0xFFF], "iommu_dma_prepare_msi got its->get_msi_base(its_dev)")
        #expect(cookie.msiPages.map(\.iova) == [0x0800_0000])
        #expect(HostScenario.entry(h.functions[0], 0).address == 0x0800_0000 + (slot & 0xFFF))
        _ = h.functions[0].raise(vector: 0)
        #expect(h.machine.preITS[0]?.counters.forwarded == 1)
        _ = k.irq.handleInterrupts(cpu: 0)
        #expect(eventfd.count == 1)
    }

    @Test("SMMUv3 + pre-ITS with allow_unsafe_interrupts, iommufd: bind warns and succeeds; sw_msi maps the slot's page; the vector signals")
    func iommufdAllowed() throws {
        let h = try Self.virtWithPreITS(KernelConfiguration(allowUnsafeInterrupts: true))
        let k = h.kernel
        let process = UserProcess(kernel: k)
        let pdev = try #require(k.pci.device(Self.ep0))
        let deviceID = try k.pci.msiDomain(of: pdev).deviceID
        let iommufd = k.openIOMMUFD()
        iommufd.process = process
        let vdev = try k.vfio.bindVFIOPCI(pdev.device)
        let file = try k.vfio.openDevice(vdev.cdevName, process: process)
        _ = try file.bindIOMMUFD(iommufd)
        #expect(k.log.lines.contains { $0.contains("MSI interrupts are not secure") })
        try file.writeCommand(0x0006)
        let ioas = try iommufd.ioasAlloc()
        let hwptID = try file.attachIOMMUFDPT(ioas)
        let (fd, eventfd) = process.eventfd()
        try file.setIRQs(.trigger(start: 0, eventfds: [fd]))
        let slot = Self.virtWindow + UInt64(deviceID) << 2
        let hwpt = try #require(iommufd.object(hwptID) as? IOMMUFDHWPTPaging)
        #expect(k.iommu.iovaToPhys(hwpt.domain, 0x0800_0000) == slot & ~0xFFF)
        #expect(HostScenario.entry(h.functions[0], 0).address == 0x0800_0000 + (slot & 0xFFF))
        _ = h.functions[0].raise(vector: 0)
        _ = k.irq.handleInterrupts(cpu: 0)
        #expect(eventfd.count == 1)
    }

    @Test("SMMUv3 + pre-ITS, host driver on a DMA domain: the IOVA cookie maps the slot's page and the vector is handled")
    func dmaDomain() throws {
        let h = try Self.virtWithPreITS()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let deviceID = try k.pci.msiDomain(of: pci).deviceID
        let counter = HostScenario.Counter()
        let irqs = try HostScenario.probe(k, pci, vectors: 2, counter: counter)
        let domain = try #require(k.iommu.dmaDomain(for: pci.device))
        guard case .dmaIOVA(let cookie) = domain.cookie else { Issue.record("no IOVA cookie"); return }
        let slot = Self.virtWindow + UInt64(deviceID) << 2
        #expect(cookie.msiPages.map(\.physical) == [slot & ~0xFFF])
        let page = try #require(cookie.msiPages.first)
        #expect(HostScenario.entry(h.functions[0], 1).address == page.iova + (slot & 0xFFF))
        _ = h.functions[0].raise(vector: 1)
        let cpu = try #require(k.irq.descriptors[irqs[1]]).effectiveCPU
        #expect(k.irq.handleInterrupts(cpu: cpu) == 1)
        #expect(counter.values[irqs[1]] == 1)
    }
}

/// The ITS translations a journal recorded: (DeviceID, EventID, result).
private func itsTranslations(_ journal: Journal) -> [(deviceID: DeviceID, eventID: UInt32, result: JournalITSResult)] {
    journal.entries.compactMap {
        if case .itsTranslate(_, let deviceID, let eventID, let result) = $0 { (deviceID, eventID, result) } else { nil }
    }
}
