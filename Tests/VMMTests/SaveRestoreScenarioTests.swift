import Testing
import Bus
import Firmware
import LinuxKernel
import PCI
import SMMUv3
@testable import VMM

/// VM save/restore to the same host (`VirtualMachineMonitor.saveAndRestore`): the source side
/// gives up every VFIO interrupt trigger, irqfd, KVM route, nested HWPT, vDEVICE (and, being
/// the last user, the vIOMMU, nest parent, IOAS and cdevs); the destination realizes the
/// functions again and loads their state — vSTEs re-installed first, then
/// `vfio_pci_load_config` with `vfio_msix_enable`'s one-shot batch. The guest (kernel, RAM) is
/// untouched and is never told; its vITS comes back from the tables saved in guest RAM
/// (`VITSMigrationTests`).
///
/// The function sits at guest 00:01.0 (bus 0: no hot-plug involved, so the rmr-identity RMR
/// reaches it). Expected values as in `HotplugScenarioTests`, with guest DeviceID 0x8.
@Suite("Save/restore (migration to the same host)", .serialized)
struct SaveRestoreScenarioTests {
    typealias Counter = VMMScenarioTests.Counter

    /// What the guest owns, which the restore must leave as it was.
    struct GuestView: Equatable {
        let guestDeviceID: ObjectIdentifier
        let irqs: [Int]
        let hwirqs: [UInt32]
        let msixEntries: [VirtualMSIXEntry]
        let ittAddress: PhysicalAddress?
    }

    static func guestView(_ h: VMMHarness, _ irqs: [Int]) throws -> GuestView {
        let g = try #require(h.guestDevice)
        return GuestView(guestDeviceID: ObjectIdentifier(g), irqs: irqs, hwirqs: irqs.compactMap { h.guest.irq.descriptor($0)?.hwirq },
                         msixEntries: h.vmm.function.entries, ittAddress: h.guest.itsDrivers[0].device(0x8)?.ittAddress)
    }

    static func fireAll(_ h: VMMHarness, _ vectors: Range<Int> = 0..<4) -> [(Int, Int)] {
        vectors.map { v in
            let r = h.fire(v, guestCPUs: 2)
            return (r.host, r.guest)
        }
    }

    static func hostEntries(_ h: VMMHarness) throws -> [UInt64] {
        try (0..<4).map { try StrategyKernelScenarioTests.hostEntry(h, $0) }
    }

    /// The VMM/host state a restore must have rebuilt for 4 unmasked vectors.
    static func expectRebuilt(_ h: VMMHarness, old: PassthroughDevice) throws {
        let device = h.vmm.devices[0]
        #expect(device !== old && device.isPlugged && old.deviceFile.isClosed && !device.deviceFile.isClosed)
        #expect(device.function !== old.function)
        #expect(device.function.entries == old.function.entries, "vmstate: the vMSI-X table as the guest left it")
        #expect(device.function.command == old.function.command)
        #expect(device.vectors.keys.sorted() == [0, 1, 2, 3])
        #expect(h.vmm.vm.gsiRoutes.map(\.gsi) == [256, 257, 258, 259])
        #expect(h.vmm.vm.gsiRoutes.allSatisfy { $0.address == GuestMemoryMap.virt.msiGPA && $0.devid == 0x8 })
        #expect(h.vmm.vm.assignedIRQFDs.count == 4)
        #expect(device.deviceFile.vdev.irqType == VFIOIRQSet.msixIndex && device.deviceFile.vdev.contexts.count == 4)
        #expect(h.vmm.log.contains("00:01.0 vfio_msix_enable (load): vectors [0, 1, 2, 3] on one SET_IRQS"))
        try HotplugScenarioTests.expectVIOMMURebuilt(h, device, virtualID: 0x8)
    }

    @Test("rmr-identity: all 4 vectors arrive before and after; the restore rebuilds every host/VMM object (new cdev file, nest parent, vIOMMU, vDEVICE 0x8, nested HWPT from the guest's stage-1 STE, 4 routes with msi-gpa, 4 irqfds, VFIO MSI-X with 4 vectors from one SET_IRQS) and the host programs 0x0800_0040 again; the guest's pci_dev, IRQs, hwirqs, vMSI-X table and ITT are what they were")
    func rmrIdentity() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, msi: .rmrIdentity)
        let counter = Counter()
        let irqs = try VMMScenarioTests.guestVectors(h, counter: counter)
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })
        let view = try Self.guestView(h, irqs)
        let old = h.vmm.devices[0]
        let vsmmu = try #require(h.vmm.vsmmu)
        let consumed = vsmmu.consumedCommands.count

        try h.vmm.saveAndRestore()

        #expect(try Self.guestView(h, irqs) == view, "the guest does not notice")
        #expect(vsmmu.consumedCommands.count == consumed, "and issues no command")
        try Self.expectRebuilt(h, old: old)
        #expect(try vsmmu.guestStreamTableEntry(StreamID(8)).config == .stage1)
        #expect(try Self.hostEntries(h) == Array(repeating: 0x0800_0040, count: 4), "iommufd_sw_msi maps the ITS page into the new nest parent")
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })
        #expect(counter.hits == [0: 2, 1: 2, 2: 2, 3: 2])
        for v in 0..<4 { #expect(h.guest.irq.descriptor(irqs[v])?.perCPUCount[v % 2] == 2, "vector \(v) stays on vCPU \(v % 2)") }
    }

    @Test("irqchip-relay: all 4 vectors arrive before and after; the reopened device's msi_iovas are empty, so the load PREPAREs the guest's IOVAs again before the one SET_IRQS, the presets reach the new host vectors (entries = guest IOVAs) and IOAS_MAP_MSI maps the vITS page in the new IOAS")
    func irqchipRelay() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, host: KernelConfiguration(patches: [.vfioMSIIOVAPrepare, .irqchipMSIIOVA, .iommufdIOASMapMSI]),
                                    msi: .guestIOVAs)
        let counter = Counter()
        let irqs = try VMMScenarioTests.guestVectors(h, counter: counter)
        let guestIOVAs = h.vmm.function.entries.map(\.address)
        #expect(try Self.hostEntries(h) == guestIOVAs)
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })
        let view = try Self.guestView(h, irqs)
        let old = h.vmm.devices[0]
        let logged = h.vmm.log.count

        try h.vmm.saveAndRestore()

        #expect(try Self.guestView(h, irqs) == view)
        try Self.expectRebuilt(h, old: old)
        let after = Array(h.vmm.log[logged...])
        let prepare = try #require(after.firstIndex(of: "00:01.0 VFIO_IRQ_SET_ACTION_PREPARE: 4 IOVAs"))
        let enable = try #require(after.firstIndex(of: "00:01.0 vfio_msix_enable (load): vectors [0, 1, 2, 3] on one SET_IRQS"))
        #expect(prepare < enable)
        let vdev = h.vmm.deviceFile.vdev
        #expect((0..<4).map { vdev.msiIOVAs[$0] } == guestIOVAs.map { Optional($0) })
        #expect(try Self.hostEntries(h) == guestIOVAs)
        try StrategyKernelScenarioTests.expectStage2Doorbell(h)
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })
        #expect(counter.hits == [0: 2, 1: 2, 2: 2, 3: 2])
    }

    @Test("a vector the guest masked before the save (rmr-identity): vfio_msix_enable's notifiers skip it, so the load enables VFIO MSI-X with vectors 0–2 only; its interrupt after the restore finds its host entry masked and sets the function's own Pending bit (nothing reaches the guest); when the guest unmasks it the VMM sets the vector up (SET_IRQS for vector 3, a dynamically allocated host vector) and the pending message is delivered then — late, not lost")
    func maskedVectorAcrossRestore() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, msi: .rmrIdentity)
        let counter = Counter()
        let irqs = try VMMScenarioTests.guestVectors(h, counter: counter)
        try h.guest.irq.mask(irq: irqs[3])
        #expect(h.vmm.function.isMasked(3))

        try h.vmm.saveAndRestore()

        let device = h.vmm.devices[0]
        #expect(device.vectors.keys.sorted() == [0, 1, 2])
        #expect(h.vmm.log.contains("00:01.0 vfio_msix_enable (load): vectors [0, 1, 2] on one SET_IRQS"))
        #expect(device.deviceFile.vdev.contexts.keys.sorted() == [0, 1, 2])
        #expect(Self.fireAll(h, 0..<3).allSatisfy { $0 == (1, 1) })
        #expect(h.function.raise(vector: 3) == .pending, "host entry 3: no host vector yet, masked")
        #expect(h.host.irq.handleInterrupts(cpu: 0) == 0)
        #expect(counter.hits[3] == nil)

        try h.guest.irq.unmask(irq: irqs[3])
        #expect(device.vectors[3] != nil)
        #expect(device.deviceFile.vdev.contexts[3] != nil)
        #expect(try StrategyKernelScenarioTests.hostEntry(h, 3) == 0x0800_0040)
        #expect(h.host.irq.handleInterrupts(cpu: 0) == 1, "the function sent its pending message at unmask")
        _ = h.guest.irq.handleInterrupts(cpu: 0) + h.guest.irq.handleInterrupts(cpu: 1)
        #expect(counter.hits[3] == 1)
    }

    @Test("plain MSI, no vIOMMU: 4 MSI vectors arrive before and after; the load's vfio_msi_enable gives VFIO's MSI index the 4 vectors again with routes at the guest's doorbell 0x0809_0040")
    func plainMSI() throws {
        let h = try VMMHarness.make(viommu: .none, plainMSI: MSIPassthroughTests.fourVectors)
        let counter = Counter()
        _ = try MSIPassthroughTests.guestMSI(h, counter: counter)
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })
        let old = h.vmm.devices[0]

        try h.vmm.saveAndRestore()

        let device = h.vmm.devices[0]
        #expect(device !== old && device.msiEnabledVectors == 4)
        #expect(device.function.msi == old.function.msi)
        #expect(device.deviceFile.vdev.irqType == VFIOIRQSet.msiIndex && device.deviceFile.vdev.contexts.count == 4)
        #expect(h.vmm.vm.gsiRoutes.map(\.address) == Array(repeating: 0x0809_0040, count: 4))
        #expect(Self.fireAll(h).allSatisfy { $0 == (1, 1) })
        #expect(counter.hits == [0: 2, 1: 2, 2: 2, 3: 2])
    }

    /// One strategy's configuration (`Strategy.hostPatches`, `Strategy.msiPlan`; docs/strategies.md) and what its host MSI-X entries
    /// hold: the physical vITS doorbell (a v6.14 host writes the ITS address into a nested
    /// device's entry: nothing maps it at the guest's stage 1), iommufd's SW_MSI page
    /// 0x0800_0040, or the guest's own IOVAs (PREPAREd presets / the override).
    struct StrategyCase: Sendable, CustomStringConvertible {
        enum Entry: Sendable { case physical, swMSI, guestIOVA }
        var description: String
        var host: KernelConfiguration
        var plan: MSIPlan
        var entry: Entry
        var delivered: Int
    }

    static let strategies: [StrategyCase] = [
        StrategyCase(description: "legacy", host: KernelConfiguration(version: .v6_14), plan: MSIPlan(), entry: .physical, delivered: 0),
        StrategyCase(description: "irqchip-relay", host: KernelConfiguration(patches: [.vfioMSIIOVAPrepare, .irqchipMSIIOVA, .iommufdIOASMapMSI]),
                     plan: .guestIOVAs, entry: .guestIOVA, delivered: 4),
        StrategyCase(description: "vfio-override", host: KernelConfiguration(patches: [.vfioMSIIOVAPrepare, .vfioMSIOverride, .iommufdIOASMapMSI]),
                     plan: .guestIOVAs, entry: .guestIOVA, delivered: 4),
        StrategyCase(description: "rmr-identity", host: KernelConfiguration(), plan: .rmrIdentity, entry: .swMSI, delivered: 4),
        StrategyCase(description: "sw-msi-window", host: KernelConfiguration(patches: [.iommufdSWMSIWindow]),
                     plan: MSIPlan.swMSIWindow(for: .virt, ramSize: 0x100_0000), entry: .swMSI, delivered: 4),
        StrategyCase(description: "vits-direct", host: KernelConfiguration(patches: [.vfioMSIIOVAPrepare, .iommufdMSIIOVA, .iommufdIOASMapMSI]),
                     plan: .guestIOVAs, entry: .guestIOVA, delivered: 4),
    ]

    @Test("every strategy across a save/restore (accelerated vSMMU, guest DMA domain): the restore repeats the setup each strategy's host and VMM halves configure — SW_MSI options before the attach, IOAS_MAP_MSI in the new IOAS, PREPARE before the one SET_IRQS, iommufd_sw_msi into the new nest parent, the override at vfio_msi_set_vector_signal — so what was delivered before is delivered after and the host entries hold the same kind of address; legacy faults at the guest's stage 1 both times (sw-msi-window's window is 0x0800_0000 here: RAM at 0x4000_0000 does not overlap it)", arguments: strategies)
    func strategySweep(_ c: StrategyCase) throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, host: c.host, msi: c.plan)
        let counter = Counter()
        _ = try VMMScenarioTests.guestVectors(h, counter: counter)
        func expected() -> [UInt64] {
            switch c.entry {
            case .physical: Array(repeating: GuestMemoryMap.virt.msiGPA, count: 4)
            case .swMSI: Array(repeating: 0x0800_0040, count: 4)
            case .guestIOVA: h.vmm.function.entries.map(\.address)
            }
        }
        #expect(try Self.hostEntries(h) == expected())
        #expect(Self.fireAll(h).filter { $0 == (1, 1) }.count == c.delivered)
        try h.vmm.saveAndRestore()
        #expect(try Self.hostEntries(h) == expected())
        #expect(Self.fireAll(h).filter { $0 == (1, 1) }.count == c.delivered)
        #expect(counter.hits.values.reduce(0, +) == 2 * c.delivered)
    }

    @Test("migration blockers upstream QEMU would register (vfio_migration_realize): plain vfio-pci has no migration driver (ENOTTY), and with the accelerated vSMMU the vIOMMU check; none is reported for an unplugged function")
    func blockers() throws {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, msi: .rmrIdentity)
        #expect(h.vmm.migrationBlockers == ["0000:00:01.0: VFIO migration is not supported in kernel",
                                            "0000:00:01.0: Migration is currently not supported with vIOMMU enabled"])
        let n = try VMMHarness.make(viommu: .none)
        #expect(n.vmm.migrationBlockers == ["0000:00:01.0: VFIO migration is not supported in kernel"])
        let e = try EventHarness.make(viommu: .none)
        try e.vmm.hotUnplug(guestRequesterID: EventHarness.slotRID)
        #expect(e.vmm.migrationBlockers.isEmpty)
    }
}
