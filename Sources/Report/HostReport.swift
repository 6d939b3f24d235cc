import Bus
import LinuxKernel
import Machine
import PCI
import Testbed

/// The result of `doorbell host`, kept apart from printing so tests can check it.
public struct HostReport {
    /// Who owns the device: a kernel driver, or VFIO through the type1 container or the cdev +
    /// iommufd path.
    public enum Owner: String, CaseIterable, Sendable {
        case driver
        case vfioType1 = "vfio-type1"
        case vfioIOMMUFD = "vfio-iommufd"
    }

    public var text: String
    /// The message address in the fired vector's MSI-X entry.
    public var messageAddress: UInt64
    /// Whether the owner's handler (driver handler, or the eventfd) ran for the fired vector.
    public var delivered: Bool
    /// The same as data: `doorbell host --format json`.
    public var json: JSONValue = .null

    /// Plugs a 4-vector MSI-X function at `rid` under root complex `rcIndex` of `machine`, boots
    /// the host kernel model, lets `owner` enable MSI-X and fires `vector`.
    public static func make(machine: Machine, rcIndex: Int, rid: RequesterID, owner: Owner, configuration: KernelConfiguration,
                            vector: Int) throws -> HostReport {
        let host: HostMachine
        do { host = try HostMachine(machine) } catch { throw CommandFailure(error.description) }
        let function = try PCIFunction(name: "endpoint", requesterID: rid, vendorID: 0x1AF4, deviceID: 0x1041,
                                       bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                       msix: MSIXConfiguration(tableSize: 4))
        // On an RK3399 the function sits behind the controller's root port (00:00.0).
        try machine.rootComplexes[rcIndex].attach(function, behind: machine.rootPort(above: rid, rootComplex: rcIndex))
        let kernel: LinuxKernel
        do { kernel = try host.bootHost(configuration) } catch { throw CommandFailure(error.description) }
        guard let pdev = kernel.pci.device(rid, hostBridge: machine.hostBridgeIndices[rcIndex]) else { throw CommandFailure("\(machine.name): \(rid.hex) was not enumerated") }

        var text = "Doorbell: the Linux host model (\(configuration.version.rawValue), default domain \(configuration.defaultDomain.rawValue)) on \(machine.name)\n"
        text += "device \(pdev.device.name) owned by \(owner.rawValue)\n\n"
        // An SPI MSI parent (GICv2m / MBI) instead of the ITS, as `msiDomain(of:)` finds it.
        let spiKind = (try? kernel.pci.msiDomain(of: pdev)).flatMap { d in
            d.its < 0 && kernel.irq.spiMSIDomains.indices.contains(-1 - d.its) ? kernel.irq.spiMSIDomains[-1 - d.its].kind : nil
        }
        var fired = false
        var eventfd: EventFD?
        var handled = 0
        let path: String
        do {
            switch owner {
            case .driver:
                switch spiKind {
                case .v2m?: path = "pci_alloc_irq_vectors → gicv2m_irq_domain_alloc → iommu_dma_prepare_msi → gicv2m_compose_msi_msg → msi_msg_set_addr → __pci_write_msi_msg"
                case .mbi?: path = "pci_alloc_irq_vectors → mbi_irq_domain_alloc → iommu_dma_prepare_msi → mbi_compose_msi_msg → msi_msg_set_addr → __pci_write_msi_msg"
                case nil: path = "pci_alloc_irq_vectors → its_irq_domain_alloc → iommu_dma_prepare_msi → its_irq_compose_msi_msg → msi_msg_set_addr → __pci_write_msi_msg"
                }
                // really_probe: pci_dma_configure, then the driver's probe body.
                try kernel.pci.probeDriver(pdev, name: "endpoint") { () throws(Errno) in
                    try kernel.pci.enableDevice(pdev)
                    try kernel.pci.setMaster(pdev)
                    let n = try kernel.pci.allocateIRQVectors(pdev, min: 1, max: 4, flags: .msix)
                    for i in 0..<n {
                        let irq = try kernel.pci.irqVector(pdev, i)
                        try kernel.irq.requestIRQ(irq, name: "endpoint-\(i)") { _, _ in
                            handled += 1
                            return .handled
                        }
                    }
                }
            case .vfioType1:
                path = "VFIO_SET_IOMMU (type1: iommu_get_msi_cookie at the SW_MSI base) → VFIO_DEVICE_SET_IRQS → vfio_msi_enable → pci_alloc_irq_vectors → iommu_dma_prepare_msi (MSI cookie) → vfio_msi_set_vector_signal"
                let process = UserProcess(kernel: kernel)
                try kernel.vfio.bindVFIOPCI(pdev.device)
                let container = kernel.vfio.openContainer(process: process)
                guard let groupID = pdev.device.iommu?.group?.id else { throw UsageFailure("00:01.0 is not behind an IOMMU: VFIO type1 needs one") }
                let group = try kernel.vfio.openGroup(groupID)
                try group.setContainer(container)
                try container.setIOMMU(VFIOContainer.type1v2IOMMU)
                let file = try group.getDeviceFD(pdev.device.name)
                try file.writeCommand(0x0006)
                let (fds, efds) = (0..<4).map { _ in process.eventfd() }.reduce(into: ([Int32](), [EventFD]())) { $0.0.append($1.0); $0.1.append($1.1) }
                try file.setIRQs(.trigger(start: 0, eventfds: fds))
                eventfd = efds[vector]
            case .vfioIOMMUFD:
                path = "VFIO_DEVICE_BIND_IOMMUFD → IOMMU_IOAS_ALLOC → VFIO_DEVICE_ATTACH_IOMMUFD_PT → VFIO_DEVICE_SET_IRQS → pci_alloc_irq_vectors → iommu_dma_prepare_msi → iommufd_sw_msi"
                let process = UserProcess(kernel: kernel)
                let iommufd = kernel.openIOMMUFD()
                iommufd.process = process
                let vdev = try kernel.vfio.bindVFIOPCI(pdev.device)
                let file = try kernel.vfio.openDevice(vdev.cdevName, process: process)
                _ = try file.bindIOMMUFD(iommufd)
                try file.writeCommand(0x0006)
                let ioas = try iommufd.ioasAlloc()
                _ = try file.attachIOMMUFDPT(ioas)
                let (fds, efds) = (0..<4).map { _ in process.eventfd() }.reduce(into: ([Int32](), [EventFD]())) { $0.0.append($1.0); $0.1.append($1.1) }
                try file.setIRQs(.trigger(start: 0, eventfds: fds))
                eventfd = efds[vector]
            }
        } catch let error as Errno {
            throw UsageFailure("\(owner.rawValue) failed: \(error)")
        }

        text += "IOMMU view (sysfs/debugfs):\n"
        let viewLines = kernel.iommu.view(of: pdev.device).description.split(separator: "\n").map(String.init)
        for line in viewLines { text += "  \(line)\n" }
        var vectorsJSON: [JSONValue] = []
        text += "\nMSI-X enable: \(path)\n"
        var fired_address: UInt64 = 0
        // The CPU Linux routed the fired vector to (its_irq_domain_activate picks the least
        // loaded online CPU, so on a machine with several CPUs it need not be CPU 0).
        var firedCPU = 0
        for descriptor in pdev.device.msiDescriptors {
            let entry = (function.barRead(bar: 0, offset: UInt64(descriptor.index) * 16, size: 4),
                         function.barRead(bar: 0, offset: UInt64(descriptor.index) * 16 + 4, size: 4),
                         function.barRead(bar: 0, offset: UInt64(descriptor.index) * 16 + 8, size: 4))
            let address = entry.1 << 32 | entry.0
            if descriptor.index == vector {
                fired_address = address
                firedCPU = kernel.irq.descriptor(descriptor.irq)?.effectiveCPU ?? 0
            }
            let lpi = kernel.irq.descriptor(descriptor.irq).map { "\($0.isSPI ? "SPI" : "LPI") \($0.hwirq)" } ?? "no LPI"
            vectorsJSON.append(.object(["index": .number(descriptor.index), "irq": .number(descriptor.irq),
                                        "lpi": .number(kernel.irq.descriptor(descriptor.irq).flatMap { $0.isSPI ? nil : $0.hwirq }),
                                        "spi": .number(kernel.irq.descriptor(descriptor.irq).flatMap { $0.isSPI ? $0.hwirq : nil }),
                                        "address": .address(address), "data": .number(entry.2)]))
            text += "  vector \(descriptor.index): irq \(descriptor.irq), \(lpi) → MSI-X entry address \(Hex.format(address)) data \(Hex.format(entry.2, minDigits: 1))\n"
        }

        let log = TraceLog()
        machine.trace = log
        function.trace = log
        let outcome = function.raise(vector: vector)
        let ran = kernel.irq.handleInterrupts(cpu: firedCPU)
        machine.trace = nil
        function.trace = nil
        fired = (eventfd.map { $0.count > 0 } ?? (handled > 0)) && ran > 0
        text += "\nthe device fires vector \(vector):\n"
        let records = log.records.filter { $0.kind != .mmioRead }
        text += TraceTable.render(records)
        let result: String
        if fired {
            result = eventfd != nil ? "delivered: the host handler ran and signalled the vector's eventfd"
                                    : "delivered: the driver's handler ran on CPU \(firedCPU)"
        } else {
            result = "not delivered; the write ended \(outcome.result.map { "\($0.status)" } ?? "unsent")"
        }
        text += "\nresult: " + result + "\n"
        var report = HostReport(text: text, messageAddress: fired_address, delivered: fired)
        report.json = .object([
            "platform": .string(machine.name), "kernel": .string(configuration.version.rawValue),
            "default-domain": .string(configuration.defaultDomain.rawValue), "device": .string(pdev.device.name),
            "owner": .string(owner.rawValue), "iommu-view": .array(viewLines.map { .string($0) }), "msi-enable": .string(path),
            "vectors": .array(vectorsJSON), "fired-vector": .number(vector), "cpu": .number(firedCPU),
            "records": .records(records), "delivered": .bool(fired), "result": .string(result),
        ])
        return report
    }
}
