import Bus
import GIC
import SMMUv2
import Testing
@testable import Firmware
@testable import LinuxKernel

/// The arm-smmu driver model on SMMU architecture version 1 parts: the MMU-401 (ARM_SMMU_V1_64K)
/// as the Juno r2's PCIe SMMU reports itself, and a generic `arm,smmu-v1` (ARM_SMMU_V1) with
/// stage 1, checked against drivers/iommu/arm/arm-smmu/arm-smmu.c (v6.14-v7.0) and a Juno r2
/// boot log.
@Suite("arm-smmu driver: SMMUv1 (MMU-401, arm,smmu-v1)")
struct ArmSMMUv1DriverTests {
    static let smmuBase: UInt64 = 0x2B50_0000

    /// A kernel whose only IOMMU is `configuration` under a node with `compatible`, two
    /// interrupts and `#global-interrupts = <1>` (Juno's iommu@2b500000), probed.
    static func kernel(_ configuration: SMMUv2Configuration, compatible: [String]) throws -> (LinuxKernel, SMMUv2, SystemBus) {
        let bus = SystemBus()
        try bus.addRAM(base: PhysicalAddress(0x8000_0000), size: 0x400_0000, name: "ram")
        let smmu = SMMUv2(configuration: configuration, bus: bus)
        try bus.addDevice(smmu, base: PhysicalAddress(smmuBase), size: smmu.mmioSize, name: "smmu")
        let node = IOMMUDescription(path: "/iommu@2b500000", compatible: compatible,
                                    regions: [MemoryRange(base: PhysicalAddress(smmuBase), size: smmu.mmioSize)],
                                    iommuCells: 1, phandle: 1, enabled: true, globalInterrupts: 1, interruptCount: 2)
        let topology = Topology(memory: [MemoryRange(base: PhysicalAddress(0x8000_0000), size: 0x400_0000)], otherIOMMUs: [node])
        let kernel = LinuxKernel(topology: topology, bus: bus, cpuInterface: GICv3())
        try kernel.probeSMMUs()
        return (kernel, smmu, bus)
    }

    /// Stream 0 → S2CR0 → `bank`, written the way `arm_smmu_write_sme` would for an attached
    /// master, then a write of `address` from StreamID 0.
    static func write(_ bus: SystemBus, _ smmu: SMMUv2, bank: Int, address: UInt64) throws -> SMMUv2Response {
        try bus.write(PhysicalAddress(smmuBase + SMMUv2Register.s2crBase), size: 4, value: UInt64(bank))
        try bus.write(PhysicalAddress(smmuBase + SMMUv2Register.smrBase), size: 4, value: 1 << 31)
        return smmu.handle(DeviceTransaction(kind: .write, address: IOVA(address), size: 4, data: 0, streamID: StreamID(0), deviceID: DeviceID(0)))
    }

    @Test("\"arm,mmu-401\", \"arm,smmu-v1\" probes as ARM_SMMU_V1_64K and logs what a Juno r2 logs")
    func mmu401Probe() throws {
        let (kernel, _, _) = try Self.kernel(.mmu401, compatible: ["arm,mmu-401", "arm,smmu-v1"])
        let driver = try #require(kernel.armSMMUDrivers.first)
        #expect(driver.version == .v1With64KGranule)
        #expect(!driver.features.stage1 && driver.features.stage2)
        #expect(driver.features.aarch32Long && !driver.features.aarch32Short && driver.features.aarch64Granule64K)
        #expect(driver.features.vaSize == 40 && driver.features.ipaSize == 40 && driver.features.paSize == 40)
        #expect(driver.features.pageSizeBitmap == 0x6021_1000)
        #expect(driver.features.contextFormat == .aarch64)
        // The Juno r2's boot log (arm_smmu_device_cfg_probe), less its coherency line.
        let lines = kernel.log.lines.filter { $0.contains("arm-smmu") }
        for expected in ["SMMUv1 with:", "\tstage 2 translation", "\tstream matching with 32 register groups",
                         "\t4 context banks (4 stage-2 only)", "\tSupported page sizes: 0x60211000",
                         "\tStage-2: 40-bit IPA -> 40-bit PA"] {
            #expect(lines.contains { $0.hasSuffix(expected) }, "missing \(expected) in \(lines)")
        }
        #expect(!lines.contains { $0.contains("Stage-1:") || $0.contains("address translation ops") })
    }

    @Test("MMU-401 stage-2 domain: AArch64 format, no CBA2R, CBAR VMID and IRPTNDX, Linux's VTCR walked in its AArch32 form")
    func mmu401Domain() throws {
        let (kernel, smmu, bus) = try Self.kernel(.mmu401, compatible: ["arm,mmu-401", "arm,smmu-v1"])
        let driver = try #require(kernel.armSMMUDrivers.first)
        let domain = try driver.allocatePagingDomain(for: Device(name: "0000:00:01.0"), flags: [])
        let smmuDomain = try #require(domain.driverData as? ArmSMMUDomain)
        #expect(smmuDomain.stage == .stage2(vmid: 1))
        #expect(smmuDomain.format == .aarch64)
        #expect(smmuDomain.pageTable.inputBits == 40)
        // num_context_irqs = 2 interrupts − 1 global = 1, so IRPTNDX is always 0.
        #expect(smmuDomain.interruptIndex == 0)
        let bank = smmu.contextBanks[0]
        #expect(bank.cbar == SMMUv2Field.cbarTypeS2 << 16 | 1)        // TYPE S2, VMID 1, IRPTNDX 0
        #expect(bank.cba2r == 0)                                        // version 1: no CBA2R
        #expect(bank.tcr & 0x3F == 24 && bank.tcr >> 31 == 1)           // T0SZ 24 (AArch32: −8, S = 1), RES1
        #expect(bank.tcr >> 6 & 3 == 1)                                 // SL0: level 1
        try smmuDomain.map(iova: 0xFFFF_F000, physical: PhysicalAddress(0x2C1C_0000), size: 0x1000, protection: [.write, .mmio])
        #expect(try Self.write(bus, smmu, bank: 0, address: 0xFFFF_F040) == .translated(output: PhysicalAddress(0x2C1C_0040), contextBank: 0))
        #expect(smmu.tlbCount == 1)
        // Unmap + sync: arm_smmu_s2_tlb_ops_v1 invalidates by VMID (TLBIVMID), then a global sync.
        var gather = IOTLBGather()
        #expect(smmuDomain.unmap(iova: 0xFFFF_F000, size: 0x1000, gather: &gather) == 0x1000)
        smmuDomain.iotlbSync(gather)
        #expect(smmu.tlbCount == 0)
        guard case .terminated = try Self.write(bus, smmu, bank: 0, address: 0xFFFF_F040) else {
            Issue.record("the unmapped IOVA still translated"); return
        }
        #expect(smmu.contextBanks[0].fsr == SMMUv2Field.fsrTF)
        #expect(smmu.contextBanks[0].far == 0xFFFF_F040)
    }

    /// A generic SMMUv1 with stage 1 (the model's `smmuV1` configuration).
    @Test("\"arm,smmu-v1\" with stage 1: ARM_SMMU_CTX_FMT_AARCH32_L, ARM_32_LPAE_S1 (32-bit IAS), TTBCR.EAE, 32-bit TLBIVA")
    func aarch32Stage1Domain() throws {
        let (kernel, smmu, bus) = try Self.kernel(.smmuV1(windowSize: 0x1_0000), compatible: ["arm,smmu-v1"])
        let driver = try #require(kernel.armSMMUDrivers.first)
        #expect(driver.version == .v1)
        #expect(driver.features.contextFormat == .aarch32Long)
        #expect(driver.features.pageSizeBitmap == 0x4020_1000)           // SZ_4K | SZ_2M | SZ_1G
        #expect(kernel.log.lines.contains { $0.hasSuffix("\taddress translation ops") })   // v1 with stage 1
        let domain = try driver.allocatePagingDomain(for: Device(name: "dev"), flags: [])
        let smmuDomain = try #require(domain.driverData as? ArmSMMUDomain)
        #expect(smmuDomain.format == .aarch32Long)
        #expect(smmuDomain.pageTable.inputBits == 32 && smmuDomain.pageTable.outputBits == 40)
        #expect(domain.apertureEnd == 0xFFFF_FFFF)
        let bank = smmu.contextBanks[smmuDomain.contextBank]
        #expect(bank.type == SMMUv2Field.cbarTypeS1BypassS2)
        #expect(bank.tcr >> 31 == 1)                                    // EAE
        #expect(bank.tcr & 7 == 0)                                      // T0SZ[2:0]: the full 32-bit VA
        #expect(bank.tcr2 == 0 && bank.cba2r == 0)
        try smmuDomain.map(iova: 0x8000_0000, physical: PhysicalAddress(0x2C1C_0000), size: 0x1000, protection: [.read, .write])
        #expect(try Self.write(bus, smmu, bank: smmuDomain.contextBank, address: 0x8000_0010)
                == .translated(output: PhysicalAddress(0x2C1C_0010), contextBank: smmuDomain.contextBank))
        #expect(smmu.tlbCount == 1)
        // Unmap: the AArch32 TLBIVAL form (VA[31:12] | ASID) removes the entry.
        var gather = IOTLBGather()
        _ = smmuDomain.unmap(iova: 0x8000_0000, size: 0x1000, gather: &gather)
        smmuDomain.iotlbSync(gather)
        #expect(smmu.tlbCount == 0)
    }

    @Test("the IORT model field picks the version as acpi_smmu_get_data does; an unknown model binds nothing")
    func iortModels() {
        #expect(ArmSMMUVersion(iortModel: 0) == .v1)
        #expect(ArmSMMUVersion(iortModel: 1) == .v2)
        #expect(ArmSMMUVersion(iortModel: 2) == .v1)
        #expect(ArmSMMUVersion(iortModel: 3) == .v2)
        #expect(ArmSMMUVersion(iortModel: 4) == .v1With64KGranule)
        #expect(ArmSMMUVersion(iortModel: 5) == .v2)
        #expect(ArmSMMUVersion(iortModel: 6) == nil)
        var node = IOMMUDescription(path: "IORT@0x30 SMMUv1/v2", compatible: [], regions: [], iommuCells: nil, phandle: nil, enabled: true)
        #expect(!node.isArmSMMU)
        node.iortModel = 4
        #expect(node.armSMMUVersion == .v1With64KGranule)
        node.iortModel = 7
        #expect(!node.isArmSMMU)
    }
}
