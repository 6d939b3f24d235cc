import Testing
import Bus
import GIC
import LinuxKernel
@testable import VMM

/// The vITS across `saveAndRestore` as QEMU and KVM carry it: the source's KVM_DEV_ARM_ITS_SAVE_TABLES
/// and KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES write the translations into the guest's own tables in
/// guest RAM, the destination's new vGIC gets its registers back in the documented order and
/// KVM_DEV_ARM_ITS_RESTORE_TABLES rebuilds the lists from those tables (rmr-identity, guest
/// DeviceID 0x8, 4 MSI-X vectors on 2 vCPUs).
@Suite("vITS save/restore through guest RAM", .serialized)
struct VITSMigrationTests {
    typealias Counter = VMMScenarioTests.Counter

    static func make() throws -> (VMMHarness, [Int], Counter) {
        let h = try VMMHarness.make(viommu: .acceleratedSMMUv3, msi: .rmrIdentity)
        let counter = Counter()
        let irqs = try VMMScenarioTests.guestVectors(h, counter: counter)
        return (h, irqs, counter)
    }

    /// Where each vector's MSI ended: (vLPI, vCPU) from KVM's injection record.
    static func deliveries(_ h: VMMHarness) -> [KVMInjectionRecord.Outcome] {
        (0..<4).map { v in
            _ = h.fire(v, guestCPUs: 2)
            return h.vmm.vm.injections.last?.outcome ?? .noRoute
        }
    }

    @Test("the destination's vITS is a new one whose lists, rebuilt from the tables in guest RAM, equal the source's (device 0x8 with 4 ITEs, collections 0 and 1 on vCPUs 0 and 1), with the source's GITS registers; every vector's MSI reaches the same vLPI on the same vCPU before and after")
    func restoredFromGuestRAM() throws {
        let (h, _, counter) = try Self.make()
        let before = Self.deliveries(h)
        #expect(before.allSatisfy { if case .delivered = $0 { true } else { false } }, "\(before)")
        let source = try #require(h.vmm.vm.vgic)
        let sourceITS = try #require(source.its)
        let sourceLists = try #require(source.itsLists)
        #expect(sourceLists.devices.map(\.deviceID) == [0x8] && sourceLists.devices[0].events.count == 4)
        let registers = try [ITS.Offset.cbaser, ITS.Offset.creadr, ITS.Offset.cwriter, ITS.Offset.ctlr, ITS.Offset.baser, ITS.Offset.baser + 8]
            .map { try source.itsRegister($0) }

        let image = try h.vmm.saveForMigration()
        // Guest RAM now holds KVM's ABI rev 0 DTE for DeviceID 0x8.
        let dteAddress = try #require(source.checkID(sourceITS.baser[0], 0x8))
        let dte = KVMITSDeviceEntry(rawValue: try h.vmm.vm.guestBus.read(PhysicalAddress(dteAddress), size: 8))
        #expect(dte.valid && dte.ittAddress == sourceLists.devices[0].ittAddress)
        #expect(h.vmm.vm.vgic == nil, "the source VM's vGIC is gone")
        try h.vmm.restoreFromMigration(image)

        let restored = try #require(h.vmm.vm.vgic)
        #expect(restored !== source && restored.its !== sourceITS)
        let lists = try #require(restored.itsLists)
        #expect(lists.devices == sourceLists.devices)
        #expect(lists.collections == sourceLists.collections)
        #expect(try [ITS.Offset.cbaser, ITS.Offset.creadr, ITS.Offset.cwriter, ITS.Offset.ctlr, ITS.Offset.baser, ITS.Offset.baser + 8]
            .map { try restored.itsRegister($0) } == registers)
        #expect(h.vmm.log.contains("migration: vITS restored from guest RAM: 1 device(s), 2 collection(s)"))
        #expect(Self.deliveries(h) == before)
        #expect(counter.hits == [0: 2, 1: 2, 2: 2, 3: 2])
    }

    @Test("the guest keeps using its vITS after the restore: unmasking, masking and a new MAPTI go through the restored CREADR/CWRITER, and the vITS consumes the guest's later commands")
    func guestCommandsAfterRestore() throws {
        let (h, irqs, _) = try Self.make()
        try h.vmm.saveAndRestore()
        let its = try #require(h.vmm.vm.vgic?.its)
        let processed = its.counters.commandsProcessed
        try h.guest.irq.mask(irq: irqs[1])
        try h.guest.irq.unmask(irq: irqs[1])
        #expect(its.counters.commandsProcessed > processed, "the guest's INV/SYNC reached the new vITS")
        #expect(its.counters.commandErrors == 0 && !its.stalled)
        #expect(try its.mmioRead(offset: ITS.Offset.creadr, size: 8, requester: .cpu(0))
                == its.mmioRead(offset: ITS.Offset.cwriter, size: 8, requester: .cpu(0)))
    }

    /// Corrupts the saved tables in guest RAM between the two halves; the destination's
    /// KVM_DEV_ARM_ITS_RESTORE_TABLES fails with KVM's errno, which QEMU's `&error_abort` makes
    /// fatal: `restoreFromMigration` throws it.
    static func corrupted(_ corrupt: (VMMHarness, KVMVGIC, UInt64, KVMITSLists.Device) throws -> Void) throws -> GuestError? {
        let (h, _, _) = try Self.make()
        let source = try #require(h.vmm.vm.vgic)
        let device = try #require(source.itsLists?.devices.first)
        let baser0 = try #require(source.its?.baser[0])
        let image = try h.vmm.saveForMigration()
        let dteAddress = try #require(source.checkID(baser0, device.deviceID))
        try corrupt(h, source, dteAddress, device)
        do {
            try h.vmm.restoreFromMigration(image)
            return nil
        } catch {
            return error
        }
    }

    @Test("an ITE naming an ICID with no restored collection: EINVAL (vgic_its_restore_ite: find_collection)")
    func iteWithUnknownCollection() throws {
        let error = try Self.corrupted { h, _, _, device in
            let address = PhysicalAddress(device.ittAddress + 8)   // EventID 1
            let ite = KVMITSTranslationEntry(rawValue: try h.vmm.vm.guestBus.read(address, size: 8))
            try h.vmm.vm.guestBus.write(address, size: 8, value: KVMITSTranslationEntry(next: ite.next, pINTID: ite.pINTID, icid: 7).rawValue)
        }
        #expect(error == .hostCall("KVM_DEV_ARM_ITS_RESTORE_TABLES", .EINVAL))
    }

    @Test("a DTE whose ITT lies outside guest RAM: EFAULT (scan_its_table: kvm_read_guest_lock)")
    func ittOutsideGuestRAM() throws {
        let error = try Self.corrupted { h, _, dteAddress, _ in
            let dte = KVMITSDeviceEntry(rawValue: try h.vmm.vm.guestBus.read(PhysicalAddress(dteAddress), size: 8))
            let moved = KVMITSDeviceEntry(valid: true, next: dte.next, ittAddress: 0x1_0000_0000, size: dte.size)
            try h.vmm.vm.guestBus.write(PhysicalAddress(dteAddress), size: 8, value: moved.rawValue)
        }
        #expect(error == .hostCall("KVM_DEV_ARM_ITS_RESTORE_TABLES", .EFAULT))
    }

    @Test("a DTE whose Size no longer covers the saved EventIDs (1 bit for 4 events): EINVAL (vgic_its_restore_ite: EventID + next ≥ 2^num_eventid_bits)")
    func dteSizeBelowSavedEvents() throws {
        let error = try Self.corrupted { h, _, dteAddress, _ in
            let dte = KVMITSDeviceEntry(rawValue: try h.vmm.vm.guestBus.read(PhysicalAddress(dteAddress), size: 8))
            try h.vmm.vm.guestBus.write(PhysicalAddress(dteAddress), size: 8,
                                        value: KVMITSDeviceEntry(valid: true, next: dte.next, ittAddress: dte.ittAddress, size: 0).rawValue)
        }
        #expect(error == .hostCall("KVM_DEV_ARM_ITS_RESTORE_TABLES", .EINVAL))
    }

    @Test("a DTE with an ITT Size beyond the vITS's 16 EventID bits is accepted: vgic_its_restore_dte does not check it (only MAPD does, E_ITS_MAPD_ITTSIZE_OOR), so the device comes back with 17 EventID bits and its 4 ITEs")
    func dteSizeBeyondIDBitsIsNotChecked() throws {
        let (h, _, _) = try Self.make()
        let source = try #require(h.vmm.vm.vgic)
        let baser0 = try #require(source.its?.baser[0])
        let image = try h.vmm.saveForMigration()
        let dteAddress = PhysicalAddress(try #require(source.checkID(baser0, 0x8)))
        let dte = KVMITSDeviceEntry(rawValue: try h.vmm.vm.guestBus.read(dteAddress, size: 8))
        try h.vmm.vm.guestBus.write(dteAddress, size: 8, value: KVMITSDeviceEntry(valid: true, next: 0, ittAddress: dte.ittAddress, size: 16).rawValue)
        try h.vmm.restoreFromMigration(image)
        let device = try #require(h.vmm.vm.vgic?.itsLists?.devices.first)
        #expect(device.eventIDBits == 17 && device.events.count == 4)
    }

    @Test("a CTE targeting a vCPU the VM does not have: EINVAL (vgic_its_restore_cte: kvm_get_vcpu_by_id); the same ICID twice: EEXIST")
    func badCollectionEntries() throws {
        let noVCPU = try Self.corrupted { h, source, _, _ in
            let table = GITSBaser(rawValue: try #require(source.its?.baser[1])).physicalAddress
            try h.vmm.vm.guestBus.write(table, size: 8, value: KVMITSCollectionEntry(valid: true, target: 5, icid: 0).rawValue)
        }
        #expect(noVCPU == .hostCall("KVM_DEV_ARM_ITS_RESTORE_TABLES", .EINVAL))
        let twice = try Self.corrupted { h, source, _, _ in
            let table = GITSBaser(rawValue: try #require(source.its?.baser[1])).physicalAddress
            try h.vmm.vm.guestBus.write(PhysicalAddress(table.rawValue + 8), size: 8, value: KVMITSCollectionEntry(valid: true, target: 1, icid: 0).rawValue)
        }
        #expect(twice == .hostCall("KVM_DEV_ARM_ITS_RESTORE_TABLES", .EEXIST))
    }
}
