import Bus
import GIC
import SMMUv2
import Testing
@testable import Firmware
@testable import LinuxKernel

/// The arm-smmu driver model against SMMUv2s configured unlike the board's MMU-500: the choices
/// `arm_smmu_device_cfg_probe` and `arm_smmu_init_domain_context` make from the ID registers.
@Suite("arm-smmu driver: probe and domain context from the ID registers")
struct ArmSMMUDriverTests {
    static let smmuBase: UInt64 = 0x0500_0000

    /// A kernel whose only IOMMU is an SMMUv2 with `configuration`, probed.
    static func kernel(_ configuration: SMMUv2Configuration) throws -> (LinuxKernel, SMMUv2) {
        let bus = SystemBus()
        try bus.addRAM(base: PhysicalAddress(0x8000_0000), size: 0x400_0000, name: "ram")
        let smmu = SMMUv2(configuration: configuration, bus: bus)
        try bus.addDevice(smmu, base: PhysicalAddress(smmuBase), size: smmu.mmioSize, name: "smmu")
        let node = IOMMUDescription(path: "/smmu@5000000", compatible: ["arm,smmu-v2"],
                                    regions: [MemoryRange(base: PhysicalAddress(smmuBase), size: smmu.mmioSize)],
                                    iommuCells: 1, phandle: 1, enabled: true)
        let topology = Topology(memory: [MemoryRange(base: PhysicalAddress(0x8000_0000), size: 0x400_0000)], otherIOMMUs: [node])
        let kernel = LinuxKernel(topology: topology, bus: bus, cpuInterface: GICv3())
        try kernel.probeSMMUs()
        return (kernel, smmu)
    }

    @Test("an SMMU with stage 2 only gets stage-2 domains: bank from 0, VMID = bank + 1, VTCR and VTTBR programmed")
    func stage2Only() throws {
        var configuration = SMMUv2Configuration.fitting(windowSize: 0x1_0000)
        configuration.stage1 = false
        let (kernel, smmu) = try Self.kernel(configuration)
        let driver = try #require(kernel.armSMMUDrivers.first)
        #expect(!driver.features.stage1 && driver.features.stage2)
        let domain = try driver.allocatePagingDomain(for: Device(name: "dev"), flags: [])
        let smmuDomain = try #require(domain.driverData as? ArmSMMUDomain)
        #expect(smmuDomain.contextBank == 0)
        #expect(smmuDomain.stage == .stage2(vmid: 1))
        let bank = smmu.contextBanks[0]
        #expect(bank.type == SMMUv2Field.cbarTypeS2)
        #expect(bank.ttbr0 == smmuDomain.pageTable.root.rawValue)
        #expect(bank.tcr >> 31 == 1)                                   // VTCR RES1
        #expect(Int(bank.tcr & 0x3F) == 64 - smmuDomain.pageTable.inputBits)
        #expect(bank.sctlr & 1 == 1)
        // A second domain takes the next bank; freeing the first disables its bank.
        let second = try driver.allocatePagingDomain(for: Device(name: "dev2"), flags: [])
        #expect((second.driverData as? ArmSMMUDomain)?.contextBank == 1)
        driver.freePagingDomain(domain)
        #expect(smmu.contextBanks[0].sctlr == 0)
        #expect(driver.contextMap[0] == false)
    }

    @Test("stage-1 banks start after NUMS2CB; context banks run out with -ENOSPC")
    func contextBankAllocation() throws {
        var configuration = SMMUv2Configuration.fitting(windowSize: 0x1_0000)   // 8 banks
        configuration.stage2OnlyContextBanks = 2
        let (kernel, smmu) = try Self.kernel(configuration)
        let driver = try #require(kernel.armSMMUDrivers.first)
        var banks: [Int] = []
        for i in 0..<6 {
            let domain = try driver.allocatePagingDomain(for: Device(name: "dev\(i)"), flags: [])
            banks.append(try #require(domain.driverData as? ArmSMMUDomain).contextBank)
        }
        #expect(banks == [2, 3, 4, 5, 6, 7])
        #expect(smmu.contextBanks[2].type == SMMUv2Field.cbarTypeS1BypassS2)
        #expect(smmu.contextBanks[2].va64)
        #expect(smmu.contextBanks[2].ttbr0 >> 48 == 2)                 // ASID = bank
        #expect(throws: Errno.ENOSPC) { _ = try driver.allocatePagingDomain(for: Device(name: "dev6"), flags: []) }
    }

    @Test("stream indexing (IDR0.SMS clear): no SMRs, the StreamID is the S2CR index")
    func streamIndexing() throws {
        var configuration = SMMUv2Configuration.fitting(windowSize: 0x1_0000)
        configuration.streamMatching = false
        configuration.streamIDBits = 6
        let (kernel, _) = try Self.kernel(configuration)
        let driver = try #require(kernel.armSMMUDrivers.first)
        #expect(driver.smrs == nil)
        #expect(driver.features.mappingGroups == 64)
        #expect(driver.findStreamMapEntry(id: 0x2A, mask: 0) == .success(0x2A))
    }

    @Test("an SMMU without translation fails the probe (\"no translation support!\")")
    func noTranslation() throws {
        var configuration = SMMUv2Configuration.fitting(windowSize: 0x1_0000)
        configuration.stage1 = false
        configuration.stage2 = false
        let (kernel, _) = try Self.kernel(configuration)
        #expect(kernel.armSMMUDrivers.isEmpty)
        #expect(kernel.log.lines.contains { $0.contains("no translation support!") })
    }
}
