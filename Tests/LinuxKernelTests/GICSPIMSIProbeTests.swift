import Bus
import Firmware
import GIC
import Machine
import Testbed
@testable import LinuxKernel

import Testing

/// The host kernel's bring-up of SPI MSI parents on device-tree machines: irq-gic.c on QEMU
/// `virt` gic-version=2 (`gic_dist_init`, `gic_cpu_if_up`, `gicv2m_init`) and irq-gic-v3.c's
/// `mbi_init` on RK3568.
@Suite("GICv2m / MBI probe")
struct GICSPIMSIProbeTests {
    @Test("gic2 dump: GICD enabled, SPIs targeted at CPU interface 0, GICC enabled with EOImodeNS (host at EL2), one v2m range SPI 80…143 from MSI_TYPER")
    func gicv2Probe() throws {
        let harness = try HostScenario.host(dtb: "qemu-virt/virt-smmu-gic2.dtb")
        let gic = try #require(harness.machine.gic)
        #expect(gic.configuration.version == 2)
        #expect(gic.distributor.ctlr == 1)
        #expect(gic.distributor.targetByte(intid: 80) == 1)
        #expect(gic.distributor.targetByte(intid: 100) == 1)
        #expect(gic.cpuInterfaces[0].priorityMask == 0xF0)
        #expect(gic.cpuInterfaces[0].eoiMode, "GICC_CTLR.EOImodeNS: supports_deactivate_key on a host entered at EL2")
        let domains = harness.kernel.irq.spiMSIDomains
        #expect(domains.map(\.kind) == [.v2m])
        #expect(domains.first?.ranges.map { [$0.spiStart, $0.spiCount] } == [[80, 64]])
        #expect(domains.first?.ranges.first?.doorbell == PhysicalAddress(0x0802_0040))
    }

    @Test("gic2 dump: the driver's MSI-X vectors take SPIs 80…83, edge-triggered and enabled; the fired vector's SPI is taken through GICC_IAR and ended")
    func gicv2Vectors() throws {
        let harness = try HostScenario.host(dtb: "qemu-virt/virt-smmu-gic2.dtb")
        let kernel = harness.kernel
        let pci = try #require(kernel.pci.devices.first { !$0.isBridge })
        let counter = HostScenario.Counter()
        let irqs = try HostScenario.probe(kernel, pci, vectors: 4, counter: counter)
        let spis = irqs.compactMap { kernel.irq.descriptor($0)?.hwirq }
        #expect(spis == [80, 81, 82, 83])
        let d = try #require(harness.machine.gic?.distributor)
        #expect(spis.allSatisfy { d.isEdgeTriggered(intid: $0) && d.isEnabled(intid: $0) })
        _ = harness.functions[0].raise(vector: 1)
        #expect(d.isPending(intid: 81))
        #expect(kernel.irq.handleInterrupts(cpu: 0) == 1)
        #expect(counter.values[irqs[1]] == 1)
        #expect(!d.isPending(intid: 81) && !d.isActive(intid: 81))
    }

    @Test("RK3568: GICD_TYPER.MBIS and mbi-ranges <296 24> give one MBI range whose doorbell is GICD_SETSPI_NSR")
    func mbiProbe() throws {
        // The board leaves /memory to the boot loader: the default window, as the CLI gives it.
        let topology = try Topology(dtb: try HostScenario.fixture("boards/rockchip_rk3568-rock-3a.dtb")).withDefaultMemory()
        let machine = try Machine(topology: topology, name: "rk3568")
        #expect((machine.gic?.distributor.typer ?? 0) & (1 << 16) != 0)
        let kernel = try HostMachine(machine).bootHost()
        let domains = kernel.irq.spiMSIDomains
        #expect(domains.map(\.kind) == [.mbi])
        #expect(domains.first?.ranges.map { [$0.spiStart, $0.spiCount] } == [[296, 24]])
        #expect(domains.first?.ranges.first?.doorbell == PhysicalAddress(0xFD40_0040))
    }
}
