import Bus
import Foundation
import LinuxKernel
import PCI
import Testing
@testable import Scenario

/// `Tests/Fixtures/scenarios/guest-machine.yaml`: a VM laid out as a real machine (a virtio
/// function at 00:03.0 enabling 3 of its 4 MSI-X vectors, an NVMe function behind a root port
/// with managed affinity, an MSI-only SATA controller behind a PCIe-to-PCI bridge). Every
/// expected value below is derived from Linux's and QEMU's rules, in the comments, not read
/// from the model.
@Suite struct GuestMachineScenarioTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/scenarios/guest-machine.yaml").path

    /// One row of the expectation: device, vector, guest RID, guest (v)ITS DeviceID, MSI data,
    /// LPI, vCPU.
    struct Row: Equatable, CustomStringConvertible {
        var device: Int, vector: Int, rid: String, deviceID: UInt32, data: UInt32, lpi: UInt32, cpu: Int
        var description: String { "d\(device) v\(vector) \(rid) devid \(deviceID) data \(data) lpi \(lpi) cpu \(cpu)" }
    }

    /// The guest kernel's choices, vector by vector.
    ///
    /// Address: each guest function is in its own IOMMU group with its own DMA domain (00:03.0
    /// alone; 01:00.0 with its root port, which has no ACS; 02:01.0 with the PCIe-to-PCI bridge
    /// that aliases it), so each domain's MSI cookie maps the vITS doorbell page once.
    /// `iommu_dma_get_msi_page` → `iommu_dma_alloc_iova` tries below 4 GiB first for a PCI
    /// device and the IOVA allocator is top-down: page 0xffff_f000; plus the doorbell's offset
    /// in its page: QEMU virt's ITS at 0x0808_0000, GITS_TRANSLATER at +0x1_0040, so 0x040.
    /// → 0xffff_f040 for every vector.
    ///
    /// DeviceID (`pci_msi_domain_get_msi_rid`, the IORT's identity mapping): 00:03.0 → 0x18;
    /// 01:00.0 → 0x100 (a root port does not alias); 02:01.0 → its bridge's alias, (secondary
    /// bus 2, devfn 0) = 0x200 (`pci_for_each_dma_alias`, PCIe-to-PCI bridge spec §2.3).
    ///
    /// LPIs (`its_lpi_alloc`, first fit from 8192; `its_pci_msi_prepare` sizes each device
    /// max(nvec, table size) rounded up to a power of two): virtio 4 → 8192-8195, events 0-2;
    /// NVMe 3 → 4 → 8196-8199, events 0-2; SATA MSI 4 → 8200-8203, one aligned run of 4 events
    /// whose data is the first event (0) with the vector number in the low bits.
    ///
    /// CPUs (`its_select_cpu` → `cpumask_pick_least_loaded`, separate managed and unmanaged
    /// counts, lowest CPU on a tie; activation at allocation over `cpu_online_mask`, then
    /// `its_set_affinity` at `request_irq` over the interrupt's mask):
    /// - virtio, 3 unmanaged: 0, 1, 0 — unmanaged counts (2, 1).
    /// - NVMe, `pre_vectors` 1, 3 vectors: `irq_create_affinity_masks` leaves vector 0 on every
    ///   CPU (unmanaged) and spreads vectors 1-2 over the 2 vCPUs (`group_cpus_evenly`: {0},
    ///   {1}), managed. Vector 0: least loaded unmanaged of (2, 1) → 1, counts (2, 2). Vectors
    ///   1 and 2 end on their own masks → 0 and 1.
    /// - SATA, 4 unmanaged from (2, 2): 0, 1, 0, 1.
    static let expected: [Row] = [
        Row(device: 0, vector: 0, rid: "00:03.0", deviceID: 0x18, data: 0, lpi: 8192, cpu: 0),
        Row(device: 0, vector: 1, rid: "00:03.0", deviceID: 0x18, data: 1, lpi: 8193, cpu: 1),
        Row(device: 0, vector: 2, rid: "00:03.0", deviceID: 0x18, data: 2, lpi: 8194, cpu: 0),
        Row(device: 1, vector: 0, rid: "01:00.0", deviceID: 0x100, data: 0, lpi: 8196, cpu: 1),
        Row(device: 1, vector: 1, rid: "01:00.0", deviceID: 0x100, data: 1, lpi: 8197, cpu: 0),
        Row(device: 1, vector: 2, rid: "01:00.0", deviceID: 0x100, data: 2, lpi: 8198, cpu: 1),
        Row(device: 2, vector: 0, rid: "02:01.0", deviceID: 0x200, data: 0, lpi: 8200, cpu: 0),
        Row(device: 2, vector: 1, rid: "02:01.0", deviceID: 0x200, data: 1, lpi: 8201, cpu: 1),
        Row(device: 2, vector: 2, rid: "02:01.0", deviceID: 0x200, data: 2, lpi: 8202, cpu: 0),
        Row(device: 2, vector: 3, rid: "02:01.0", deviceID: 0x200, data: 3, lpi: 8203, cpu: 1),
    ]

    @Test("the fixture reads as written and renders back to the same description")
    func fixtureReads() throws {
        let s = try ScenarioFile.load(path: Self.fixture)
        #expect(s.devices.map(\.guestRequesterID) == [RequesterID(bus: 0, device: 3, function: 0),
                                                      RequesterID(bus: 1, device: 0, function: 0),
                                                      RequesterID(bus: 2, device: 1, function: 0)])
        #expect(s.devices.map(\.guestBridge) == [nil, .rootPort, .pcieToPCIBridge])
        #expect(s.devices.map(\.activeVectors) == [3, 3, 4])
        #expect(s.devices[1].affinity == .managed && s.devices[1].preVectors == 1)
        #expect(try ScenarioFile.parse(ScenarioFile.render(s)) == s)
    }

    @Test("each vector's address, data, LPI and vCPU are the ones Linux chooses, and each arrives")
    func everyVector() throws {
        var description = try ScenarioFile.load(path: Self.fixture)
        description.strategies = [.rmrIdentity]
        var rows: [Row] = []
        var addresses: Set<UInt64> = []
        var managed: [Bool] = []
        let run = ScenarioRunner.run(description, strategy: .rmrIdentity) { world, _ in
            for (d, g) in world.guestDevices.enumerated() {
                for v in 0..<description.devices[d].activeVectors {
                    guard let irq = try? world.guest.pci.irqVector(g, v), let desc = world.guest.irq.descriptor(irq) else { continue }
                    if d == 1 { managed.append(desc.isManaged) }
                }
            }
        }
        #expect(run.setupFailure == nil)
        for o in run.outcomes {
            let (expected, rid, deviceID, data) = (try #require(o.expected), try #require(o.guestRequesterID),
                                                   try #require(o.guestDeviceID), try #require(o.guestData))
            rows.append(Row(device: o.device, vector: o.vector, rid: rid.description, deviceID: deviceID, data: data,
                            lpi: expected.lpi, cpu: expected.cpu))
            addresses.insert(try #require(o.guestAddress))
            #expect(o.delivered, "device \(o.device) vector \(o.vector): \(o.verdict)")
            #expect(o.handled.map(\.cpu) == [expected.cpu])
        }
        #expect(rows == Self.expected)
        #expect(addresses == [0xFFFF_F040])
        // NVMe: the admin queue's vector (pre_vectors) unmanaged, the I/O queues' managed.
        #expect(managed == [false, true, true])
        #expect(run.violations.isEmpty, "\(run.violations)")
    }

    @Test("behind the PCIe-to-PCI bridge: the alias is the vSMMU StreamID and KVM's devid, and the bridge's IOMMU group")
    func bridgeAlias() throws {
        var description = try ScenarioFile.load(path: Self.fixture)
        description.strategies = [.rmrIdentity]
        let world = try World.build(description, strategy: .rmrIdentity)
        let sata = RequesterID(bus: 2, device: 1, function: 0)
        let alias = RequesterID(bus: 2, device: 0, function: 0)
        // QEMU `pci_requester_id` / `pci_device_get_iommu_bus_devfn`: (secondary bus, 00.0).
        #expect(world.vmm.requesterIDSeen(guestRequesterID: sata) == alias)
        #expect(world.vmm.requesterIDSeen(guestRequesterID: RequesterID(bus: 1, device: 0, function: 0))
            == RequesterID(bus: 1, device: 0, function: 0))
        // Every KVM route of the SATA function carries devid 0x200.
        let routes = world.vmm.devices[2].vectors.values.map(\.route.devid)
        #expect(!routes.isEmpty && routes.allSatisfy { $0 == 0x200 })
        // The guest: the function's DMA aliases are its own RID then the bridge's alias; its
        // fwspec has both StreamIDs; it shares the IOMMU group of the bridge (00:1e.0, the
        // second bridge from the top of bus 0), which is what `pci_device_group` returns for
        // the device that produced the alias.
        let g = try #require(world.guest.pci.device(sata))
        #expect(g.dmaAliases == [sata, alias])
        #expect(g.device.iommu?.streamIDs.map(\.rawValue) == [0x208, 0x200])  // 02:01.0 = 2 << 8 | 1 << 3
        let bridge = try #require(world.guest.pci.device(RequesterID(bus: 0, device: 0x1E, function: 0)))
        #expect(bridge.expressPortType == 0x7)
        #expect(g.device.iommu?.group != nil && g.device.iommu?.group === bridge.device.iommu?.group)
        // The NVMe function behind its root port (no ACS) shares the root port's group.
        let nvme = try #require(world.guest.pci.device(RequesterID(bus: 1, device: 0, function: 0)))
        let port = try #require(world.guest.pci.device(RequesterID(bus: 0, device: 0x1F, function: 0)))
        #expect(port.expressPortType == 0x4)
        #expect(nvme.device.iommu?.group != nil && nvme.device.iommu?.group === port.device.iommu?.group)
    }

    @Test("a host function behind a PCIe-to-PCI bridge: the SMMU sees the alias, the group is the bridge's")
    func hostBridgeAlias() throws {
        var description = ScenarioDescription(name: "host-bridge", vm: VMOptions(viommu: .none),
                                              devices: [DeviceDescription(requesterID: RequesterID(bus: 1, device: 2, function: 0),
                                                                          hostBridge: .pcieToPCIBridge)])
        description.strategies = [.rmrIdentity]
        let world = try World.build(description, strategy: .rmrIdentity)
        let rc = world.machine.rootComplexes[0]
        // PCIe-to-PCI bridge spec §2.3: requests from the secondary side carry (bus 1, 00.0).
        #expect(rc.requesterIDSeen(for: world.functions[0]).requesterID == RequesterID(bus: 1, device: 0, function: 0))
        #expect(rc.route(for: world.functions[0]).streamID?.rawValue == 0x100)
        let pdev = try #require(world.host.pci.device(RequesterID(bus: 1, device: 2, function: 0)))
        let bridge = try #require(world.host.pci.device(RequesterID(bus: 0, device: 0x1F, function: 0)))
        #expect(pdev.device.iommu?.streamIDs.map(\.rawValue) == [0x110, 0x100])  // 01:02.0 = 1 << 8 | 2 << 3
        #expect(pdev.device.iommu?.group != nil && pdev.device.iommu?.group === bridge.device.iommu?.group)
        let run = ScenarioRunner.run(description, strategy: .rmrIdentity)
        #expect(run.setupFailure == nil)
        #expect(run.allDelivered)
        #expect(run.outcomes.allSatisfy { $0.its?.deviceID == 0x100 })
    }

    @Test("reader mistakes in the new keys name their line and key")
    func readerMistakes() {
        func failure(_ devices: String) -> ScenarioFileError? {
            do { _ = try ScenarioFile.parse("name: x\ndevices:\n" + devices, path: "t.yaml"); return nil } catch { return error }
        }
        let badBridge = failure("  - guest-rid: \"01:00.0\"\n    behind: pcie-bridge\n")
        #expect(badBridge?.line == 4 && badBridge?.key == "devices[0].behind")
        #expect(badBridge?.message.contains("pcie-to-pci-bridge") == true)
        let noRID = failure("  - behind: root-port\n")
        #expect(noRID?.line == 3 && noRID?.message.contains("guest-rid") == true)
        let tooMany = failure("  - vectors: 4\n    enabled: 5\n")
        #expect(tooMany?.line == 4 && tooMany?.key == "devices[0].enabled")
        let unmanagedPre = failure("  - pre-vectors: 1\n")
        #expect(unmanagedPre?.line == 3 && unmanagedPre?.message.contains("affinity: managed") == true)
        let nothingToSpread = failure("  - vectors: 2\n    affinity: managed\n    pre-vectors: 2\n")
        #expect(nothingToSpread?.line == 5 && nothingToSpread?.message.contains("none of 2 to spread") == true)
        let sameRID = failure("  - guest-rid: \"00:03.0\"\n  - bdf: \"00:02.0\"\n    guest-rid: \"00:03.0\"\n")
        #expect(sameRID?.line == 5 && sameRID?.key == "devices[1].guest-rid")
        let badAffinity = failure("  - affinity: spread\n")
        #expect(badAffinity?.line == 3 && badAffinity?.key == "devices[0].affinity")
        let unknown = failure("  - guest-bdf: \"00:03.0\"\n")
        #expect(unknown?.line == 3 && unknown?.message.contains("unknown key") == true)
    }
}

/// `irq_create_affinity_masks` and `group_cpus_evenly` on one node (kernel/irq/affinity.c,
/// lib/group_cpus.c), and `irq_calc_affinity_vectors`.
@Suite struct IRQAffinitySpreadTests {
    @Test("group_cpus_evenly: contiguous groups, the first ones one CPU larger")
    func groups() {
        #expect(IRQAffinity.groupCPUsEvenly(2, cpus: 2) == [[0], [1]])
        #expect(IRQAffinity.groupCPUsEvenly(2, cpus: 3) == [[0, 1], [2]])
        #expect(IRQAffinity.groupCPUsEvenly(3, cpus: 8) == [[0, 1, 2], [3, 4, 5], [6, 7]])
        #expect(IRQAffinity.groupCPUsEvenly(1, cpus: 4) == [[0, 1, 2, 3]])
        #expect(IRQAffinity.groupCPUsEvenly(3, cpus: 2) == [[0], [1], []])
    }

    @Test("pre and post vectors stay unmanaged on every CPU; the ones between are spread and managed")
    func masks() throws {
        let masks = try #require(IRQAffinity(preVectors: 1, postVectors: 1).masks(count: 4, cpus: 2))
        #expect(masks.map(\.cpus) == [[0, 1], [0], [1], [0, 1]])
        #expect(masks.map(\.isManaged) == [false, true, true, false])
        // Nothing to spread: no masks at all (every vector unmanaged).
        #expect(IRQAffinity(preVectors: 2).masks(count: 2, cpus: 2) == nil)
    }

    @Test("irq_calc_affinity_vectors caps the spread vectors at the CPU count, 0 when pre + post exceed min")
    func cap() {
        #expect(IRQAffinity(preVectors: 1).vectors(min: 1, max: 8, possibleCPUs: 2) == 3)
        #expect(IRQAffinity().vectors(min: 1, max: 2, possibleCPUs: 4) == 2)
        #expect(IRQAffinity(preVectors: 2).vectors(min: 1, max: 8, possibleCPUs: 4) == 0)
    }
}
