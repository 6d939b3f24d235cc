import Bus
import Firmware
import LinuxKernel
import Machine
import PCI
import VMM
import Yams

/// Scenario file → `ScenarioDescription`: which keys exist at each level, what each value may
/// be, and the checks between values (vectors against the interrupt type, event devices,
/// vectors and CPUs against the devices and the VM, expectations against the strategies run).
/// The grammar is in `ScenarioFile`'s doc comment; the node-level checks in `ScenarioFileNodes`.
struct ScenarioFileReader {
    let nodes: ScenarioFileNodes

    static let topLevelKeys = ["name", "summary", "platform", "bridge", "host", "vm", "devices", "strategy", "events", "expect"]
    static let hostKeys = ["page-size", "kernel", "gic"]
    static let vmKeys = ["viommu", "guest-domain", "guest-page-size", "layout", "vcpus", "slot", "firmware", "guest-owner", "guest-gic"]
    static let deviceKeys = ["bdf", "host-behind", "guest-rid", "behind", "interrupts", "vectors", "enabled", "affinity",
                             "pre-vectors", "post-vectors"]
    static let expectationKeys = ["strategy", "delivered", "first-failure", "invariants"]
    /// vCPUs a scenario's VM may have: QEMU virt with GICv3 takes up to 512, but the explorer's
    /// state space grows with every vCPU and 8 covers every affinity question the seed asks.
    static let vcpuRange = 1...8

    func scenario(_ root: Node?) throws(ScenarioFileError) -> ScenarioDescription {
        guard let root, !ScenarioFileNodes.isNull(root) else {
            throw nodes.error(at: root, key: nil, "empty scenario file (a scenario needs at least 'name')")
        }
        let top = try nodes.fields(root, keyPath: "", allowed: Self.topLevelKeys, expecting: "a mapping at the top level")

        guard let nameNode = top.value("name") else {
            throw nodes.error(at: root, key: "name", "missing required key 'name'")
        }
        let name = try nodes.string(nameNode, key: "name")
        guard !name.isEmpty else { throw nodes.error(at: nameNode, key: "name", "the name must not be empty") }
        var scenario = ScenarioDescription(name: name)

        if let node = top.value("summary"), !ScenarioFileNodes.isNull(node) {
            scenario.summary = try nodes.string(node, key: "summary")
        }
        if let node = top.value("platform") { scenario.platform = try platform(node) }
        if let node = top.value("bridge"), !ScenarioFileNodes.isNull(node) {
            let text = try nodes.string(node, key: "bridge", expecting: "a host bridge index or node path")
            guard !text.isEmpty else { throw nodes.error(at: node, key: "bridge", "the bridge must not be empty") }
            scenario.bridge = text
        }
        if let node = top.value("host"), !ScenarioFileNodes.isNull(node) { scenario.host = try host(node) }
        if let node = top.value("vm"), !ScenarioFileNodes.isNull(node) { scenario.vm = try vm(node) }
        if let node = top.value("devices"), !ScenarioFileNodes.isNull(node) { scenario.devices = try devices(node) }
        if let node = top.value("strategy") { scenario.strategies = try strategies(node) }
        if let node = top.value("events"), !ScenarioFileNodes.isNull(node) {
            scenario.events = try events(node, scenario: scenario)
        }
        if let node = top.value("expect"), !ScenarioFileNodes.isNull(node) {
            scenario.expectations = try expectations(node, scenario: scenario)
        }
        return scenario
    }

    // MARK: Platform, host, VM

    /// A preset name, or a path: one ending in `.dtb`, or containing a `/` (an ACPI table or a
    /// directory of them, such as `./tables`). Kept as written; `ScenarioFile.load` resolves a
    /// relative one against the scenario file's directory, and the file's contents decide what
    /// it is. A bare word that is no preset is a mistake, not a path, so a misspelt preset is
    /// reported here.
    func platform(_ node: Node) throws(ScenarioFileError) -> Platform {
        let presets = MachinePreset.allCases.map(\.rawValue)
        let text = try nodes.string(node, key: "platform", expecting: "a preset (\(presets.joined(separator: ", "))) or a path")
        if let preset = MachinePreset(rawValue: text) { return .preset(preset) }
        if (text.hasSuffix(".dtb") && text.count > 4) || (text.contains("/") && text != "/") { return .deviceTree(path: text) }
        throw nodes.error(at: node, key: "platform",
                          ScenarioFileValues.unknown("platform", ScenarioFileNodes.shortened(text), expected: presets + ["a path ending in .dtb or containing a /"]))
    }

    func host(_ node: Node) throws(ScenarioFileError) -> HostOptions {
        let fields = try nodes.fields(node, keyPath: "host", allowed: Self.hostKeys)
        var host = HostOptions()
        if let value = fields.value("page-size") {
            host.pageSize = try nodes.choice(value, key: fields.path("page-size"), ScenarioFileValues.pageSizes)
        }
        if let value = fields.value("kernel") {
            host.kernel = try nodes.choice(value, key: fields.path("kernel"), KernelConfiguration.Version.self)
        }
        if let value = fields.value("gic") {
            host.gic = try nodes.choice(value, key: fields.path("gic"), HostOptions.GIC.self)
        }
        return host
    }

    func vm(_ node: Node) throws(ScenarioFileError) -> VMOptions {
        let fields = try nodes.fields(node, keyPath: "vm", allowed: Self.vmKeys)
        var vm = VMOptions()
        if let value = fields.value("viommu") { vm.viommu = try nodes.choice(value, key: fields.path("viommu"), VMOptions.VIOMMU.self) }
        if let value = fields.value("guest-domain") {
            vm.guestDomain = try nodes.choice(value, key: fields.path("guest-domain"), KernelConfiguration.DefaultDomain.self)
        }
        if let value = fields.value("guest-page-size") {
            vm.guestPageSize = try nodes.choice(value, key: fields.path("guest-page-size"), ScenarioFileValues.pageSizes)
        }
        if let value = fields.value("layout") { vm.layout = try nodes.choice(value, key: fields.path("layout"), VMOptions.Layout.self) }
        if let value = fields.value("vcpus") {
            vm.vcpus = try nodes.integer(value, key: fields.path("vcpus"), in: Self.vcpuRange, what: "vcpus")
        }
        if let value = fields.value("slot") {
            vm.behindRootPorts = try nodes.choice(value, key: fields.path("slot"), [("root-bus", false), ("root-port", true)])
        }
        if let value = fields.value("firmware") {
            vm.firmware = try nodes.choice(value, key: fields.path("firmware"), GuestFirmware.self)
        }
        if let value = fields.value("guest-owner") {
            vm.guestOwner = try nodes.choice(value, key: fields.path("guest-owner"), VMOptions.GuestOwner.self)
        }
        if let value = fields.value("guest-gic") {
            vm.guestGIC = try nodes.choice(value, key: fields.path("guest-gic"), GuestInterruptController.self)
        }
        return vm
    }

    // MARK: Devices

    func devices(_ node: Node) throws(ScenarioFileError) -> [DeviceDescription] {
        let items = try nodes.items(node, key: "devices", of: "devices")
        guard !items.isEmpty else {
            throw nodes.error(at: node, key: "devices", "the list is empty (leave 'devices' out for the default 00:01.0 with 4 MSI-X vectors)")
        }
        guard items.count <= InputLimits.maximumScenarioDevices else {
            throw nodes.error(at: node, key: "devices", "\(items.count) devices is more than \(InputLimits.describe("scenario device", InputLimits.maximumScenarioDevices, unit: "devices"))")
        }
        var devices: [DeviceDescription] = []
        for (index, item) in items.enumerated() {
            let fields = try nodes.fields(item, keyPath: "devices[\(index)]", allowed: Self.deviceKeys)
            var device = DeviceDescription()
            if let value = fields.value("bdf") {
                let key = fields.path("bdf")
                let text = try nodes.string(value, key: key, expecting: "a BDF (bus:device.function)")
                switch ScenarioFileValues.requesterID(text) {
                case .success(let rid): device.requesterID = rid
                case .failure(let mistake): throw nodes.error(at: value, key: key, mistake)
                }
                if let other = devices.firstIndex(where: { $0.requesterID == device.requesterID }) {
                    throw nodes.error(at: value, key: key, "device \(device.requesterID) is already devices[\(other)]")
                }
            } else if let other = devices.firstIndex(where: { $0.requesterID == device.requesterID }) {
                throw nodes.error(at: item, key: fields.path("bdf"),
                                  "missing 'bdf': the default \(device.requesterID) is already devices[\(other)]")
            }
            if let value = fields.value("interrupts") {
                device.interrupts = try nodes.choice(value, key: fields.path("interrupts"), DeviceDescription.Interrupts.self)
            }
            if let value = fields.value("vectors") {
                let key = fields.path("vectors")
                let count = try nodes.number(value, key: key)
                if let mistake = ScenarioFileValues.checkVectors(count, device.interrupts) { throw nodes.error(at: value, key: key, mistake) }
                device.vectors = Int(count)
            } else if let mistake = ScenarioFileValues.checkVectors(UInt64(device.vectors), device.interrupts) {
                throw nodes.error(at: item, key: fields.path("vectors"), mistake)
            }
            try placement(fields, item: item, into: &device, after: devices)
            try vectorUse(fields, into: &device)
            devices.append(device)
        }
        return devices
    }

    /// `host-behind` (the bridge above a host function off bus 0), `guest-rid` and `behind`
    /// (the guest RID and the bridge above it off bus 0): each guest RID once, and one bridge
    /// kind per bus.
    func placement(_ fields: ScenarioFileNodes.Fields, item: Node, into device: inout DeviceDescription,
                   after devices: [DeviceDescription]) throws(ScenarioFileError) {
        if let value = fields.value("host-behind") {
            let key = fields.path("host-behind")
            let bridge = try nodes.choice(value, key: key, DeviceDescription.Bridge.self)
            guard device.requesterID.bus != 0 else {
                throw nodes.error(at: value, key: key, "\(device.requesterID) is on bus 0: nothing is behind a bridge there")
            }
            if let other = devices.firstIndex(where: { $0.requesterID.bus == device.requesterID.bus && ($0.hostBridge ?? .rootPort) != bridge }) {
                throw nodes.error(at: value, key: key, "host bus \(device.requesterID.bus) is already behind a \((devices[other].hostBridge ?? .rootPort).rawValue) (devices[\(other)])")
            }
            device.hostBridge = bridge
        }
        if let value = fields.value("guest-rid") {
            let key = fields.path("guest-rid")
            let text = try nodes.string(value, key: key, expecting: "a BDF (bus:device.function)")
            switch ScenarioFileValues.requesterID(text) {
            case .success(let rid): device.guestRequesterID = rid
            case .failure(let mistake): throw nodes.error(at: value, key: key, mistake)
            }
            if let other = devices.firstIndex(where: { $0.guestRequesterID == device.guestRequesterID }) {
                throw nodes.error(at: value, key: key, "guest RID \(text) is already devices[\(other)]'s")
            }
        }
        if let value = fields.value("behind") {
            let key = fields.path("behind")
            let bridge = try nodes.choice(value, key: key, DeviceDescription.Bridge.self)
            guard let rid = device.guestRequesterID, rid.bus != 0 else {
                throw nodes.error(at: value, key: key, "'behind' needs a 'guest-rid' off bus 0 (the bridge's secondary bus)")
            }
            if let other = devices.firstIndex(where: { $0.guestRequesterID?.bus == rid.bus && ($0.guestBridge ?? .rootPort) != bridge }) {
                throw nodes.error(at: value, key: key, "guest bus \(rid.bus) is already behind a \((devices[other].guestBridge ?? .rootPort).rawValue) (devices[\(other)])")
            }
            device.guestBridge = bridge
        } else if let rid = device.guestRequesterID, rid.bus != 0,
                  let other = devices.firstIndex(where: { $0.guestRequesterID?.bus == rid.bus && ($0.guestBridge ?? .rootPort) != .rootPort }) {
            throw nodes.error(at: item, key: fields.path("behind"), "guest bus \(rid.bus) is behind a pcie-to-pci-bridge (devices[\(other)]): say 'behind: pcie-to-pci-bridge'")
        }
    }

    /// `enabled`, `affinity`, `pre-vectors`, `post-vectors`, checked against `vectors`.
    func vectorUse(_ fields: ScenarioFileNodes.Fields, into device: inout DeviceDescription) throws(ScenarioFileError) {
        if let value = fields.value("enabled") {
            device.enabledVectors = try nodes.integer(value, key: fields.path("enabled"), in: 1...device.vectors, what: "enabled",
                                                      why: "the function has \(device.vectors) vector\(device.vectors == 1 ? "" : "s")")
        }
        if let value = fields.value("affinity") {
            device.affinity = try nodes.choice(value, key: fields.path("affinity"), DeviceDescription.Affinity.self)
        }
        for name in ["pre-vectors", "post-vectors"] {
            guard let value = fields.value(name) else { continue }
            let key = fields.path(name)
            guard device.affinity == .managed else {
                throw nodes.error(at: value, key: key, "'\(name)' needs 'affinity: managed'")
            }
            let count = try nodes.integer(value, key: key, in: 0...device.activeVectors, what: name)
            if name == "pre-vectors" { device.preVectors = count } else { device.postVectors = count }
            if let mistake = World.checkEnabledVectors(device) { throw nodes.error(at: value, key: key, mistake) }
        }
    }

    // MARK: Strategies

    /// `all`, one id, or a list of distinct ids (kept in the order written).
    func strategies(_ node: Node) throws(ScenarioFileError) -> [Strategy] {
        let ids = Strategy.allCases.map(\.rawValue)
        func one(_ node: Node, key: String) throws(ScenarioFileError) -> Strategy {
            let word = try nodes.string(node, key: key, expecting: "a strategy id (\(ids.joined(separator: ", ")))")
            guard let strategy = Strategy(rawValue: word) else {
                throw nodes.error(at: node, key: key, ScenarioFileValues.unknown("strategy", ScenarioFileNodes.shortened(word), expected: ids))
            }
            return strategy
        }
        switch node {
        case .scalar(let scalar) where !ScenarioFileNodes.isNull(node):
            if scalar.string == "all" { return [] }
            guard Strategy(rawValue: scalar.string) != nil else {
                throw nodes.error(at: node, key: "strategy",
                                  ScenarioFileValues.unknown("strategy", ScenarioFileNodes.shortened(scalar.string), expected: ["all"] + ids))
            }
            return [try one(node, key: "strategy")]
        case .sequence(let sequence):
            guard !sequence.isEmpty else {
                throw nodes.error(at: node, key: "strategy", "the list is empty (write 'all' for every strategy)")
            }
            var result: [Strategy] = []
            for (index, item) in sequence.enumerated() {
                let strategy = try one(item, key: "strategy[\(index)]")
                if let other = result.firstIndex(of: strategy) {
                    throw nodes.error(at: item, key: "strategy[\(index)]", "'\(strategy.rawValue)' is already strategy[\(other)]")
                }
                result.append(strategy)
            }
            return result
        default:
            throw nodes.error(at: node, key: "strategy",
                              "expected all, a strategy id or a list of ids, found \(ScenarioFileNodes.describe(node))")
        }
    }

    // MARK: Events

    func events(_ node: Node, scenario: ScenarioDescription) throws(ScenarioFileError) -> [ScenarioEvent] {
        let items = try nodes.items(node, key: "events", of: "events")
        guard items.count <= InputLimits.maximumScenarioEvents else {
            throw nodes.error(at: node, key: "events", "\(items.count) events is more than \(InputLimits.describe("scenario event", InputLimits.maximumScenarioEvents, unit: "events"))")
        }
        var events: [ScenarioEvent] = []
        for (index, item) in items.enumerated() {
            events.append(try ScenarioFileEventReader(nodes: nodes, scenario: scenario).event(item, keyPath: "events[\(index)]"))
        }
        return events
    }

    // MARK: Expectations

    func expectations(_ node: Node, scenario: ScenarioDescription) throws(ScenarioFileError) -> [Expectation] {
        let items = try nodes.items(node, key: "expect", of: "expectations")
        var expectations: [Expectation] = []
        let run = scenario.strategiesToRun
        for (index, item) in items.enumerated() {
            let fields = try nodes.fields(item, keyPath: "expect[\(index)]", allowed: Self.expectationKeys)
            var expectation = Expectation()
            if let value = fields.value("strategy"), !ScenarioFileNodes.isNull(value) {
                let key = fields.path("strategy")
                let ids = Strategy.allCases.map(\.rawValue)
                let word = try nodes.string(value, key: key, expecting: "a strategy id")
                guard let strategy = Strategy(rawValue: word) else {
                    throw nodes.error(at: value, key: key, ScenarioFileValues.unknown("strategy", ScenarioFileNodes.shortened(word), expected: ids))
                }
                guard run.contains(strategy) else {
                    throw nodes.error(at: value, key: key,
                                      "strategy '\(word)' is not run by this scenario (it runs \(run.map(\.rawValue).joined(separator: ", ")))")
                }
                expectation.strategy = strategy
            }
            if let value = fields.value("delivered") {
                let key = fields.path("delivered")
                let text = try nodes.string(value, key: key, expecting: "all, none or a number")
                switch text {
                case "all": expectation.delivered = .all
                case "none": expectation.delivered = Expectation.Delivered.nothing
                default:
                    guard case .success(let count) = ScenarioFileValues.number(text) else {
                        throw nodes.error(at: value, key: key, "expected all, none or a number, found '\(ScenarioFileNodes.shortened(text))'")
                    }
                    guard let int = Int(exactly: count) else {
                        throw nodes.error(at: value, key: key, "\(count) deliveries is out of range")
                    }
                    expectation.delivered = .count(int)
                }
            }
            if let value = fields.value("first-failure") {
                expectation.firstFailure = try nodes.choice(value, key: fields.path("first-failure"), FailurePoint.self)
            }
            if let value = fields.value("invariants") {
                expectation.invariantsHold = try nodes.choice(value, key: fields.path("invariants"), [("hold", true), ("violated", false)])
            }
            guard expectation.delivered != nil || expectation.firstFailure != nil || expectation.invariantsHold != nil else {
                throw nodes.error(at: item, key: "expect[\(index)]", "an expectation must check something: delivered, first-failure or invariants")
            }
            expectations.append(expectation)
        }
        return expectations
    }
}
