import Testing
import Bus
import GIC
@testable import LinuxKernel

/// KVM's MSI path for a passed-through device: a guest programs its vITS through the guest bus,
/// the VMM installs a GSI route and an irqfd, and a host-side eventfd signal becomes a guest LPI
/// that the guest's CPU interface acknowledges.
@Suite("KVM: vITS injection through routes and irqfds")
struct KVMInterruptTests {
    /// Guest DeviceID 0x10 (qemu-virt's identity msi-map of RID 00:02.0), 4 events, LPIs
    /// 8192… on collection 1 (vCPU 1); GSI 5 → TRANSLATER, EventID 2.
    func guestWithMappedDevice() throws -> (KVMFixture, GuestGICBringUp) {
        let fixture = try KVMFixture.make()
        let guest = GuestGICBringUp(vm: fixture.vm)
        try guest.enableLPIs()
        try guest.enableITS()
        try guest.mapDevice(0x10, events: 4, firstINTID: 8192, collection: 1)
        return (fixture, guest)
    }

    @Test("irqfd signal → route's MSI into the vITS → LPI pending on the vCPU the collection targets → guest IAR takes it")
    func irqfdDeliversToTargetVCPU() throws {
        let (fixture, _) = try guestWithMappedDevice()
        let vm = fixture.vm
        try vm.setGSIRouting([KVMMSIRoute(gsi: 5, addressLo: KVMFixture.translater, data: 2, devid: 0x10)])
        let (fd, eventfd) = fixture.process.eventfd()
        try vm.irqfd(eventfd: fd, gsi: 5)

        eventfd.signal(irq: 40, cpu: 0)

        // EventID 2 was mapped to LPI 8192 + 2 on ICID 1, and MAPC put ICID 1 on vCPU 1.
        #expect(vm.counters.delivered == 1)
        #expect(vm.injections.last?.outcome == .delivered(intid: 8194, vcpu: 1))
        #expect(vm.cpuInterface.readIAR1(cpu: 0) == 1023)
        #expect(vm.cpuInterface.readIAR1(cpu: 1) == 8194)
        vm.cpuInterface.writeEOIR1(cpu: 1, 8194)
        // Acknowledging clears an LPI's pending state (it has no active state).
        #expect(vm.cpuInterface.readIAR1(cpu: 1) == 1023)
        // irqfd_wakeup consumed the eventfd counter (eventfd_ctx_do_read).
        #expect(eventfd.count == 0)
    }

    @Test("a route whose doorbell is not the vITS is dropped and counted; KVM_SIGNAL_MSI gives EINVAL")
    func routeToOtherAddressDropped() throws {
        let (fixture, _) = try guestWithMappedDevice()
        let vm = fixture.vm
        // 0x0905_0000 is the vSMMU's frame in QEMU's virt layout: no vITS decodes it.
        try vm.setGSIRouting([KVMMSIRoute(gsi: 1, addressLo: 0x0905_0000, data: 0, devid: 0x10)])
        let (fd, eventfd) = fixture.process.eventfd()
        try vm.irqfd(eventfd: fd, gsi: 1)
        eventfd.signal()

        #expect(vm.counters.notITSDoorbell == 1)
        #expect(vm.counters.delivered == 0)
        #expect(vm.injections.last?.outcome == .failed(.EINVAL))
        #expect(vm.cpuInterface.readIAR1(cpu: 0) == 1023)
        #expect(vm.cpuInterface.readIAR1(cpu: 1) == 1023)
        #expect(throws: Errno.EINVAL) { try vm.signalMSI(KVMMSI(addressLo: 0x0905_0000, data: 0, devid: 0x10)) }
        // Without KVM_MSI_VALID_DEVID vgic_msi_to_its refuses even the right doorbell.
        #expect(throws: Errno.EINVAL) { try vm.signalMSI(KVMMSI(addressLo: KVMFixture.translater, data: 0, flags: 0, devid: 0x10)) }
        #expect(vm.counters.noDeviceID == 1)
    }

    @Test("KVM resolves the doorbell by MMIO region: any address inside the 128 KiB vITS frame reaches the ITS")
    func anyAddressInITSFrameAccepted() throws {
        let (fixture, _) = try guestWithMappedDevice()
        let vm = fixture.vm
        // vgic_msi_to_its uses kvm_io_bus_get_dev, which matches the whole KVM_VGIC_V3_ITS_SIZE
        // region registered at the ITS base, so the control frame base works as a doorbell too;
        // one byte past the frame does not.
        #expect(try vm.signalMSI(KVMMSI(addressLo: 0x0808_0000, data: 0, devid: 0x10)) == 1)
        #expect(vm.cpuInterface.readIAR1(cpu: 1) == 8192)
        #expect(throws: Errno.EINVAL) { try vm.signalMSI(KVMMSI(addressLo: 0x080A_0000, data: 0, devid: 0x10)) }
    }

    @Test("a DeviceID the guest never mapped is blocked by the guest ITS: counted, KVM_SIGNAL_MSI returns 0")
    func unmappedDeviceIDBlocked() throws {
        let (fixture, _) = try guestWithMappedDevice()
        let vm = fixture.vm
        try vm.setGSIRouting([KVMMSIRoute(gsi: 7, addressLo: KVMFixture.translater, data: 0, devid: 0x20)])
        let (fd, eventfd) = fixture.process.eventfd()
        try vm.irqfd(eventfd: fd, gsi: 7)
        eventfd.signal()
        #expect(vm.counters.blockedByGuest == 1)
        #expect(vm.injections.last?.outcome == .blocked(.unmappedDevice))
        // An EventID beyond the mapped device's ITT (4 events) is blocked as well.
        #expect(try vm.signalMSI(KVMMSI(addressLo: KVMFixture.translater, data: 4, devid: 0x10)) == 0)
        #expect(vm.injections.last?.outcome == .blocked(.eventIDOutOfRange))
        #expect(try vm.signalMSI(KVMMSI(addressLo: KVMFixture.translater, data: 0, devid: 0x20)) == 0)
        #expect(vm.counters.blockedByGuest == 3)
        #expect(vm.counters.dropped == 3)
        #expect(vm.cpuInterface.readIAR1(cpu: 0) == 1023)
        #expect(vm.cpuInterface.readIAR1(cpu: 1) == 1023)
    }

    @Test("before the guest enables its ITS an MSI is EBUSY (vgic_its_resolve_lpi), and no LPI appears")
    func disabledITSIsBusy() throws {
        let fixture = try KVMFixture.make()
        #expect(throws: Errno.EBUSY) { try fixture.vm.signalMSI(KVMMSI(addressLo: KVMFixture.translater, data: 0, devid: 0x10)) }
        #expect(fixture.vm.counters.busy == 1)
        #expect(fixture.vm.cpuInterface.readIAR1(cpu: 0) == 1023)
    }

    @Test("a VM without a vITS: MSI injection is ENODEV (kvm_set_msi: !vgic_has_its)")
    func noITSIsENODEV() throws {
        let fixture = try KVMFixture.make(its: false)
        #expect(throws: Errno.ENODEV) { try fixture.vm.signalMSI(KVMMSI(addressLo: KVMFixture.translater, data: 0, devid: 0x10)) }
        #expect(fixture.vm.counters.noITS == 1)
    }

    @Test("an irqfd on a GSI without a route counts the signal as lost; a route set later is used at the next signal")
    func routeLookedUpAtSignalTime() throws {
        let (fixture, _) = try guestWithMappedDevice()
        let vm = fixture.vm
        let (fd, eventfd) = fixture.process.eventfd()
        try vm.irqfd(eventfd: fd, gsi: 9)
        eventfd.signal()
        #expect(vm.counters.noRoute == 1)
        #expect(vm.counters.irqfdSignals == 1)
        try vm.setGSIRouting([KVMMSIRoute(gsi: 9, addressLo: KVMFixture.translater, data: 3, devid: 0x10)])
        eventfd.signal()
        #expect(vm.cpuInterface.readIAR1(cpu: 1) == 8195)
        // Deassigned: the eventfd no longer reaches KVM.
        try vm.irqfd(eventfd: fd, gsi: 9, deassign: true)
        eventfd.signal()
        #expect(vm.counters.irqfdSignals == 2)
        #expect(vm.cpuInterface.readIAR1(cpu: 1) == 1023)
    }

    @Test("KVM keeps the vITS's translations in its lists: the guest's device, ITT and collection slots in the host pages backing guest RAM stay zero until KVM_DEV_ARM_ITS_SAVE_TABLES writes ABI rev 0 entries there (DTE V|next 0|ITT|Size 1, ITE next|pINTID|ICID, packed CTEs then a zero terminator)")
    func guestTablesInHostPages() throws {
        let (fixture, guest) = try guestWithMappedDevice()
        let vm = fixture.vm
        let ramBase = KVMFixture.guestRAMBase
        let itt = try #require(guest.itts[0x10])
        func hostRead(_ ipa: UInt64) throws -> UInt64 {
            let page = try #require(fixture.process.physicalPage(of: fixture.ramUserVA + (ipa - ramBase)))
            #expect(vm.hostPhysical(ofGuest: ipa) == PhysicalAddress(page.rawValue | (ipa & 0xFFF)))
            return try fixture.host.machine.bus.read(PhysicalAddress(page.rawValue | (ipa & 0xFFF)), size: 8, requester: .hardware)
        }
        let dteIPA = guest.deviceTable + 0x10 * 8
        let iteIPA = itt + 2 * 8
        #expect(try hostRead(dteIPA) == 0 && hostRead(iteIPA) == 0 && hostRead(guest.collectionTable) == 0,
                "commands leave guest memory alone")
        let lists = try #require(vm.vgic?.itsLists)
        #expect(lists.devices.map(\.deviceID) == [0x10] && lists.devices[0].events.count == 4)
        #expect(lists.collections.map(\.icid) == [0, 1])

        try #require(vm.vgic).saveITSTables()

        let dte = KVMITSDeviceEntry(rawValue: try hostRead(dteIPA))
        #expect(dte.valid && dte.next == 0 && dte.ittAddress == itt && dte.eventIDBits == 2)
        let ite = KVMITSTranslationEntry(rawValue: try hostRead(iteIPA))
        #expect(ite.pINTID == 8194 && ite.icid == 1 && ite.next == 1)
        #expect(KVMITSTranslationEntry(rawValue: try hostRead(itt + 3 * 8)).next == 0, "the last ITE")
        let ctes = try (0..<3).map { KVMITSCollectionEntry(rawValue: try hostRead(guest.collectionTable + UInt64($0) * 8)) }
        #expect(ctes[0].valid && ctes[0].icid == 0 && ctes[0].target == 0)
        #expect(ctes[1].valid && ctes[1].icid == 1 && ctes[1].target == 1)
        #expect(ctes[2].rawValue == 0, "the table is not full: an invalid entry ends it")
    }
}
