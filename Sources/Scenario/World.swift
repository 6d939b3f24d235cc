import Bus
import Firmware
import GIC
import LinuxKernel
import Machine
import PCI
import Testbed
import SMMUv3
import VMM

/// One scenario under one strategy, built: the host machine with its passthrough functions, the
/// host kernel booted on it, the VMM with the VM, and the guest kernel booted with its driver
/// bound (MSI-X or MSI vectors allocated and requested). Everything is built by the same code
/// paths a user's run takes, through the host's uAPI; the world then runs events and fires
/// vectors, and `ScenarioRunner` observes what each MSI did.
public final class World {
    public let scenario: ScenarioDescription
    public let strategy: Strategy
    public let machine: Machine
    public let functions: [PCIFunction]
    public let host: LinuxKernel
    public let vmm: VirtualMachineMonitor
    public let guest: LinuxKernel
    /// The guest's pci_dev of each passthrough function, in device order.
    public internal(set) var guestDevices: [PCIDevice]
    /// Devices the VMM has hot-unplugged (their MSIs are not expected to arrive).
    public internal(set) var unplugged: Set<Int> = []
    /// Devices whose guest driver is unbound, and devices whose STE their own guest corrupted
    /// (until a hot-plug rebuilds them): their MSIs need not arrive, but isolation, containment
    /// and accounting still hold.
    public internal(set) var driverless: Set<Int> = []
    public internal(set) var corrupted: Set<Int> = []
    public var exempt: Set<Int> { driverless.union(corrupted) }
    /// What the guest's handlers saw since the last `takeDeliveries()`: (device, guest irq, vCPU).
    /// Every step takes them, so between two takes it holds one event's deliveries; a caller
    /// that raises MSIs without `perform` (a benchmark's steady stream) never takes them, so it
    /// is a `BoundedLog`: the count stays exact and only the last `retainedDeliveries` are kept.
    var deliveries = BoundedLog<GuestDelivery>(capacity: World.retainedDeliveries)
    /// How many guest deliveries one step keeps: far above what one event delivers in any
    /// scenario (a fire delivers one; an unmask delivers what was pending).
    static let retainedDeliveries = 1024
    /// The guest VFIO user of each device, when `vm.guest-owner` is a VFIO one (keyed lookups
    /// only).
    var guestVFIOUsers: [Int: GuestVFIOUser] = [:]
    /// What the last adversarial write (forged EventID, mapping outside RAM) did.
    var lastAdversarialWrite: AdversarialWrite?
    /// GICv4.1: vectors whose vLPI waits in a non-resident vPE's VPT, by the vCPU they target
    /// (device, vector); `vcpu-resident` must deliver them (`World+GICv4.swift`).
    var vptPending: [Int: Set<VectorKey>] = [:]
    /// What the last `vcpu-resident` left undelivered (a loss the invariant reports).
    var residencyLosses: [String] = []
    /// A guest interrupt handler call.
    public struct GuestDelivery: Hashable, Sendable {
        public var device: Int
        public var irq: Int
        public var cpu: Int
    }

    /// Why a world could not be built: the step and the error, as the user would see it.
    public struct SetupFailure: Error, Hashable, Sendable, CustomStringConvertible {
        public var step: String
        public var error: String
        /// The host function that refused the failing call, with errno and window/ID, when
        /// the host kernel recorded one.
        public var cause: KernelRefusal?
        public var description: String { "\(step): \(error)" }

        public init(step: String, error: String, cause: KernelRefusal? = nil) {
            self.step = step
            self.error = error
            self.cause = cause
        }
    }

    init(scenario: ScenarioDescription, strategy: Strategy, machine: Machine, functions: [PCIFunction], host: LinuxKernel,
         vmm: VirtualMachineMonitor, guest: LinuxKernel, guestDevices: [PCIDevice]) {
        self.scenario = scenario
        self.strategy = strategy
        self.machine = machine
        self.functions = functions
        self.host = host
        self.vmm = vmm
        self.guest = guest
        self.guestDevices = guestDevices
    }

    /// Builds the world, or says which step failed. `platformTopology` is the description of a
    /// `.deviceTree` (file) platform, read by the caller, so this stays free of file I/O.
    public static func build(_ scenario: ScenarioDescription, strategy: Strategy, platformTopology: Topology? = nil) throws(SetupFailure) -> World {
        func fail(_ step: String, _ error: Any) -> SetupFailure { SetupFailure(step: step, error: "\(error)") }
        let machine: Machine
        do {
            switch scenario.platform {
            case .preset(let preset):
                machine = try Self.presetMachine(preset, gic: scenario.host.gic)
            case .deviceTree(let path):
                guard let topology = platformTopology else { throw fail("platform", "\(path) was not read") }
                var options = MachineOptions()
                if let gic = scenario.host.gic { options.gic = Self.gicConfiguration(gic) }
                machine = try Machine(topology: topology, options: options, name: path)
            }
        } catch let error as SetupFailure {
            throw error
        } catch {
            throw fail("platform", error)
        }
        let support = machine.support(bridge: scenario.bridge.map(BridgeChoice.init))
        guard case .supported(let rcIndex, _) = support else { throw fail("platform", support.description) }
        let hostMachine: HostMachine
        do { hostMachine = try HostMachine(machine) } catch { throw fail("platform", "no GICv3") }
        let rc = machine.rootComplexes[rcIndex]
        guard !scenario.devices.isEmpty else { throw fail("devices", "the scenario has no device") }
        if let limit = Self.checkGuestPlacement(scenario) { throw fail("devices", limit) }
        if let mistake = Self.checkGuestOwner(scenario) { throw fail("guest-owner", mistake) }
        var functions: [PCIFunction] = []
        var placement = HostBridgePlacement()
        // A host slot with functions other than 0 needs Header Type bit 7 on function 0, or
        // `pci_scan_slot` stops after it.
        let sharedSlots = Set(scenario.devices.map(\.requesterID).filter { $0.function != 0 }.map { $0.rawValue >> 3 })
        for (index, device) in scenario.devices.enumerated() {
            // The bounds a scenario file enforces, for descriptions built in code too: MSI-X
            // Table Size is 11 bits (PCIe r6.0 §7.7.2.2), MSI's Multiple Message Capable 1…32.
            let valid = device.interrupts == .msix ? (1...2048).contains(device.vectors)
                : [1, 2, 4, 8, 16, 32].contains(device.vectors)
            guard valid else { throw fail("device \(index)", "\(device.vectors) \(device.interrupts.rawValue) vectors is out of range") }
            if let mistake = Self.checkEnabledVectors(device) { throw fail("device \(index)", mistake) }
            let function: PCIFunction
            let multifunction = device.requesterID.function == 0 && sharedSlots.contains(device.requesterID.rawValue >> 3)
            do { function = try Self.makeFunction(device, index: index, multifunction: multifunction) } catch { throw fail("device \(index)", error) }
            guard rc.busRange.contains(device.requesterID.bus) else {
                throw fail("device \(index) \(device.requesterID)", "bus \(device.requesterID.bus) is outside \(rc.name)'s buses \(rc.busRange.lowerBound)-\(rc.busRange.upperBound)")
            }
            do {
                // A function on bus N sits behind a root port (or the PCIe-to-PCI bridge
                // `host-behind` names) at 00:(0x1f - k).0 whose secondary bus is N; on an
                // RK3399 the controller's own root port (00:00.0) is in front of its buses.
                if device.hostBridge == nil, let port = machine.rootPort(above: device.requesterID, rootComplex: rcIndex) {
                    try rc.attach(function, behind: port)
                } else {
                    try placement.attach(function, bridge: device.hostBridge, to: rc)
                }
            } catch { throw fail("device \(index) \(device.requesterID)", error) }
            functions.append(function)
        }
        // After each device's own bounds (vector counts), so that a bad count is that device's
        // error (`checkDeviceLimits`: the guest placement was checked above).
        if let limit = Self.checkInterruptLimits(scenario, machine: machine, rootComplex: rc) { throw fail("devices", limit) }
        let host: LinuxKernel
        var hostKernel = strategy.hostKernel(scenario.host)
        // A GICv4.1 host boots with kvm-arm.vgic_v4_enable=1: the scenario is about direct
        // injection, which KVM leaves off by default.
        hostKernel.vgicV4Enable = machine.gic?.configuration.virtualLPIs ?? false
        do { host = try hostMachine.bootHost(hostKernel) } catch {
            guard case .boot(_, let bootError) = error else { throw fail("host boot", error) }
            throw fail("host boot", bootError)
        }
        var hostDevices: [Device] = []
        for device in scenario.devices {
            guard let pdev = host.pci.device(device.requesterID, hostBridge: machine.hostBridgeIndices[rcIndex]) else {
                throw fail("host enumeration", "\(device.requesterID) was not enumerated")
            }
            hostDevices.append(pdev.device)
        }
        let vmm: VirtualMachineMonitor
        let mark = host.refusals.mark
        do {
            vmm = try VirtualMachineMonitor(host: host, devices: hostDevices,
                                            configuration: strategy.vmmConfiguration(scenario.vm, devices: scenario.devices))
        } catch {
            var failure = fail("VMM", error)
            if case .hostCall(_, let errno) = error {
                failure.cause = host.refusals.latest(since: mark, matching: errno)
            }
            throw failure
        }
        let guest: LinuxKernel
        do { guest = try vmm.bootGuest() } catch { throw fail("guest boot", error) }
        let guestRIDs = vmm.devices.map(\.guestRequesterID)
        var guestDevices: [PCIDevice] = []
        for rid in guestRIDs {
            guard let g = guest.pci.device(rid) else { throw fail("guest enumeration", "\(rid) was not enumerated") }
            guestDevices.append(g)
        }
        let world = World(scenario: scenario, strategy: strategy, machine: machine, functions: functions, host: host,
                          vmm: vmm, guest: guest, guestDevices: guestDevices)
        do { try world.runVCPUs() } catch { throw fail("vCPU residency (GICv4.1)", error) }
        for (index, g) in guestDevices.enumerated() {
            if scenario.vm.guestOwner != .driver {
                do { try world.bindGuestVFIO(index, g) } catch { throw fail("guest VFIO user (device \(index), \(scenario.vm.guestOwner.rawValue))", error) }
                continue
            }
            do { try world.bindGuestDriver(index, g) } catch { throw fail("guest driver (device \(index))", error) }
        }
        return world
    }

    /// The bounds of `enabled`, `pre-vectors` and `post-vectors` against the vector count, for
    /// descriptions built in code as for files; nil when they hold.
    public static func checkEnabledVectors(_ device: DeviceDescription) -> String? {
        if let enabled = device.enabledVectors, !(1...device.vectors).contains(enabled) {
            return "\(enabled) enabled vectors is out of range (the function has \(device.vectors): 1…\(device.vectors))"
        }
        guard device.preVectors >= 0, device.postVectors >= 0 else { return "pre-vectors and post-vectors must not be negative" }
        if device.affinity == .unmanaged, device.preVectors + device.postVectors > 0 {
            return "pre-vectors and post-vectors need affinity: managed"
        }
        if device.affinity == .managed, device.preVectors + device.postVectors >= device.activeVectors {
            return "\(device.preVectors) pre-vectors + \(device.postVectors) post-vectors leave none of \(device.activeVectors) to spread"
        }
        return nil
    }

    /// The endpoint a scenario device describes (`Endpoint`: virtio IDs, BAR 0 with the
    /// MSI-X table and PBA), without an Interrupt Pin.
    static func makeFunction(_ device: DeviceDescription, index: Int, multifunction: Bool = false) throws(PCIConfigurationError) -> PCIFunction {
        try Endpoint.make(name: "ep\(index)", requesterID: device.requesterID,
                          interrupts: device.interrupts == .msix ? .msix(vectors: device.vectors) : .msi(vectors: device.vectors),
                          multifunction: multifunction)
    }

    /// The guest driver's probe, through the driver core (`really_probe`: `pci_dma_configure`
    /// claims the default domain, then the probe): enable, bus master,
    /// `pci_alloc_irq_vectors(dev, n, n, flag)` and one `request_irq` per vector whose handler
    /// records where it ran.
    ///
    /// `enabled` below the vector count asks for fewer (`max_vecs`; virtio-pci's
    /// `vp_request_msix_vectors` asks for exactly what it uses). `affinity: managed` is
    /// `pci_alloc_irq_vectors_affinity(dev, pre + post + 1, n, flag | PCI_IRQ_AFFINITY, {pre,
    /// post})`, as NVMe's `nvme_setup_irqs` (min 1, `pre_vectors` 1).
    func bindGuestDriver(_ index: Int, _ g: PCIDevice, enable: Bool = true) throws(Errno) {
        if scenario.vm.guestOwner != .driver {
            do { try bindGuestVFIO(index, g) } catch { throw error.errno }
            return
        }
        let description = scenario.devices[index]
        let body = { () throws(Errno) in
            if enable {
                try self.guest.pci.enableDevice(g)
                try self.guest.pci.setMaster(g)
            }
            let wanted = description.activeVectors
            var flags: PCIIRQFlags = description.interrupts == .msix ? .msix : .msi
            var minimum = wanted
            var affinity: IRQAffinity?
            if description.affinity == .managed {
                flags.insert(.affinity)
                affinity = IRQAffinity(preVectors: description.preVectors, postVectors: description.postVectors)
                minimum = description.preVectors + description.postVectors + 1
            }
            let n = try self.guest.pci.allocateIRQVectors(g, min: minimum, max: wanted, flags: flags, affinity: affinity)
            for v in 0..<n { try self.requestGuestIRQ(index, vector: v, irq: try self.guest.pci.irqVector(g, v)) }
        }
        if guest.pci.isDriverBound(g) { try body() } else { try guest.pci.probeDriver(g, name: "guest-ep\(index)", probe: body) }
    }

    /// `request_irq` with a handler that records where it ran.
    func requestGuestIRQ(_ index: Int, vector: Int, irq: Int) throws(Errno) {
        try guest.irq.requestIRQ(irq, name: Self.guestIRQName(index, vector: vector), handler: guestHandler(index))
    }

    /// The name the guest driver of device `index` requests vector `vector` under (what the
    /// guest's /proc/interrupts shows), and the device a name of that form belongs to.
    static func guestIRQName(_ index: Int, vector: Int) -> String { "guest-ep\(index)[\(vector)]" }

    static func guestIRQDevice(name: String) -> Int? {
        guard name.hasPrefix("guest-ep"), let open = name.firstIndex(of: "[") else { return nil }
        return Int(name[name.index(name.startIndex, offsetBy: 8)..<open])
    }

    /// The guest driver's interrupt handler for device `index`: it records the delivery.
    func guestHandler(_ index: Int) -> (_ irq: Int, _ cpu: Int) -> IRQReturn {
        { [weak self] irq, cpu in
            self?.deliveries.append(GuestDelivery(device: index, irq: irq, cpu: cpu))
            return .handled
        }
    }

    /// The guest deliveries since the last call: how many, and the ones the log kept.
    func takeDeliveries() -> (count: Int, retained: [GuestDelivery]) {
        defer { deliveries.removeAll() }
        return (deliveries.count, deliveries.retained)
    }
}
