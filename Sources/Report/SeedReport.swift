import Bus
import LinuxKernel
import Machine
import PCI
import SMMUv3
import Testbed
import VMM

/// The result of `doorbell seed`, kept apart from printing so tests can check it.
public struct SeedReport {
    public struct Shape {
        public var name: String
        public var guestAddress: UInt64
        public var hostAddress: UInt64
        public var delivered: Int
        public var hostEvents: [EventRecord]
    }

    public var shapes: [Shape]
    public var text: String
    /// The same as data: `doorbell seed --format json`.
    public var json: JSONValue = .null

    static let rid = RequesterID(bus: 0, device: 1, function: 0)

    /// The three guest shapes, the nested one on host release `nestedHost`, and the first failing
    /// shape's vector 0 step by step.
    public static func make(nestedHost: KernelConfiguration.Version) throws -> SeedReport {
        var shapes: [Shape] = []
        var failureTrace: [TraceRecord] = []
        for (name, viommu, guestDomain, hostVersion) in [
            ("no vIOMMU (stage 2 only), host v6.15", VirtualMachineMonitor.VIOMMU.none, KernelConfiguration.DefaultDomain.dmaStrict, KernelConfiguration.Version.v6_15),
            ("vSMMU, guest identity domain, host v6.15", .acceleratedSMMUv3, .identity, .v6_15),
            ("vSMMU, guest DMA domain (nested), host \(nestedHost.rawValue)", .acceleratedSMMUv3, .dmaStrict, nestedHost),
        ] {
            let (shape, trace) = try run(name: name, viommu: viommu, guestDomain: guestDomain, hostVersion: hostVersion)
            shapes.append(shape)
            if shape.delivered == 0 && failureTrace.isEmpty { failureTrace = trace }
        }
        var text = "Doorbell: the seed on qemu-virt — 00:01.0 (4 MSI-X vectors) passed through to a guest\n\n"
        text += "  " + TraceTable.pad("guest shape", 48) + TraceTable.pad("guest vMSI-X", 16) + TraceTable.pad("host MSI-X", 16) + "delivered\n"
        for shape in shapes {
            text += "  " + TraceTable.pad(shape.name, 48) + TraceTable.pad(Hex.format(shape.guestAddress), 16)
                + TraceTable.pad(Hex.format(shape.hostAddress), 16) + "\(shape.delivered)/4"
            if let event = shape.hostEvents.first {
                text += "  (SMMU event \(Hex.format(UInt64(event.eventID), minDigits: 2)) S2=\(event.stage2 ? 1 : 0) CLASS=\(["CD", "TT", "IN", "3"][Int(event.faultClass & 3)]) InputAddr \(Hex.format(event.inputAddress)))"
            }
            text += "\n"
        }
        if !failureTrace.isEmpty {
            text += "\nWhy the nested shape fails: vector 0, step by step\n"
            text += TraceTable.render(failureTrace.filter { $0.kind != .mmioRead })
            text += "\nThe guest mapped its MSI IOVA to its vITS doorbell page in its own stage-1 tables, but the host "
            text += "programmed the device with an address the guest never mapped: the device's write walks the "
            text += "guest's stage 1 first and faults there (S2=0, CLASS=IN), so nothing reaches the ITS or the guest.\n"
        }
        var report = SeedReport(shapes: shapes, text: text)
        report.json = .object([
            "platform": .string("qemu-virt"), "nested-host-kernel": .string(nestedHost.rawValue),
            "shapes": .array(shapes.map { shape in
                .object(["name": .string(shape.name), "guest-address": .address(shape.guestAddress), "host-address": .address(shape.hostAddress),
                         "delivered": .number(shape.delivered), "vectors": .number(4),
                         "smmu-events": .array(shape.hostEvents.map { e in
                             .object(["event-id": .number(e.eventID), "stage-2": .bool(e.stage2), "class": .number(e.faultClass & 3),
                                      "input-address": .address(e.inputAddress)])
                         })])
            }),
            "failure-records": .records(failureTrace.filter { $0.kind != .mmioRead }),
        ])
        return report
    }

    static func run(name: String, viommu: VirtualMachineMonitor.VIOMMU, guestDomain: KernelConfiguration.DefaultDomain,
                    hostVersion: KernelConfiguration.Version) throws -> (Shape, [TraceRecord]) {
        let machine = try MachinePreset.qemuVirt.makeMachine()
        let function = try PCIFunction(name: "ep0", requesterID: rid, vendorID: 0x1AF4, deviceID: 0x1041,
                                       bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                       msix: MSIXConfiguration(tableSize: 4))
        try machine.rootComplexes[0].attach(function)
        let host: LinuxKernel
        do {
            host = try HostMachine(machine).bootHost(KernelConfiguration(version: hostVersion))
        } catch {
            switch error {
            case .noGIC: throw UsageFailure("qemu-virt has no GICv3")
            case .boot(_, let why): throw UsageFailure("host boot: \(why)")
            }
        }
        guard let hostDevice = host.pci.device(rid) else { throw UsageFailure("00:01.0 was not enumerated") }
        let vmm: VirtualMachineMonitor
        let guest: LinuxKernel
        do {
            vmm = try VirtualMachineMonitor(host: host, device: hostDevice.device,
                                            configuration: .init(vcpuCount: 1, viommu: viommu, guestKernel: KernelConfiguration(defaultDomain: guestDomain)))
            guest = try vmm.bootGuest()
        } catch { throw UsageFailure("VMM: \(error)") }
        var handled = 0
        do {
            guard let g = guest.pci.device(vmm.configuration.guestRequesterID) else { throw UsageFailure("the guest did not enumerate the device") }
            try guest.pci.enableDevice(g)
            try guest.pci.setMaster(g)
            let n = try guest.pci.allocateIRQVectors(g, min: 4, max: 4, flags: .msix)
            for v in 0..<n {
                try guest.irq.requestIRQ(try guest.pci.irqVector(g, v), name: "guest-ep0[\(v)]") { _, _ in handled += 1; return .handled }
            }
        } catch let error as Errno {
            throw UsageFailure("guest MSI-X: \(error)")
        }
        let guestAddress = vmm.function.entries.first?.address ?? 0
        let hostAddress = hostDevice.msixTableAddress.flatMap { try? machine.bus.read($0, size: 4) } ?? 0
        var events: [EventRecord] = []
        var trace: [TraceRecord] = []
        for vector in 0..<4 {
            let log = TraceLog()
            if vector == 0 { machine.trace = log; function.trace = log }
            _ = function.raise(vector: vector)
            machine.trace = nil
            function.trace = nil
            _ = host.irq.handleInterrupts(cpu: 0)
            _ = guest.irq.handleInterrupts(cpu: 0)
            if let smmu = host.smmuDrivers.first, let more = try? smmu.serviceEventQueue() { events += more }
            if vector == 0 { trace = log.records }
        }
        return (Shape(name: name, guestAddress: guestAddress, hostAddress: hostAddress, delivered: handled, hostEvents: events), trace)
    }
}
