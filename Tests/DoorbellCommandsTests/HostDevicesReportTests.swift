import Testing
import LinuxKernel
import PCI
import Report
@testable import DoorbellCommands

/// `doorbell host --device …`: several functions, enumerated, grouped and given vectors as
/// Linux does it. Every expected value is derived in the comments from the kernel's rules on
/// the qemu-virt preset (iommu-map and msi-map the identity on RIDs, one SMMUv3, one ITS).
@Suite("doorbell host: several devices")
struct HostDevicesReportTests {
    func specs(_ texts: [String]) throws -> [HostDeviceSpec] { try texts.map { try HostDeviceSpec.parse($0) } }

    @Test("three functions, one behind a root port and one behind a PCIe-to-PCI bridge: probe order, RIDs, StreamIDs, DeviceIDs, groups, vectors")
    func threeDevices() throws {
        let report = try HostDevicesReport.make(
            platform: try PlatformOptions.parse(["--platform", "qemu-virt"]),
            devices: try specs(["00:01.0", "01:00.0,vectors=3", "02:01.0,behind=pcie-to-pci-bridge,interrupts=msi,vectors=4"]),
            configuration: KernelConfiguration())
        // Bridges: bus 1's root port is created first (00:1f.0), bus 2's PCIe-to-PCI bridge next
        // (00:1e.0). pci_scan_child_bus: bus 0 by devfn (00:01.0, 00:1e.0, 00:1f.0), then each
        // bridge's secondary bus in that order (02:01.0 under 00:1e.0, then 01:00.0 under 00:1f.0).
        #expect(report.entries.map(\.name) == ["0000:00:01.0", "0000:00:1e.0", "0000:00:1f.0", "0000:02:01.0", "0000:01:00.0"])
        let byName = Dictionary(uniqueKeysWithValues: report.entries.map { ($0.name, $0) })
        let ep0 = try #require(byName["0000:00:01.0"])
        let pciBridge = try #require(byName["0000:00:1e.0"])
        let rootPort = try #require(byName["0000:00:1f.0"])
        let conventional = try #require(byName["0000:02:01.0"])
        let nvme = try #require(byName["0000:01:00.0"])
        // Groups (iommu_group_alloc's ida, in iommu_probe_device order = the order above):
        // 00:01.0 on the root bus → new group 0; 00:1e.0 → new group 1; 00:1f.0 → new group 2.
        // 02:01.0: pci_for_each_dma_alias reaches 00:1e.0 (PCIe-to-PCI: alias 02:00.0), which
        // has a group → group 1. 01:00.0: the root port produces no alias; upstream,
        // pci_acs_path_enabled fails (no ACS) so the root port's group 2 is taken.
        #expect(ep0.group == 0)
        #expect(pciBridge.group == 1 && conventional.group == 1)
        #expect(rootPort.group == 2 && nvme.group == 2)
        #expect(conventional.groupDevices == ["0000:00:1e.0", "0000:02:01.0"])
        // Default domain: dma-strict → IOMMU_DOMAIN_DMA, sysfs "DMA"; reserved: the SMMU
        // driver's software MSI window (arm_smmu_get_resv_regions: MSI_IOVA_BASE 0x0800_0000,
        // 1 MiB).
        for entry in report.entries {
            #expect(entry.defaultDomainType == "DMA")
            #expect(entry.reservedRegions == ["0x0000000008000000 0x00000000080fffff msi"])
        }
        // RIDs and IDs: identity iommu-map/msi-map. 02:01.0's fwspec gets one StreamID per DMA
        // alias (of_pci_iommu_init per pci_for_each_dma_alias step: 0x208 then 0x200); its
        // DeviceID is the last alias (get_msi_id_cb keeps the one that crosses buses): 0x200.
        #expect(ep0.streamIDs == [0x8] && ep0.deviceID == 0x8)
        #expect(conventional.wireRequesterID == RequesterID(bus: 2, device: 0, function: 0))
        #expect(conventional.streamIDs == [0x208, 0x200] && conventional.deviceID == 0x200)
        #expect(nvme.wireRequesterID == nvme.requesterID && nvme.streamIDs == [0x100] && nvme.deviceID == 0x100)
        // Vectors: MSI-X for 00:01.0 (4) and 01:00.0 (3); MSI with 4 messages for 02:01.0. Each
        // group has its own DMA domain whose first IOVA page below 4 GiB is 0xFFFF_F000, so every
        // doorbell reads 0xFFFF_F040 (GITS_TRANSLATER at 0x0809_0040). LPIs from 8192 in driver
        // bind order (the probe order): 00:01.0 8192–8195, 02:01.0 8196–8199, 01:00.0 8200–8202.
        // Data is the EventID: MSI-X entry i, MSI base 0 | vector.
        #expect(ep0.interruptMode == "MSI-X" && conventional.interruptMode == "MSI" && nvme.interruptMode == "MSI-X")
        #expect(ep0.vectors.map(\.lpi) == [8192, 8193, 8194, 8195])
        #expect(conventional.vectors.map(\.lpi) == [8196, 8197, 8198, 8199])
        #expect(nvme.vectors.map(\.lpi) == [8200, 8201, 8202])
        for entry in [ep0, conventional, nvme] {
            #expect(entry.vectors.allSatisfy { $0.address == 0xFFFF_F040 && $0.cpu == 0 })
            #expect(entry.vectors.map(\.data) == (0..<UInt32(entry.vectors.count)).map { $0 })
        }
        #expect(report.text.contains("requests carry 02:00.0 (PCIe-to-PCI bridge alias)"))
    }

    @Test("interrupts=intx: each function's INTx is raised once, taken on CPU 0 as its SPI's INTID, handled once and left inactive")
    func intxHandledOnCPU() throws {
        let report = try HostDevicesReport.make(
            platform: try PlatformOptions.parse(["--platform", "qemu-virt"]),
            devices: try specs(["00:02.0,interrupts=intx", "01:01.0,interrupts=intx"]),
            configuration: KernelConfiguration())
        let byName = Dictionary(uniqueKeysWithValues: report.entries.map { ($0.name, $0) })
        // 00:02.0 INTA: slot 2 → SPI 3 + (0 + 2) % 4 = 5, INTID 37. 01:01.0 INTA behind the
        // root port 00:1f.0: swizzled to INTB at slot 31 → SPI 3 + (1 + 31) % 4 = 3, INTID 35.
        for (name, intid) in [("0000:00:02.0", UInt32(37)), ("0000:01:01.0", 35)] {
            let entry = try #require(byName[name])
            #expect(entry.interruptMode == "INTx")
            #expect(entry.intx?.intid == intid)
            let handled = try #require(entry.intxHandled)
            #expect(handled.cpu == 0 && handled.intid == intid && handled.runs == 1 && !handled.active, "\(name)")
        }
        #expect(report.text.contains("INTx raised: CPU 0 took INTID 37 (ICC_IAR1_EL1), the handler ran 1 time(s)"))
    }

    @Test("bad --device specs are refused with the reason", arguments: [
        ("00:01.0,behind=root-port", "on bus 0"),
        ("01:00.0,interrupts=msi,vectors=3", "MSI vectors"),
        ("01:00.0,colour=red", "unknown key"),
        ("1:0.9", "function 9"),
        ("00:01.0,interrupts=intx,vectors=2", "one interrupt"),
    ])
    func badSpecs(text: String, reason: String) {
        #expect { try HostDeviceSpec.parse(text) } throws: { "\($0)".contains(reason) }
    }
}
