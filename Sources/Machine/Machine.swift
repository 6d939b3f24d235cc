import Bus
import Firmware
import GIC
import PCI
import SMMUv2
import SMMUv3

/// A physical Arm machine assembled from a platform description: RAM, a GICv3 with its
/// redistributors and ITSs, SMMUv3s, and PCIe root complexes whose `iommu-map` sends their
/// requesters through an SMMU and whose `msi-map` gives each requester its ITS DeviceID.
///
/// Everything is reached the way software reaches it: the components sit on one `SystemBus` at
/// the addresses the description gives, and a device's transaction travels root complex → SMMU
/// → bus → ITS. Nothing here programs the hardware; that is software's job (`BareMetal` for
/// hardware-level demos, the Linux model later).
public final class Machine {
    public let name: String
    /// The description the machine was built from, plus what the machine chose where the
    /// description was silent: a host bridge without a memory window gets the chosen window as
    /// a `ranges` entry, which is what firmware hands the OS (ACPI `_CRS`, or the DT `ranges`
    /// a boot loader fills in), so the kernel model assigns BARs where the hardware decodes them.
    public let topology: Topology
    public let options: MachineOptions
    public let bus: SystemBus
    /// The GICv3/v4, or a GICv2 (`configuration.version` 2, `Machine+SPIMessages.swift`).
    public let gic: GICv3?
    /// One per enabled `arm,gic-v3-its` node, in description order.
    public let its: [ITS]
    /// For each of `its`, the SynQuacer/TI K3 pre-ITS window in front of it, when its node has
    /// a `socionext,synquacer-pre-its` property.
    public let preITS: [PreITS?]
    /// One per enabled `arm,smmu-v3` node, in description order.
    public let smmus: [SMMUv3]
    /// One per enabled Arm SMMU node Linux's arm-smmu drives (`IOMMUDescription.isArmSMMU`):
    /// version 2 (MMU-500, `arm,smmu-v2`) or version 1 (MMU-401, `arm,smmu-v1`, `arm,mmu-400`),
    /// in description order, with the index of its description in `topology.otherIOMMUs`.
    public let smmuV2s: [SMMUv2]
    public let smmuV2Descriptions: [Int]
    /// For each root complex, its SMMUv2 path when its `iommu-map` names an SMMUv2.
    public let smmuV2Ports: [SMMUv2Port?]
    /// One per enabled PCIe host bridge with configuration access (an ECAM window, or a
    /// controller layout `HostBridgeKind` names), in description order.
    public let rootComplexes: [RootComplex]
    /// For each root complex, its RK3399 controller (root port in apb-base, configuration
    /// region in axi-base) when its host bridge is `rockchip,rk3399-pcie`.
    public let rockchipControllers: [RockchipPCIeController?]
    /// For each root complex, the index of its host bridge in `topology.pcieHostBridges`.
    public let hostBridgeIndices: [Int]
    /// For each root complex, its memory window: the description's first memory `ranges`
    /// entry, or, when the description gives none (ACPI puts windows in the DSDT `_CRS`, which
    /// is not read; some DT bridges are programmed by firmware), a free window this machine
    /// chose (`MemoryWindow.chosen`).
    public let memoryWindows: [MemoryWindow?]
    /// The upstream port of each root complex (its SMMU path), when it has one.
    public let translatedPorts: [TranslatedPort?]
    public let directPort: DirectPort
    /// Parts of the description that exist but are not modelled (GICv2m frames, MMU-500s…),
    /// sorted, so a report can say what was left out.
    public let notModelled: [String]

    public init(topology: Topology, options: MachineOptions = MachineOptions(), name: String = "custom") throws(MachineError) {
        self.name = name
        self.options = options
        let bus = SystemBus()
        self.bus = bus
        var notModelled: [String] = []

        do {
            for (i, range) in topology.memory.enumerated() where range.size > 0 {
                try bus.addRAM(base: range.base, size: range.size, name: "ram\(i)")
            }
        } catch { throw .bus(error) }

        // The interrupt controller: a GICv3/v4, or a GICv2 (the same model with the GICv2
        // register layout); either may have GICv2m frames (`Machine+SPIMessages.swift`).
        var gic: GICv3?
        var itsList: [ITS] = []
        var preITSList: [PreITS?] = []
        if let description = topology.gic {
            switch description.architecture {
            case .v3:
                // A device tree does not tell GICv3 from GICv4 (both are "arm,gic-v3"), so the
                // version comes from the options.
                var configuration = options.gic
                configuration.cpuCount = max(1, topology.cpus.count)
                // MBIs (`Machine+SPIMessages.swift`): GICD_TYPER.MBIS, and every range's SPIs implemented.
                let mbis = Machine.mbiRanges(description)
                configuration.messageBasedSPIs = mbis != nil
                let v2m = description.v2mFrames.filter(\.enabled)
                let v2mRanges = v2m.indices.map { Machine.v2mSPIRange(v2m, index: $0, topology: topology) }
                configuration.spiCount = Machine.spiCount(covering: (mbis ?? []) + v2mRanges.map { ($0.baseSPI, $0.spiCount) },
                                                          minimum: configuration.spiCount)
                // GITS_TYPER.Devbits is not in a device tree; the ITS must at least take every
                // DeviceID the platform's msi-maps emit (TI K3 gives each host bridge its own
                // 64 Ki block above 0xFFFF), so the width grows to cover them.
                configuration.deviceIDBits = max(configuration.deviceIDBits, Machine.deviceIDBits(topology))
                // A pre-ITS window says the GIC is the SynQuacer / TI K3 GIC-500: its IIDR is
                // the one Linux's pre-ITS quirk matches (what those SoCs' boot logs show).
                if description.its.contains(where: { $0.enabled && $0.preITSWindow != nil }) {
                    configuration.iidr = GICv3.gic500r1p1IIDR
                }
                let affinities = topology.cpus.map { Machine.affinity(fromMPIDR: $0.mpidr) }
                let controller = GICv3(configuration: configuration, affinities: affinities.isEmpty ? nil : affinities)
                guard !description.redistributorRegions.isEmpty else {
                    throw .unsupported("\(description.path) has no redistributor region")
                }
                do {
                    try controller.attach(to: bus, distributorBase: description.distributor.base,
                                          redistributorRegions: description.redistributorRegions.map { ($0.base, $0.size) },
                                          stride: description.redistributorStride)
                    try Machine.addV2mFrames(v2m, ranges: v2mRanges, to: controller)
                    for its in description.its where its.enabled {
                        let built = try controller.addITS(base: its.region.base)
                        itsList.append(built)
                        if let window = its.preITSWindow {
                            preITSList.append(try controller.addPreITS(base: window.range.base, size: window.range.size, its: built))
                        } else {
                            preITSList.append(nil)
                        }
                    }
                } catch { throw .bus(error) }
                gic = controller
            case .v2:
                gic = try Machine.buildGICv2(description, topology: topology, options: options, bus: bus)
            }
        }
        self.gic = gic
        self.its = itsList
        self.preITS = preITSList

        var smmus: [SMMUv3] = []
        do {
            for description in topology.smmus where description.enabled {
                let smmu = SMMUv3(configuration: options.smmu, bus: bus)
                try bus.addDevice(smmu, base: description.region.base, size: min(description.region.size, SMMUv3.mmioSize), name: "smmuv3@\(Hex.format(description.region.base.rawValue, minDigits: 1))")
                smmus.append(smmu)
            }
        } catch { throw .bus(error) }
        self.smmus = smmus
        var smmuV2s: [SMMUv2] = []
        var smmuV2Descriptions: [Int] = []
        do {
            for (index, description) in topology.otherIOMMUs.enumerated() where description.enabled && description.isArmSMMU {
                guard let region = description.regions.first, let version = description.armSMMUVersion else { continue }
                let configuration: SMMUv2Configuration
                switch version {
                case .v2: configuration = .fitting(windowSize: region.size)
                case .v1With64KGranule: configuration = .mmu401
                case .v1: configuration = .smmuV1(windowSize: region.size)
                }
                let smmu = SMMUv2(configuration: configuration, bus: bus)
                let name = version.isVersion1 ? "smmuv1" : "smmuv2"
                try bus.addDevice(smmu, base: region.base, size: min(region.size, smmu.mmioSize), name: "\(name)@\(Hex.format(region.base.rawValue, minDigits: 1))")
                smmuV2s.append(smmu)
                smmuV2Descriptions.append(index)
            }
        } catch { throw .bus(error) }
        self.smmuV2s = smmuV2s
        self.smmuV2Descriptions = smmuV2Descriptions
        for iommu in topology.otherIOMMUs where iommu.enabled && !(iommu.isArmSMMU && !iommu.regions.isEmpty) {
            notModelled.append("\(iommu.path): \(iommu.compatible.first ?? "IOMMU") (only SMMUv3 and the Arm SMMUv1/v2 are modelled)")
        }

        // ITS doorbell pages that bypass the SMMU on this platform.
        var untranslated: [(base: UInt64, size: UInt64)] = []
        for its in topology.its where its.enabled {
            if options.untranslatedITS || topology.untranslatedITSBases.contains(its.region.base) {
                untranslated.append((its.region.base.rawValue &+ 0x1_0000, 0x1_0000))
            }
        }

        let direct = DirectPort(bus: bus)
        self.directPort = direct
        // Topology SMMU index → machine SMMU index (disabled SMMUs are not built).
        var machineSMMU: [Int: Int] = [:]
        for (index, description) in topology.smmus.enumerated() where description.enabled {
            machineSMMU[index] = machineSMMU.count
        }
        var rootComplexes: [RootComplex] = []
        var bridgeIndices: [Int] = []
        var windows: [MemoryWindow?] = []
        var ports: [TranslatedPort?] = []
        var v2Ports: [SMMUv2Port?] = []
        var controllers: [RockchipPCIeController?] = []
        var taken = topology.describedDeviceRegions + topology.memory
        var firmwareView = topology
        for (bridgeIndex, bridge) in topology.pcieHostBridges.enumerated() where bridge.enabled {
            var rockchip: RockchipRK3399PCIe?
            var ecam: MemoryRange?
            switch bridge.kind {
            case .rockchipRK3399(let description): rockchip = description
            case .generic: ecam = bridge.configSpace
            }
            guard ecam != nil || rockchip != nil else {
                notModelled.append("\(bridge.path): host bridge without an ECAM window")
                continue
            }
            let low = UInt8(clamping: bridge.busRange.lowerBound)
            let high = UInt8(clamping: bridge.busRange.upperBound)
            var window: MemoryWindow?
            if let rockchip {
                switch Machine.rockchipOutboundWindow(rockchip, ranges: bridge.ranges) {
                case .success(let atu): window = atu
                case .failure(let problem):
                    notModelled.append("\(bridge.path): \(problem.sentence)")
                    continue
                }
                guard low < high else {
                    notModelled.append("\(bridge.path): bus-range \(low)…\(high) leaves no bus below the root port")
                    continue
                }
            } else {
                let described = bridge.ranges.first { $0.space == .memory32 } ?? bridge.ranges.first { $0.space == .memory64 }
                window = described.map { MemoryWindow(cpuAddress: $0.cpuAddress.rawValue, pciAddress: $0.pciAddress, size: $0.size, chosen: false) }
            }
            if window == nil, rockchip == nil, let free = MemoryWindow.free(avoiding: taken) {
                window = free
                taken.append(MemoryRange(base: PhysicalAddress(free.cpuAddress), size: free.size))
                firmwareView.pcieHostBridges[bridgeIndex].ranges.append(
                    PCIRange(space: free.cpuAddress < 1 << 32 ? .memory32 : .memory64, prefetchable: false, nonRelocatable: false,
                             aliased: false, pciAddress: free.pciAddress, cpuAddress: PhysicalAddress(free.cpuAddress), size: free.size))
            }
            let rc = RootComplex(name: bridge.path, busRange: low...max(low, high), memoryWindowBase: window?.pciAddress ?? 0)
            rc.iommuMap = Machine.requesterIDMap(Machine.enabledTargets(bridge.iommuMap, topology: topology))
            rc.msiMap = Machine.requesterIDMap(bridge.msiMap)
            rc.intxSink = Machine.intxWiring(bridge, topology: topology, gic: gic)
            var port: TranslatedPort?
            if let smmuIndex = Machine.smmuIndex(of: bridge), let built = machineSMMU[smmuIndex] {
                port = TranslatedPort(smmu: smmus[built], bus: bus, untranslatedWindows: untranslated)
            }
            rc.upstream = port
            var v2Port: SMMUv2Port?
            if port == nil, let iommu = Machine.iommuIndex(of: bridge), let built = smmuV2Descriptions.firstIndex(of: iommu) {
                v2Port = SMMUv2Port(smmu: smmuV2s[built], bus: bus, untranslatedWindows: untranslated)
                rc.upstream = v2Port
            }
            rc.untranslatedUpstream = direct
            var controller: RockchipPCIeController?
            if let rockchip { controller = try Machine.rockchipController(rc, rockchip, bridge: bridge, bus: bus) }
            do {
                if let ecam {
                    try bus.addDevice(rc.ecam, base: ecam.base, size: min(ecam.size, rc.ecamSize), name: "\(bridge.path) ECAM")
                }
                if let window {
                    try bus.addDevice(rc.memoryWindow, base: PhysicalAddress(window.cpuAddress), size: window.size, name: "\(bridge.path) MMIO")
                }
            } catch { throw .bus(error) }
            rootComplexes.append(rc)
            controllers.append(controller)
            bridgeIndices.append(bridgeIndex)
            windows.append(window)
            ports.append(port)
            v2Ports.append(v2Port)
        }
        self.smmuV2Ports = v2Ports
        self.topology = firmwareView
        self.rootComplexes = rootComplexes
        self.rockchipControllers = controllers
        self.hostBridgeIndices = bridgeIndices
        self.memoryWindows = windows
        self.translatedPorts = ports
        self.notModelled = notModelled.sorted()
    }

    /// `other`'s copy for a forked world: every part through `map` (so the bus's devices, the
    /// ports' SMMUs and the root complexes' functions are one copy each), and each root complex's
    /// INTx wiring installed again from the copied GIC (a closure is never copied).
    init(copying other: Machine, map: inout CloneMap) {
        name = other.name
        topology = other.topology
        options = other.options
        bus = map.clone(other.bus)
        gic = map.clone(other.gic)
        its = map.clone(other.its)
        preITS = other.preITS.map { map.clone($0) }
        smmus = map.clone(other.smmus)
        smmuV2s = map.clone(other.smmuV2s)
        smmuV2Descriptions = other.smmuV2Descriptions
        smmuV2Ports = other.smmuV2Ports.map { map.clone($0) }
        rootComplexes = map.clone(other.rootComplexes)
        rockchipControllers = other.rockchipControllers.map { map.clone($0) }
        hostBridgeIndices = other.hostBridgeIndices
        memoryWindows = other.memoryWindows
        translatedPorts = other.translatedPorts.map { map.clone($0) }
        directPort = map.clone(other.directPort)
        notModelled = other.notModelled
        for (index, rc) in rootComplexes.enumerated()
        where other.rootComplexes[index].intxSink != nil && hostBridgeIndices[index] < topology.pcieHostBridges.count {
            rc.intxSink = Machine.intxWiring(topology.pcieHostBridges[hostBridgeIndices[index]], topology: topology, gic: gic)
        }
    }

    /// GICR_TYPER.Affinity_Value (Aff3.Aff2.Aff1.Aff0) from a CPU node's MPIDR `reg`
    /// (MPIDR_EL1: Aff0[7:0], Aff1[15:8], Aff2[23:16], Aff3[39:32]).
    static func affinity(fromMPIDR mpidr: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: mpidr.bits(39, 32) << 24 | mpidr.bits(23, 0))
    }

    /// Bits needed for the largest DeviceID any host bridge's `msi-map` produces.
    static func deviceIDBits(_ topology: Topology) -> Int {
        var largest: UInt64 = 0
        for bridge in topology.pcieHostBridges {
            for entry in bridge.msiMap?.entries ?? [] where entry.length > 0 {
                largest = max(largest, UInt64(entry.outputBase.last ?? 0) &+ UInt64(entry.length) &- 1)
            }
        }
        return min(32, max(1, 64 - largest.leadingZeroBitCount))
    }

    /// The bus address a BAR of `size` bytes (a power of two) gets at the bottom of root complex
    /// `rc`'s memory window: the window's PCI base rounded up to the BAR's natural alignment
    /// (PCI r3.0 §6.2.5.1: a BAR decodes a size-aligned range), as `pci_assign_resource` would
    /// place the first BAR. Nil when the window has no room.
    public func firstBARAddress(rootComplex rc: Int, size: UInt64) -> UInt64? {
        guard rc >= 0, rc < memoryWindows.count, let window = memoryWindows[rc], size > 0, size & (size - 1) == 0 else { return nil }
        let (bumped, overflow) = window.pciAddress.addingReportingOverflow(size - 1)
        guard !overflow else { return nil }
        let address = bumped & ~(size - 1)
        guard address - window.pciAddress <= window.size, window.size - (address - window.pciAddress) >= size else { return nil }
        return address
    }

    /// The SMMU an `iommu-map` sends its requesters to (the first SMMUv3 target; a host bridge
    /// split across several SMMUs is not modelled).
    static func smmuIndex(of bridge: PCIeHostBridge) -> Int? {
        for entry in bridge.iommuMap?.entries ?? [] {
            if case .smmuV3(let index) = entry.target { return index }
        }
        return nil
    }

    /// The `Topology.otherIOMMUs` index the first `iommu-map` entry naming another IOMMU
    /// points at (an SMMUv2, when the machine built one there).
    static func iommuIndex(of bridge: PCIeHostBridge) -> Int? {
        for entry in bridge.iommuMap?.entries ?? [] {
            if case .iommu(let index) = entry.target { return index }
        }
        return nil
    }

    /// A device-tree ID map as the root complex applies it. The output base is the last cell of
    /// the entry's output specifier (`#iommu-cells` / `#msi-cells` = 1 on every modelled target).
    static func requesterIDMap(_ map: IDMap?) -> RequesterIDMap? {
        guard let map else { return nil }
        let entries = map.entries.map { entry -> RequesterIDMap.Entry in
            var target: UInt32 = .max
            switch entry.target {
            case .smmuV3(let i), .its(let i), .iommu(let i), .gicV2mFrame(let i): target = UInt32(clamping: i)
            default: break
            }
            return RequesterIDMap.Entry(ridBase: entry.idBase, target: target, outputBase: entry.outputBase.last ?? 0, length: entry.length)
        }
        return RequesterIDMap(entries: entries, mask: map.mask)
    }

    /// Attaches one trace log to every component, so one MSI can be followed end to end.
    public var trace: TraceLog? {
        didSet {
            bus.trace = trace
            gic?.trace = trace
            for its in its { its.trace = trace }
            for window in preITS { window?.trace = trace }
            for smmu in smmus { smmu.translator.trace = trace }
            for smmu in smmuV2s { smmu.trace = trace }
            for rc in rootComplexes {
                rc.trace = trace
                for function in rc.functions { function.trace = trace }
            }
        }
    }

    /// Attaches one journal to every hardware component, so what happens to one MSI is recorded
    /// as typed entries (`Journal`) wherever it happens.
    public var journal: Journal? {
        didSet {
            bus.journal = journal
            for its in its { its.journal = journal }
            for smmu in smmus { smmu.translator.journal = journal }
            for smmu in smmuV2s { smmu.journal = journal }
            for rc in rootComplexes { rc.journal = journal }
            for redistributor in gic?.redistributors ?? [] { redistributor.journal = journal }
        }
    }

    /// The address a device writes to raise DeviceID `deviceID`'s events on ITS `index`: the
    /// pre-ITS slot `base + (DeviceID << 2)` when the ITS has a pre-ITS window (on such a SoC a
    /// write to GITS_TRANSLATER itself reaches the ITS as DeviceID 0), else GITS_TRANSLATER.
    public func doorbell(its index: Int, deviceID: DeviceID) -> PhysicalAddress? {
        guard its.indices.contains(index) else { return nil }
        if let window = preITS[index] {
            return window.base.adding(UInt64(deviceID.rawValue) << 2)
        }
        return its[index].translaterAddress
    }

    /// The ITS whose translation frame holds `address`, if any.
    public func its(at address: PhysicalAddress) -> ITS? {
        its.first { address.rawValue >= $0.base.rawValue && address.rawValue &- $0.base.rawValue < ITS.frameSize }
    }
}
