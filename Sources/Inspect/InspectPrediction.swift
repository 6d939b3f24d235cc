import Bus
import Firmware
import GIC
import LinuxKernel
import Machine
import PCI
import Testbed

/// The model's answer for a machine: the platform its firmware describes, its PCI functions
/// plugged where the snapshot found them, the Linux host model booted with the machine's
/// release and command line, each function bound as the machine has it, and per function
/// what Linux gives it.
///
/// How the snapshot becomes the model's input:
/// - a function's PCI segment picks the root complex: segment n is the n-th enabled host
///   bridge, as Linux numbers domains in probe order without `linux,pci-domain` or `_SEG`;
/// - bridges come from their Type 1 header (secondary bus, PCIe port type); a function sits
///   behind the bridge whose secondary bus is its bus;
/// - endpoints keep their IDs, class, multi-function bit, Interrupt Pin and their MSI / MSI-X
///   capability sizes;
/// - the driver binding is the machine's: `vfio-pci` binds with `driver_managed_dma` and enables
///   nothing (a VMM has not opened it); any other driver enables as many vectors of the mode
///   `msi_irqs` shows with `pci_alloc_irq_vectors(dev, n, n, MSI-X or MSI)`; an unbound
///   function enables nothing. These are the drivers' requests, which are inputs; the
///   messages, groups, domains and regions are what is predicted.
/// A bridge keeps its ACS Capability register (hardware); whether Linux enabled ACS is the
/// model's to predict. Not modelled, and reported as model gaps when a machine shows them:
/// vectors of bridges (the `pcieport` services' PME/AER/hotplug interrupts) and MSI-X tables
/// (their messages are in a BAR).
public struct InspectPrediction {
    /// What the model predicts for one function.
    public struct Function {
        public var name: String
        public var requesterID: RequesterID
        public var isBridge: Bool
        /// The RID its requests carry at the root complex (a PCIe-to-PCI bridge's alias).
        public var wireRequesterID: RequesterID
        public var streamIDs: [UInt32]
        public var deviceID: UInt32?
        /// The ITS its DeviceID goes to (`msi-map` / IORT ITS group): its node path and base.
        public var its: String?
        public var group: Int?
        /// The group's members by `pci_name`, sorted.
        public var groupMembers: [String]
        public var groupType: String?
        public var reservedRegions: [String]
        public var driver: String?
        /// The ACS Control register as the kernel model left it (bridges with ACS only).
        public var acsControl: UInt16?
        /// "MSI-X", "MSI" or nil when nothing was enabled.
        public var mode: String?
        public var vectors: [Vector]
        public var bindError: String?
    }

    public struct Vector: Hashable, Sendable {
        public var index: Int
        public var address: UInt64
        public var data: UInt32
        public var lpi: UInt32?
        public var cpu: Int
    }

    public var configuration: KernelConfiguration
    public var functions: [Function]
    /// Where the model's input left something out (a function it could not plug, say why).
    public var notes: [String]
    public var machine: Machine
    public var kernel: LinuxKernel

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The kernel configuration the machine's release, command line and build configuration
    /// name, and how each was chosen.
    public static func configuration(for snapshot: MachineSnapshot) -> (KernelConfiguration, [String]) {
        var notes: [String] = []
        let version: KernelConfiguration.Version
        if let release = snapshot.release, let v = KernelReleaseMapping.modelled(release) {
            version = v
            notes.append("kernel \(release) is modelled as \(v.rawValue) (the newest named release not after it)")
        } else {
            version = .v6_15
            notes.append("kernel release unknown: modelled as v6.15")
        }
        var build = KernelConfiguration.DefaultDomain.dmaStrict
        if let config = snapshot.buildConfig, let d = KernelBuildConfig.defaultDomain(config) {
            build = d
            notes.append("default domain type from the build configuration: \(d.rawValue)")
        } else {
            notes.append("build configuration not available: arm64's Kconfig default (IOMMU_DEFAULT_DMA_STRICT) assumed")
        }
        let domain = (snapshot.commandLine ?? KernelCommandLine("")).defaultDomain(buildDefault: build)
        return (KernelConfiguration(version: version, defaultDomain: domain), notes)
    }

    public init(_ snapshot: MachineSnapshot) throws(Failure) {
        let machine: Machine
        do { machine = try InspectPlatform.machine(snapshot) } catch { throw Failure(description: error.description) }
        guard let gic = machine.gic else {
            if case .unsupported(let why) = machine.support() { throw Failure(description: why) }
            throw Failure(description: "no GICv3 in the firmware description")
        }
        var (configuration, notes) = Self.configuration(for: snapshot)
        self.configuration = configuration
        self.machine = machine

        // Plug the functions, bridges first so their secondary buses exist.
        var bridges: [UInt32: [UInt8: PCIToPCIBridge]] = [:]
        var functions: [String: PCIFunction] = [:]
        let ordered = snapshot.functions.sorted { ($0.config?.isBridge == true ? 0 : 1, $0.segment, $0.bus) < ($1.config?.isBridge == true ? 0 : 1, $1.segment, $1.bus) }
        for sysfs in ordered {
            let segment = Int(sysfs.segment)
            guard machine.rootComplexes.indices.contains(segment) else {
                notes.append("\(sysfs.name): segment \(sysfs.segment) has no host bridge in the firmware description; left out")
                continue
            }
            let rc = machine.rootComplexes[segment]
            guard let config = sysfs.config else {
                notes.append("\(sysfs.name): no configuration space to read; left out")
                continue
            }
            let rid = RequesterID(bus: sysfs.bus, device: sysfs.device, function: sysfs.function)
            let parent = sysfs.bus == rc.busRange.lowerBound ? nil : bridges[sysfs.segment]?[sysfs.bus]
            if sysfs.bus != rc.busRange.lowerBound && parent == nil {
                notes.append("\(sysfs.name): no bridge in the snapshot leads to bus \(sysfs.bus); left out")
                continue
            }
            do {
                if config.isBridge, let secondary = config.secondaryBus {
                    let bridge = try PCIToPCIBridge(name: sysfs.name, requesterID: rid, kind: Self.bridgeKind(config.expressPortType),
                                                    vendorID: config.vendorID, deviceID: config.deviceID,
                                                    secondaryBus: secondary, subordinateBus: config.subordinateBus,
                                                    acsCapability: config.acs?.capability)
                    try rc.attach(bridge, behind: parent)
                    bridges[sysfs.segment, default: [:]][secondary] = bridge
                } else {
                    let function = try Self.makeFunction(sysfs, config: config, requesterID: rid)
                    try rc.attach(function, behind: parent)
                    functions[sysfs.name] = function
                }
            } catch {
                notes.append("\(sysfs.name): the model cannot plug it: \(error)")
            }
        }

        let kernel = LinuxKernel(topology: machine.topology, bus: machine.bus, cpuInterface: gic, configuration: configuration)
        do { try kernel.boot() } catch { throw Failure(description: "\(machine.name): the kernel model failed to boot: \(error)") }
        self.kernel = kernel

        // Bind each endpoint as the machine has it, in the kernel's probe order.
        let byName = Dictionary(snapshot.functions.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var bindErrors: [String: String] = [:]
        for pdev in kernel.pci.devices where !pdev.isBridge {
            guard let sysfs = byName[Self.sysfsName(pdev, machine: machine)], let driver = sysfs.driver else { continue }
            do {
                if driver == "vfio-pci" {
                    try kernel.pci.probeDriver(pdev, name: driver, driverManagedDMA: true) { () throws(Errno) in }
                    continue
                }
                let msix = sysfs.msiIRQs.filter { $0.mode == "msix" }.count
                let msi = sysfs.msiIRQs.filter { $0.mode == "msi" }.count
                try kernel.pci.probeDriver(pdev, name: driver) { () throws(Errno) in
                    try kernel.pci.enableDevice(pdev)
                    try kernel.pci.setMaster(pdev)
                    if msix > 0 {
                        try kernel.pci.allocateIRQVectors(pdev, min: msix, max: msix, flags: .msix)
                    } else if msi > 0 {
                        try kernel.pci.allocateIRQVectors(pdev, min: msi, max: msi, flags: .msi)
                    }
                }
            } catch {
                bindErrors[pdev.name] = "\(driver) probe failed in the model: \(error)"
            }
        }

        var predicted: [Function] = []
        for pdev in kernel.pci.devices {
            let view = kernel.iommu.view(of: pdev.device)
            let name = Self.sysfsName(pdev, machine: machine)
            let function = functions[name]
            let wire = function.flatMap { f in machine.rootComplexes.first { rc in rc.functions.contains { $0 === f } }.map { $0.requesterIDSeen(for: f).requesterID } } ?? pdev.requesterID
            let vectors = function.map { f in
                ProgrammedVector.all(pdev, function: f, kernel: kernel).map { Vector(index: $0.index, address: $0.address, data: $0.data, lpi: $0.lpi, cpu: $0.cpu) }
            } ?? []
            predicted.append(Function(name: name, requesterID: pdev.requesterID, isBridge: pdev.isBridge, wireRequesterID: wire,
                                      streamIDs: view.streamIDs, deviceID: pdev.msiDomain?.deviceID,
                                      its: pdev.msiDomain.flatMap { d in kernel.itsDrivers.indices.contains(d.its) ? kernel.itsDrivers[d.its].node : nil }
                                          .map { "\($0.path) at \($0.region.base)" },
                                      group: view.group,
                                      groupMembers: (view.group == nil ? [] : kernel.pci.devices.filter { kernel.iommu.view(of: $0.device).group == view.group }
                                          .map { Self.sysfsName($0, machine: machine) }).sorted(),
                                      groupType: view.groupType, reservedRegions: view.reservedRegions,
                                      driver: pdev.device.driverName,
                                      acsControl: pdev.acsCapability.flatMap { try? pdev.readConfig16($0 + 6) },
                                      mode: pdev.msixEnabled ? "MSI-X" : pdev.msiEnabled ? "MSI" : nil,
                                      vectors: vectors, bindError: bindErrors[pdev.name]))
        }
        self.functions = predicted
        self.notes = notes
    }

    /// The machine's name for a function: `pci_name`, "%04x:%02x:%02x.%d" with the segment
    /// the model's host-bridge index stands for.
    static func sysfsName(_ pdev: PCIDevice, machine: Machine) -> String {
        let segment = machine.hostBridgeIndices.firstIndex(of: pdev.hostBridge) ?? pdev.hostBridge
        let rid = pdev.requesterID
        return hex(UInt64(segment), 4) + ":" + hex(UInt64(rid.bus), 2) + ":" + hex(UInt64(rid.device), 2) + "." + String(rid.function)
    }

    /// Lowercase hex without `0x`, zero-padded to `digits` (`pci_name`'s %04x/%02x, sysfs IDs).
    public static func hex(_ value: UInt64, _ digits: Int) -> String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - s.count)) + s
    }

    static func bridgeKind(_ portType: UInt8?) -> PCIToPCIBridge.Kind {
        switch portType {
        case 0x4?: .rootPort
        case 0x5?: .switchUpstreamPort
        case 0x6?: .switchDownstreamPort
        case 0x7?: .pcieToPCI
        case 0x8?: .pciToPCIe
        default: .conventionalPCI
        }
    }

    /// An endpoint with the snapshot's identity and interrupt capabilities. Its BAR 0 holds the
    /// MSI-X table and PBA (the model's own layout: where the real table sits does not change a
    /// message).
    static func makeFunction(_ sysfs: MachineSnapshot.PCIFunctionSysfs, config: PCIConfigSnapshot,
                             requesterID: RequesterID) throws(PCIConfigurationError) -> PCIFunction {
        var msix: MSIXConfiguration?
        var barSize: UInt64 = 0x4000
        if let cap = config.msix {
            let tableBytes = UInt32(cap.tableSize) * 16
            let pbaOffset = max(0x800, (tableBytes + 0xFFF) & ~0xFFF)
            while barSize < UInt64(pbaOffset) + 0x1000 { barSize <<= 1 }
            msix = MSIXConfiguration(tableSize: cap.tableSize, pbaOffset: pbaOffset)
        }
        var msi: MSIConfiguration?
        if let cap = config.msi {
            var log2 = 0
            while (1 << log2) < cap.capable, log2 < 5 { log2 += 1 }
            msi = MSIConfiguration(is64Bit: cap.is64Bit, perVectorMasking: cap.perVectorMasking, vectorsLog2: log2)
        }
        let express: PCIExpressPortType? = config.expressPortType.flatMap { PCIExpressPortType(rawValue: $0) }
        return try PCIFunction(name: sysfs.name, requesterID: requesterID, vendorID: config.vendorID, deviceID: config.deviceID,
                               classCode: config.classCode, bars: [BaseAddressRegister(index: 0, kind: .memory64, size: barSize)],
                               msi: msi, msix: msix, expressType: config.expressPortType == nil ? nil : express,
                               multifunction: config.multifunction, interruptPin: config.interruptPin)
    }
}
