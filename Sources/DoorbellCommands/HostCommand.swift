import ArgumentParser
import Bus
import LinuxKernel
import Machine
import PCI

/// `doorbell host`: the Linux host model on the bare machine, and what it does to one device's MSI.
struct HostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Boot the Linux host model and show a device's MSI: group, domain, reserved regions, the message written, the path it takes.",
        discussion: """
        Plugs a 4-vector MSI-X function into 00:01.0 and boots the kernel model on the machine (GIC \
        and ITS, SMMUv3, PCI enumeration, IOMMU groups and default domains). Then the function's \
        owner enables MSI-X: a kernel driver (pci_alloc_irq_vectors + request_irq), or VFIO through \
        the type1 container or the cdev + iommufd path (VFIO_DEVICE_SET_IRQS with eventfds). The \
        device fires one vector and every step to the handler is printed.

        With --device (repeatable) the functions are the ones named instead, e.g. \
        --device 00:01.0 --device 01:00.0 --device 02:01.0,behind=pcie-to-pci-bridge,interrupts=msi. \
        A function off bus 0 sits behind a bridge on bus 0 (00:1f.0, 00:1e.0, … in order of first \
        use; a root port unless behind= says pcie-to-pci-bridge). The kernel enumerates them \
        (pci_scan_child_bus: a bus's functions by devfn, then each bridge's secondary bus), probes \
        each into an IOMMU group in that order, and a driver enables each one's vectors with \
        pci_alloc_irq_vectors. Printed per function: BDF, the RID its requests carry, StreamIDs, \
        DeviceID, group, default domain type, reserved regions, and each vector's address, data, \
        LPI and CPU. Only the driver owner is modelled there.
        """
    )

    enum Owner: String, ExpressibleByArgument, CaseIterable {
        case driver
        case vfioType1 = "vfio-type1"
        case vfioIOMMUFD = "vfio-iommufd"
    }

    @OptionGroup var platform: PlatformOptions

    @Option(help: "Who owns the device: a kernel driver, or VFIO (vfio-type1, vfio-iommufd).")
    var owner: Owner = .driver

    @Option(help: "Default domain type: dma-strict, dma-lazy or identity.")
    var domain: KernelConfiguration.DefaultDomain = .dmaStrict

    @Option(help: "Kernel behaviour to model: v6.15 (current MSI code) or v6.14.")
    var kernel: KernelConfiguration.Version = .v6_15

    @Option(help: "The MSI-X vector the device fires (0…3).")
    var vector: Int = 2

    @Option(name: .customLong("device"), help: ArgumentHelp("A function to plug (repeatable) instead of the single 4-vector one at 00:01.0.", valueName: HostDeviceSpec.helpText))
    var devices: [String] = []

    func validate() throws {
        guard (0..<4).contains(vector) else { throw ValidationError("--vector must be 0…3") }
        if !devices.isEmpty {
            guard owner == .driver else { throw ValidationError("--device: only --owner driver is modelled with several devices") }
            guard devices.count <= 31 else { throw ValidationError("--device: at most 31 functions") }
            for device in devices { _ = try HostDeviceSpec.parse(device) }
        }
    }

    func run() throws {
        if !devices.isEmpty {
            let specs = try devices.map { try HostDeviceSpec.parse($0) }
            let report = try HostDevicesReport.make(platform: platform, devices: specs,
                                                    configuration: KernelConfiguration(version: kernel, defaultDomain: domain))
            print(report.text, terminator: "")
            return
        }
        let report = try HostReport.make(platform: platform, owner: owner,
                                         configuration: KernelConfiguration(version: kernel, defaultDomain: domain), vector: vector)
        print(report.text, terminator: "")
    }
}

extension KernelConfiguration.DefaultDomain: ExpressibleByArgument {}
extension KernelConfiguration.Version: ExpressibleByArgument {}

/// The result of `doorbell host`, kept apart from printing so tests can check it.
struct HostReport {
    var text: String
    /// The message address in the fired vector's MSI-X entry.
    var messageAddress: UInt64
    /// Whether the owner's handler (driver handler, or the eventfd) ran for the fired vector.
    var delivered: Bool

    static func make(platform: PlatformOptions, owner: HostCommand.Owner, configuration: KernelConfiguration, vector: Int) throws -> HostReport {
        let (machine, rcIndex, rid) = try platform.makeSupportedMachine()
        guard let gic = machine.gic else { throw CommandFailure("\(machine.name): no GICv3") }
        let function = try PCIFunction(name: "endpoint", requesterID: rid, vendorID: 0x1AF4, deviceID: 0x1041,
                                       bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                       msix: MSIXConfiguration(tableSize: 4))
        try machine.rootComplexes[rcIndex].attach(function)
        let kernel = LinuxKernel(topology: machine.topology, bus: machine.bus, cpuInterface: gic, configuration: configuration)
        do { try kernel.boot() } catch { throw CommandFailure("\(machine.name): the kernel model failed to boot: \(error)") }
        guard let pdev = kernel.pci.device(rid) else { throw CommandFailure("\(machine.name): \(rid.hex) was not enumerated") }

        var text = "Doorbell: the Linux host model (\(configuration.version.rawValue), default domain \(configuration.defaultDomain.rawValue)) on \(machine.name)\n"
        text += "device \(pdev.device.name) owned by \(owner.rawValue)\n\n"
        var fired = false
        var eventfd: EventFD?
        var handled = 0
        let path: String
        do {
            switch owner {
            case .driver:
                path = "pci_alloc_irq_vectors → its_irq_domain_alloc → iommu_dma_prepare_msi → its_irq_compose_msi_msg → msi_msg_set_addr → __pci_write_msi_msg"
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
            case .vfioType1:
                path = "VFIO_SET_IOMMU (type1: iommu_get_msi_cookie at the SW_MSI base) → VFIO_DEVICE_SET_IRQS → vfio_msi_enable → pci_alloc_irq_vectors → iommu_dma_prepare_msi (MSI cookie) → vfio_msi_set_vector_signal"
                let process = UserProcess(kernel: kernel)
                try kernel.vfio.bindVFIOPCI(pdev.device)
                let container = kernel.vfio.openContainer(process: process)
                guard let groupID = pdev.device.iommu?.group?.id else { throw ValidationError("00:01.0 is not behind an IOMMU: VFIO type1 needs one") }
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
            throw ValidationError("\(owner.rawValue) failed: \(error)")
        }

        text += "IOMMU view (sysfs/debugfs):\n"
        for line in kernel.iommu.view(of: pdev.device).description.split(separator: "\n") { text += "  \(line)\n" }
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
            let lpi = kernel.irq.descriptor(descriptor.irq).map { "LPI \($0.hwirq)" } ?? "no LPI"
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
        text += TraceTable.render(log.records.filter { $0.kind != .mmioRead })
        text += "\nresult: "
        if fired {
            text += eventfd != nil ? "delivered: the host handler ran and signalled the vector's eventfd\n"
                                   : "delivered: the driver's handler ran on CPU \(firedCPU)\n"
        } else {
            text += "not delivered; the write ended \(outcome.result.map { "\($0.status)" } ?? "unsent")\n"
        }
        return HostReport(text: text, messageAddress: fired_address, delivered: fired)
    }
}
