import Testing
import Bus
@testable import GIC
@testable import LinuxKernel

/// KVM's vGIC and vITS copied into a forked world (`WorldCloneable`): the vITS keeps its
/// translations in `KVMITSLists` (KVM's device, ITT and collection lists), which the GIC's ITS
/// clone now copies as its entry storage. A forked vGIC translates as the original does, and a
/// guest command in one is not seen by the other.
@Suite("KVM vGIC fork")
struct KVMVGICForkTests {
    /// A VM whose guest brought its vITS up and mapped DeviceID 0x10 (events 0–3 → LPIs
    /// 8192–8195 on collection 1, vCPU 1), then its copy through a fork of the vGIC.
    func forked() throws -> (original: (GuestGICBringUp, KVMVGIC), copy: (GuestGICBringUp, KVMVGIC), map: CloneMap) {
        let fixture = try KVMFixture.make()
        let guest = GuestGICBringUp(vm: fixture.vm)
        try guest.enableLPIs()
        try guest.enableITS()
        try guest.mapDevice(0x10, events: 4, firstINTID: 8192, collection: 1)
        let vgic = try #require(fixture.vm.vgic)
        var map = CloneMap()
        let copy = map.clone(vgic)
        map.finish()
        return ((guest, vgic), (guest.forked(onto: copy.guestBus), copy), map)
    }

    func translations(_ vgic: KVMVGIC, device: UInt32 = 0x10, events: ClosedRange<UInt32> = 0...5) throws -> [ITSTranslationResult] {
        let its = try #require(vgic.its)
        return events.map { its.translate(deviceID: DeviceID(device), eventID: EventID($0)) }
    }

    @Test("the copy is wired to itself: its ITS's entry storage is the copied lists, on the copied guest bus, with every value field carried")
    func wiring() throws {
        let ((_, vgic), (_, copy), map) = try forked()
        let lists = try #require(vgic.itsLists), copiedLists = try #require(copy.itsLists)
        #expect(copiedLists !== lists && copy.its?.entryStorage === copiedLists)
        #expect(copy.gic !== vgic.gic && copy.its?.gic === copy.gic && copy.its === copy.gic.itss.first)
        #expect(copy.guestBus === map.copy(of: vgic.guestBus) && copiedLists.guestBus === copy.guestBus)
        #expect(copy.gic.bus === copy.guestBus)
        #expect(CloneMap.valueFieldsThatDiffer(lists, copiedLists) == [])
        #expect(CloneMap.valueFieldsThatDiffer(vgic, copy) == [])
        #expect(copiedLists.devices.map(\.events.count) == [4] && copiedLists.collections.map(\.icid) == [0, 1])
    }

    @Test("the same guest ITS commands on original and copy give the same translations, and each one's commands stay its own")
    func sameCommandsSameTranslations() throws {
        let ((guest, vgic), (guestCopy, copy), _) = try forked()
        let before = try translations(vgic)
        #expect(try translations(copy) == before)
        #expect(before[3] == .delivered(intid: INTID(8195), cpu: 1, accepted: true))
        // The same commands on both: a second device, event 1 moved to collection 0, event 2 discarded.
        let commands: [ITSCommand] = [.movi(device: DeviceID(0x10), event: EventID(1), collection: CollectionID(0)),
                                      .discard(device: DeviceID(0x10), event: EventID(2)),
                                      .sync(target: .processor(0))]
        for g in [guest, guestCopy] {
            try g.mapDevice(0x20, events: 2, firstINTID: 8300, collection: 0)
            try g.issue(commands)
        }
        let after = try translations(vgic) + translations(vgic, device: 0x20, events: 0...1)
        #expect(try translations(copy) + translations(copy, device: 0x20, events: 0...1) == after)
        #expect(after[1] == .delivered(intid: INTID(8193), cpu: 0, accepted: true))
        #expect(after[2] == .dropped(.unmappedEvent))
        #expect(after[6] == .delivered(intid: INTID(8300), cpu: 0, accepted: true))
        #expect(vgic.itsLists?.devices == copy.itsLists?.devices && vgic.itsLists?.collections == copy.itsLists?.collections)

        // A command in the copy only: MAPD V=0 of device 0x10 frees it there, not in the original.
        try guestCopy.issue([.mapd(device: DeviceID(0x10), size: 1, ittAddress: PhysicalAddress(0), valid: false),
                             .sync(target: .processor(0))])
        #expect(try translations(copy, events: 0...0) == [.dropped(.unmappedDevice)])
        #expect(try translations(vgic) == Array(after.prefix(6)), "the original keeps device 0x10")
        #expect(vgic.itsLists?.devices.map(\.deviceID) == [0x10, 0x20])
        #expect(copy.itsLists?.devices.map(\.deviceID) == [0x20])
    }

    @Test("an LPI made pending in the copy is pending there only; the original's vCPU still acknowledges its own")
    func independentPending() throws {
        let ((_, vgic), (_, copy), _) = try forked()
        let its = try #require(copy.its)
        try copy.guestBus.write(its.translaterAddress, size: 4, value: 3, requester: .device(DeviceID(0x10)))
        #expect(copy.gic.redistributors[1].isPending(INTID(8195)))
        #expect(!vgic.gic.redistributors[1].isPending(INTID(8195)))
        #expect(copy.gic.acknowledge(cpu: 1) == 8195)
        #expect(vgic.gic.acknowledge(cpu: 1) == INTID.spurious.rawValue)
    }

    @Test("a whole VM forked with its host kernel: the same KVM_SIGNAL_MSI injects the same LPI in each; an irqfd signal on the copy's eventfd wakes the copy's VM only")
    func wholeVM() throws {
        let fixture = try KVMFixture.make()
        let guest = GuestGICBringUp(vm: fixture.vm)
        try guest.enableLPIs()
        try guest.enableITS()
        try guest.mapDevice(0x10, events: 4, firstINTID: 8192, collection: 1)
        let vm = fixture.vm
        try vm.setGSIRouting([KVMMSIRoute(gsi: 300, addressLo: KVMFixture.translater, data: 2, devid: 0x10)])
        let (fd, _) = fixture.process.eventfd(name: "irqfd")
        try vm.irqfd(eventfd: fd, gsi: 300)
        var map = CloneMap()
        let copy = map.clone(vm)
        map.finish()
        #expect(copy.kernel === map.copy(of: fixture.host.kernel) && copy.process === map.copy(of: fixture.process))
        #expect(copy.vgic?.guestBus === copy.guestBus && copy.cpuInterface.vm === copy)
        #expect(CloneMap.valueFieldsThatDiffer(vm, copy) == ["irqfds"], "irqfds are keyed by their eventfd's identity")
        let copiedEventFD = try copy.process.eventfdContext(fd)
        #expect(copy.assignedIRQFDs.map(\.gsi) == [300] && copy.assignedIRQFDs[0].eventfd === copiedEventFD)

        let msi = KVMMSI(addressLo: KVMFixture.translater, data: 3, devid: 0x10)
        #expect(try vm.signalMSI(msi) == 1)
        #expect(try copy.signalMSI(msi) == 1)
        #expect(Array(vm.injections) == Array(copy.injections) && vm.counters == copy.counters)
        #expect(copy.cpuInterface.readIAR1(cpu: 1) == 8195 && vm.cpuInterface.readIAR1(cpu: 1) == 8195)

        try copy.process.eventfdContext(fd).signal()
        #expect(copy.counters.irqfdSignals == 1 && copy.counters.delivered == 2)
        #expect(vm.counters.irqfdSignals == 0 && vm.counters.delivered == 1, "the original VM saw nothing")
        #expect(copy.vgic?.gic.redistributors[1].isPending(INTID(8194)) == true)
        #expect(vm.vgic?.gic.redistributors[1].isPending(INTID(8194)) == false)
        try fixture.process.eventfdContext(fd).signal()
        #expect(vm.counters.irqfdSignals == 1 && copy.counters.irqfdSignals == 1)
    }
}
