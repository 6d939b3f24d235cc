import Testing
@testable import Scenario

@Suite struct ProbeTests {
    @Test func probe() {
        var s = ScenarioDescription(name: "p", vm: VMOptions(viommu: .none))
        s.events = [.fire(device: 0, vector: 0), .hostReactivate(device: 0, vector: 0), .fire(device: 0, vector: 0),
                    .functionLevelReset(device: 0), .fire(device: 0, vector: 0), .msixReenable(device: 0), .fire(device: 0, vector: 0),
                    .addVector(device: 0), .fire(device: 0, vector: 3), .guestAffinity(device: 0, vector: 0, cpu: 1), .fire(device: 0, vector: 0),
                    .hostAffinity(device: 0, vector: 0, cpu: 1), .fire(device: 0, vector: 0), .suspendResume(device: 0), .fire(device: 0, vector: 0),
                    .guestMask(device: 0, vector: 1), .fire(device: 0, vector: 1), .guestUnmask(device: 0, vector: 1), .fire(device: 0, vector: 1),
                    .guestRewrite(device: 0, vector: 2), .fire(device: 0, vector: 2), .forgedEventID(device: 0, eventID: 7)]
        for st in [Strategy.rmrIdentity] {
            let run = ScenarioRunner.run(s, strategy: st)
            print(run.setupFailure as Any)
            for l in run.eventLog { print(l) }
        }
    }
}
