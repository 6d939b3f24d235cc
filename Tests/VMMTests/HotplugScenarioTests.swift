import Testing
import Bus
import Firmware
@testable import GIC
import LinuxKernel
import PCI
import SMMUv3
@testable import VMM

/// QEMU `device_del` / `device_add` of the passthrough function at guest 01:00.0 (behind the
/// VMM's emulated pcie-root-port, see `EventHarness`): the guest releases it (driver `.remove`,
/// `pci_stop_and_remove_bus_device`), the VMM unrealizes it (`vfio_exitfn`, accel unset,
/// `iommufd_cdev_detach`), then realizes it again and the guest rescans and re-probes.
///
/// Where the expected values come from: the guest function 01:00.0 is RID, vSID and guest ITS
/// DeviceID 0x100 (identity iommu-map/msi-map); the host function 00:01.0 is host StreamID and
/// DeviceID 0x8 on the host ITS 0x0808_0000; GSIs start at 256 (`firstMSIGSI`); msi-gpa is
/// 0x0809_0040; the v6.15 host's `iommufd_sw_msi` programs 0x0800_0040 (SW_MSI window page 0).
@Suite("Hot-unplug / hot-plug of a passthrough function", .serialized)
struct HotplugScenarioTests {
    typealias Counter = VMMScenarioTests.Counter
    static let rid = EventHarness.slotRID
    static let guestDeviceID: UInt32 = 0x100

    /// What the test keeps of the function before `device_del`.
    struct Before {
        let device: PassthroughDevice
        let guestDevice: PCIDevice
        let bar0: PhysicalAddress?
    }

    /// `device_del` and the state every setup must show afterwards.
    static func unplug(_ h: VMMHarness) throws -> Before {
        let device = try #require(h.vmm.device(guestRequesterID: rid))
        let g = try #require(h.guestDevice)
        let before = Before(device: device, guestDevice: g, bar0: g.resource(bar: 0)?.address)
        let hostDev = try #require(h.host.pci.device(VMMHarness.hostRID))
        #expect(h.host.itsDrivers[0].device(0x8) != nil, "the host ITS device exists while vectors are allocated")

        try h.vmm.hotUnplug(guestRequesterID: rid)

        // Guest: the driver freed its vectors (MAPD V=0 on the vITS), pciehp removed the
        // function, the IOMMU core released it; the slot now reads all-ones (no function).
        #expect(h.guest.pci.device(rid) == nil)
        #expect(!h.guest.devices.contains { $0 === g.device })
        #expect(g.device.iommu == nil, "iommu_release_device: dev_iommu_free")
        #expect(h.guest.itsDrivers[0].device(guestDeviceID) == nil)
        let vits = try #require(h.vmm.vm.vgic?.its)
        guard case .unmapped = vits.lookupDevice(guestDeviceID) else {
            Issue.record("the vITS still maps DeviceID 0x100: no MAPD V=0")
            return before
        }
        #expect(try EventHarness.guestConfigRead(h, rid) == 0xFFFF_FFFF)
        // VMM: vfio_msix_disable, every route and irqfd gone, the cdev closed.
        #expect(!device.isPlugged && h.vmm.device(guestRequesterID: rid) == nil)
        #expect(device.vectors.isEmpty && h.vmm.vm.gsiRoutes.isEmpty && h.vmm.vm.assignedIRQFDs.isEmpty)
        #expect(device.deviceFile.isClosed)
        #expect(h.vmm.log.contains("\(rid) vfio_msix_disable"))
        // One device: its container goes with it (IOAS, stage-2 HWPT, vIOMMU, vEVENTQ, vDEVICE,
        // nested HWPT all destroyed): the iommufd has no object left.
        #expect(h.vmm.iommufd.objects.ids == [])
        #expect(h.vmm.viommuID == nil && h.vmm.veventqID == nil)
        // Host: SET_IRQS disable freed the vectors (host ITS device unmapped), the unbind gave
        // the group back to the host's default domain.
        #expect(device.deviceFile.vdev.irqType == VFIOIRQSet.numIRQs)
        #expect(!hostDev.msixEnabled && hostDev.device.msiDescriptors.isEmpty)
        #expect(h.host.itsDrivers[0].device(0x8) == nil)
        let group = try #require(h.host.iommu.group(of: hostDev.device))
        #expect(!group.isDMAOwnerClaimed)
        #expect(h.host.iommu.domain(for: hostDev.device) === h.host.iommu.dmaDomain(for: hostDev.device))
        return before
    }

    /// `device_add` of the same host function into the same slot, the guest's rescan, and the
    /// guest driver's re-probe (`guestVectors`). Returns the new device, IRQs and counter.
    static func replug(_ h: VMMHarness, _ before: Before) throws -> (device: PassthroughDevice, irqs: [Int], counter: Counter) {
        let device = try h.vmm.hotPlug(guestRequesterID: rid)
        #expect(device !== before.device && device.isPlugged && h.vmm.devices[0] === device)
        #expect(!device.deviceFile.isClosed)
        #expect(device.deviceFile.vdev === before.device.deviceFile.vdev, "the host's vfio-pci binding outlives QEMU's use of it")
        #expect(device.gsiBase == before.device.gsiBase)
        // The guest found the function again: a new pci_dev, BAR 0 at the same address
        // (first fit in the root port's window, which nothing else uses), an IOMMU group.
        let g = try #require(h.guestDevice)
        #expect(g !== before.guestDevice)
        #expect(g.resource(bar: 0)?.address == before.bar0)
        #expect(g.device.iommu?.group != nil)
        #expect(try EventHarness.guestConfigRead(h, rid) == 0x1041_1AF4, "vendor 0x1af4, device 0x1041 through the new function")
        let counter = Counter()
        let irqs = try VMMScenarioTests.guestVectors(h, counter: counter)
        #expect(device.vectors.count == 4)
        #expect(h.vmm.vm.gsiRoutes.map(\.gsi) == [256, 257, 258, 259])
        #expect(h.vmm.vm.assignedIRQFDs.count == 4)
        return (device, irqs, counter)
    }

    /// The accelerated-vSMMU objects a realize must have rebuilt.
    static func expectVIOMMURebuilt(_ h: VMMHarness, _ device: PassthroughDevice, virtualID: UInt64 = UInt64(guestDeviceID)) throws {
        let parent = try #require(h.vmm.iommufd.object(device.stage2HWPTID) as? IOMMUFDHWPTPaging)
        #expect(parent.isNestParent)
        #expect(parent.ioas.id == h.vmm.ioasID)
        let viommuID = try #require(h.vmm.viommuID)
        let viommu = try #require(h.vmm.iommufd.object(viommuID) as? IOMMUFDVIOMMU)
        #expect(viommu.parent === parent)
        #expect(h.vmm.veventqID != nil)
        let vdeviceID = try #require(device.vdeviceID)
        let vdevice = try #require(h.vmm.iommufd.object(vdeviceID) as? IOMMUFDVDevice)
        #expect(vdevice.virtualID == virtualID && vdevice.viommu === viommu)
        #expect(device.nestedHWPTID.flatMap { h.vmm.iommufd.object($0) } is IOMMUFDHWPTNested)
    }

    /// Fires every vector; returns what each did: (host handled, guest handled).
    static func fireAll(_ h: VMMHarness) -> [(Int, Int)] {
        (0..<4).map { v in
            let r = h.fire(v, guestCPUs: 2)
            return (r.host, r.guest)
        }
    }

    static func hostEntries(_ h: VMMHarness) throws -> [UInt64] {
        try (0..<4).map { try StrategyKernelScenarioTests.hostEntry(h, $0) }
    }

    // MARK: Delivering setups

    @Test("accelerated vSMMU, v6.15 host, guest identity domain: all 4 vectors arrive before device_del; the unplug tears everything down (vITS MAPD V=0, routes, irqfds, cdev, every iommufd object, host vectors); device_add rebuilds a new IOAS, nest parent, vIOMMU, vDEVICE 0x100 and nested HWPT, the guest rescans (same BAR) and re-probes, and all 4 vectors arrive again at the same host address 0x0800_0040")
    func guestIdentity() throws {
        var guestConfig = KernelConfiguration()
        guestConfig.defaultDomain = .identity
        let h = try EventHarness.make(viommu: .acceleratedSMMUv3, guest: guestConfig)
        let counter = Counter()
        _ = try VMMScenarioTests.guestVectors(h, counter: counter)
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })
        #expect(counter.hits == [0: 1, 1: 1, 2: 1, 3: 1])
        #expect(try Self.hostEntries(h) == Array(repeating: 0x0800_0040, count: 4))

        let before = try Self.unplug(h)
        // The guest's release: the identity domain's bypass STE was replaced by the blocked
        // domain's abort STE (no RMR here: no require_direct), and the VMM installed it.
        let vsmmu = try #require(h.vmm.vsmmu)
        #expect(try vsmmu.guestStreamTableEntry(StreamID(Self.guestDeviceID)).config == .abort)

        let (device, irqs, again) = try Self.replug(h, before)
        try Self.expectVIOMMURebuilt(h, device)
        #expect(try vsmmu.guestStreamTableEntry(StreamID(Self.guestDeviceID)).config == .bypass, "the re-probe attached the identity domain")
        #expect(try Self.hostEntries(h) == Array(repeating: 0x0800_0040, count: 4), "iommufd_sw_msi mapped the ITS page into the new nest parent")
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })
        #expect(again.hits == [0: 1, 1: 1, 2: 1, 3: 1])
        for v in 0..<4 { #expect(h.guest.irq.descriptor(irqs[v])?.perCPUCount[v % 2] == 1, "vector \(v) on vCPU \(v % 2)") }
        #expect(counter.hits == [0: 1, 1: 1, 2: 1, 3: 1], "the old handlers were freed with the old function")
        // DMA: the new container's IOAS_MAP of guest RAM is in place (identity: bus address = GPA).
        let g = try #require(h.guestDevice)
        let buffer = try h.guest.pages.allocate(bytes: 0x1000)
        let dma = try h.guest.dma.map(device: g.device, physical: buffer, size: 0x1000, direction: .fromDevice)
        #expect(dma.rawValue == buffer.rawValue)
        #expect(h.function.dma(.write, address: dma, size: 8, data: 0x5EED).result?.status == .completed)
        let hostPage = try #require(h.hostPhysical(ofGuest: buffer.rawValue))
        #expect(h.machine.bus.ram.read(hostPage.rawValue, size: 8) == 0x5EED)
    }

    @Test("rmr-identity on guest bus 0, the guest's own remove and rescan (sysfs remove/rescan: the driver's .remove, pci_stop_and_remove_bus_device, pci_rescan_bus — QEMU unplugs nothing): the release puts the require_direct function on the identity domain, a bypass STE that the VMM installs as a nested HWPT; the rescan finds it at the same BAR, the re-probe gives it a DMA domain with the 1:1 window again, and the re-requested vectors arrive at 0x0800_0040 as before")
    func rmrIdentityGuestRemoveRescan() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, msi: .rmrIdentity)
        let rid = h.vmm.configuration.guestRequesterID
        let counter = Counter()
        _ = try VMMScenarioTests.guestVectors(h, counter: counter)
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })
        let old = try #require(h.guestDevice)
        let bar0 = old.resource(bar: 0)?.address
        let vsmmu = try #require(h.vmm.vsmmu)

        h.vmm.releaseInGuest(h.guest, rid)

        #expect(h.guest.pci.device(rid) == nil)
        // v6.15 arm_smmu_release_device: require_direct → identity, i.e. a bypass STE.
        #expect(try vsmmu.guestStreamTableEntry(StreamID(8)).config == .bypass)
        let nested = try #require(h.vmm.devices[0].nestedHWPTID)
        #expect(h.vmm.log.contains("vSTE 0x8 config bypass → nested hwpt \(nested)"))
        #expect(h.vmm.devices[0].isPlugged && h.vmm.devices[0].vectors.isEmpty, "the guest turned MSI-X off; QEMU keeps the device")
        #expect(h.vmm.deviceFile.vdev.irqType == VFIOIRQSet.numIRQs)

        let found = try h.guest.pci.rescanBus()
        #expect(found.map(\.requesterID) == [rid])
        let g = try #require(h.guestDevice)
        #expect(g !== old && g.resource(bar: 0)?.address == bar0)
        #expect(h.guest.iommu.reservedRegions(for: g.device).contains { $0.type == .direct && $0.start == 0x0800_0000 })
        let domain = try #require(h.guest.iommu.domain(for: g.device))
        #expect(domain.type == .dma && h.guest.iommu.iovaToPhys(domain, 0x0800_0040) == 0x0800_0040)
        #expect(try vsmmu.guestStreamTableEntry(StreamID(8)).config == .stage1)
        let again = Counter()
        _ = try VMMScenarioTests.guestVectors(h, counter: again)
        #expect(try Self.hostEntries(h) == Array(repeating: 0x0800_0040, count: 4))
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })
        #expect(again.hits == [0: 1, 1: 1, 2: 1, 3: 1])
    }

    @Test("irqchip-relay (RFCv1 host patches + IOAS_MAP_MSI, VMM PREPAREs the guest IOVAs): the vectors arrive before and after; the re-plugged device gets IOAS_MAP_MSI of the vITS page in the NEW IOAS (stage 2 of the new nest parent maps 0x0809_0000 to the ITS page) and the re-probed guest's IOVAs are PREPAREd again, so the host entries hold the new guest IOVAs | 0x40")
    func irqchipRelay() throws {
        let h = try EventHarness.irqchipRelay()
        let counter = Counter()
        _ = try VMMScenarioTests.guestVectors(h, counter: counter)
        #expect(try Self.hostEntries(h) == h.vmm.function.entries.map(\.address))
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })

        let before = try Self.unplug(h)
        let prepares = h.vmm.log.filter { $0.contains("VFIO_IRQ_SET_ACTION_PREPARE") }.count
        let (device, _, again) = try Self.replug(h, before)
        try Self.expectVIOMMURebuilt(h, device)
        #expect(h.vmm.log.filter { $0.contains("VFIO_IRQ_SET_ACTION_PREPARE") }.count > prepares, "PREPARE again for the re-probed vectors")
        let guestIOVAs = device.function.entries.map(\.address)
        #expect(guestIOVAs.allSatisfy { $0 & 0xFFF == 0x40 && $0 != GuestMemoryMap.virt.msiGPA }, "IOVAs of the guest's DMA domain")
        try StrategyKernelScenarioTests.expectGuestIOVAs(h, guestIOVAs)
        #expect(try Self.hostEntries(h) == guestIOVAs)
        let parent = try #require(h.vmm.iommufd.object(device.stage2HWPTID) as? IOMMUFDHWPTPaging)
        #expect(h.host.iommu.iovaToPhys(parent.domain, 0x0809_0000) == 0x0809_0000)
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })
        #expect(again.hits == [0: 1, 1: 1, 2: 1, 3: 1])
    }

    @Test("rmr-identity behind the root port: the guest finds the function's node under its root port's node (pci_set_of_node, level by level), so the RMR's iommu-addresses give 01:00.0 its DIRECT 1:1 window; the host programs 0x0800_0040 and every vector is delivered, before device_del and after device_add alike, while the whole VMM/host state is rebuilt")
    func rmrIdentityBehindRootPort() throws {
        let h = try EventHarness.rmrIdentity()
        let g = try #require(h.guestDevice)
        #expect(h.guest.iommu.reservedRegions(for: g.device).contains { $0.type == .direct })
        let counter = Counter()
        _ = try VMMScenarioTests.guestVectors(h, counter: counter)
        #expect(try Self.hostEntries(h) == Array(repeating: 0x0800_0040, count: 4))
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })
        #expect(counter.hits == [0: 1, 1: 1, 2: 1, 3: 1])
        let before = try Self.unplug(h)
        let (device, _, again) = try Self.replug(h, before)
        try Self.expectVIOMMURebuilt(h, device)
        #expect(try Self.hostEntries(h) == Array(repeating: 0x0800_0040, count: 4))
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })
        #expect(again.hits == [0: 1, 1: 1, 2: 1, 3: 1])
    }

    @Test("no vIOMMU, two functions (guest 01:00.0 and 02:00.0, each behind its own root port): unplugging 01:00.0 leaves the container — same IOAS, the other function's auto domain, its 4 routes — and 02:00.0 keeps delivering; the re-plugged 01:00.0 re-attaches to the same IOAS and shares the auto domain again, and both deliver")
    func twoFunctionsNoVIOMMU() throws {
        let ridA = RequesterID(bus: 1, device: 0, function: 0), ridB = RequesterID(bus: 2, device: 0, function: 0)
        let w = try MultiDeviceScenarioTests.make(viommu: .none, guestRIDs: [ridA, ridB])
        let a = Counter(), b = Counter()
        try MultiDeviceScenarioTests.guestVectors(w, ridA, counter: a)
        try MultiDeviceScenarioTests.guestVectors(w, ridB, counter: b)
        for v in 0..<4 {
            #expect(w.fire(w.near, v) == (1, 1))
            #expect(w.fire(w.far, v) == (1, 1))
        }
        let ioas = w.vmm.ioasID
        let farHWPT = w.vmm.devices[1].stage2HWPTID
        try w.vmm.hotUnplug(guestRequesterID: ridA)
        #expect(w.vmm.ioasID == ioas && w.vmm.iommufd.object(ioas) is IOMMUFDIOAS, "iommufd_cdev_container_destroy: the container still has a device")
        #expect(w.vmm.iommufd.object(farHWPT) is IOMMUFDHWPTPaging)
        #expect(w.vmm.vm.gsiRoutes.map(\.gsi) == [260, 261, 262, 263], "02:00.0's GSI range (after 01:00.0's 4)")
        for v in 0..<4 { #expect(w.fire(w.far, v) == (1, 1)) }
        #expect(b.hits == [0: 2, 1: 2, 2: 2, 3: 2])

        let device = try w.vmm.hotPlug(guestRequesterID: ridA)
        #expect(w.vmm.ioasID == ioas)
        #expect(device.stage2HWPTID == farHWPT, "the kernel's auto domain of the IOAS is shared again (iommufd_device_auto_get_domain)")
        let a2 = Counter()
        try MultiDeviceScenarioTests.guestVectors(w, ridA, counter: a2)
        #expect(w.vmm.vm.gsiRoutes.map(\.gsi) == Array(256...263))
        for v in 0..<4 {
            #expect(w.fire(w.near, v) == (1, 1))
            #expect(w.fire(w.far, v) == (1, 1))
        }
        #expect(a2.hits == [0: 1, 1: 1, 2: 1, 3: 1] && a.hits == [0: 1, 1: 1, 2: 1, 3: 1])
    }

    // MARK: Refusals

    @Test("device_add while another process holds the host function's cdev: the open is EBUSY (vfio_device_fops_cdev_open: one opener), device_add fails with it and the iommufd is left empty, the slot stays empty (all-ones) and unplugged; once the other opener closes, device_add succeeds")
    func replugWhileCdevBusy() throws {
        let h = try EventHarness.make(viommu: .acceleratedSMMUv3)
        _ = try VMMScenarioTests.guestVectors(h, counter: Counter())
        _ = try Self.unplug(h)
        let cdev = h.vmm.devices[0].deviceFile.vdev.cdevName
        let other = try h.host.vfio.openDevice(cdev, process: UserProcess(kernel: h.host, name: "other"))
        #expect(throws: GuestError.hostCall("open vfio cdev", .EBUSY)) { try h.vmm.hotPlug(guestRequesterID: Self.rid) }
        #expect(!h.vmm.devices[0].isPlugged && h.vmm.iommufd.objects.ids == [])
        #expect(try EventHarness.guestConfigRead(h, Self.rid) == 0xFFFF_FFFF && h.guestDevice == nil)
        other.close()
        let device = try h.vmm.hotPlug(guestRequesterID: Self.rid)
        try Self.expectVIOMMURebuilt(h, device)
        #expect(h.guestDevice != nil)
    }

    @Test("refusals as QEMU's: a function on guest bus 0 is an integrated endpoint ('Bus 'pcie.0' does not support hotplugging'), and nothing changes; an unknown or already unplugged RID is 'not found'; device_add into an occupied slot or of a function never unplugged is refused")
    func refusals() throws {
        let h = try VMMHarness.make(viommu: .none)
        let onBus0 = h.vmm.configuration.guestRequesterID
        #expect(throws: GuestError.unsupported("Bus 'pcie.0' does not support hotplugging")) {
            try h.vmm.hotUnplug(guestRequesterID: onBus0)
        }
        #expect(h.vmm.devices[0].isPlugged && h.guestDevice != nil && !h.vmm.deviceFile.isClosed)
        #expect(throws: GuestError.unsupported("slot \(onBus0) is occupied")) { try h.vmm.hotPlug(guestRequesterID: onBus0) }

        let e = try EventHarness.make(viommu: .none)
        #expect(throws: GuestError.unsupported("Device at 02:00.0 not found")) {
            try e.vmm.hotUnplug(guestRequesterID: RequesterID(bus: 2, device: 0, function: 0))
        }
        #expect(throws: GuestError.unsupported("no passthrough function was unplugged from 02:00.0")) {
            try e.vmm.hotPlug(guestRequesterID: RequesterID(bus: 2, device: 0, function: 0))
        }
        try e.vmm.hotUnplug(guestRequesterID: Self.rid)
        #expect(throws: GuestError.unsupported("Device at \(Self.rid) not found")) { try e.vmm.hotUnplug(guestRequesterID: Self.rid) }
        #expect(throws: GuestError.unsupported("Device 0 not found")) { try e.vmm.hotUnplug(deviceIndex: 0) }
        #expect(throws: GuestError.unsupported("device 5 is not unplugged")) { try e.vmm.hotPlug(deviceIndex: 5) }
        try e.vmm.hotPlug(deviceIndex: 0)
        #expect(e.vmm.devices[0].isPlugged)
    }
}
