import ArgumentParser
import Bus
import LinuxKernel
import Machine
import PCI
import Report

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

    typealias Owner = HostReport.Owner

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

    @Option(help: "Output format: text or json.")
    var format: TextFormat = .text

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
            print(format == .json ? JSONDocument.render(command: "host", report: report.json, ["form": .string("devices")]) : report.text,
                  terminator: "")
            return
        }
        let report = try HostReport.make(platform: platform, owner: owner,
                                         configuration: KernelConfiguration(version: kernel, defaultDomain: domain), vector: vector)
        print(format == .json ? JSONDocument.render(command: "host", report: report.json, ["form": .string("single")]) : report.text,
              terminator: "")
    }
}

extension KernelConfiguration.DefaultDomain: ExpressibleByArgument {}
extension KernelConfiguration.Version: ExpressibleByArgument {}
extension HostReport.Owner: ExpressibleByArgument {}

extension HostReport {
    /// The report on the platform the options name (exit 1 when it cannot carry the device).
    static func make(platform: PlatformOptions, owner: Owner, configuration: KernelConfiguration, vector: Int) throws -> HostReport {
        let (machine, rcIndex, rid) = try platform.makeSupportedMachine()
        do {
            return try make(machine: machine, rcIndex: rcIndex, rid: rid, owner: owner, configuration: configuration, vector: vector)
        } catch let usage as UsageFailure {
            throw ValidationError(usage.message)
        }
    }
}

extension HostDevicesReport {
    /// The report on the platform the options name (exit 1 when it cannot carry a device).
    static func make(platform: PlatformOptions, devices: [HostDeviceSpec], configuration: KernelConfiguration) throws -> HostDevicesReport {
        let (machine, rcIndex, _) = try platform.makeSupportedMachine()
        do {
            return try make(machine: machine, rcIndex: rcIndex, devices: devices, configuration: configuration)
        } catch let usage as UsageFailure {
            throw ValidationError(usage.message)
        }
    }
}
