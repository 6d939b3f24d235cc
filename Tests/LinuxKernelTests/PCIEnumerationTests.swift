import Testing
import Bus
import Firmware
@testable import LinuxKernel
import Machine
import PCI

@Suite("PCI core: enumeration, resources, DMA aliases")
struct PCIEnumerationTests {
    @Test("boot finds 00:01.0 and 00:02.0 through ECAM, names them 0000:BB:DD.F and registers their devices")
    func enumeratesHarnessFunctions() throws {
        let h = try HostHarness.make()
        let names = h.kernel.pci.devices.map(\.name)
        #expect(names == ["0000:00:01.0", "0000:00:02.0"])
        #expect(h.kernel.devices.map(\.name) == names, "each function's struct device is registered in discovery order")
        for dev in h.kernel.pci.devices {
            #expect(dev.device.pci === dev)
            #expect(dev.vendorID == 0x1AF4 && dev.pciDeviceID == 0x1041)
            #expect(dev.headerType == 0)
        }
    }

    @Test("capability offsets are the ones the hardware placed (walked from PCI_CAPABILITY_LIST)")
    func capabilities() throws {
        let h = try HostHarness.make()
        let dev = try h.pci(0)
        #expect(dev.msixCapability == h.functions[0].msix?.offset)
        #expect(dev.expressCapability == h.functions[0].expressCapability?.offset)
        #expect(dev.expressPortType == PCIExpressPortType.endpoint.rawValue)
        #expect(dev.msiCapability == nil)
    }

    @Test("BAR0 (16 KiB, 64-bit, non-prefetchable) of each function is sized and placed first-fit in the 32-bit window")
    func barsAssigned() throws {
        let h = try HostHarness.make()
        // qemu-virt: the non-prefetchable memory window starts at 0x1000_0000 (identity ranges).
        // Both BARs are 16 KiB-aligned, so they take the first two 16 KiB slots in order.
        let window = try #require(h.kernel.topology.pcieHostBridges[0].ranges.first { $0.space == .memory32 })
        #expect(window.cpuAddress == PhysicalAddress(0x1000_0000))
        let expected: [UInt64] = [0x1000_0000, 0x1000_4000]
        for (i, base) in expected.enumerated() {
            let dev = try h.pci(i)
            let bar = try #require(dev.resource(bar: 0))
            #expect(bar.size == 0x4000 && bar.is64Bit && !bar.prefetchable)
            #expect(bar.address == PhysicalAddress(base))
            #expect(h.functions[i].config.barAddress(0) == base, "the BAR register itself holds the address")
        }
    }

    @Test("pci_enable_device sets Memory Space; pci_set_master sets Bus Master; the BAR then decodes")
    func enableAndMaster() throws {
        let h = try HostHarness.make()
        #expect(!h.functions[0].config.memorySpaceEnabled)
        let dev = try h.bind(0)
        #expect(dev.isEnabled && dev.isBusMaster)
        #expect(h.functions[0].config.memorySpaceEnabled && h.functions[0].config.busMasterEnabled)
        // The MSI-X table at BAR0 + 0 now answers: entry 0's Vector Control resets to masked.
        let ctrl = try h.kernel.mmio.read32(PhysicalAddress(0x1000_0000 + 0xC))
        #expect(ctrl == 1)
    }

    @Test("a function's DMA aliases are its own RID when nothing aliases it")
    func ownAliasOnly() throws {
        let h = try HostHarness.make()
        #expect(try h.pci(0).dmaAliases == [RequesterID(bus: 0, device: 1, function: 0)])
    }

    @Test("behind a PCIe-to-PCI bridge the alias is (secondary bus, 00.0); behind a conventional bridge it is the bridge's RID",
          arguments: [(PCIToPCIBridge.Kind.pcieToPCI, UInt16?(0x0100)), (.conventionalPCI, UInt16?(0x0018)), (.rootPort, UInt16?.none)])
    func bridgeAliases(kind: PCIToPCIBridge.Kind, alias: UInt16?) throws {
        // pci_for_each_dma_alias: PCI_EXP_TYPE_PCI_BRIDGE → PCI_DEVID(subordinate, 0); a bridge
        // without a PCIe capability → its own RID; a root port → nothing.
        let h = try HostHarness.make(endpoints: [], boot: false)
        let bridge = try PCIToPCIBridge(requesterID: RequesterID(bus: 0, device: 3, function: 0), kind: kind, secondaryBus: 1)
        try h.machine.rootComplexes[0].attach(bridge)
        let function = try PCIFunction(name: "behind", requesterID: RequesterID(bus: 1, device: 2, function: 0), vendorID: 0x1AF4,
                                       deviceID: 0x1041, bars: [BaseAddressRegister(index: 0, size: 0x4000)],
                                       msix: MSIXConfiguration(tableSize: 2))
        try h.machine.rootComplexes[0].attach(function, behind: bridge)
        try h.kernel.boot()
        #expect(h.kernel.pci.devices.map(\.name) == ["0000:00:03.0", "0000:01:02.0"], "the bridge, then its secondary bus")
        let dev = try #require(h.kernel.pci.device(function.requesterID))
        #expect(dev.upstreamBridge?.requesterID == bridge.requesterID)
        var expected = [function.requesterID]
        if let alias { expected.append(RequesterID(alias)) }
        #expect(dev.dmaAliases == expected)
        // The bridge window holds the function's BAR (1 MiB granularity), and the BAR is in it.
        let base = try #require(dev.resource(bar: 0)?.address)
        let windowBase = UInt64(bridge.configRead(offset: ConfigRegister.memoryBase, size: 2) & 0xFFF0) << 16
        let windowLimit = UInt64(bridge.configRead(offset: ConfigRegister.memoryLimit, size: 2) & 0xFFF0) << 16 | 0xF_FFFF
        #expect(base.rawValue >= windowBase && base.rawValue + 0x4000 - 1 <= windowLimit)
        // Linux's MSI RID (get_msi_id_cb) follows the alias when it crosses buses.
        let domain = try h.kernel.pci.msiDomain(of: dev)
        #expect(domain.requesterID == RequesterID(alias ?? function.requesterID.rawValue))
        #expect(domain.deviceID == UInt32(alias ?? function.requesterID.rawValue), "qemu-virt's msi-map is the identity")
    }

    @Test("functions 1–7 are scanned only when function 0 says it is multi-function (Header Type bit 7)")
    func singleFunctionSlots() throws {
        let h = try HostHarness.make(endpoints: [HostHarness.Endpoint(requesterID: RequesterID(bus: 0, device: 4, function: 0)),
                                                 HostHarness.Endpoint(requesterID: RequesterID(bus: 0, device: 4, function: 1))])
        // The hardware model's functions have Header Type bit 7 clear, so 00:04.1 is not seen
        // (pci_scan_slot stops after function 0 of a single-function device).
        #expect(h.kernel.pci.devices.map(\.name) == ["0000:00:04.0"])
    }
}

@Suite("PCI core: probe order")
struct PCIProbeOrderTests {
    @Test("pci_scan_child_bus scans every slot of a bus before any bridge's secondary bus, and iommu_probe_device numbers groups in that order")
    func busBeforeChildren() throws {
        // Bus 0: a root port at 00:01.0 (secondary bus 1, 01:00.0 behind it) and an endpoint at
        // 00:02.0. pci_scan_child_bus_extend runs pci_scan_slot for devfn 0…255 first, then
        // pci_scan_bridge_extend for each bridge: 00:01.0, 00:02.0, then 01:00.0.
        // pci_bus_add_devices adds in the same order, and the IOMMU bus notifier's
        // iommu_probe_device gives each new group the lowest free ida number: the root port
        // group 0, 00:02.0 group 1; 01:00.0 joins the root port's group (pci_device_group: the
        // root port has no ACS, so pci_acs_path_enabled fails and its group is taken).
        let h = try HostHarness.make(endpoints: [], boot: false)
        let rc = h.machine.rootComplexes[0]
        let port = try PCIToPCIBridge(name: "root-port", requesterID: RequesterID(bus: 0, device: 1, function: 0),
                                      kind: .rootPort, deviceID: 0x000C, secondaryBus: 1)
        try rc.attach(port)
        for (rid, bridge) in [(RequesterID(bus: 1, device: 0, function: 0), Optional(port)), (RequesterID(bus: 0, device: 2, function: 0), nil)] {
            let function = try PCIFunction(name: "\(rid)", requesterID: rid, vendorID: 0x1AF4, deviceID: 0x1041,
                                           bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                           msix: MSIXConfiguration(tableSize: 2))
            try rc.attach(function, behind: bridge)
        }
        try h.kernel.boot()
        #expect(h.kernel.pci.devices.map(\.name) == ["0000:00:01.0", "0000:00:02.0", "0000:01:00.0"])
        #expect(h.kernel.devices.map(\.name) == ["0000:00:01.0", "0000:00:02.0", "0000:01:00.0"])
        let groups = h.kernel.pci.devices.map { h.kernel.iommu.group(of: $0.device)?.id }
        #expect(groups == [0, 1, 0])
    }
}
