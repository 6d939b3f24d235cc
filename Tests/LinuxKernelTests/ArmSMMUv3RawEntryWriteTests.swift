import Testing
import Bus
import PCI
import SMMUv3
@testable import LinuxKernel

/// `overwriteStreamTableEntries` / `overwriteContextDescriptor` on a host SMMU: the words land
/// in the table as given, the SMMU is told with the commands Linux uses, and the hardware then
/// answers for the garbage itself.
@Suite("arm-smmu-v3: raw STE/CD overwrite (adversarial helper)")
struct ArmSMMUv3RawEntryWriteTests {
    @Test("an STE with V = 0 written over the device's: the table holds exactly those words, CFGI_STE(leaf) + CMD_SYNC were issued, and the next DMA is C_BAD_STE (§5.2: V = 0 is ILLEGAL)")
    func invalidSTE() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let smmu = try #require(k.iommu.driver(for: pci.device))
        try k.pci.enableDevice(pci)
        try k.pci.setMaster(pci)
        let buffer = try k.pages.allocate(bytes: 0x1000)
        let iova = try k.dma.map(device: pci.device, physical: buffer, size: 0x1000, direction: .fromDevice)
        var words = try #require(try smmu.streamTableEntry(for: StreamID(8))).words
        words[0] &= ~1
        smmu.resetCommandLog()
        try smmu.overwriteStreamTableEntries(of: pci.device, with: words)
        #expect(try smmu.streamTableEntry(for: StreamID(8))?.words == words)
        #expect(smmu.commandLog.first == .cfgiSTE(StreamID(8), leaf: true))
        #expect(smmu.commandLog.count == 2 && smmu.commandLog.last?.opcode == .sync, "arm_smmu_sync_ste_for_sid: CFGI_STE then CMD_SYNC")
        #expect(h.functions[0].dma(.write, address: iova, size: 4, data: 1).result?.status == .aborted)
        #expect(try smmu.serviceEventQueue().map(\.eventID) == [0x04])
    }

    @Test("a CD written over SSID 0's: the words land in the CD table, CFGI_CD(sid, 0, leaf) + SYNC; an invalid CD (V = 0) makes the next DMA C_BAD_CD")
    func invalidCD() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let smmu = try #require(k.iommu.driver(for: pci.device))
        try k.pci.enableDevice(pci)
        try k.pci.setMaster(pci)
        let buffer = try k.pages.allocate(bytes: 0x1000)
        let iova = try k.dma.map(device: pci.device, physical: buffer, size: 0x1000, direction: .fromDevice)
        var cd = try #require(try smmu.contextDescriptor(for: pci.device))
        cd.valid = false
        smmu.resetCommandLog()
        try smmu.overwriteContextDescriptor(of: pci.device, with: cd.words)
        #expect(try smmu.contextDescriptor(for: pci.device) == cd)
        #expect(smmu.commandLog.first == .cfgiCD(StreamID(8), SubstreamID(0), leaf: true) && smmu.count(of: .sync) == 1)
        #expect(h.functions[0].dma(.write, address: iova, size: 4, data: 1).result?.status == .aborted)
        #expect(try smmu.serviceEventQueue().map(\.eventID) == [0x0A])
    }

    @Test("bad calls: not 8 words is EINVAL; a device the SMMU does not translate is ENODEV; nothing is written")
    func badCalls() throws {
        let h = try HostHarness.make()
        let k = h.kernel
        let pci = try #require(HostScenario.pciDevice(h, 0))
        let smmu = try #require(k.iommu.driver(for: pci.device))
        let ste = try smmu.streamTableEntry(for: StreamID(8))
        #expect(throws: Errno.EINVAL) { try smmu.overwriteStreamTableEntries(of: pci.device, with: [1, 2, 3]) }
        #expect(throws: Errno.EINVAL) { try smmu.overwriteContextDescriptor(of: pci.device, with: []) }
        #expect(throws: Errno.ENODEV) { try smmu.overwriteStreamTableEntries(of: Device(name: "stray"), with: [UInt64](repeating: 0, count: 8)) }
        #expect(try smmu.streamTableEntry(for: StreamID(8)) == ste)
    }
}
