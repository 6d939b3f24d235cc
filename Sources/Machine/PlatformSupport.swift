import Bus
import Firmware
import PCI

/// Whether Doorbell can follow a device's MSI on a platform, and if not, the one reason why.
///
/// The model covers the path PCIe function → root complex → (SMMUv3, SMMUv2 or no IOMMU) → GICv3 ITS,
/// GICv2m frame or GICv3 MBI (GICD_SETSPI_NSR). A platform is supported when the chosen host
/// bridge has configuration access (an ECAM window, or the RK3399's axi-base/apb-base layout), its requesters reach an SMMUv3, an SMMUv2 or no IOMMU at all, and
/// their MSIs go to one of those. Everything else gets one
/// line naming the description's node that is outside the model, so the user knows whether the
/// gap is the model's (an SMMUv2, GICv2m frames) or the description's (every bridge disabled).
public enum PlatformSupport: Hashable, Sendable, CustomStringConvertible {
    /// The MSI path is modelled; the endpoint goes on root complex `rootComplex` (an index into
    /// `Machine.rootComplexes`) at `requesterID`.
    case supported(rootComplex: Int, requesterID: RequesterID)
    /// Not modelled, or not usable as described: one sentence.
    case unsupported(String)

    public var description: String {
        switch self {
        case .supported(let rc, let rid): "supported: MSIs from \(rid.hex) on root complex \(rc) are modelled"
        case .unsupported(let why): why
        }
    }

    public var isSupported: Bool {
        if case .supported = self { return true }
        return false
    }

    /// The sentence that ends `topology` and that every command prints when it cannot run.
    public var verdict: String {
        switch self {
        case .supported: "verdict: supported"
        case .unsupported(let why): "verdict: \(why)"
        }
    }
}

/// Which host bridge to put the endpoint under: `nil` for the first usable one, or an index
/// into `Topology.pcieHostBridges`, or a host bridge's node path.
public enum BridgeChoice: Hashable, Sendable {
    case index(Int)
    case path(String)

    /// `"2"` is an index, anything else a node path.
    public init(_ argument: String) {
        if let index = Int(argument) { self = .index(index) } else { self = .path(argument) }
    }
}

extension Machine {
    /// The verdict for an MSI from a function on `bridge` (the first enabled host bridge with
    /// configuration access, `PCIeHostBridge.hasConfigurationAccess`, when nil).
    public func support(bridge choice: BridgeChoice? = nil) -> PlatformSupport {
        guard let gicDescription = topology.gic else {
            return .unsupported("no interrupt controller in the description (neither a device tree GIC node nor an ACPI MADT)")
        }
        guard let gic else {
            return .unsupported("not modelled: \(gicDescription.path) (\(gicDescription.architecture.rawValue)) was not built")
        }
        let bridges = topology.pcieHostBridges
        guard !bridges.isEmpty else { return .unsupported("no PCIe host bridge in the description") }
        let bridgeIndex: Int
        switch choice {
        case nil:
            guard let first = bridges.indices.first(where: { bridges[$0].enabled && bridges[$0].hasConfigurationAccess }) else {
                if let enabled = bridges.first(where: \.enabled) {
                    return .unsupported("not modelled: \(enabled.path) (\(enabled.compatible.first ?? "host bridge")) has no ECAM window")
                }
                return .unsupported("no enabled PCIe host bridge: \(bridges.map(\.path).joined(separator: ", ")) \(bridges.count == 1 ? "is" : "are all") status = \"disabled\"")
            }
            bridgeIndex = first
        case .index(let i):
            guard i >= 0, i < bridges.count else {
                return .unsupported("no host bridge \(i): the description has \(bridges.count) (0…\(bridges.count - 1))")
            }
            bridgeIndex = i
        case .path(let path):
            guard let i = bridges.firstIndex(where: { $0.path == path }) else {
                return .unsupported("no host bridge \(path): the description has \(bridges.map(\.path).joined(separator: ", "))")
            }
            bridgeIndex = i
        }
        let bridge = bridges[bridgeIndex]
        guard bridge.enabled else { return .unsupported("\(bridge.path) is status = \"disabled\"") }
        guard let rc = hostBridgeIndices.firstIndex(of: bridgeIndex) else {
            if case .rockchipRK3399(let description) = bridge.kind {
                if case .failure(let problem) = Machine.rockchipOutboundWindow(description, ranges: bridge.ranges) {
                    return .unsupported("\(bridge.path) (rockchip,rk3399-pcie): \(problem.sentence)")
                }
                return .unsupported("\(bridge.path) (rockchip,rk3399-pcie): bus-range \(bridge.busRange.lowerBound)…\(bridge.busRange.upperBound) leaves no bus below the root port")
            }
            return .unsupported("not modelled: \(bridge.path) (\(bridge.compatible.first ?? "host bridge")) has no ECAM window")
        }
        guard memoryWindows[rc] != nil else {
            return .unsupported("\(bridge.path) has no memory window and no free address range was found for one")
        }
        if bridge.msiMap == nil, bridge.msiParent.isEmpty, !(gicDescription.isMSIController && its.isEmpty) {
            return .unsupported("not modelled: \(bridge.path) (\(bridge.compatible.first ?? "host bridge")) has neither msi-map nor msi-parent, so its MSIs go to the controller's own MSI logic, not to an ITS")
        }
        let rid = endpointRequesterID(rootComplex: rc)
        guard !its.isEmpty || !gic.v2mFrames.isEmpty || gic.configuration.messageBasedSPIs else {
            if gicDescription.isMSIController {
                return .unsupported("no MSI controller: \(gicDescription.path) is an msi-controller without a valid mbi-ranges and has no enabled ITS")
            }
            let what = gicDescription.architecture == .v2 ? "no enabled GICv2m frame" : "no enabled GICv3 ITS, GICv2m frame or MBI range"
            return .unsupported("no MSI controller: \(gicDescription.path) has \(what)")
        }
        if let reason = iommuGap(bridge: bridge, rid: rid) { return .unsupported(reason) }
        if let reason = msiGap(bridge: bridge, rid: rid) { return .unsupported(reason) }
        return .supported(rootComplex: rc, requesterID: rid)
    }

    /// Where an endpoint goes on root complex `rc`: device 1 of its first bus (00:01.0 on a bus
    /// range starting at 0, as QEMU places its first `-device` on `virt`), or device 0 when the
    /// ECAM window is too small to reach device 1 (a DesignWare-style 4 KiB config window, which
    /// addresses one function at a time). When the bridge's `msi-map` (else `iommu-map`) maps
    /// neither, the first RID an entry of that map names that the ECAM window reaches: boards
    /// such as Qualcomm's map only their root port's and slot's RIDs, and a device elsewhere
    /// would not exist there.
    ///
    /// On an RK3399 (`HostBridgeKind.rockchipRK3399`) the first bus holds only the root port and
    /// Linux's `rockchip_pcie_valid_device` lets nothing but device 0 exist on the bus below it,
    /// so the endpoint is 00:00.0 of the root port's secondary bus (01:00.0 on bus-range 0…31).
    public func endpointRequesterID(rootComplex rc: Int) -> RequesterID {
        let busRange = rootComplexes[rc].busRange
        let bridge = topology.pcieHostBridges[hostBridgeIndices[rc]]
        if rc < rockchipControllers.count, let controller = rockchipControllers[rc] {
            let secondary = UInt8(truncatingIfNeeded: controller.rootPort.configRead(offset: ConfigRegister.secondaryBus, size: 1))
            return RequesterID(bus: secondary, device: 0, function: 0)
        }
        let ecamSize = bridge.configSpace?.size ?? 0
        func reachable(_ rid: RequesterID) -> Bool {
            guard busRange.contains(rid.bus) else { return false }
            let offset = UInt64(rid.bus - busRange.lowerBound) << 20 | UInt64(rid.devfn) << 12
            return offset < ecamSize
        }
        let candidates = [RequesterID(bus: busRange.lowerBound, device: 1, function: 0),
                          RequesterID(bus: busRange.lowerBound, device: 0, function: 0)].filter(reachable)
        let fallback = candidates.first ?? RequesterID(bus: busRange.lowerBound, device: 0, function: 0)
        guard let map = bridge.msiMap ?? bridge.iommuMap else { return fallback }
        func mapped(_ rid: RequesterID) -> Bool {
            if case .mapped = map.lookup(UInt32(rid.rawValue)) { return true }
            return false
        }
        if let rid = candidates.first(where: mapped) { return rid }
        for entry in map.entries where entry.length > 0 {
            let rid = RequesterID(UInt16(truncatingIfNeeded: entry.idBase & map.mask))
            if UInt32(rid.rawValue) == entry.idBase & map.mask, reachable(rid), mapped(rid) { return rid }
        }
        return fallback
    }

    /// The IOMMU the RID's DMA goes to, when it is one the model does not have.
    func iommuGap(bridge: PCIeHostBridge, rid: RequesterID) -> String? {
        var targets: [DeviceTreeTarget] = []
        if let map = bridge.iommuMap, case .mapped(_, let target, _) = map.lookup(UInt32(rid.rawValue)) { targets.append(target) }
        targets += bridge.iommus.map(\.target)
        for target in targets {
            switch target {
            case .iommu(let i) where i < topology.otherIOMMUs.count:
                let iommu = topology.otherIOMMUs[i]
                guard iommu.enabled, !smmuV2Descriptions.contains(i) else { continue }
                let compatible = iommu.compatible.first ?? "IOMMU"
                let family = iommu.isArmSMMUv2 ? " (SMMUv2)" : iommu.isArmSMMU ? " (SMMUv1)"
                    : iommu.compatible.contains(where: Machine.smmuV2Compatibles.contains) ? " (an Arm SMMU that Linux's arm-smmu does not bind)" : ""
                return "not modelled: \(iommu.path) is \(compatible)\(family); only the SMMUv3 and the Arm SMMUv1/v2 (arm-smmu) are modelled"
            case .unresolvedPhandle(let p):
                return "\(bridge.path): iommu-map names phandle \(Hex.format(UInt64(p), minDigits: 1)), which no node carries"
            case .node(let path):
                return "not modelled: \(path) translates \(bridge.path)'s DMA and is not an SMMUv3"
            default:
                continue
            }
        }
        return nil
    }

    /// The MSI controller the RID's MSIs go to, when it is not an enabled ITS.
    func msiGap(bridge: PCIeHostBridge, rid: RequesterID) -> String? {
        var targets: [DeviceTreeTarget] = []
        if let map = bridge.msiMap {
            if case .mapped(_, let target, _) = map.lookup(UInt32(rid.rawValue)) { targets.append(target) }
        } else {
            targets += bridge.msiParent.map(\.target)
        }
        for target in targets {
            switch target {
            case .its(let i) where i < topology.its.count:
                if !topology.its[i].enabled { return "\(topology.its[i].path), the ITS of \(bridge.path)'s MSIs, is status = \"disabled\"" }
            case .gicV2mFrame(let i) where i < (topology.gic?.v2mFrames.count ?? 0):
                if v2mFrame(descriptionIndex: i) == nil, let frame = topology.gic?.v2mFrames[i] {
                    return "\(frame.path), the GICv2m frame of \(bridge.path)'s MSIs, is \(frame.enabled ? "not built" : "status = \"disabled\"")"
                }
            case .gic:
                if gic?.configuration.messageBasedSPIs != true {
                    return "\(bridge.path)'s MSIs go to \(topology.gic?.path ?? "the GIC"), which has no valid mbi-ranges (GICD_TYPER.MBIS = 0)"
                }
            case .unresolvedPhandle(let p):
                return "\(bridge.path): its MSI map names phandle \(Hex.format(UInt64(p), minDigits: 1)), which no node carries"
            case .node(let path):
                return "not modelled: \(bridge.path)'s MSIs go to \(path), which is not a GICv3 ITS"
            default:
                continue
            }
        }
        return nil
    }

    /// Compatibles of the Arm SMMU architecture versions 1 and 2 (binding `arm,smmu.yaml`).
    static let smmuV2Compatibles: Set<String> = [
        "arm,mmu-500", "arm,mmu-401", "arm,mmu-400", "arm,smmu-v1", "arm,smmu-v2", "cavium,smmu-v2",
        "qcom,smmu-v2", "nvidia,smmu-500", "qcom,smmu-500",
    ]
}

extension Machine {
    /// The machine ITS (an index into `its`) that a requester's MSIs on `bridge` go to, from
    /// the bridge's `msi-map` (else its `msi-parent`); nil when that is not an enabled ITS.
    public func itsIndex(bridge: PCIeHostBridge, requesterID rid: RequesterID) -> Int? {
        var target: DeviceTreeTarget?
        if let map = bridge.msiMap {
            if case .mapped(_, let mapped, _) = map.lookup(UInt32(rid.rawValue)) { target = mapped }
        } else {
            target = bridge.msiParent.first?.target
        }
        guard case .its(let i)? = target, topology.its.indices.contains(i), topology.its[i].enabled else { return nil }
        let index = topology.its[..<i].filter(\.enabled).count
        return its.indices.contains(index) ? index : nil
    }

    /// What the `topology` verdict adds for a supported endpoint whose ITS sits behind a
    /// SynQuacer / TI K3 pre-ITS window: its MSIs are delivered through the window, and MSI
    /// isolation is lost. Linux's `its_enable_quirk_socionext_synquacer` clears
    /// IRQ_DOMAIN_FLAG_ISOLATED_MSI ("the pre-ITS breaks isolation"), so
    /// `iommu_group_has_isolated_msi` is false for every device of that ITS, and
    /// `vfio_iommu_type1_attach_group` and `iommufd_device_bind` refuse with EPERM unless
    /// `allow_unsafe_interrupts` is set. Nil for any other platform.
    public func preITSNote(rootComplex rc: Int, requesterID rid: RequesterID) -> String? {
        guard hostBridgeIndices.indices.contains(rc) else { return nil }
        let bridge = topology.pcieHostBridges[hostBridgeIndices[rc]]
        guard let index = itsIndex(bridge: bridge, requesterID: rid), let window = preITS[index] else { return nil }
        var note = "MSIs reach the ITS at \(its[index].base) through the pre-ITS window at \(window.base) (socionext,synquacer-pre-its), "
            + "which takes the DeviceID from the address written: MSI isolation is lost, "
            + "so VFIO and iommufd refuse passthrough unless allow_unsafe_interrupts is set"
        if translatedPorts[rc] == nil && smmuV2Ports[rc] == nil { note += " (and no IOMMU translates \(bridge.path), so VFIO has no group for its functions anyway)" }
        return note
    }
}
