import LinuxKernel
import Testing
@testable import Scenario

/// Events that rewrite an MSI message, run on the code paths Linux and QEMU take, and what each
/// strategy's next MSI does afterwards. Nothing here is declared: the second `fire` is observed.
@Suite("events × strategies") struct EventSurvivalTests {
    static func afterEvent(_ event: ScenarioEvent, _ strategy: Strategy, kernel: KernelConfiguration.Version? = nil) -> StrategyRun {
        var scenario = BuiltInScenarios.seed
        scenario.host.kernel = kernel
        scenario.events = [.fire(device: 0, vector: 0), event, .fire(device: 0, vector: 0)]
        return ScenarioRunner.run(scenario, strategy: strategy)
    }

    /// Jason Gunthorpe's objection to vfio-override ("other paths also write the MSI"),
    /// confirmed by a minimal sequence: fire, host IRQ deactivate + activate, fire.
    /// `msi_domain_activate` recomposes through `its_irq_compose_msi_msg`, which knows only the
    /// irqchip's address, and writes it over VFIO's override: on vfio-override's base release,
    /// v6.14, the nested domain has no MSI cookie, so that is the physical doorbell 0x0809_0040;
    /// on v6.15 it is the sw_msi IOVA 0x0800_0040. The guest mapped neither, so the next MSI
    /// faults in the guest's stage 1. irqchip-relay and vits-direct keep the guest IOVA in
    /// `msi_desc`, so the recompose writes it again; rmr-identity's address is the sw_msi IOVA
    /// in the first place.
    @Test(arguments: [KernelConfiguration.Version?.none, .v6_15])
    func hostReactivateBreaksOnlyVFIOOverride(_ kernel: KernelConfiguration.Version?) throws {
        for strategy in [Strategy.irqchipRelay, .vfioOverride, .rmrIdentity, .vitsDirect] {
            let run = Self.afterEvent(.hostReactivate(device: 0, vector: 0), strategy, kernel: kernel)
            #expect(run.outcomes.count == 2)
            #expect(run.outcomes.first?.delivered == true, "\(strategy) before the event")
            let after = try #require(run.outcomes.last)
            if strategy == .vfioOverride {
                #expect(after.programmedAddress == (strategy.hostRelease(HostOptions(kernel: kernel)) == .v6_14 ? 0x0809_0040 : 0x0800_0040))
                #expect(after.verdict.failurePoint == .stage1)
            } else {
                #expect(after.delivered, "\(strategy): \(after.verdict)")
            }
        }
    }

    /// FLR and suspend/resume restore MSI-X from the cached message (`pci_restore_msi_state`),
    /// and VFIO's override went through `pci_write_msi_msg`, which updates that cache: the
    /// override survives both. A host affinity change is a MOVI only (`its_set_affinity`
    /// returns IRQ_SET_MASK_OK_DONE, so `msi_domain_set_affinity` rewrites nothing).
    @Test(arguments: [ScenarioEvent.functionLevelReset(device: 0), .suspendResume(device: 0), .guestAffinity(device: 0, vector: 0, cpu: 0)])
    func restoresKeepTheOverride(_ event: ScenarioEvent) throws {
        let run = Self.afterEvent(event, .vfioOverride)
        let after = try #require(run.outcomes.last)
        #expect(after.delivered, "\(event): \(after.verdict)")
    }

    /// A masked vector is held in the VMM's emulated Pending bit and delivered on unmask.
    @Test func maskedVectorIsPendingThenDelivered() throws {
        var scenario = BuiltInScenarios.seed
        scenario.events = [.guestMask(device: 0, vector: 1), .fire(device: 0, vector: 1), .guestUnmask(device: 0, vector: 1)]
        let run = ScenarioRunner.run(scenario, strategy: .rmrIdentity)
        #expect(run.outcomes.first?.verdict == .pending)
    }

    /// Isolation: a forged EventID raises nothing beyond the device's own events (the ITS takes
    /// the DeviceID from the sideband, and EventID 7 is beyond the 4-event ITT).
    @Test func forgedEventIDIsDropped() {
        var scenario = BuiltInScenarios.seed
        scenario.events = [.forgedEventID(device: 0, eventID: 7)]
        let run = ScenarioRunner.run(scenario, strategy: .rmrIdentity)
        #expect(run.eventLog.first?.contains("EventID out of range") == true, "\(run.eventLog)")
    }

    /// The guest switches its domain at run time (unbind, `iommu_group_store_type`, re-probe):
    /// with identity the vSTE is bypass and the MSI goes through stage 2 only; back on DMA it
    /// is nested again; under rmr-identity both deliver, the programmed address is the same.
    @Test func guestDomainSwitch() throws {
        var scenario = BuiltInScenarios.seed
        scenario.events = [.guestDomain(device: 0, domain: .identity), .fire(device: 0, vector: 0),
                           .guestDomain(device: 0, domain: .dma), .fire(device: 0, vector: 0)]
        let run = ScenarioRunner.run(scenario, strategy: .rmrIdentity)
        #expect(run.outcomes.count == 2)
        let identity = try #require(run.outcomes.first)
        #expect(identity.delivered && identity.stage1 == .bypass)
        let dma = try #require(run.outcomes.last)
        #expect(dma.delivered && dma.stage1 == .translated(from: 0x0800_0040, to: 0x0800_0040))
        #expect(run.violations.isEmpty)
    }

    /// A write the guest steered outside its RAM stops at the host's stage 2 with an event.
    @Test func guestMappingOutsideRAMIsContained() {
        var scenario = BuiltInScenarios.seed
        scenario.events = [.guestMapOutsideRAM(device: 0, ipa: 0x20_0000_0000)]
        let run = ScenarioRunner.run(scenario, strategy: .rmrIdentity)
        #expect(run.violations.isEmpty)
        #expect(run.eventLog.first?.contains("aborted; landed at nowhere; 1 SMMU event(s)") == true, "\(run.eventLog)")
    }
}

/// The adversarial checks themselves can fail: fed a write that escaped, one stopped without a
/// record, and a forged EventID that raised another device's interrupt, each names its invariant.
@Suite("adversarial checks") struct AdversarialCheckTests {
    @Test func eachCheckFires() throws {
        let world = try World.build(BuiltInScenarios.seed, strategy: .rmrIdentity)
        var escaped = AdversarialWrite(device: 0, sent: true)
        escaped.reached = 0xDEAD_0000
        world.lastAdversarialWrite = escaped
        #expect(world.adversarialViolation(.guestMapOutsideRAM(device: 0, ipa: 0), step: 3)?.invariant == .containment)
        world.lastAdversarialWrite = AdversarialWrite(device: 0, sent: true)
        #expect(world.adversarialViolation(.guestMapOutsideRAM(device: 0, ipa: 0), step: 3)?.invariant == .noSilentLoss)
        var recorded = AdversarialWrite(device: 0, sent: true)
        recorded.records = 1
        world.lastAdversarialWrite = recorded
        #expect(world.adversarialViolation(.guestMapOutsideRAM(device: 0, ipa: 0), step: 3) == nil)
        world.lastAdversarialWrite = AdversarialWrite(device: 0, sent: true, guestInterrupts: [.init(device: 0, irq: 9999, cpu: 0)])
        #expect(world.adversarialViolation(.forgedEventID(device: 0, eventID: 9), step: 4)?.invariant == .isolation)
        let own = try #require(world.guestDevices.first?.device.msiDescriptors.first?.irq)
        world.lastAdversarialWrite = AdversarialWrite(device: 0, sent: true, guestInterrupts: [.init(device: 0, irq: own, cpu: 0)])
        #expect(world.adversarialViolation(.forgedEventID(device: 0, eventID: 0), step: 4) == nil, "its own vector is allowed")
        world.lastAdversarialWrite = AdversarialWrite(device: 0, sent: false)
        #expect(world.adversarialViolation(.guestMapOutsideRAM(device: 0, ipa: 0), step: 3) == nil, "nothing written, nothing to contain")
    }
}
