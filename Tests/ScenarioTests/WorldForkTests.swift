import Bus
import Testing
@testable import LinuxKernel
@testable import Scenario

/// `World.fork()` against the rebuilt path, for every kind of scenario event: a world built and
/// taken through a prefix, forked, with the event applied to the fork, goes on exactly as a world
/// rebuilt and replayed through the prefix and the event (same event results, same MSI journals
/// and outcomes for every vector fired afterwards, same `World.stateHash`), and the original is
/// what it was before the fork.
@Suite("World fork equivalence")
struct WorldForkTests {
    /// One example of `kind`: the scenario it applies to, the strategy, a prefix that leaves
    /// state behind (fires, a guest affinity change, and what the event needs first) and the
    /// event. A switch over every case, so a new event kind does not compile until it has one.
    static func example(_ kind: EventKind) -> (scenario: ScenarioDescription, strategy: Strategy, prefix: [ScenarioEvent], event: ScenarioEvent) {
        let seed = BuiltInScenarios.seed
        let rootPort = BuiltInScenarios.named("root-port") ?? seed
        let gicv4 = BuiltInScenarios.seedGICv4
        let prefix: [ScenarioEvent] = [.fire(device: 0, vector: 0), .guestAffinity(device: 0, vector: 1, cpu: 1), .fire(device: 0, vector: 1)]
        switch kind {
        case .fire: return (seed, .rmrIdentity, prefix, .fire(device: 0, vector: 2))
        case .guestMask: return (seed, .rmrIdentity, prefix, .guestMask(device: 0, vector: 0))
        case .guestUnmask: return (seed, .rmrIdentity, prefix + [.guestMask(device: 0, vector: 0), .fire(device: 0, vector: 0)],
                                   .guestUnmask(device: 0, vector: 0))
        case .guestRewrite: return (seed, .rmrIdentity, prefix, .guestRewrite(device: 0, vector: 1))
        case .guestAffinity: return (seed, .rmrIdentity, prefix, .guestAffinity(device: 0, vector: 0, cpu: 1))
        case .hostAffinity: return (seed, .rmrIdentity, prefix, .hostAffinity(device: 0, vector: 0, cpu: 1))
        case .msixReenable: return (seed, .rmrIdentity, prefix, .msixReenable(device: 0))
        case .addVector: return (seed, .rmrIdentity, prefix, .addVector(device: 0))
        case .functionLevelReset: return (seed, .rmrIdentity, prefix, .functionLevelReset(device: 0))
        case .suspendResume: return (seed, .rmrIdentity, prefix, .suspendResume(device: 0))
        case .hostReactivate: return (seed, .rmrIdentity, prefix, .hostReactivate(device: 0, vector: 1))
        case .guestDomain: return (seed, .rmrIdentity, prefix, .guestDomain(device: 0, domain: .identity))
        case .hotUnplug: return (rootPort, .rmrIdentity, prefix, .hotUnplug(device: 0))
        case .hotPlug: return (rootPort, .rmrIdentity, prefix + [.hotUnplug(device: 0)], .hotPlug(device: 0))
        case .saveRestore: return (seed, .rmrIdentity, prefix, .saveRestore)
        case .forgedEventID: return (seed, .rmrIdentity, prefix, .forgedEventID(device: 0, eventID: 4))
        case .guestMapOutsideRAM: return (seed, .rmrIdentity, prefix, .guestMapOutsideRAM(device: 0, ipa: 0x20_0000_0000))
        case .guestCorruptSTE: return (seed, .rmrIdentity, prefix, .guestCorruptSTE(device: 0))
        case .vpeMigrate: return (gicv4, .vfioOverride, prefix, .vpeMigrate(vcpu: 0, cpu: 1))
        case .vcpuNonResident: return (gicv4, .vfioOverride, prefix, .vcpuNonResident(vcpu: 0))
        case .vcpuResident: return (gicv4, .vfioOverride, prefix + [.vcpuNonResident(vcpu: 0), .fire(device: 0, vector: 0)],
                                    .vcpuResident(vcpu: 0))
        }
    }

    /// What a world does from here: each event's result and, for a fire, the journal of its
    /// MSI; then the state hash over the last fires.
    struct Run: Equatable {
        var results: [World.EventResult] = []
        var journals: [[JournalEntry]] = []
        var hash: UInt64 = 0
    }

    static func drive(_ world: World, _ events: [ScenarioEvent], from first: Int) -> Run {
        var run = Run()
        var last: [VectorOutcome] = []
        for (offset, event) in events.enumerated() {
            let trace = TraceLog()
            let result = world.perform(event, step: first + offset, trace: trace)
            run.results.append(result)
            if case .fired(let outcome) = result {
                run.journals.append(trace.journal)
                last.append(outcome)
            } else {
                last = []
            }
        }
        run.hash = world.stateHash(lastOutcomes: last)
        return run
    }

    /// Every active vector of every device, fired once.
    static func observation(_ scenario: ScenarioDescription) -> [ScenarioEvent] {
        scenario.devices.enumerated().flatMap { d, device in (0..<device.activeVectors).map { ScenarioEvent.fire(device: d, vector: $0) } }
    }

    @Test("a forked world goes on as the rebuilt and replayed one, and the original is untouched", arguments: EventKind.allCases)
    func forkEqualsRebuild(_ kind: EventKind) throws {
        let (scenario, strategy, prefix, event) = Self.example(kind)
        #expect(event.kind == kind)
        let after = [event] + Self.observation(scenario)

        let original = try World.build(scenario, strategy: strategy)
        _ = Self.drive(original, prefix, from: 0)
        let hashBefore = original.stateHash(lastOutcomes: [])
        let fork = original.fork()
        let untouched = original.fork()
        #expect(fork.guest.irq.irqsAwaitingHandler.isEmpty && fork.host.irq.irqsAwaitingHandler.isEmpty,
                "every handler was installed again on the copy")
        #expect(fork.stateHash(lastOutcomes: []) == hashBefore)
        let forked = Self.drive(fork, after, from: prefix.count)

        let rebuilt = try World.build(scenario, strategy: strategy)
        _ = Self.drive(rebuilt, prefix, from: 0)
        let replayed = Self.drive(rebuilt, after, from: prefix.count)
        #expect(forked.results == replayed.results)
        #expect(forked.journals == replayed.journals)
        #expect(forked.hash == replayed.hash)
        #expect(forked.journals.count == after.count - 1 + (event.kind == .fire ? 1 : 0))
        #expect(forked.journals.allSatisfy { !$0.isEmpty }, "every fire was followed through the layers")

        // The original saw none of it: its state is what it was, and it observes what an
        // untouched copy observes.
        #expect(original.stateHash(lastOutcomes: []) == hashBefore)
        let observation = Self.observation(scenario)
        #expect(Self.drive(original, observation, from: prefix.count) == Self.drive(untouched, observation, from: prefix.count))
    }

    /// A guest VFIO user (type1 container or iommufd) owns the device instead of a guest
    /// driver: its process, container or iommufd, files and eventfds are copied, and its
    /// eventfd reads (the world's) are installed again on the copy.
    @Test("a world whose guest device belongs to a guest VFIO user forks like a rebuilt one",
          arguments: [VMOptions.GuestOwner.vfioType1, .vfioIOMMUFD])
    func guestVFIOUserFork(_ owner: VMOptions.GuestOwner) throws {
        var scenario = BuiltInScenarios.seed
        scenario.vm.guestOwner = owner
        let prefix: [ScenarioEvent] = [.fire(device: 0, vector: 0), .hostAffinity(device: 0, vector: 1, cpu: 1)]
        let after = [ScenarioEvent.guestMask(device: 0, vector: 0)] + Self.observation(scenario)
        let original = try World.build(scenario, strategy: .irqchipRelay)
        _ = Self.drive(original, prefix, from: 0)
        let fork = original.fork()
        #expect(fork.guestVFIOUsers.keys.sorted() == [0])
        #expect(fork.guestVFIOUsers[0] !== original.guestVFIOUsers[0])
        let forked = Self.drive(fork, after, from: prefix.count)
        let rebuilt = try World.build(scenario, strategy: .irqchipRelay)
        _ = Self.drive(rebuilt, prefix, from: 0)
        #expect(forked == Self.drive(rebuilt, after, from: prefix.count))
        #expect(forked.results.contains { if case .fired(let o) = $0 { o.delivered } else { false } },
                "the guest VFIO user's eventfd took a delivery on the copy")
    }
}
