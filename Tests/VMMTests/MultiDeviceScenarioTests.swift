import Testbed
import Testing
import Bus
import Firmware
import GIC
import LinuxKernel
import Machine
import PCI
import SMMUv3
@testable import VMM

/// Two passthrough functions in one VM, on the `qemu-virt-two-its` host: its `msi-map` sends
/// bus 0 to ITS 0 (0x0808_0000) and buses 1–255 to ITS 1 (0x0910_0000), so the host function
/// at 00:01.0 signals ITS 0 with DeviceID 0x8 and the one at 01:00.0 — behind a host root port
/// at 00:02.0 (root ports do not alias) — ITS 1 with DeviceID 0x100.
@Suite("Several passthrough devices", .serialized)
struct MultiDeviceScenarioTests {
    struct World {
        let machine: Machine
        let host: LinuxKernel
        let near: PCIFunction
        let far: PCIFunction
        let vmm: VirtualMachineMonitor
        let guest: LinuxKernel

        func fire(_ function: PCIFunction, _ vector: Int) -> (host: Int, guest: Int) {
            _ = function.raise(vector: vector)
            let h = host.irq.handleInterrupts(cpu: 0)
            let g = guest.irq.handleInterrupts(cpu: 0) + guest.irq.handleInterrupts(cpu: 1)
            return (h, g)
        }
    }

    static let nearRID = RequesterID(bus: 0, device: 1, function: 0)
    static let farRID = RequesterID(bus: 1, device: 0, function: 0)

    /// The host runs v6.19 unless told otherwise: with `nestedGBPAAttach` QEMU's abort/bypass
    /// vSTEs attach for a group whose root port has no vDEVICE.
    static func make(viommu: VirtualMachineMonitor.VIOMMU, guestRIDs: [RequesterID]? = nil, guest guestConfiguration: KernelConfiguration = KernelConfiguration(),
                     msi: MSIPlan = MSIPlan(), host hostVersion: KernelConfiguration.Version = .v6_19) throws -> World {
        let machine = try MachinePreset.qemuVirtTwoITS.makeMachine()
        let near = try PCIFunction(name: "near", requesterID: nearRID, vendorID: 0x1AF4, deviceID: 0x1041,
                                   bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                   msix: MSIXConfiguration(tableSize: 4))
        try machine.rootComplexes[0].attach(near)
        let port = try PCIToPCIBridge(requesterID: RequesterID(bus: 0, device: 2, function: 0), kind: .rootPort, secondaryBus: 1)
        try machine.rootComplexes[0].attach(port)
        let far = try PCIFunction(name: "far", requesterID: farRID, vendorID: 0x8086, deviceID: 0x10D3,
                                  bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                  msix: MSIXConfiguration(tableSize: 4))
        try machine.rootComplexes[0].attach(far, behind: port)
        let host = try HostMachine(machine).bootHost(KernelConfiguration(version: hostVersion))
        guard let a = host.pci.device(nearRID), let b = host.pci.device(farRID) else { throw VMMHarness.HarnessError.noDevice }
        let vmm = try VirtualMachineMonitor(host: host, devices: [a.device, b.device],
                                            configuration: .init(vcpuCount: 2, viommu: viommu, guestKernel: guestConfiguration,
                                                                 guestRequesterIDs: guestRIDs, msi: msi))
        let guest = try vmm.bootGuest()
        return World(machine: machine, host: host, near: near, far: far, vmm: vmm, guest: guest)
    }

    /// Requests all four vectors of the guest function at `rid` and returns the hit counter.
    static func guestVectors(_ w: World, _ rid: RequesterID, counter: VMMScenarioTests.Counter) throws {
        let g = try #require(w.guest.pci.device(rid))
        try w.guest.pci.enableDevice(g)
        try w.guest.pci.setMaster(g)
        #expect(try w.guest.pci.allocateIRQVectors(g, min: 4, max: 4, flags: .msix) == 4)
        for v in 0..<4 {
            let irq = try w.guest.pci.irqVector(g, v)
            try w.guest.irq.requestIRQ(irq, name: "\(rid)[\(v)]") { _, _ in counter.hits[v, default: 0] += 1; return .handled }
            try w.guest.irq.setAffinity(irq: irq, cpu: v % 2)
        }
    }

    /// The checks both guest shapes share: distinct GSI ranges, one KVM table with all eight
    /// routes, each function's MSIs on its own host ITS, every vector delivered once, to the
    /// right guest function.
    static func checkDelivery(_ w: World, guestRIDs: [RequesterID], routeAddress: (RequesterID) -> UInt64?) throws {
        let a = VMMScenarioTests.Counter(), b = VMMScenarioTests.Counter()
        try guestVectors(w, guestRIDs[0], counter: a)
        try guestVectors(w, guestRIDs[1], counter: b)
        let (first, second) = (w.vmm.devices[0], w.vmm.devices[1])
        #expect(first.gsiBase == 256 && second.gsiBase == 260, "4 GSIs per 4-entry MSI-X table, back to back")
        #expect(w.vmm.vm.gsiRoutes.map(\.gsi) == Array(256..<264))
        for (device, rid) in [(first, guestRIDs[0]), (second, guestRIDs[1])] {
            for v in 0..<4 {
                let route = try #require(device.vectors[v]?.route)
                #expect(route.devid == UInt32(rid.rawValue), "guest DeviceID = guest RID (identity msi-map)")
                if let expected = routeAddress(rid) { #expect(route.address == expected) }
            }
        }
        try checkHostDoorbells(w)
        for v in 0..<4 {
            #expect(w.fire(w.near, v) == (1, 1), "near vector \(v)")
            #expect(w.fire(w.far, v) == (1, 1), "far vector \(v)")
        }
        #expect(a.hits == [0: 1, 1: 1, 2: 1, 3: 1])
        #expect(b.hits == [0: 1, 1: 1, 2: 1, 3: 1])
        // The host took the far function's LPIs through ITS 1 with its DeviceID.
        #expect(w.host.itsDrivers[1].device(0x100) != nil && w.host.itsDrivers[0].device(0x100) == nil)
    }

    /// Host side: both functions share one IOAS, so iommufd's sw_msi gives each distinct
    /// doorbell page its own page of the SW_MSI window in allocation order (`iommufd_sw_msi`:
    /// `sw_msi_start + pgoff * PAGE_SIZE`, 4 KiB host pages): ITS 0's translation page at
    /// 0x0800_0000, ITS 1's at 0x0800_1000; the offset 0x40 is GITS_TRANSLATER's.
    static func checkHostDoorbells(_ w: World) throws {
        let hostNear = try #require(w.host.pci.device(nearRID)), hostFar = try #require(w.host.pci.device(farRID))
        let nearTable = try #require(hostNear.msixTableAddress), farTable = try #require(hostFar.msixTableAddress)
        #expect(try w.machine.bus.read(nearTable, size: 4) == 0x0800_0040)
        #expect(try w.machine.bus.read(farTable, size: 4) == 0x0800_1040)
        #expect(try w.host.pci.msiDomain(of: hostFar).its == 1)
    }

    @Test("no vIOMMU: both functions share the IOAS (one auto domain), get guest RIDs 00:01.0 / 00:02.0, GSIs 256… / 260…, and all 8 vectors reach the guest; the far function's MSIs go through host ITS 1")
    func twoDevicesNoVIOMMU() throws {
        let w = try Self.make(viommu: .none)
        let rids = [RequesterID(bus: 0, device: 1, function: 0), RequesterID(bus: 0, device: 2, function: 0)]
        #expect(w.vmm.devices.map(\.guestRequesterID) == rids)
        #expect(w.vmm.devices[0].stage2HWPTID == w.vmm.devices[1].stage2HWPTID, "iommufd reuses the IOAS's auto domain")
        try Self.checkDelivery(w, guestRIDs: rids) { _ in 0x0809_0040 }
    }

    @Test("accelerated vSMMU, guest identity domains: one vIOMMU and one nest parent, a vDEVICE per function (vSIDs 0x8, 0x10) with its own nested HWPT; all 8 vectors delivered via msi-gpa")
    func twoDevicesAccelerated() throws {
        var guestConfig = KernelConfiguration()
        guestConfig.defaultDomain = .identity
        let w = try Self.make(viommu: .acceleratedSMMUv3, guest: guestConfig)
        let rids = [RequesterID(bus: 0, device: 1, function: 0), RequesterID(bus: 0, device: 2, function: 0)]
        let (first, second) = (w.vmm.devices[0], w.vmm.devices[1])
        #expect(first.stage2HWPTID == second.stage2HWPTID)
        let vdevices = [try #require(first.vdeviceID), try #require(second.vdeviceID)]
        #expect(vdevices[0] != vdevices[1])
        let nested = [try #require(first.nestedHWPTID), try #require(second.nestedHWPTID)]
        #expect(nested[0] != nested[1])
        let vsmmu = try #require(w.vmm.vsmmu)
        #expect(try vsmmu.guestStreamTableEntry(StreamID(0x8)).config == .bypass)
        #expect(try vsmmu.guestStreamTableEntry(StreamID(0x10)).config == .bypass)
        try Self.checkDelivery(w, guestRIDs: rids) { _ in GuestMemoryMap.virt.msiGPA }
    }

    @Test("accelerated vSMMU on a v6.15 host: the far function's bypass vSTE cannot be attached (its group's root port has no vDEVICE: ENOENT before 81c45c62dc3e), so it stays on the nest parent")
    func twoDevicesAcceleratedV615() throws {
        var guestConfig = KernelConfiguration()
        guestConfig.defaultDomain = .identity
        let w = try Self.make(viommu: .acceleratedSMMUv3, guest: guestConfig, host: .v6_15)
        let (first, second) = (w.vmm.devices[0], w.vmm.devices[1])
        #expect(first.nestedHWPTID != nil, "the near function is alone in its group")
        #expect(second.nestedHWPTID == nil)
        #expect(w.vmm.log.contains("vSTE 0x10 install: \(Errno.ENOENT)"))
        let hostFar = try #require(w.host.pci.device(Self.farRID))
        #expect(w.host.iommu.domain(for: hostFar.device)?.type != .nested)
    }

    @Test("rmr-identity with both functions (observed): the near function's 4 vectors arrive; the far function shares its host iommu group with the host root port (no ACS), so attaching its translating nested HWPT attaches the root port too, which has no vDEVICE: arm_smmu_attach_prepare_vmaster → ENOENT; the far function stays on its last nested HWPT (abort) and its MSIs abort at the host STE")
    func twoDevicesRMR() throws {
        let w = try Self.make(viommu: .acceleratedSMMUv3, msi: .rmrIdentity)
        let rids = [RequesterID(bus: 0, device: 1, function: 0), RequesterID(bus: 0, device: 2, function: 0)]
        for rid in rids {
            let g = try #require(w.guest.pci.device(rid))
            #expect(w.guest.iommu.reservedRegions(for: g.device).contains { $0.type == .direct && $0.start == 0x0800_0000 && $0.length == 0x10_0000 })
        }
        let hostFar = try #require(w.host.pci.device(Self.farRID))
        let hostPort = try #require(w.host.pci.device(RequesterID(bus: 0, device: 2, function: 0)))
        let farGroup = try #require(hostFar.device.iommu?.group)
        #expect(hostPort.device.iommu?.group === farGroup, "pci_device_group: a root port without ACS widens the group")
        #expect(w.vmm.log.contains("vSTE 0x10 install: \(Errno.ENOENT)"))
        #expect(!w.vmm.log.contains { $0.hasPrefix("vSTE 0x8 install") }, "the near function's stage-1 vSTE was installed")
        let a = VMMScenarioTests.Counter(), b = VMMScenarioTests.Counter()
        try Self.guestVectors(w, rids[0], counter: a)
        try Self.guestVectors(w, rids[1], counter: b)
        try Self.checkHostDoorbells(w)
        for v in 0..<4 {
            #expect(w.fire(w.near, v) == (1, 1), "near vector \(v)")
            #expect(w.fire(w.far, v) == (0, 0), "far vector \(v)")
            #expect(w.far.log.last?.outcome.result?.status == .aborted)
        }
        #expect(a.hits == [0: 1, 1: 1, 2: 1, 3: 1])
        #expect(b.hits.isEmpty)
        let hostSMMU = try #require(w.host.smmuDrivers.first)
        #expect(try hostSMMU.serviceEventQueue().isEmpty, "STE.Config = abort records no event (§5.2)")
    }

    @Test("rmr-identity with both functions on host bus 0 (no root port in the group): both get their DIRECT window and all 8 vectors arrive through the one ITS page at 0x0800_0040")
    func twoDevicesRMRBusZero() throws {
        let machine = try MachinePreset.qemuVirtTwoITS.makeMachine()
        var functions: [PCIFunction] = []
        for device in [UInt8(1), 3] {
            let f = try PCIFunction(name: "ep\(device)", requesterID: RequesterID(bus: 0, device: device, function: 0), vendorID: 0x1AF4,
                                    deviceID: 0x1041, bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                    msix: MSIXConfiguration(tableSize: 4))
            try machine.rootComplexes[0].attach(f)
            functions.append(f)
        }
        let host = try HostMachine(machine).bootHost()
        let hostDevices = try functions.map { try #require(host.pci.device($0.requesterID)).device }
        let vmm = try VirtualMachineMonitor(host: host, devices: hostDevices,
                                            configuration: .init(vcpuCount: 2, viommu: .acceleratedSMMUv3, msi: .rmrIdentity))
        let guest = try vmm.bootGuest()
        let w = World(machine: machine, host: host, near: functions[0], far: functions[1], vmm: vmm, guest: guest)
        let rids = [RequesterID(bus: 0, device: 1, function: 0), RequesterID(bus: 0, device: 2, function: 0)]
        let a = VMMScenarioTests.Counter(), b = VMMScenarioTests.Counter()
        try Self.guestVectors(w, rids[0], counter: a)
        try Self.guestVectors(w, rids[1], counter: b)
        for f in functions {
            let table = try #require(host.pci.device(f.requesterID)?.msixTableAddress)
            #expect(try machine.bus.read(table, size: 4) == 0x0800_0040, "one doorbell page (ITS 0), one sw_msi page")
        }
        for v in 0..<4 {
            #expect(w.fire(w.near, v) == (1, 1), "first vector \(v)")
            #expect(w.fire(w.far, v) == (1, 1), "second vector \(v)")
        }
        #expect(a.hits == [0: 1, 1: 1, 2: 1, 3: 1] && b.hits == [0: 1, 1: 1, 2: 1, 3: 1])
    }

    @Test("a guest bus other than 0: the far function at guest 02:00.0 sits behind an emulated pcie-root-port at 00:1f.0 (secondary bus 2) which the guest enumerates; routes carry DeviceID 0x200 and all 8 vectors arrive (no vIOMMU)")
    func guestBusTwo() throws {
        let rids = [RequesterID(bus: 0, device: 1, function: 0), RequesterID(bus: 2, device: 0, function: 0)]
        let w = try Self.make(viommu: .none, guestRIDs: rids)
        let port = try #require(w.vmm.bridge.rootPorts.first)
        #expect(port.requesterID == RequesterID(bus: 0, device: 0x1F, function: 0))
        #expect(port.secondaryBus == 2 && port.subordinateBus == 2)
        let guestPort = try #require(w.guest.pci.device(port.requesterID))
        #expect(guestPort.isBridge && guestPort.expressPortType == 0x4, "a PCIe root port")
        let g = try #require(w.guest.pci.device(rids[1]))
        #expect(g.upstreamBridge === guestPort)
        try Self.checkDelivery(w, guestRIDs: rids) { _ in 0x0809_0040 }
    }

    @Test("a guest bus other than 0 with the accelerated vSMMU (guest identity): vDEVICE virt_id 0x200, nested HWPT from the guest's bypass STE for StreamID 0x200, all 8 vectors arrive")
    func guestBusTwoAccelerated() throws {
        var guestConfig = KernelConfiguration()
        guestConfig.defaultDomain = .identity
        let rids = [RequesterID(bus: 0, device: 1, function: 0), RequesterID(bus: 2, device: 0, function: 0)]
        let w = try Self.make(viommu: .acceleratedSMMUv3, guestRIDs: rids, guest: guestConfig)
        let vsmmu = try #require(w.vmm.vsmmu)
        #expect(try vsmmu.guestStreamTableEntry(StreamID(0x200)).config == .bypass)
        #expect(w.vmm.devices[1].vdeviceID != nil)
        try Self.checkDelivery(w, guestRIDs: rids) { _ in GuestMemoryMap.virt.msiGPA }
    }

    @Test("guest RIDs: a count that does not match the devices, or two devices at one RID, is refused before anything is created")
    func badGuestRIDs() throws {
        let one = RequesterID(bus: 0, device: 1, function: 0)
        #expect(throws: GuestError.unsupported("1 guest RIDs for 2 devices")) {
            _ = try Self.make(viommu: .none, guestRIDs: [one])
        }
        #expect(throws: GuestError.unsupported("two devices at the same guest RID")) {
            _ = try Self.make(viommu: .none, guestRIDs: [one, one])
        }
    }
}
