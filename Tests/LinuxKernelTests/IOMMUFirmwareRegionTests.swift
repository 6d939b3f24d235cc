import Testbed
import Testing
import Bus
import Firmware
import Machine
import PCI
@testable import LinuxKernel

/// A qemu-virt machine whose device tree gives 00:01.0 (RID 0x0008) two firmware regions through
/// /reserved-memory `iommu-addresses` (binding reserved-memory.yaml), as a platform that hands
/// a device a firmware-owned buffer does:
/// - an identity region: reg = IOVA = [0xFFE0_0000, +2 MiB), at the top of the 32-bit IOVA
///   space so the allocator's first (top-down) choice falls inside it;
/// - a remapped one: reg 0xF000_0000, IOVA 0xE000_0000, 1 MiB.
/// RAM grows to 3 GiB (0x4000_0000–0xFFFF_FFFF) so the identity region is RAM the device can
/// write; the kernel's page allocator works bottom-up and never gets near it.
enum FirmwareRegionMachine {
    static let directBase: UInt64 = 0xFFE0_0000
    static let directSize: UInt64 = 0x20_0000
    static let remappedPhysical: UInt64 = 0xF000_0000
    static let remappedIOVA: UInt64 = 0xE000_0000
    static let remappedSize: UInt64 = 0x10_0000

    static func cells(_ name: String, _ values: [UInt32]) -> DeviceTreeProperty { DeviceTreeProperty(name: name, cells: values) }

    static func dtb() throws -> [UInt8] {
        let base = try DeviceTree(dtb: try HostScenario.fixture("qemu-virt/virt-smmu.dtb"))
        var root = base.root
        let memory = try #require(root.children.firstIndex { $0.name == "memory@40000000" })
        root.children[memory].properties.removeAll { $0.name == "reg" }
        root.children[memory].properties.append(cells("reg", [0, 0x4000_0000, 0, 0xC000_0000]))
        // The endpoint is on the host bridge (3 address, 2 size cells): <&ep phys.hi mid lo size.hi size.lo>.
        let endpoint: UInt32 = 0x9003, mem32: UInt32 = 0x0200_0000
        root.children.append(DeviceTreeNode(name: "reserved-memory", properties: [
            cells("#address-cells", [2]), cells("#size-cells", [2]), DeviceTreeProperty(name: "ranges"),
        ], children: [
            DeviceTreeNode(name: "direct@ffe00000", properties: [
                cells("reg", [0, UInt32(directBase), 0, UInt32(directSize)]), DeviceTreeProperty(name: "no-map"),
                cells("iommu-addresses", [endpoint, mem32, 0, UInt32(directBase), 0, UInt32(directSize)]),
                cells("phandle", [0x9001]),
            ]),
            DeviceTreeNode(name: "remapped@f0000000", properties: [
                cells("reg", [0, UInt32(remappedPhysical), 0, UInt32(remappedSize)]), DeviceTreeProperty(name: "no-map"),
                cells("iommu-addresses", [endpoint, mem32, 0, UInt32(remappedIOVA), 0, UInt32(remappedSize)]),
                cells("phandle", [0x9002]),
            ]),
        ]))
        let pcie = try #require(root.children.firstIndex { $0.name == "pcie@10000000" })
        // reg phys.hi 0x0800: device 1, function 0.
        root.children[pcie].children.append(DeviceTreeNode(name: "ep@1,0", properties: [
            cells("reg", [0x0800, 0, 0, 0, 0]), cells("memory-region", [0x9001, 0x9002]), cells("phandle", [endpoint]),
        ]))
        return try DeviceTreeWriter.write(DeviceTree(root: root, memoryReservations: base.memoryReservations, bootCPUID: base.bootCPUID))
    }

    /// The machine from that blob with the harness's two endpoints (00:01.0 and 00:02.0), booted.
    static func host(configuration: KernelConfiguration = KernelConfiguration()) throws -> HostHarness {
        let machine = try Machine(topology: try Topology(dtb: try dtb()), name: "virt-smmu-rmr")
        var functions: [PCIFunction] = []
        for endpoint in HostHarness.defaultEndpoints {
            let function = try PCIFunction(name: endpoint.name, requesterID: endpoint.requesterID, vendorID: 0x1AF4, deviceID: 0x1041,
                                           bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                           msix: MSIXConfiguration(tableSize: endpoint.vectors))
            try machine.rootComplexes[0].attach(function)
            functions.append(function)
        }
        let kernel = try HostMachine(machine).bootHost(configuration)
        return HostHarness(machine: machine, kernel: kernel, functions: functions)
    }
}

@Suite("Firmware DIRECT and RESERVED regions (of_iommu_get_resv_regions) on a qemu-virt host")
struct IOMMUFirmwareRegionTests {
    typealias M = FirmwareRegionMachine

    @Test("00:01.0's group lists the identity region as direct and the remapped one as reserved; 00:02.0 has neither")
    func sysfs() throws {
        let h = try M.host()
        let k = h.kernel
        let a = try #require(HostScenario.pciDevice(h, 0)), b = try #require(HostScenario.pciDevice(h, 1))
        #expect(k.iommu.deviceTreeNode(of: a.device)?.path == "/pcie@10000000/ep@1,0")
        #expect(k.iommu.deviceTreeNode(of: b.device) == nil)
        let group = try #require(k.iommu.group(of: a.device))
        // Sorted by start (iommu_insert_resv_region); each line is start and last byte.
        #expect(k.iommu.reservedRegionsSysfs(group: group) == """
            0x0000000008000000 0x00000000080fffff msi
            0x00000000e0000000 0x00000000e00fffff reserved
            0x00000000ffe00000 0x00000000ffffffff direct

            """)
        let other = try #require(k.iommu.group(of: b.device))
        #expect(k.iommu.reservedRegionsSysfs(group: other) == "0x0000000008000000 0x00000000080fffff msi\n")
        // prot: READ | WRITE, and CACHE because the host bridge is dma-coherent (of_dma_is_coherent).
        let direct = try #require(k.iommu.reservedRegions(for: a.device).first { $0.type == .direct })
        #expect(direct.protection == [.read, .write, .cache])
        #expect(k.log.lines.contains { $0.contains("treating non-direct mapping") && $0.contains("0x00000000e0000000-0x00000000e00fffff") })
    }

    @Test("the default DMA domain maps the DIRECT region 1:1 and not the RESERVED one")
    func identityMapped() throws {
        let h = try M.host()
        let k = h.kernel
        let a = try #require(HostScenario.pciDevice(h, 0))
        let domain = try #require(k.iommu.domain(for: a.device))
        #expect(domain.type == .dma)
        for offset: UInt64 in [0, 0x1234, M.directSize - 0x1000, M.directSize - 1] {
            #expect(k.iommu.iovaToPhys(domain, M.directBase + offset) == M.directBase + offset)
        }
        #expect(k.iommu.iovaToPhys(domain, M.directBase - 1) == nil)
        #expect(k.iommu.iovaToPhys(domain, M.remappedIOVA) == nil)
        #expect(k.iommu.iovaToPhys(domain, M.remappedPhysical) == nil)
    }

    @Test("the IOVA allocator steps below the DIRECT region: the first page is 0xFFDF_F000, not 0xFFFF_F000")
    func allocatorAvoidsRegions() throws {
        let h = try M.host()
        let k = h.kernel
        let a = try #require(HostScenario.pciDevice(h, 0)), b = try #require(HostScenario.pciDevice(h, 1))
        let buffer = try k.pages.allocate(bytes: 0x1000)
        // PCI devices try the 32-bit space first, top-down: the highest free page under 4 GiB is
        // the one just below the DIRECT region (whose IOVAs iova_reserve_iommu_regions reserved).
        let first = try k.dma.map(device: a.device, physical: buffer, size: 0x1000, direction: .bidirectional)
        #expect(first.rawValue == M.directBase - 0x1000)
        // 00:02.0 has its own group and domain without the region: its first page is the top one.
        #expect(try k.dma.map(device: b.device, physical: buffer, size: 0x1000, direction: .bidirectional).rawValue == 0xFFFF_F000)
        // Sizes up to 1 MiB, many times over: nothing lands in a reserved region.
        let regions = k.iommu.reservedRegions(for: a.device)
        var generator = SeededGenerator(seed: 0xD1EC7)
        for _ in 0..<400 {
            let size = UInt64.random(in: 1...0x10_0000, using: &generator)
            let iova = try k.dma.map(device: a.device, physical: buffer, size: size, direction: .bidirectional).rawValue
            let last = iova + size - 1
            #expect(!regions.contains { iova <= $0.end && last >= $0.start }, "\(Hex.format(iova)) + \(size)")
        }
    }

    @Test("the device's DMA to the DIRECT IOVA lands at the same physical address; to the RESERVED IOVA it faults")
    func deviceDMA() throws {
        let h = try M.host()
        let k = h.kernel
        let a = try #require(HostScenario.pciDevice(h, 0))
        try k.pci.enableDevice(a)
        try k.pci.setMaster(a)
        let write = h.functions[0].dma(.write, address: IOVA(M.directBase + 0x1_0008), size: 8, data: 0x0123_4567_89AB_CDEF)
        #expect(write.result?.status == .completed)
        #expect(k.bus.ram.read(M.directBase + 0x1_0008, size: 8) == 0x0123_4567_89AB_CDEF)
        let remapped = h.functions[0].dma(.write, address: IOVA(M.remappedIOVA), size: 8, data: 0xBAD)
        #expect(remapped.result?.status == .aborted, "RESERVED: kept out of the IOVA space, never mapped")
        #expect(k.bus.ram.read(M.remappedPhysical, size: 8) == 0)
        // 00:02.0 shares nothing: the same IOVA is unmapped in its domain.
        let b = try #require(HostScenario.pciDevice(h, 1))
        try k.pci.enableDevice(b)
        try k.pci.setMaster(b)
        #expect(h.functions[1].dma(.write, address: IOVA(M.directBase), size: 8, data: 1).result?.status == .aborted)
    }

    @Test("MSI still works: the doorbell page goes below the DIRECT region and the LPI fires")
    func msiBelowDirect() throws {
        let h = try M.host()
        let k = h.kernel
        let a = try #require(HostScenario.pciDevice(h, 0))
        let counter = HostScenario.Counter()
        let irqs = try HostScenario.probe(k, a, counter: counter)
        // iommu_dma_get_msi_page allocates from the same top-down allocator: first free page.
        #expect(HostScenario.entry(h.functions[0], 0).address == (M.directBase - 0x1000) | 0x40)
        h.functions[0].raise(vector: 2)
        #expect(k.irq.handleInterrupts(cpu: 0) == 1)
        #expect(counter.values == [irqs[2]: 1])
    }

    @Test("require_direct: claiming the group for VFIO (blocking domain) fails with EINVAL; an UNMANAGED domain attaches, without the 1:1 map")
    func requireDirect() throws {
        let h = try M.host()
        let k = h.kernel
        let a = try #require(HostScenario.pciDevice(h, 0))
        let group = try #require(k.iommu.group(of: a.device))
        let defaultDomain = try #require(group.defaultDomain)
        // __iommu_device_set_domain refuses IOMMU_DOMAIN_BLOCKED / the group's blocking domain.
        #expect(throws: Errno.EINVAL) { try k.iommu.claimDMAOwner(group, owner: k) }
        #expect(group.domain === defaultDomain)
        #expect(k.log.lines.contains { $0.contains("Firmware has requested this device have a 1:1 IOMMU mapping") })
        // Only BLOCKED is refused; iommu_create_device_direct_mappings maps into DMA domains only.
        let unmanaged = try k.iommu.allocateDomain(for: a.device)
        try k.iommu.attachGroup(unmanaged, to: group)
        #expect(group.domain === unmanaged)
        #expect(k.iommu.iovaToPhys(unmanaged, M.directBase) == nil)
        // A device without the region has no such restriction.
        let b = try #require(HostScenario.pciDevice(h, 1))
        let other = try #require(k.iommu.group(of: b.device))
        try k.iommu.claimDMAOwner(other, owner: k)
        #expect(other.domain === other.blockingDomain)
    }

    @Test("identity default domain: the region is still listed direct, and DMA to it reaches the same PA through bypass")
    func identityDefault() throws {
        let h = try M.host(configuration: KernelConfiguration(defaultDomain: .identity))
        let k = h.kernel
        let a = try #require(HostScenario.pciDevice(h, 0))
        #expect(k.iommu.domain(for: a.device)?.type == .identity)
        #expect(k.iommu.reservedRegions(for: a.device).contains { $0.type == .direct && $0.start == M.directBase })
        try k.pci.enableDevice(a)
        try k.pci.setMaster(a)
        #expect(h.functions[0].dma(.write, address: IOVA(M.directBase + 0x40), size: 4, data: 0x5A5A).result?.status == .completed)
        #expect(k.bus.ram.read(M.directBase + 0x40, size: 4) == 0x5A5A)
    }
}
