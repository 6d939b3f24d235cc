import Bus
import Testing
import Report
@testable import Scenario

/// Every strategy on every built-in scenario, with the outcome written here and the reason for
/// it. The model is never told these: each cell comes from building the whole stack and firing
/// every vector. A cell is "delivered/fired", then where the first undelivered vector stopped,
/// or "setup: <step>" when the stack could not be built.
@Suite("strategies × built-in scenarios") struct StrategyOutcomeTests {
    typealias Row = [Strategy: String]

    static let expected: [String: Row] = [
        // docs/strategies.md: legacy faults at stage 1 (the host programs the physical doorbell, which
        // the guest never mapped in its stage 1); every other strategy delivers on qemu-virt.
        "seed": [.legacy: "0/4 stage-1", .irqchipRelay: "4/4", .vfioOverride: "4/4", .rmrIdentity: "4/4", .swMSIWindow: "4/4", .vitsDirect: "4/4"],
        // A guest identity domain is a bypass vSTE, i.e. stage 2 only: under v6.14 nothing maps
        // the doorbell into the nest parent, so legacy faults at stage 2 (IPA 0x0809_0040).
        "guest-identity": [.legacy: "0/4 stage-2", .irqchipRelay: "4/4", .vfioOverride: "4/4", .rmrIdentity: "4/4", .swMSIWindow: "4/4", .vitsDirect: "4/4"],
        // No vIOMMU is the classic VFIO case: the auto domain has the MSI cookie in every kernel.
        "no-viommu": [.legacy: "4/4", .irqchipRelay: "4/4", .vfioOverride: "4/4", .rmrIdentity: "4/4", .swMSIWindow: "4/4", .vitsDirect: "4/4"],
        // iommufd refuses a device with both a hardware MSI region and an SW_MSI region
        // (`iopt_table_enforce_dev_resv_regions`: EINVAL), and arm-smmu-v3 always reports the
        // SW_MSI window: with the ITS outside the SMMU no iommufd-based VMM can attach at all.
        "untranslated-its": [.legacy: "setup: VMM", .irqchipRelay: "setup: VMM", .vfioOverride: "setup: VMM", .rmrIdentity: "setup: VMM", .swMSIWindow: "setup: VMM", .vitsDirect: "setup: VMM"],
        // A 64K host: vits-direct's `msi_msg_set_addr` keeps only the doorbell's offset in a 64K
        // page, so the guest's 4K-page IOVA 0xffff_f040 becomes 0xffff_0040, which the guest
        // never mapped. The other strategies use whole addresses or the 1:1 window.
        "host-64k": [.legacy: "0/4 stage-1", .irqchipRelay: "4/4", .vfioOverride: "4/4", .rmrIdentity: "4/4", .swMSIWindow: "4/4", .vitsDirect: "0/4 stage-1"],
        "guest-64k": [.legacy: "0/4 stage-1", .irqchipRelay: "4/4", .vfioOverride: "4/4", .rmrIdentity: "4/4", .swMSIWindow: "4/4", .vitsDirect: "4/4"],
        // Two physical ITSs behind one vITS page: IOAS_MAP_MSI cannot map the vITS page to both
        // (EEXIST), the "several pITS" hard case. rmr-identity/sw-msi-window deliver for the
        // function on bus 0; the one on bus 1 shares its host group with the root port, so
        // every nested attach of it fails (`arm_smmu_attach_prepare_vmaster`: ENOENT, the port
        // has no vDEVICE — on these v6.15 hosts even QEMU's abort/bypass vSTE, which only v6.19
        // lets through, commit 81c45c62dc3e) and it stays on the nest parent's S2-only STE,
        // where its MSIs reach the doorbell through stage 2. legacy's v6.14 host has no vmaster
        // (f0ea207ed781 came in v6.15), so both functions attach nested and every MSI faults
        // at the guest's stage 1.
        "two-its": [.legacy: "0/8 stage-1", .irqchipRelay: "setup: VMM", .vfioOverride: "setup: VMM", .rmrIdentity: "8/8",
                    .swMSIWindow: "8/8", .vitsDirect: "setup: VMM"],
        // Guest RAM over 0x0800_0000: the SW_MSI window reserved at attach makes IOMMU_IOAS_MAP
        // of guest RAM EINVAL; only sw-msi-window moves the window (to 0xA000_0000).
        "ram-at-msi-window": [.legacy: "setup: VMM", .irqchipRelay: "setup: VMM", .vfioOverride: "setup: VMM", .rmrIdentity: "setup: VMM",
                              .swMSIWindow: "4/4", .vitsDirect: "setup: VMM"],
        // Plain MSI: Nicolin's override sits in the MSI-X branch of vfio_msi_set_vector_signal,
        // so an MSI device keeps the sw_msi address, which the guest never mapped.
        "msi": [.legacy: "0/4 stage-1", .irqchipRelay: "4/4", .vfioOverride: "0/4 stage-1", .rmrIdentity: "4/4", .swMSIWindow: "4/4", .vitsDirect: "4/4"],
        // Behind a root port the function gets its RMR through its node under the port's node,
        // so the outcome is the seed's.
        "root-port": [.legacy: "0/4 stage-1", .irqchipRelay: "4/4", .vfioOverride: "4/4", .rmrIdentity: "4/4", .swMSIWindow: "4/4", .vitsDirect: "4/4"],
        "msix-1": [.legacy: "0/1 stage-1", .irqchipRelay: "1/1", .vfioOverride: "1/1", .rmrIdentity: "1/1", .swMSIWindow: "1/1", .vitsDirect: "1/1"],
        "msix-64": [.legacy: "0/64 stage-1", .irqchipRelay: "64/64", .vfioOverride: "64/64", .rmrIdentity: "64/64", .swMSIWindow: "64/64", .vitsDirect: "64/64"],
        // A GICv2 + GICv2m guest: the seed's answers (GuestGICv2mScenarioTests says why).
        "seed-gicv2m": [.legacy: "0/4 stage-1", .irqchipRelay: "4/4", .vfioOverride: "4/4", .rmrIdentity: "4/4", .swMSIWindow: "4/4", .vitsDirect: "4/4"],
        // The seed on a GICv4.1 host: the MSI path to the physical ITS is the seed's, and every
        // route names the vITS, so what arrives is a vLPI taken from the vCPU's VPT.
        "seed-gicv4": [.legacy: "0/4 stage-1", .irqchipRelay: "4/4", .vfioOverride: "4/4", .rmrIdentity: "4/4", .swMSIWindow: "4/4", .vitsDirect: "4/4"],
    ]

    @Test("every built-in scenario has its expected row", arguments: BuiltInScenarios.all.map(\.name))
    func row(_ name: String) throws {
        let scenario = try #require(BuiltInScenarios.named(name))
        let want = try #require(Self.expected[name])
        for run in ScenarioRunner.runAll(scenario) {
            #expect(ReportText.cell(run) == want[run.strategy], "\(name) × \(run.strategy.rawValue): \(run.explanation ?? "")")
        }
    }

    /// The seed, in detail: what each layer saw for vector 0.
    @Test func seedPaths() throws {
        let runs = ScenarioRunner.runAll(BuiltInScenarios.seed)
        func first(_ s: Strategy) throws -> VectorOutcome { try #require(runs.first { $0.strategy == s }?.outcomes.first) }
        // legacy: the host programs the physical GITS_TRANSLATER and the guest's stage 1 faults
        // on it (F_TRANSLATION, S2=0, CLASS=IN), so the ITS never sees it.
        let legacy = try first(.legacy)
        #expect(legacy.programmedAddress == 0x0809_0040)
        guard case .fault(let fault) = legacy.stage1 else { Issue.record("legacy stage 1: \(legacy.stage1)"); return }
        #expect(fault.type == .fTranslation && !fault.stage2 && fault.faultClass == .input && fault.inputAddress == 0x0809_0040)
        #expect(legacy.its == nil)
        // rmr-identity: the host programs its sw_msi IOVA; the guest's RMR maps it 1:1 and the
        // stage-2 parent takes it to the physical doorbell.
        let rmr = try first(.rmrIdentity)
        #expect(rmr.programmedAddress == 0x0800_0040)
        #expect(rmr.stage1 == .translated(from: 0x0800_0040, to: 0x0800_0040))
        #expect(rmr.stage2 == .translated(from: 0x0800_0040, to: 0x0809_0040))
        // The relaying strategies program the guest's own IOVA; stage 2 maps the vITS page.
        for s in [Strategy.irqchipRelay, .vfioOverride, .vitsDirect] {
            let o = try first(s)
            #expect(o.programmedAddress == o.guestAddress, "\(s)")
            #expect(o.stage2 == .translated(from: 0x0809_0040, to: 0x0809_0040), "\(s)")
            #expect(o.delivered, "\(s)")
        }
    }

    /// The explanation under the main table names the descriptor that was missing.
    @Test func explanationNamesTheDescriptor() throws {
        let run = ScenarioRunner.run(BuiltInScenarios.seed, strategy: .legacy)
        let text = try #require(run.explanation)
        #expect(text.contains("S1 L1 descriptor at IPA"))
        #expect(text.contains("0x0809_0040"))
        #expect(ScenarioRunner.run(BuiltInScenarios.seed, strategy: .rmrIdentity).explanation == nil)
    }

    /// Runs are deterministic: the same scenario gives the same outcomes twice.
    @Test func deterministic() {
        let a = ScenarioRunner.runAll(BuiltInScenarios.seed)
        let b = ScenarioRunner.runAll(BuiltInScenarios.seed)
        #expect(a == b)
    }
}

/// Descriptions built in code are checked like files: bad values are setup failures or skipped
/// events, never traps.
@Suite("bad descriptions") struct BadDescriptionTests {
    @Test func outOfRangeVectorsAreASetupFailure() {
        for device in [DeviceDescription(vectors: 0), DeviceDescription(vectors: 4096), DeviceDescription(interrupts: .msi, vectors: 3),
                       DeviceDescription(vectors: -5)] {
            let run = ScenarioRunner.run(ScenarioDescription(name: "bad", devices: [device]), strategy: .rmrIdentity)
            #expect(run.setupFailure?.step == "device 0", "\(device)")
        }
    }

    @Test func eventsOnMissingDevicesDoNotTrap() {
        var scenario = BuiltInScenarios.seed
        scenario.events = [.fire(device: -1, vector: 0), .fire(device: 7, vector: -3), .hostAffinity(device: 9, vector: 0, cpu: 0),
                           .guestMask(device: 0, vector: 99), .forgedEventID(device: -2, eventID: 1), .hotPlug(device: 0),
                           .guestMapOutsideRAM(device: 5, ipa: .max)]
        let run = ScenarioRunner.run(scenario, strategy: .rmrIdentity)
        #expect(run.setupFailure == nil)
        #expect(run.outcomes.count == 2)
        #expect(run.outcomes.allSatisfy { $0.verdict.failurePoint == .device })
        #expect(run.eventLog.count == 7)
        let world = try? World.build(scenario, strategy: .rmrIdentity)
        #expect(world?.stateHash(lastOutcomes: run.outcomes) != nil)
    }
}
