import Bus
import Testing
@testable import PCI

/// A root complex with identity maps, a bridge at 00:01.0 whose secondary bus is 2, and a
/// function at 02:03.0 behind it.
private struct BridgedFixture {
    let rootComplex = RootComplex()
    let port = RecordingPort()
    let bridge: PCIToPCIBridge
    let function: PCIFunction

    init(kind: PCIToPCIBridge.Kind, msiMap: RequesterIDMap = .identity()) throws {
        rootComplex.iommuMap = .identity()
        rootComplex.msiMap = msiMap
        rootComplex.upstream = port
        bridge = try PCIToPCIBridge(requesterID: RequesterID(bus: 0, device: 1, function: 0), kind: kind, secondaryBus: 2)
        function = try PCIFunction(requesterID: RequesterID(bus: 2, device: 3, function: 0), vendorID: 0x8086, deviceID: 0x100E,
                                   msi: MSIConfiguration(is64Bit: false, perVectorMasking: false))
        try rootComplex.attach(bridge)
        try rootComplex.attach(function, behind: bridge)
        // Linux pci_enable_device → pci_enable_bridge sets Bus Master on upstream bridges.
        bridge.configWrite(offset: ConfigRegister.command, size: 2, value: 0x6)
        function.configWrite(offset: ConfigRegister.command, size: 2, value: 0x6)
        let msi = try #require(function.msi)
        function.configWrite(offset: msi.addressLowOffset, size: 4, value: UInt32(doorbell))
        function.configWrite(offset: msi.dataOffset, size: 2, value: 0x5)
        function.configWrite(offset: msi.controlOffset, size: 2, value: 0x1)
    }
}

@Suite("DMA aliasing behind bridges (Linux pci_for_each_dma_alias)")
struct BridgeAliasTests {
    @Test("behind a PCIe-to-PCI bridge, the MSI carries DeviceID and StreamID of (secondary bus, devfn 0)")
    func pcieToPCIBridgeMSI() throws {
        let f = try BridgedFixture(kind: .pcieToPCI)
        let sent = try #require(f.function.raise(vector: 0).transaction)
        // search.c, PCI_EXP_TYPE_PCI_BRIDGE: PCI_DEVID(subordinate->number, PCI_DEVFN(0, 0)) = 0x0200,
        // not the function's 0x0218 and not the bridge's own 0x0008.
        #expect(sent.deviceID == DeviceID(0x0200))
        #expect(sent.streamID == StreamID(0x0200))
        #expect(sent.data == 0x5 && sent.address.rawValue == doorbell)
        #expect(f.rootComplex.requesterIDSeen(for: f.function).aliasedBy === f.bridge)
    }

    @Test("the alias is mapped like any RID: msi-map out-base applies to 0x0200")
    func aliasThroughMap() throws {
        let f = try BridgedFixture(kind: .pcieToPCI,
                                   msiMap: RequesterIDMap(entries: [.init(ridBase: 0, outputBase: 0x1_0000, length: 0x10000)]))
        #expect(f.function.raise(vector: 0).transaction?.deviceID == DeviceID(0x1_0200))
    }

    @Test("every function behind the bridge shares the alias; DMA is tagged the same way as MSI")
    func sharedAlias() throws {
        let f = try BridgedFixture(kind: .pcieToPCI)
        let sibling = try PCIFunction(requesterID: RequesterID(bus: 2, device: 4, function: 1), vendorID: 1, deviceID: 1)
        try f.rootComplex.attach(sibling, behind: f.bridge)
        sibling.configWrite(offset: ConfigRegister.command, size: 2, value: 0x4)
        sibling.dma(.write, address: IOVA(0x1000), size: 4, data: 1)
        f.function.dma(.read, address: IOVA(0x2000), size: 4)
        #expect(f.port.transactions.map(\.streamID) == [StreamID(0x200), StreamID(0x200)])
        #expect(f.port.transactions.map(\.deviceID) == [DeviceID(0x200), DeviceID(0x200)])
    }

    @Test("the alias follows the Secondary Bus Number software programs")
    func reprogrammedSecondaryBus() throws {
        let f = try BridgedFixture(kind: .pcieToPCI)
        f.bridge.configWrite(offset: ConfigRegister.secondaryBus, size: 1, value: 7)
        #expect(f.function.raise(vector: 0).transaction?.deviceID == DeviceID(0x0700))
    }

    @Test("other bridge kinds", arguments: [
        // conventional PCI bridge and PCI-to-PCIe bridge: the bridge's own RID (00:01.0 = 0x0008)
        (PCIToPCIBridge.Kind.conventionalPCI, UInt32(0x0008)),
        (.pciToPCIe, 0x0008),
        // PCIe ports do not alias: the function's own RID 02:03.0 = 0x0218
        (.rootPort, 0x0218),
        (.switchDownstreamPort, 0x0218),
    ])
    func otherKinds(kind: PCIToPCIBridge.Kind, expected: UInt32) throws {
        let f = try BridgedFixture(kind: kind)
        #expect(f.function.raise(vector: 0).transaction?.deviceID == DeviceID(expected))
    }

    @Test("with several bridges, the one nearest the root complex wins (get_msi_id_cb: the last alias seen)")
    func nestedBridges() throws {
        let rc = RootComplex()
        let port = RecordingPort()
        rc.upstream = port
        rc.iommuMap = .identity()
        let rootPort = try PCIToPCIBridge(requesterID: RequesterID(bus: 0, device: 1, function: 0), kind: .rootPort, secondaryBus: 1, subordinateBus: 3)
        let pciBridge = try PCIToPCIBridge(requesterID: RequesterID(bus: 1, device: 0, function: 0), kind: .pcieToPCI, secondaryBus: 2, subordinateBus: 3)
        let legacy = try PCIToPCIBridge(requesterID: RequesterID(bus: 2, device: 5, function: 0), kind: .conventionalPCI, secondaryBus: 3)
        let function = try PCIFunction(requesterID: RequesterID(bus: 3, device: 0, function: 0), vendorID: 1, deviceID: 1)
        try rc.attach(rootPort)
        try rc.attach(pciBridge, behind: rootPort)
        try rc.attach(legacy, behind: pciBridge)
        try rc.attach(function, behind: legacy)
        for b in [rootPort, pciBridge, legacy] { b.configWrite(offset: ConfigRegister.command, size: 2, value: 0x4) }
        function.configWrite(offset: ConfigRegister.command, size: 2, value: 0x4)
        // legacy bridge → 0x0228 (its own RID), then the PCIe-to-PCI bridge → 0x0200, root port keeps it.
        #expect(rc.requesterIDSeen(for: function).requesterID == RequesterID(0x0200))
        function.dma(.write, address: IOVA(0), size: 4)
        #expect(port.transactions.first?.streamID == StreamID(0x0200))
    }

    @Test("a bridge with Bus Master Enable clear does not forward upstream: the request is aborted (UR)")
    func bridgeBusMaster() throws {
        let f = try BridgedFixture(kind: .pcieToPCI)
        f.bridge.configWrite(offset: ConfigRegister.command, size: 2, value: 0)
        let outcome = f.function.raise(vector: 0)
        #expect(outcome.result?.status == .aborted)
        #expect(f.port.transactions.isEmpty)
    }

    @Test("the trace names the bridge that aliased the RID")
    func aliasTrace() throws {
        let f = try BridgedFixture(kind: .pcieToPCI)
        let log = TraceLog()
        f.rootComplex.trace = log
        f.function.raise(vector: 0)
        #expect(log.records.map(\.step) == ["RID 0x0218 aliased to 0x0200", "RID 0x0200 → StreamID 0x200, DeviceID 0x200"])
    }
}
