import Bus
import GIC
import LinuxKernel
import Machine
import PCI
import Testbed
import Scenario

/// `doorbell host --device …`: several functions under the host kernel model, each with what
/// Linux gives it: the order `pci_scan_child_bus` found it in (a bus's functions by devfn, then
/// each bridge's secondary bus), the Requester ID its requests carry (a PCIe-to-PCI bridge's
/// alias), StreamIDs and DeviceID, its IOMMU group (numbered as `iommu_group_alloc`'s ida hands
/// them out in `iommu_probe_device` order, which is `pci_bus_add_devices` order; a function
/// behind a PCIe-to-PCI bridge or a bridge without ACS shares its bridge's group,
/// `pci_device_group`), the group's default domain type and reserved regions, and every vector
/// a driver enabled with `pci_alloc_irq_vectors(dev, 1, n, flags)`: message address, data, LPI
/// and CPU. A function left with INTx raises its interrupt once after every driver has bound:
/// the SPI is taken on the CPU its GICD_IROUTER names (`gic_handle_irq`), the driver's handler
/// runs (`handle_fasteoi_irq`), reads PCI_STATUS_INTERRUPT and clears the device's condition,
/// and the report shows the CPU, the INTID and how often the handler ran.
public struct HostDevicesReport {
    public struct Vector: Hashable, Sendable {
        public var index: Int
        public var irq: Int
        public var address: UInt64
        public var data: UInt32
        public var lpi: UInt32?
        public var cpu: Int
    }

    public struct Entry {
        public var name: String
        public var requesterID: RequesterID
        public var isBridge: Bool
        /// The RID its requests carry at the root complex.
        public var wireRequesterID: RequesterID
        public var streamIDs: [UInt32]
        public var deviceID: UInt32?
        public var group: Int?
        public var groupDevices: [String]
        public var defaultDomainType: String?
        public var reservedRegions: [String]
        public var interruptMode: String
        public var vectors: [Vector]
        /// INTx: the pin, where it enters the host bridge after the swizzle, the SPI INTID and
        /// the Linux interrupt (`dev->irq`).
        public var intx: (pin: UInt8, rootDevfn: UInt8, rootPin: UInt8, intid: UInt32, irq: Int)?
        /// The INTx raised once: the CPU that took it, the INTID its IAR read returned, and the
        /// handler's runs (`kstat_irqs`).
        public var intxHandled: (cpu: Int, intid: UInt32, runs: Int, active: Bool)?
    }

    public var text: String
    /// Every enumerated function in probe order.
    public var entries: [Entry]
    /// The same as data: `doorbell host --device … --format json`.
    public var json: JSONValue = .null

    /// Plugs `devices` under root complex `rcIndex` of `machine`, boots the host kernel model and
    /// lets a driver enable each one's vectors.
    public static func make(machine: Machine, rcIndex: Int, devices: [HostDeviceSpec], configuration: KernelConfiguration) throws -> HostDevicesReport {
        let host: HostMachine
        do { host = try HostMachine(machine) } catch { throw CommandFailure(error.description) }
        let rc = machine.rootComplexes[rcIndex]
        var seen = Set<RequesterID>()
        var placement = HostBridgePlacement()
        var functions: [RequesterID: PCIFunction] = [:]
        for (index, spec) in devices.enumerated() {
            guard seen.insert(spec.requesterID).inserted else { throw UsageFailure("--device \(spec.requesterID) given twice") }
            guard rc.busRange.contains(spec.requesterID.bus) else {
                throw UsageFailure("--device \(spec.requesterID): bus \(spec.requesterID.bus) is outside \(rc.name)'s buses \(rc.busRange.lowerBound)-\(rc.busRange.upperBound)")
            }
            do {
                let function = try makeFunction(spec, index: index)
                // On an RK3399 the controller's own root port (00:00.0) is in front of its buses.
                if spec.bridge == nil, let port = machine.rootPort(above: spec.requesterID, rootComplex: rcIndex) {
                    try rc.attach(function, behind: port)
                } else {
                    try placement.attach(function, bridge: spec.bridge, to: rc)
                }
                functions[spec.requesterID] = function
            } catch {
                throw UsageFailure("--device \(spec.requesterID): \(error)")
            }
        }
        for bridge in placement.created where functions[bridge.requesterID] == nil && seen.contains(bridge.requesterID) {
            throw UsageFailure("--device \(bridge.requesterID): that slot holds the bridge of bus \(bridge.secondaryBus)")
        }
        let kernel: LinuxKernel
        do { kernel = try host.bootHost(configuration) } catch { throw CommandFailure(error.description) }
        let hostBridge = machine.hostBridgeIndices[rcIndex]

        // Drivers bind in the order devices were added (pci_bus_add_device → device_attach).
        var modes: [String: String] = [:]
        var handlerRuns: [String: Int] = [:]
        for pdev in kernel.pci.devices where pdev.hostBridge == hostBridge && !pdev.isBridge {
            guard let spec = devices.first(where: { $0.requesterID == pdev.requesterID }) else { continue }
            do {
                try kernel.pci.probeDriver(pdev, name: "doorbell-host") { () throws(Errno) in
                    try kernel.pci.enableDevice(pdev)
                    try kernel.pci.setMaster(pdev)
                    let n = try kernel.pci.allocateIRQVectors(pdev, min: 1, max: spec.vectors, flags: .allTypes)
                    for i in 0..<n {
                        let irq = try kernel.pci.irqVector(pdev, i)
                        if pdev.intxEnabled, let function = functions[pdev.requesterID] {
                            // The INTx handler: not ours unless PCI_STATUS_INTERRUPT is set; else
                            // clear the device's condition (its line deasserts) and claim it.
                            let name = pdev.name
                            try kernel.irq.requestIRQ(irq, name: "\(name)-\(i)") { _, _ in
                                guard let status = try? pdev.readConfig(ConfigRegister.status, size: 2),
                                      UInt16(truncatingIfNeeded: status) & ConfigRegister.statusInterrupt != 0 else { return .none }
                                handlerRuns[name, default: 0] += 1
                                function.setINTx(false)
                                return .handled
                            }
                        } else {
                            try kernel.irq.requestIRQ(irq, name: "\(pdev.name)-\(i)") { _, _ in .handled }
                        }
                    }
                }
                modes[pdev.name] = pdev.msixEnabled ? "MSI-X" : pdev.msiEnabled ? "MSI" : pdev.intxEnabled ? "INTx" : "none"
            } catch {
                modes[pdev.name] = "none (probe failed: \(error))"
            }
        }

        var entries: [Entry] = []
        for pdev in kernel.pci.devices where pdev.hostBridge == hostBridge {
            let view = kernel.iommu.view(of: pdev.device)
            let function = functions[pdev.requesterID]
            let wire = function.map { rc.requesterIDSeen(for: $0).requesterID } ?? pdev.requesterID
            let vectors = function.map { f in
                ProgrammedVector.all(pdev, function: f, kernel: kernel).map {
                    Vector(index: $0.index, irq: $0.irq, address: $0.address, data: $0.data, lpi: $0.lpi, cpu: $0.cpu)
                }
            } ?? []
            var intx: (pin: UInt8, rootDevfn: UInt8, rootPin: UInt8, intid: UInt32, irq: Int)?
            var handled: (cpu: Int, intid: UInt32, runs: Int, active: Bool)?
            if pdev.intxEnabled, let route = pdev.intxRoute, let function {
                intx = (function.interruptPin, route.rootDevfn, route.pin, route.intid, pdev.irq)
                if let d = kernel.irq.descriptor(pdev.irq), d.action != nil {
                    let cpu = d.effectiveCPU
                    let before = host.gic.cpuInterfaces.indices.contains(cpu) ? host.gic.cpuInterfaces[cpu].deliveries.count : 0
                    function.setINTx(true)
                    kernel.irq.handleInterrupts(cpu: cpu)
                    let taken = host.gic.cpuInterfaces.indices.contains(cpu) ? host.gic.cpuInterfaces[cpu].deliveries.since(before).first?.intid.rawValue : nil
                    handled = (cpu, taken ?? INTID.spurious.rawValue, handlerRuns[pdev.name] ?? 0,
                               host.gic.distributor.isActive(intid: route.intid) || host.gic.distributor.isPending(intid: route.intid))
                }
            }
            entries.append(Entry(name: pdev.name, requesterID: pdev.requesterID, isBridge: pdev.isBridge, wireRequesterID: wire,
                                 streamIDs: view.streamIDs, deviceID: pdev.msiDomain?.deviceID, group: view.group,
                                 groupDevices: view.groupDevices, defaultDomainType: view.groupType,
                                 reservedRegions: view.reservedRegions,
                                 interruptMode: pdev.isBridge ? "bridge" : (modes[pdev.name] ?? "no driver"), vectors: vectors, intx: intx,
                                 intxHandled: handled))
        }

        var text = "Doorbell: the Linux host model (\(configuration.version.rawValue), default domain \(configuration.defaultDomain.rawValue)) on \(machine.name)\n"
        text += "\(devices.count) device(s); functions in probe order (pci_scan_child_bus, pci_bus_add_devices → iommu_probe_device):\n"
        // A function the host bridge's pci_ops never reach (on an RK3399, any device but 0 on
        // the bus below the root port: rockchip_pcie_valid_device) is not in the list.
        for spec in devices where kernel.pci.device(spec.requesterID, hostBridge: hostBridge) == nil {
            text += "  \(spec.requesterID) was not enumerated: the host bridge's configuration accessors do not reach it\n"
        }
        for entry in entries {
            text += "\n\(entry.name)\(entry.isBridge ? " (bridge)" : "")\n"
            var rid = "  RID \(entry.requesterID)"
            if entry.wireRequesterID != entry.requesterID { rid += ", requests carry \(entry.wireRequesterID) (PCIe-to-PCI bridge alias)" }
            text += rid + "\n"
            let sids = entry.streamIDs.isEmpty ? "none (no IOMMU)" : entry.streamIDs.map { Hex.format(UInt64($0), minDigits: 1) }.joined(separator: ", ")
            text += "  StreamID \(sids); DeviceID \(entry.deviceID.map { Hex.format(UInt64($0), minDigits: 1) } ?? "-")\n"
            if let group = entry.group {
                text += "  iommu group \(group): \(entry.groupDevices.joined(separator: " ")); default domain \(entry.defaultDomainType ?? "unknown")\n"
                for region in entry.reservedRegions { text += "  reserved \(region)\n" }
            } else {
                text += "  no iommu group\n"
            }
            if !entry.isBridge {
                text += "  interrupts: \(entry.interruptMode)\n"
                if let intx = entry.intx {
                    let letter = ["A", "B", "C", "D"][Int(intx.pin &- 1) & 3]
                    let rootLetter = ["A", "B", "C", "D"][Int(intx.rootPin &- 1) & 3]
                    text += "    INT\(letter) → host bridge slot \(Hex.format(UInt64(intx.rootDevfn >> 3), minDigits: 2)) INT\(rootLetter) (interrupt-map) → SPI \(intx.intid - 32) (INTID \(intx.intid)), irq \(intx.irq), CPU \(entry.intxHandled?.cpu ?? 0)\n"
                }
                if let handled = entry.intxHandled {
                    let taken = handled.intid == INTID.spurious.rawValue ? "nothing (IAR 1023)" : "INTID \(handled.intid)"
                    text += "    INTx raised: CPU \(handled.cpu) took \(taken) (\(machine.gic?.configuration.version == 2 ? "GICC_IAR" : "ICC_IAR1_EL1")), the handler ran \(handled.runs) time(s)\(handled.active ? ", SPI still active or pending" : " and cleared the device, SPI inactive and not pending after EOI/DIR")\n"
                }
                for v in entry.vectors {
                    text += "    vector \(v.index): irq \(v.irq), address \(Hex.format(v.address)) data \(Hex.format(UInt64(v.data), minDigits: 1)), \(v.lpi.map { $0 >= 8192 ? "LPI \($0)" : "SPI \($0)" } ?? "no LPI"), CPU \(v.cpu)\n"
                }
            }
        }
        var report = HostDevicesReport(text: text, entries: entries)
        report.json = .object([
            "platform": .string(machine.name), "kernel": .string(configuration.version.rawValue),
            "default-domain": .string(configuration.defaultDomain.rawValue),
            "functions": .array(entries.map(Self.json)),
        ])
        return report
    }

    /// One function as data: RIDs and IDs as numbers, addresses as hex strings, `intx` and
    /// `intx-handled` `null` unless the function fell back to INTx.
    static func json(_ entry: Entry) -> JSONValue {
        .object([
            "name": .string(entry.name), "bridge": .bool(entry.isBridge),
            "requester-id": .number(entry.requesterID.rawValue), "wire-requester-id": .number(entry.wireRequesterID.rawValue),
            "stream-ids": .array(entry.streamIDs.map { .number($0) }), "device-id": .number(entry.deviceID),
            "group": .number(entry.group), "group-devices": .array(entry.groupDevices.map { .string($0) }),
            "default-domain": .string(entry.defaultDomainType), "reserved-regions": .array(entry.reservedRegions.map { .string($0) }),
            "interrupts": .string(entry.interruptMode),
            "intx": entry.intx.map { i in .object(["pin": .number(i.pin), "root-devfn": .number(i.rootDevfn), "root-pin": .number(i.rootPin),
                                                   "intid": .number(i.intid), "irq": .number(i.irq)]) } ?? .null,
            "intx-handled": entry.intxHandled.map { h in .object(["cpu": .number(h.cpu), "intid": .number(h.intid), "runs": .number(h.runs),
                                                                  "active": .bool(h.active)]) } ?? .null,
            "vectors": .array(entry.vectors.map { v in
                .object(["index": .number(v.index), "irq": .number(v.irq), "address": .address(v.address), "data": .number(v.data),
                         "lpi": .number(v.lpi), "cpu": .number(v.cpu)])
            }),
        ])
    }

    /// The scenario worlds' endpoint (`Endpoint`) with the capability `spec` names and
    /// Interrupt Pin INTA#, so the driver's `pci_alloc_irq_vectors(…, PCI_IRQ_ALL_TYPES)` can
    /// fall back to INTx.
    static func makeFunction(_ spec: HostDeviceSpec, index: Int) throws -> PCIFunction {
        let interrupts: Endpoint.Interrupts
        switch spec.interrupts {
        case .msix: interrupts = .msix(vectors: spec.vectors)
        case .msi: interrupts = .msi(vectors: spec.vectors)
        case .intx: interrupts = .none
        }
        return try Endpoint.make(name: "dev\(index)", requesterID: spec.requesterID, interrupts: interrupts, interruptPin: 1)
    }
}
