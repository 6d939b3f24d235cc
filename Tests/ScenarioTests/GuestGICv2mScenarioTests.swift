import Bus
import Firmware
import Testing
import LinuxKernel
import Report
import VMM
@testable import Scenario

/// Every strategy on a guest whose interrupt controller is a GICv2 with QEMU's GICv2m frame
/// (`seed-gicv2m`: `gic-version=2` under KVM). The host is the seed's (GICv3 + ITS behind the
/// SMMU); what changes is the guest's end: the guest composes SPI messages to the v2m frame
/// (0x0802_0040 through its vSMMU's IOVA, data = SPI 80…), QEMU binds each vector's irqfd to
/// GSI data − 32 (`kvm_gsi_direct_mapping`) with no MSI route, and KVM's IRQCHIP route makes
/// the SPI pending in the vGICv2.
@Suite("strategies on a GICv2m guest")
struct GuestGICv2mScenarioTests {
    static let runs = ScenarioRunner.runAll(BuiltInScenarios.seedGICv2m)

    func run(_ strategy: Strategy) throws -> StrategyRun {
        try #require(Self.runs.first { $0.strategy == strategy })
    }

    @Test("the guest's msi-gpa is the v2m frame's MSI_SETSPI_NS, and the GSI its data names is SPI − 32")
    func facts() {
        #expect(GuestInterruptController.gicv2m.msiGPA(.virt) == 0x0802_0040)
        #expect(GuestInterruptController.gicv3.msiGPA(.virt) == 0x0809_0040)
        #expect(GuestInterruptController.directMappedGSI(data: 80) == 48)
        #expect(GuestInterruptController.directMappedGSI(data: 143) == 111)
        // data < 32 wraps as `(data - 32) & 0xffff` does in C.
        #expect(GuestInterruptController.directMappedGSI(data: 0) == 0xFFE0)
    }

    /// legacy: v6.14 programs the physical GITS_TRANSLATER, which nothing maps in the guest's
    /// stage 1, whatever the guest's interrupt controller: a stage-1 fault. Every other strategy
    /// delivers: rmr-identity and sw-msi-window never use the guest's doorbell (the 1:1 window
    /// to the host's page); irqchip-relay, vfio-override and vits-direct program the guest's
    /// IOVA, which the guest's stage 1 sends to the v2m frame's page, and the VMM maps that page
    /// (`msi-gpa` = 0x0802_0040) to the physical ITS page in stage 2 — both doorbells sit at
    /// offset 0x40 of their page, so the write lands on GITS_TRANSLATER.
    @Test("legacy faults at stage 1; every other strategy delivers all 4 vectors as SPIs")
    func cells() throws {
        let want: [Strategy: String] = [.legacy: "0/4 stage-1", .irqchipRelay: "4/4", .vfioOverride: "4/4",
                                        .rmrIdentity: "4/4", .swMSIWindow: "4/4", .vitsDirect: "4/4"]
        for run in Self.runs {
            #expect(ReportText.cell(run) == want[run.strategy], "\(run.strategy.rawValue): \(run.explanation ?? "")")
        }
        let legacy = try #require(try run(.legacy).outcomes.first)
        guard case .fault(let fault) = legacy.stage1 else { Issue.record("legacy stage 1: \(legacy.stage1)"); return }
        #expect(!fault.stage2 && fault.inputAddress == 0x0809_0040, "the host's own doorbell, unmapped in the guest's stage 1")
    }

    @Test("the guest composes SPI messages to its v2m frame: data = SPI 80 + n, stage 1 → 0x0802_0040",
          arguments: [Strategy.irqchipRelay, .vfioOverride, .vitsDirect])
    func guestIOVAPath(_ strategy: Strategy) throws {
        for (index, outcome) in try run(strategy).outcomes.enumerated() {
            let expected = try #require(outcome.expected)
            #expect((80...143).contains(expected.lpi), "a v2m SPI, not an LPI: \(expected.lpi)")
            #expect(outcome.guestData == expected.lpi, "gicv2m_compose_msi_msg: data = the SPI")
            let iova = try #require(outcome.guestAddress)
            #expect(iova & 0xFFF == 0x40, "the guest's IOVA page for the frame, + MSI_SETSPI_NS")
            #expect(outcome.programmedAddress == iova, "\(strategy.rawValue) programs the guest's IOVA")
            #expect(outcome.stage1 == .translated(from: iova, to: 0x0802_0040), "vector \(index): \(outcome.stage1)")
            guard case .translated(let ipa, let pa) = outcome.stage2 else { Issue.record("stage 2: \(outcome.stage2)"); continue }
            #expect(ipa == 0x0802_0040)
            #expect(pa == 0x0809_0040, "stage 2 maps the v2m page to the host ITS's translation page")
            #expect(outcome.handled == [expected])
        }
    }

    @Test("rmr-identity's 1:1 window works on a GICv2m guest as on a GICv3 one")
    func rmrIdentity() throws {
        let outcome = try #require(try run(.rmrIdentity).outcomes.first)
        #expect(outcome.programmedAddress == 0x0800_0040)
        #expect(outcome.stage1 == .translated(from: 0x0800_0040, to: 0x0800_0040))
        #expect(outcome.delivered)
        #expect((80...143).contains(outcome.handled.first?.lpi ?? 0))
    }

    /// What KVM holds for the guest: no MSI route at all, one irqfd per vector on GSI
    /// (SPI − 32), each an IRQCHIP route of the vGICv2; the VMM's stage-2 MSI mapping is the
    /// v2m frame's page.
    @Test("KVM: no MSI routes, irqfds on GSI = SPI − 32 over IRQCHIP routes; IOAS_MAP_MSI of the frame page")
    func kvmState() throws {
        let world = try World.build(BuiltInScenarios.seedGICv2m, strategy: .vitsDirect)
        #expect(world.vmm.vm.gsiRoutes.isEmpty, "kvm_gsi_direct_mapping: no KVM_IRQ_ROUTING_MSI entries")
        #expect(world.vmm.vm.vgic?.its == nil && world.vmm.vm.vgic?.gic.configuration.version == 2)
        let gsis = world.vmm.vm.assignedIRQFDs.map(\.gsi)
        #expect(gsis.count == 4)
        for gsi in gsis {
            #expect(world.vmm.vm.irqchipPin(gsi: gsi) == gsi)
            #expect((48...111).contains(gsi))
        }
        #expect(world.vmm.devices[0].vectors.values.allSatisfy { ($0.route.data &- 32) & 0xFFFF == $0.gsi })
    }

    @Test("the guest boots a GICv2 with the v2m frame from its ACPI tables and from its device tree")
    func guestFirmware() throws {
        let acpi = GuestACPITables(ramSize: 0x80_0000, cpuCount: 2, layout: .virt, vSMMU: true, accelerated: true,
                                   rootPortBuses: [], reservedMSIWindow: nil, gic: .gicv2m)
        let dt = GuestDeviceTree(ramSize: 0x80_0000, cpuCount: 2, vSMMU: true, layout: .virt, gic: .gicv2m)
        for topology in [try acpi.topology(), try dt.topology()] {
            let gic = try #require(topology.gic)
            #expect(gic.architecture == .v2)
            #expect(gic.distributor.base == PhysicalAddress(0x0800_0000))
            #expect(gic.cpuInterfaceRegions.first?.base == PhysicalAddress(0x0801_0000))
            #expect(gic.v2mFrames.map(\.region.base) == [PhysicalAddress(0x0802_0000)])
            #expect(topology.its.isEmpty)
        }
        // The MADT's frame overrides MSI_TYPER with QEMU's SPI base and count.
        let frame = try #require(acpi.madt.msiFrames.first)
        #expect(frame.overridesTyper && frame.spiBase == 80 && frame.spiCount == 64)
    }

    @Test("a GICv2m world is not the GICv3 one: its guest took SPIs, and the seed's guest LPIs")
    func differsFromSeed() throws {
        let seed = ScenarioRunner.runAll(BuiltInScenarios.seed).first { $0.strategy == .vitsDirect }
        let lpi = try #require(seed?.outcomes.first?.handled.first?.lpi)
        #expect(lpi >= 8192)
        let spi = try #require(try run(.vitsDirect).outcomes.first?.handled.first?.lpi)
        #expect(spi < 1020)
    }

    /// The VMM's own delivery on a GICv2m guest: a masked vector's MSI sets the emulated
    /// Pending bit (QEMU `vfio_msi_interrupt`), and the unmask delivers it through the frame's
    /// SPI pulse (KVM_IRQ_LINE) rather than KVM_SIGNAL_MSI, which a VM without a vITS refuses.
    @Test("masked: pending; unmasked: the pending SPI reaches the guest, and the next MSI is delivered")
    func maskUnmask() throws {
        var scenario = BuiltInScenarios.seedGICv2m
        scenario.events = [.guestMask(device: 0, vector: 1), .fire(device: 0, vector: 1), .guestUnmask(device: 0, vector: 1),
                           .fire(device: 0, vector: 1)]
        let run = ScenarioRunner.run(scenario, strategy: .rmrIdentity)
        #expect(run.outcomes.map(\.verdict) == [.pending, .delivered], "\(run.outcomes.map(\.verdict))")
        // The unmask itself delivers the held interrupt (before any further MSI): the guest's
        // handler runs for it during the event, and the VMM's Pending bit is clear again.
        let world = try World.build(BuiltInScenarios.seedGICv2m, strategy: .rmrIdentity)
        _ = world.perform(.guestMask(device: 0, vector: 1), step: 0)
        _ = world.perform(.fire(device: 0, vector: 1), step: 1)
        #expect(world.vmm.devices[0].function.pendingBits[1], "masked: held in the emulated Pending bit")
        let unmasked = world.perform(.guestUnmask(device: 0, vector: 1), step: 2)
        guard case .done(let note) = unmasked else { Issue.record("unmask: \(unmasked)"); return }
        #expect(note.hasSuffix("; 1 pending interrupt(s) delivered"), "\(note)")
        #expect(!world.vmm.devices[0].function.pendingBits[1])
        #expect(world.vmm.vm.counters.noITS == 0, "no KVM_SIGNAL_MSI was tried on the vITS-less VM")
    }

    /// A guest affinity change on a GICv2 is a GICD_ITARGETSR write (`gic_set_affinity`), not an
    /// ITS MOVI: the message and the irqfd's GSI stay, and the SPI is taken on the new vCPU.
    @Test("a guest affinity change moves the SPI to vCPU 1 and the MSI still arrives", arguments: [Strategy.rmrIdentity, .vitsDirect])
    func guestAffinity(_ strategy: Strategy) throws {
        var scenario = BuiltInScenarios.seedGICv2m
        scenario.events = [.guestAffinity(device: 0, vector: 2, cpu: 1), .fire(device: 0, vector: 2)]
        let outcome = try #require(ScenarioRunner.run(scenario, strategy: strategy).outcomes.first)
        #expect(outcome.delivered, "\(outcome.verdict)")
        #expect(outcome.handled.first?.cpu == 1)
    }

    /// A save and restore re-creates the vGICv2 and the v2m frame on the destination; the SPI's
    /// GICD_ITARGETSR byte and GICC_CTLR travel in the saved state (`kvm_arm_gic_get`/`_put`),
    /// the VMM maps the frame's page again (IOAS_MAP_MSI) and binds the irqfds to the GSIs the
    /// restored MSI-X data names: the MSI arrives on the vCPU the guest chose before.
    @Test("after save-restore the MSI still arrives, on the vCPU the guest targeted before", arguments: [Strategy.rmrIdentity, .irqchipRelay, .vitsDirect])
    func saveRestore(_ strategy: Strategy) throws {
        var scenario = BuiltInScenarios.seedGICv2m
        scenario.events = [.guestAffinity(device: 0, vector: 0, cpu: 1), .saveRestore, .fire(device: 0, vector: 0)]
        let outcome = try #require(ScenarioRunner.run(scenario, strategy: strategy).outcomes.first)
        #expect(outcome.delivered, "\(outcome.verdict)")
        #expect(outcome.handled.first?.cpu == 1)
    }
}
