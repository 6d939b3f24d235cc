import Testing
import Bus
@testable import LinuxKernel

/// The IRQ core's small objects copied into a forked world (`WorldCloneable`): each copy carries
/// every value, points at copies (never at the original world), starts with no closure the
/// original's owner installed, and neither side sees the other's later changes.
@Suite("Kernel IRQ leaf state fork")
struct KernelIRQLeafForkTests {
    @Test("an MSI descriptor carries its message, IOVA override and cookie (as a copy), then diverges")
    func msiDescriptor() throws {
        let desc = MSIDescriptor(index: 3)
        desc.irq = 70
        desc.message = MSIMessage(address: 0x800_0040, data: 3)
        desc.setIOMMUMSIIOVA(0x800_0000, shift: 12)
        desc.iommuCookie = IOMMUDMAMSIPage(iova: 0x800_0000, physical: 0x0809_0000)
        desc.masked = false
        desc.cpu = 2
        desc.presetIOVA = 0x800_0000
        desc.affinity = [IRQAffinityMask(cpus: [2], isManaged: true)]
        var map = CloneMap()
        let copy = map.clone(desc)
        #expect(CloneMap.valueFieldsThatDiffer(desc, copy) == [])
        let page = try #require(copy.iommuCookie as? IOMMUDMAMSIPage)
        #expect(page !== desc.iommuCookie && page.iova == 0x800_0000 && page.physical == 0x0809_0000)
        var message = MSIMessage()
        copy.setAddress(of: &message, to: 0x0809_0040)
        #expect(message.address == 0x800_0040, "the copy applies the original's IOVA page")
        copy.masked = true
        copy.setIOMMUMSIIOVA(0x900_0000, shift: 12)
        #expect(!desc.masked && desc.iommuMSIIOVA == 0x800_0000 >> 12)
    }

    @Test("an eventfd carries its count and log but not its consumer; signals on one are not seen by the other")
    func eventfd() {
        let fd = EventFD(name: "vfio-msix[0]")
        var consumed = 0
        fd.onSignal = { _ in consumed += 1 }
        fd.signal(irq: 64, cpu: 0)
        fd.signal(irq: 64, cpu: 1)
        var map = CloneMap()
        let copy = map.clone(fd)
        #expect(copy.onSignal == nil, "the consumer is the original world's; its owner installs the copy's")
        #expect(copy.count == 2 && Array(copy.signals) == Array(fd.signals) && copy.name == fd.name)
        copy.signal(irq: 64, cpu: 3)
        #expect(consumed == 2 && fd.count == 2 && copy.count == 3)
        #expect(copy.read() == 3 && fd.read() == 2)
    }

    @Test("a VFIO action signals the copied eventfd; a driver's handler waits for its owner, never running the original's closure")
    func actions() throws {
        let fd = EventFD()
        let vfio = IRQAction(name: "vfio-msix[0](0000:00:01.0)", kind: .eventfd(fd))
        var calls = 0
        let driver = IRQAction(name: "ep0", kind: .handler { _, _ in calls += 1; return .handled })
        var map = CloneMap()
        let vfioCopy = map.clone(vfio), driverCopy = map.clone(driver)
        let fdCopy = try #require(map.copy(of: fd))
        #expect(vfioCopy.run(irq: 64, cpu: 0) == .handled && fdCopy.count == 1 && fd.count == 0)
        #expect(driverCopy.awaitsHandler && !driver.awaitsHandler && driverCopy.name == "ep0")
        #expect(driverCopy.run(irq: 65, cpu: 0) == .none && calls == 0)
        var copyCalls = 0
        driverCopy.reinstall { _, _ in copyCalls += 1; return .handled }
        #expect(driverCopy.run(irq: 65, cpu: 0) == .handled && copyCalls == 1 && calls == 0 && !driverCopy.awaitsHandler)
        #expect(driver.run(irq: 65, cpu: 0) == .handled && calls == 1 && copyCalls == 1)
    }

    @Test("a GICv4 VM and its vPEs: values carried, one copy of each vPE, independent counts")
    func itsVM() {
        let vm = ITSVM(propertyTable: PhysicalAddress(0x4010_0000), doorbellBase: 8224, doorbellCount: 2)
        let vpe = ITSVPE(id: 1, index: 0, pendingTable: PhysicalAddress(0x4020_0000), doorbellLPI: 8224)
        vpe.irq = 80
        vpe.cpu = 1
        vpe.resident = true
        vpe.residentCPU = 1
        vpe.vmappCount = 1
        vpe.vlpiCount = 3
        vm.vpes = [vpe]
        let map0 = ITSVLPIMap(vm: vm, vpe: vpe, vintid: 8192, properties: 0xA3, doorbellEnabled: false)
        var map = CloneMap()
        let copy = map.clone(vm)
        let lpiMap = map0.cloned(into: &map)
        #expect(CloneMap.valueFieldsThatDiffer(vm, copy) == [])
        #expect(CloneMap.valueFieldsThatDiffer(vpe, copy.vpes[0]) == [])
        #expect(copy.vpes[0] !== vpe && lpiMap.vpe === copy.vpes[0] && lpiMap.vm === copy)
        copy.vpes[0].vlpiCount -= 1
        #expect(vpe.vlpiCount == 3)
    }

    @Test("irqbypass: producers follow the copied tokens, consumers are put back by their owner without reconnecting")
    func irqBypass() throws {
        let manager = IRQBypassManager()
        let a = EventFD(name: "a"), b = EventFD(name: "b")
        var events: [String] = []
        #expect(manager.registerProducer(token: a, irq: 70) == 0)
        manager.registerConsumer(token: a, IRQBypassConsumer(addProducer: { events.append("add \($0)"); return 0 },
                                                            delProducer: { events.append("del \($0)") }))
        #expect(events == ["add 70"])
        var map = CloneMap()
        let copy = map.clone(manager)
        let aCopy = try #require(map.copy(of: a))
        #expect(copy.producer(token: aCopy) == 70 && copy.producer(token: a) == nil)
        #expect(!copy.hasConsumer(token: aCopy), "the consumer is KVM's closure over the original world")
        var copyEvents: [String] = []
        #expect(copy.reinstallConsumer(token: aCopy, IRQBypassConsumer(addProducer: { copyEvents.append("add \($0)"); return 0 },
                                                                          delProducer: { copyEvents.append("del \($0)") })) == 0)
        #expect(copyEvents.isEmpty, "the pairing is already in the copied state")
        copy.unregisterProducer(token: aCopy)
        #expect(copyEvents == ["del 70"] && events == ["add 70"])
        #expect(manager.producer(token: a) == 70 && copy.producer(token: aCopy) == nil)
        #expect(copy.registerProducer(token: map.clone(b), irq: 71) == 0 && manager.producer(token: b) == nil)
    }
}
