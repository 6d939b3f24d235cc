import Testing
import Bus
@testable import LinuxKernel
import Machine
import PCI

/// The PCI core forked with its kernel and machine: a function behind a bridge keeps its
/// upstream bridge (the bridge's copy), and a hot-add or removal on one side is seen there only.
@Suite("Kernel PCI core fork")
struct KernelPCIForkTests {
    @Test("behind a bridge: the copy's function names the copied bridge; a rescan and a removal on the copy leave the original's list alone")
    func bridgeHotplug() throws {
        let h = try HostHarness.make(endpoints: [], boot: false)
        let bridge = try PCIToPCIBridge(requesterID: RequesterID(bus: 0, device: 3, function: 0), kind: .pcieToPCI, secondaryBus: 1)
        try h.machine.rootComplexes[0].attach(bridge)
        let function = try PCIFunction(name: "behind", requesterID: RequesterID(bus: 1, device: 2, function: 0), vendorID: 0x1AF4,
                                       deviceID: 0x1041, bars: [BaseAddressRegister(index: 0, size: 0x4000)],
                                       msix: MSIXConfiguration(tableSize: 2))
        try h.machine.rootComplexes[0].attach(function, behind: bridge)
        try h.kernel.boot()
        let names = h.kernel.pci.devices.map(\.name)
        #expect(names == ["0000:00:03.0", "0000:01:02.0"])

        var map = CloneMap()
        let machine = map.clone(h.machine)
        let copy = map.clone(h.kernel)
        map.finish()
        let dev = try #require(h.kernel.pci.device(function.requesterID))
        let devCopy = try #require(copy.pci.device(function.requesterID))
        let bridgeCopy = try #require(copy.pci.device(bridge.requesterID))
        #expect(devCopy !== dev && devCopy.upstreamBridge === bridgeCopy && bridgeCopy !== dev.upstreamBridge)
        #expect(copy.devices.map { $0 === devCopy.device } == [false, true] && copy.devices.map(\.name) == h.kernel.devices.map(\.name))
        for (original, twin) in zip(h.kernel.pci.devices, copy.pci.devices) {
            #expect(CloneMap.valueFieldsThatDiffer(original, twin) == [], "\(original.name)")
        }
        #expect(CloneMap.valueFieldsThatDiffer(h.kernel, copy) == [])

        // A second function behind the copied bridge, found by the copy's rescan only.
        let bridgeHardware = try #require(map.copy(of: bridge))
        let added = try PCIFunction(name: "added", requesterID: RequesterID(bus: 1, device: 3, function: 0), vendorID: 0x1AF4,
                                    deviceID: 0x1041, bars: [BaseAddressRegister(index: 0, size: 0x4000)],
                                    msix: MSIXConfiguration(tableSize: 2))
        try machine.rootComplexes[0].attach(added, behind: bridgeHardware)
        let found = try copy.pci.rescanBus()
        #expect(found.map(\.name) == ["0000:01:03.0"] && found.first?.upstreamBridge === bridgeCopy)
        #expect(try h.kernel.pci.rescanBus().isEmpty && h.kernel.pci.devices.map(\.name) == names)

        // Removing the original function on the copy.
        try copy.pci.stopAndRemoveBusDevice(devCopy)
        #expect(copy.pci.devices.map(\.name) == ["0000:00:03.0", "0000:01:03.0"])
        #expect(h.kernel.pci.devices.map(\.name) == names && h.kernel.devices.count == 2 && dev.resource(bar: 0)?.address != nil)
    }
}
