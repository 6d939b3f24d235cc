import Testing
import Bus
import GIC
@testable import LinuxKernel

/// KVM's vITS and vGICv3 save/restore attributes on the KVM model directly (vgic-its.c,
/// vgic-v3.c), with the guest bring-up of `KVMTestSupport`.
@Suite("KVM vITS save/restore attributes")
struct KVMITSSaveRestoreTests {
    func mapped() throws -> (KVMFixture, GuestGICBringUp, KVMVGIC) {
        let fixture = try KVMFixture.make()
        let guest = GuestGICBringUp(vm: fixture.vm)
        try guest.enableLPIs()
        try guest.enableITS()
        try guest.mapDevice(0x10, events: 4, firstINTID: 8192, collection: 1)
        return (fixture, guest, try #require(fixture.vm.vgic))
    }

    @Test("MAPD V=0 frees the device and its ITEs and zeroes its DTE slot in guest RAM; DISCARD zeroes the ITE slot (v6.13's vgic_its_write_entry_lock of 0)")
    func unmapClearsGuestSlots() throws {
        let (fixture, guest, vgic) = try mapped()
        try vgic.saveITSTables()
        let dte = guest.deviceTable + 0x10 * 8
        let itt = try #require(guest.itts[0x10])
        #expect(try guest.read(dte, 8) != 0 && guest.read(itt + 8, 8) != 0)
        try guest.issue([.discard(device: DeviceID(0x10), event: EventID(1)), .sync(target: .processor(0))])
        #expect(try guest.read(itt + 8, 8) == 0)
        #expect(vgic.itsLists?.devices.first?.events.map(\.eventID) == [0, 2, 3])
        try guest.issue([.mapd(device: DeviceID(0x10), size: 1, ittAddress: PhysicalAddress(itt), valid: false), .sync(target: .processor(0))])
        #expect(try guest.read(dte, 8) == 0)
        #expect(vgic.itsLists?.devices.isEmpty == true)
        #expect(try fixture.vm.signalMSI(KVMMSI(addressLo: KVMFixture.translater, data: 2, devid: 0x10)) == 0)
    }

    @Test("SAVE_PENDING_TABLES makes each mapped LPI's bit in its vCPU's pending table say whether it is pending; RESTORE_TABLES on a new vGIC makes it pending again and clears the consumed bit (vgic_v3_lpi_sync_pending_status)")
    func pendingBitsTravel() throws {
        let (fixture, _, vgic) = try mapped()
        let vm = fixture.vm
        #expect(try vm.signalMSI(KVMMSI(addressLo: KVMFixture.translater, data: 3, devid: 0x10)) == 1)
        let rd = vgic.gic.redistributors[1]
        let byte = rd.pendbaser.physicalAddress.rawValue + 8195 / 8
        try vgic.savePendingTables()
        #expect(try vm.guestBus.read(PhysicalAddress(byte), size: 1) & 1 << (8195 % 8) != 0)

        try vgic.saveITSTables()
        let state = vgic.saveState()
        vm.destroyVGIC()
        let fresh = try vm.createVGIC(distributor: KVMFixture.distributorBase, redistributors: KVMFixture.redistributorBase, its: KVMFixture.itsBase)
        fresh.restoreGICv3(state)
        try fresh.restoreITS(try #require(state.its))
        #expect(fresh.gic.redistributors[1].isPending(INTID(8195)))
        #expect(try vm.guestBus.read(PhysicalAddress(byte), size: 1) & 1 << (8195 % 8) == 0, "clear consumed data")
        #expect(vm.cpuInterface.readIAR1(cpu: 1) == 8195, "ICC_PMR_EL1 came back too")
    }

    @Test("KVM_DEV_ARM_VGIC_GRP_ITS_REGS: CREADR is EBUSY while the ITS is enabled and EINVAL beyond the queue; IIDR takes only ABI revision 0 (EINVAL); misaligned offsets EINVAL, no register ENXIO")
    func itsRegisterAccess() throws {
        let (_, _, vgic) = try mapped()
        #expect(throws: Errno.EBUSY) { try vgic.setITSRegister(ITS.Offset.creadr, 0) }
        #expect(throws: Errno.EINVAL) { try vgic.setITSRegister(ITS.Offset.iidr, 1 << 12) }
        try vgic.setITSRegister(ITS.Offset.iidr, try vgic.itsRegister(ITS.Offset.iidr))
        #expect(throws: Errno.EINVAL) { try vgic.setITSRegister(ITS.Offset.cbaser + 4, 0) }
        #expect(throws: Errno.ENXIO) { try vgic.itsRegister(0x40) }
        try vgic.setITSRegister(ITS.Offset.ctlr, 0)
        #expect(throws: Errno.EINVAL) { try vgic.setITSRegister(ITS.Offset.creadr, 0x1000) }
        try vgic.setITSRegister(ITS.Offset.creadr, 0x20)
        #expect(try vgic.itsRegister(ITS.Offset.creadr) == 0x20)
    }

    @Test("SAVE_TABLES with a device table outside guest RAM fails: the DeviceID's slot is not visible (vgic_its_check_id) → EINVAL")
    func saveWithTableOutsideRAM() throws {
        let (_, _, vgic) = try mapped()
        let its = try #require(vgic.its)
        try vgic.setITSRegister(ITS.Offset.ctlr, 0)
        try vgic.setITSRegister(ITS.Offset.baser, (its.baser[0] & ~0xFFFF_FFFF_F000) | 0x2000_0000)
        #expect(throws: Errno.EINVAL) { try vgic.saveITSTables() }
    }
}
