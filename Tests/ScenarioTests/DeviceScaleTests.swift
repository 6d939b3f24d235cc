import Bus
import Firmware
import LinuxKernel
import Machine
import PCI
import Testing
import VMM
@testable import Scenario

/// Scenarios with many devices: the limits are the platform's (guest root bus, KVM routes, host
/// ITS), each refusal names its limit, and a scenario inside them builds and delivers.
@Suite("many devices") struct DeviceScaleTests {
    /// `n` devices on the host's root bus and, by position, on the guest's: slots 1–31, then
    /// functions 1–7 of the same slots (multifunction), `vectors` MSI-X vectors each.
    static func scenario(_ n: Int, vectors: Int = 1, behindRootPorts: Bool = false) -> ScenarioDescription {
        let devices = (0..<n).map { DeviceDescription(requesterID: VirtualMachineMonitor.rootBusRequesterID(index: $0), vectors: vectors) }
        return ScenarioDescription(name: "devices-\(n)", vm: VMOptions(behindRootPorts: behindRootPorts), devices: devices)
    }

    @Test("positional guest RIDs fill slots 1–31, then functions 1–7, without a repeat")
    func rootBusPlacement() {
        let rids = (0..<GuestPCILimits.rootBusFunctions).map(VirtualMachineMonitor.rootBusRequesterID(index:))
        #expect(Set(rids).count == 248)
        #expect(rids[0] == RequesterID(bus: 0, device: 1, function: 0))
        #expect(rids[30] == RequesterID(bus: 0, device: 31, function: 0))
        #expect(rids[31] == RequesterID(bus: 0, device: 1, function: 1))
        #expect(rids[247] == RequesterID(bus: 0, device: 31, function: 7))
        #expect(!rids.contains { $0.device == 0 })
        let ports = (0..<GuestPCILimits.rootBusFunctions).map(VirtualMachineMonitor.rootPortRequesterID(index:))
        #expect(Set(ports).count == 248 && !ports.contains { $0.device == 0 })
        #expect(ports[31] == RequesterID(bus: 0, device: 31, function: 1))
    }

    @Test("a scenario file holds as many devices as the guest's root bus: 248 read back, 249 are refused with the limit named")
    func fileLimitIsTheRootBus() throws {
        #expect(InputLimits.maximumScenarioDevices == GuestPCILimits.rootBusFunctions)
        let full = Self.scenario(248)
        #expect(try ScenarioFile.parse(ScenarioFile.render(full), path: "full.yaml") == full)
        var over = Self.scenario(248)
        over.devices.append(DeviceDescription(requesterID: RequesterID(bus: 1, device: 0, function: 0)))
        do {
            _ = try ScenarioFile.parse(ScenarioFile.render(over), path: "over.yaml")
            Issue.record("249 devices were read")
        } catch {
            #expect(error.description.contains("249 devices is more than"))
            #expect(error.description.contains("over.yaml"))
        }
    }

    @Test("248 devices — every function of the guest's root bus — build and deliver every vector")
    func fullRootBus() {
        let run = ScenarioRunner.run(Self.scenario(248), strategy: .rmrIdentity)
        #expect(run.setupFailure == nil, "\(run.setupFailure?.description ?? "")")
        #expect(run.firedCount == 248)
        #expect(run.deliveredCount == 248)
    }

    @Test("200 devices behind 200 guest root ports (multifunction ports past the 31st) deliver")
    func manyRootPorts() {
        let run = ScenarioRunner.run(Self.scenario(200, behindRootPorts: true), strategy: .irqchipRelay)
        #expect(run.setupFailure == nil, "\(run.setupFailure?.description ?? "")")
        #expect(run.firedCount == 200)
        #expect(run.deliveredCount == 200)
    }

    @Test("a 249th positional device is refused, naming the guest root bus's 248 functions")
    func rootBusFull() {
        var scenario = Self.scenario(248)
        scenario.devices.append(DeviceDescription(requesterID: RequesterID(bus: 1, device: 0, function: 0), vectors: 1))
        let run = ScenarioRunner.run(scenario, strategy: .rmrIdentity)
        #expect(run.setupFailure?.step == "devices", "\(run.setupFailure?.description ?? "")")
        #expect(run.setupFailure?.error.contains("device 248") == true)
        #expect(run.setupFailure?.error.contains("pcie.0 holds 248 functions") == true)
    }

    @Test("more vectors than KVM_MAX_IRQ_ROUTES leaves GSIs for is refused, naming the limit")
    func kvmRoutes() throws {
        // 256 + 2 × 1920 = 4096 GSIs fit exactly (0…4095); one vector more does not.
        let fits = Self.scenario(2, vectors: 1920)
        let machine = try MachinePreset.qemuVirt.makeMachine()
        #expect(World.checkDeviceLimits(fits, machine: machine, rootComplex: machine.rootComplexes[0]) == nil)
        var over = Self.scenario(2, vectors: 1920)
        over.devices.append(DeviceDescription(requesterID: RequesterID(bus: 0, device: 3, function: 0), vectors: 1))
        let run = ScenarioRunner.run(over, strategy: .rmrIdentity)
        #expect(run.setupFailure?.step == "devices")
        #expect(run.setupFailure?.error.contains("KVM_MAX_IRQ_ROUTES is 4096") == true)
        #expect(run.setupFailure?.error.contains("3841 vectors") == true)
    }
}
