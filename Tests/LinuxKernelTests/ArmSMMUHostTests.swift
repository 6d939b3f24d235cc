import Bus
import Firmware
import Machine
import PCI
import SMMUv2
import Testbed
import Testing
@testable import LinuxKernel

/// The arm-smmu driver model (drivers/iommu/arm/arm-smmu/arm-smmu.c) on the NXP LS1028A board
/// fixture: an MMU-500 at 0x0500_0000 (`stream-match-mask` 0x7c00) translating the ECAM RCiEP
/// host bridge, whose `iommu-map` and `msi-map` send RIDs 0…13 to IDs 0x17…0x24.
@Suite("arm-smmu (SMMUv2) host driver")
struct ArmSMMUHostTests {
    static let board = "boards/freescale_fsl-ls1028a-rdb.dtb"

    struct Booted {
        let machine: Machine
        let kernel: LinuxKernel
        let function: PCIFunction
        let device: PCIDevice
    }

    static func boot(rid: RequesterID = RequesterID(bus: 0, device: 1, function: 0)) throws -> Booted {
        let machine = try Machine(topology: try Topology(dtb: try HostScenario.fixture(board)), name: board)
        let function = try PCIFunction(name: "endpoint", requesterID: rid, vendorID: 0x1AF4, deviceID: 0x1041,
                                       bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                       msix: MSIXConfiguration(tableSize: 4))
        try machine.rootComplexes[0].attach(function)
        let kernel = try HostMachine(machine).bootHost()
        guard let device = kernel.pci.device(rid, hostBridge: machine.hostBridgeIndices[0]) else {
            let log = kernel.log.lines.joined(separator: "\n")
            Issue.record(Comment(rawValue: "\(rid.hex) not enumerated:\n\(log)"))
            throw HostScenario.FixtureMissing(path: board)
        }
        return Booted(machine: machine, kernel: kernel, function: function, device: device)
    }

    @Test("probe: IDRs decoded as arm_smmu_device_cfg_probe does; reset leaves sCR0 with CLIENTPD clear, USFCFG set")
    func probe() throws {
        let booted = try Self.boot()
        let driver = try #require(booted.kernel.armSMMUDrivers.first)
        #expect(driver.features.stage1 && driver.features.stage2)
        #expect(driver.features.mappingGroups == 64 && driver.features.contextBanks == 64)
        #expect(driver.features.pageShift == 16 && driver.features.numPage == 64)
        #expect(driver.features.streamIDMask == 0x7FFF && driver.features.smrMaskMask == 0x7FFF)
        let smmu = try #require(booted.machine.smmuV2s.first)
        #expect(smmu.sCR0 & 1 == 0)
        #expect(smmu.sCR0 & (1 << 10) != 0)
        #expect(!booted.kernel.log.lines.contains { $0.contains("differs from mapped region size") })
    }

    @Test("the device's fwid carries stream-match-mask; its SME is SMR ID 0x1f (RID 8 + 0x17) MASK 0x7c00 → a stage-1 context bank")
    func streamMapEntry() throws {
        let booted = try Self.boot()
        let driver = try #require(booted.kernel.armSMMUDrivers.first)
        let fwspec = try #require(booted.device.device.iommu)
        #expect(fwspec.smmuV2)
        #expect(fwspec.streamIDs == [StreamID(0x1F | 0x7C00 << 16)])
        let master = try #require(fwspec.driverData as? ArmSMMUMaster)
        let idx = try #require(master.streamMapEntries.first)
        #expect(driver.smrs?[idx] == ArmSMMUDriver.StreamMatchRegister(id: 0x1F, mask: 0x7C00, valid: true))
        // The default DMA domain took a stage-1 context bank: S2CR → translate, CBNDX = its bank.
        let domain = try #require(booted.kernel.iommu.domain(for: booted.device.device))
        let smmuDomain = try #require(domain.driverData as? ArmSMMUDomain)
        #expect(smmuDomain.stage == .stage1(asid: UInt16(smmuDomain.contextBank)))
        let smmu = try #require(booted.machine.smmuV2s.first)
        #expect(smmu.s2cr[idx] == UInt32(smmuDomain.contextBank))
        #expect(smmu.smr[idx] == 1 << 31 | 0x7C00 << 16 | 0x1F)
        #expect(smmu.contextBanks[smmuDomain.contextBank].sctlr & 1 == 1)
        #expect(smmu.contextBanks[smmuDomain.contextBank].type == SMMUv2Field.cbarTypeS1BypassS2)
    }

    @Test("find_sme: an entry covered by an existing SMR is shared; a partial overlap is -EINVAL; release frees it")
    func findStreamMapEntry() throws {
        let booted = try Self.boot()
        let driver = try #require(booted.kernel.armSMMUDrivers.first)
        let master = try #require(booted.device.device.iommu?.driverData as? ArmSMMUMaster)
        let idx = try #require(master.streamMapEntries.first)
        // 0x41f is inside ID 0x1f MASK 0x7c00: the same entry.
        #expect(driver.findStreamMapEntry(id: 0x41F, mask: 0) == .success(idx))
        // ID 0x10 MASK 0x0f overlaps 0x1f/0x7c00 at StreamID 0x1f without being covered.
        #expect(driver.findStreamMapEntry(id: 0x10, mask: 0xF) == .failure(.EINVAL))
        // A disjoint ID takes the first free entry.
        #expect(driver.findStreamMapEntry(id: 0x20, mask: 0) == .success(idx == 0 ? 1 : 0))
        booted.kernel.iommu.releaseDevice(booted.device.device)
        #expect(driver.smrs?[idx].valid == false)
        #expect(driver.s2crs[idx].count == 0)
        #expect(booted.machine.smmuV2s[0].smr[idx] & (1 << 31) == 0)
        #expect(booted.machine.smmuV2s[0].s2cr[idx] >> 16 == SMMUv2Field.s2crTypeFault)
    }

    @Test("reserved regions: the SW_MSI window 0x8000000 + 1 MiB, as arm_smmu_get_resv_regions reports")
    func reservedRegions() throws {
        let booted = try Self.boot()
        let regions = booted.kernel.iommu.reservedRegions(for: booted.device.device)
        #expect(regions.first == ReservedRegion(start: 0x0800_0000, length: 0x10_0000, protection: [.write, .noExec, .mmio], type: .swMSI))
    }

    @Test("a driver's MSI-X vector is delivered through the context bank: the message IOVA maps the ITS page")
    func msiDelivered() throws {
        let booted = try Self.boot()
        let counter = HostScenario.Counter()
        let irqs = try HostScenario.probe(booted.kernel, booted.device, counter: counter)
        let (address, _) = HostScenario.entry(booted.function, 2)
        let domain = try #require(booted.kernel.iommu.domain(for: booted.device.device))
        let its = try #require(booted.machine.its.first)
        #expect(domain.operations?.iovaToPhys(address & ~0xFFF)?.rawValue == its.translaterAddress.rawValue & ~0xFFF)
        #expect(address != its.translaterAddress.rawValue)
        let journal = Journal()
        booted.machine.journal = journal
        _ = booted.function.raise(vector: 2)
        booted.machine.journal = nil
        for cpu in 0..<max(1, booted.machine.topology.cpus.count) { _ = booted.kernel.irq.handleInterrupts(cpu: cpu) }
        #expect(counter.values[irqs[2]] == 1)
        #expect(journal.entries.contains { entry in
            if case .smmuTranslated(let input, _, let output, true, false) = entry {
                return input == address && output == its.translaterAddress.rawValue
            }
            return false
        })
    }

    @Test("no nesting on an SMMUv2: a nest-parent allocation is -EOPNOTSUPP with a refusal naming arm-smmu; no vSMMU driver")
    func noNesting() throws {
        let booted = try Self.boot()
        #expect(throws: Errno.EOPNOTSUPP) {
            _ = try booted.kernel.iommu.allocateDomain(for: booted.device.device, flags: .nestParent)
        }
        #expect(booted.kernel.refusals.all.last?.reason.contains("no nested translation for SMMUv2") == true)
        #expect(booted.kernel.iommu.driver(for: booted.device.device) == nil)
        #expect(booted.kernel.iommu.ops(for: booted.device.device) is ArmSMMUDriver)
    }
}
