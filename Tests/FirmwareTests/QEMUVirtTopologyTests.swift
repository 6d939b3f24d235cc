import Testing
import Bus
@testable import Firmware

/// The QEMU 7.2 `virt` dumps. Every expected value below was read from `dtc -I dtb -O dts` of
/// the fixture, and matches QEMU's memory map (hw/arm/virt.c `base_memmap`; docs/hardware.md §QEMU virt machine).
@Suite("QEMU virt topologies")
struct QEMUVirtTopologyTests {
    static func topology(_ name: String) throws -> Topology { try Topology(dtb: try Fixtures.qemu(name)) }

    @Test("virt-smmu: GICv3 with one ITS, one SMMUv3, one ECAM host bridge mapping RID 1:1 to both")
    func virtSMMU() throws {
        let t = try Self.topology("virt-smmu")
        #expect(t.model == "linux,dummy-virt")
        // cpus/cpu@0: reg = <0x00>.
        #expect(t.cpus.map(\.mpidr) == [0])
        // memory@40000000: reg = <0x00 0x40000000 0x00 0x40000000> (1 GiB at 1 GiB).
        #expect(t.memory == [MemoryRange(base: PhysicalAddress(0x4000_0000), size: 0x4000_0000)])

        let gic = try #require(t.gic)
        #expect(gic.architecture == .v3)
        #expect(gic.path == "/intc@8000000")
        // intc@8000000: reg = <GICD 0x8000000 +0x10000, GICR 0x80a0000 +0xf60000>, #redistributor-regions = <1>.
        #expect(gic.distributor == MemoryRange(base: PhysicalAddress(0x0800_0000), size: 0x1_0000))
        #expect(gic.redistributorRegions == [MemoryRange(base: PhysicalAddress(0x080A_0000), size: 0xF6_0000)])
        #expect(gic.redistributorStride == nil)
        #expect(gic.cpuInterfaceRegions.isEmpty)
        // No `interrupts` on the GIC: virtualization is off, so no maintenance interrupt.
        #expect(gic.maintenanceInterrupt == nil)
        // its@8080000: reg = <0x00 0x8080000 0x00 0x20000>, #msi-cells = <1>, phandle = <0x8003>.
        #expect(gic.its.count == 1)
        let its = try #require(gic.its.first)
        #expect(its.region == MemoryRange(base: PhysicalAddress(0x0808_0000), size: 0x2_0000))
        #expect(its.msiCells == 1 && its.phandle == 0x8003 && its.isMSIController)
        // GITS_TRANSLATER is ITS base + 0x1_0040 (the doorbell the seed is about).
        #expect(its.translaterAddress == PhysicalAddress(0x0809_0040))
        #expect(gic.v2mFrames.isEmpty)

        // smmuv3@9050000: reg = <0x00 0x9050000 0x00 0x20000>, #iommu-cells = <1>, phandle = <0x8004>.
        #expect(t.smmus.count == 1)
        let smmu = try #require(t.smmus.first)
        #expect(smmu.region == MemoryRange(base: PhysicalAddress(0x0905_0000), size: 0x2_0000))
        #expect(smmu.iommuCells == 1 && smmu.phandle == 0x8004 && smmu.dmaCoherent)
        #expect(smmu.interruptNames == ["eventq", "priq", "cmdq-sync", "gerror"])
        #expect(smmu.msiParent.isEmpty)
        #expect(t.otherIOMMUs.isEmpty)

        #expect(t.pcieHostBridges.count == 1)
        let pcie = try #require(t.pcieHostBridges.first)
        #expect(pcie.path == "/pcie@10000000")
        #expect(pcie.compatible == ["pci-host-ecam-generic"])
        // reg = <0x40 0x10000000 0x00 0x10000000>: the high ECAM, 256 buses × 1 MiB.
        #expect(pcie.configSpace == MemoryRange(base: PhysicalAddress(0x40_1000_0000), size: 0x1000_0000))
        #expect(pcie.busRange == 0...255 && !pcie.busRangeIsDefault)
        #expect(pcie.domain == 0)
        #expect(pcie.dmaCoherent)
        // ranges: I/O 64 KiB at 0x3eff0000; 32-bit MMIO 0x10000000 (+0x2eff0000) 1:1;
        // 64-bit MMIO 0x80_0000_0000 (+0x80_0000_0000) 1:1.
        #expect(pcie.ranges == [
            PCIRange(space: .io, prefetchable: false, nonRelocatable: false, aliased: false,
                     pciAddress: 0, cpuAddress: PhysicalAddress(0x3EFF_0000), size: 0x1_0000),
            PCIRange(space: .memory32, prefetchable: false, nonRelocatable: false, aliased: false,
                     pciAddress: 0x1000_0000, cpuAddress: PhysicalAddress(0x1000_0000), size: 0x2EFF_0000),
            PCIRange(space: .memory64, prefetchable: false, nonRelocatable: false, aliased: false,
                     pciAddress: 0x80_0000_0000, cpuAddress: PhysicalAddress(0x80_0000_0000), size: 0x80_0000_0000),
        ])
        // iommu-map = <0x00 0x8004 0x00 0x10000>; msi-map = <0x00 0x8003 0x00 0x10000>.
        #expect(pcie.iommuMap == IDMap(kind: .iommu, entries: [
            IDMapEntry(idBase: 0, phandle: 0x8004, target: .smmuV3(0), outputBase: [0], length: 0x1_0000)]))
        #expect(pcie.msiMap == IDMap(kind: .msi, entries: [
            IDMapEntry(idBase: 0, phandle: 0x8003, target: .its(0), outputBase: [0], length: 0x1_0000)]))
        // StreamID and DeviceID both equal the RID (docs/hardware.md §QEMU virt machine): RID 01:00.0 = 0x0100.
        #expect(pcie.iommuMap?.translate(0x0100)?.id == 0x0100)
        #expect(pcie.msiMap?.translate(0xFFFF).map { "\($0.target) \($0.id)" } == "its[0] 65535")
        // Above 16 bits no entry matches (length 0x10000), and there is no mask.
        #expect(pcie.msiMap?.lookup(0x1_0000) == .noMatch)
        #expect(pcie.msiParent.isEmpty && pcie.iommus.isEmpty)
        #expect(t.untranslatedITSBases.isEmpty)
    }

    @Test("virt-smmu-itsoff: no ITS and no msi-map; the SMMU (now phandle 0x8003) still translates")
    func itsOff() throws {
        let t = try Self.topology("virt-smmu-itsoff")
        #expect(t.gic?.architecture == .v3)
        #expect(t.its.isEmpty)
        #expect(t.pcieHostBridges.first?.msiMap == nil)
        #expect(t.pcieHostBridges.first?.iommuMap?.entries == [
            IDMapEntry(idBase: 0, phandle: 0x8003, target: .smmuV3(0), outputBase: [0], length: 0x1_0000)])
    }

    @Test("virt-smmu-gic2: a GICv2 (cortex-a15-gic) with a GICv2m frame instead of an ITS; msi-map names the frame")
    func gicV2() throws {
        let t = try Self.topology("virt-smmu-gic2")
        let gic = try #require(t.gic)
        #expect(gic.architecture == .v2)
        #expect(gic.compatible == ["arm,cortex-a15-gic"])
        // reg = <GICD 0x8000000 +0x10000, GICC 0x8010000 +0x10000>.
        #expect(gic.distributor == MemoryRange(base: PhysicalAddress(0x0800_0000), size: 0x1_0000))
        #expect(gic.redistributorRegions.isEmpty)
        #expect(gic.cpuInterfaceRegions == [MemoryRange(base: PhysicalAddress(0x0801_0000), size: 0x1_0000)])
        #expect(gic.its.isEmpty)
        // v2m@8020000: reg = <0x00 0x8020000 0x00 0x1000>, msi-controller, phandle = <0x8003>.
        #expect(gic.v2mFrames.map(\.region) == [MemoryRange(base: PhysicalAddress(0x0802_0000), size: 0x1000)])
        #expect(gic.v2mFrames.first?.phandle == 0x8003)
        #expect(t.pcieHostBridges.first?.msiMap?.entries.first?.target == .gicV2mFrame(0))
        #expect(t.smmus.count == 1)
    }

    @Test("virt-smmu-gic4 and -virt: the same tree (virtualization=on adds the maintenance interrupt <1 9 4>); DT cannot tell GICv4")
    func gic4AndVirt() throws {
        let gic4 = try Self.topology("virt-smmu-gic4")
        let virt = try Self.topology("virt-smmu-virt")
        let plain = try Self.topology("virt-smmu")
        // The two dumps differ only in /chosen's random seeds, which the topology does not hold.
        #expect(gic4 == virt)
        #expect(gic4.gic?.architecture == .v3)
        #expect(gic4.gic?.maintenanceInterrupt == [1, 9, 4])
        // Apart from the maintenance interrupt, the platform is virt-smmu's.
        var withoutMaintenance = gic4
        withoutMaintenance.gic?.maintenanceInterrupt = nil
        #expect(withoutMaintenance == plain)
    }

    @Test("-gicmax, -multipci, -pxb-bypass, -pxb-bypass-only: topology identical to virt-smmu", arguments: [
        "virt-smmu-gicmax", "virt-smmu-multipci", "virt-smmu-pxb-bypass", "virt-smmu-pxb-bypass-only",
    ])
    func sameAsVirtSMMU(name: String) throws {
        // The dumps differ from virt-smmu only in /chosen rng-seed and kaslr-seed (checked with
        // dtc and diff). pxb expander bridges and extra root ports are PCI devices found by
        // enumeration, not DT nodes, and QEMU writes the bypass holes for pxb buses only into
        // the ACPI IORT: the DT iommu-map stays <0 &smmu 0 0x10000>, no holes.
        #expect(try Self.topology(name) == (try Self.topology("virt-smmu")))
        #expect(try Self.topology(name).pcieHostBridges.first?.iommuMap?.entries.count == 1)
    }

    @Test("virt-smmu-default-bypass: the SMMU is present but the root bus bypasses it, so there is no iommu-map at all")
    func defaultBypass() throws {
        let t = try Self.topology("virt-smmu-default-bypass")
        #expect(t.smmus.count == 1)
        let pcie = try #require(t.pcieHostBridges.first)
        // default_bus_bypass_iommu=on: QEMU omits iommu-map rather than writing one with holes.
        #expect(pcie.iommuMap == nil)
        #expect(pcie.msiMap?.entries.first?.target == .its(0))
    }

    @Test("virt-smmu-highmem-off: ECAM moves to 0x3f00_0000 with 16 buses and the 64-bit window goes")
    func highmemOff() throws {
        let pcie = try #require(try Self.topology("virt-smmu-highmem-off").pcieHostBridges.first)
        // reg = <0x00 0x3f000000 0x00 0x1000000>; bus-range = <0x00 0x0f>: 16 MiB = 16 buses.
        #expect(pcie.configSpace == MemoryRange(base: PhysicalAddress(0x3F00_0000), size: 0x100_0000))
        #expect(pcie.busRange == 0...15)
        #expect(pcie.ranges.map(\.space) == [.io, .memory32])
    }

    @Test("virt-smmu-smp8: eight CPUs with MPIDR 0…7 and 4 GiB of RAM; maps follow the renumbered phandles")
    func smp8() throws {
        let t = try Self.topology("virt-smmu-smp8")
        #expect(t.cpus.map(\.mpidr) == Array(0...7))
        #expect(t.cpus.allSatisfy { $0.enableMethod == "psci" })
        // memory@40000000: reg = <0x00 0x40000000 0x01 0x00>.
        #expect(t.memory == [MemoryRange(base: PhysicalAddress(0x4000_0000), size: 0x1_0000_0000)])
        // iommu-map = <0 0x800b 0 0x10000>, msi-map = <0 0x800a 0 0x10000>: different numbers,
        // same units.
        let pcie = try #require(t.pcieHostBridges.first)
        #expect(pcie.iommuMap?.entries.map(\.phandle) == [0x800B])
        #expect(pcie.iommuMap?.entries.map(\.target) == [.smmuV3(0)])
        #expect(pcie.msiMap?.entries.map(\.target) == [.its(0)])
    }

    @Test("virt-noiommu: no SMMU and no iommu-map, but the msi-map to the ITS stays")
    func noIOMMU() throws {
        let t = try Self.topology("virt-noiommu")
        #expect(t.smmus.isEmpty && t.otherIOMMUs.isEmpty)
        let pcie = try #require(t.pcieHostBridges.first)
        #expect(pcie.iommuMap == nil)
        #expect(pcie.msiMap?.entries == [IDMapEntry(idBase: 0, phandle: 0x8003, target: .its(0), outputBase: [0], length: 0x1_0000)])
    }

    @Test("virt-noiommu-itsoff: no SMMU, no ITS, no maps: MSIs have nowhere to go")
    func noIOMMUNoITS() throws {
        let t = try Self.topology("virt-noiommu-itsoff")
        #expect(t.smmus.isEmpty && t.its.isEmpty)
        let pcie = try #require(t.pcieHostBridges.first)
        #expect(pcie.iommuMap == nil && pcie.msiMap == nil && pcie.msiParent.isEmpty)
    }

    @Test("summary is deterministic and names the units of virt-smmu")
    func summary() throws {
        let t = try Self.topology("virt-smmu")
        #expect(t.summary == (try Self.topology("virt-smmu")).summary)
        #expect(t.summary.contains("its[0]: /intc@8000000/its@8080000 0x0808_0000 size 0x2_0000 phandle 0x8003"))
        #expect(t.summary.contains("iommu-map: <0x0 smmu[0] 0x0 0x1_0000>"))
        #expect(t.summary.contains("msi-map: <0x0 its[0] 0x0 0x1_0000>"))
    }
}
