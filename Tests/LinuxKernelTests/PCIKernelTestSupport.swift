import Bus
import Firmware
import GIC
@testable import LinuxKernel
import Machine
import PCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Test helpers for the kernel's PCI and MSI tests: a host on any device tree (the 8-CPU QEMU dump for affinity tests),
/// functions with MSI or bigger MSI-X tables, and shortcuts to the kernel's PCI devices.
enum PCIKernelHost {
    /// The same shape as `HostHarness.make`, on a machine built from a fixture DTB under
    /// Tests/Fixtures (e.g. "qemu-virt/virt-smmu-smp8.dtb").
    static func make(fixture: String, endpoints: [HostHarness.Endpoint] = HostHarness.defaultEndpoints,
                     configuration: KernelConfiguration = KernelConfiguration(defaultDomain: .identity)) throws -> HostHarness {
        let machine = try Machine(topology: try Topology(dtb: try fixtureBytes(fixture)), name: fixture)
        return try HostHarness.make(machine: machine, endpoints: endpoints, configuration: configuration)
    }

    static func fixtureBytes(_ relative: String) throws -> [UInt8] {
        let tests = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false).dropLast(2).joined(separator: "/")
        return try DeviceTreeFile.read(path: tests + "/Fixtures/" + relative)
    }

    struct FixtureMissing: Error { var path: String }

    /// The qemu-virt host with the identity default domain, so the SMMU passes MSIs through and
    /// the tests see the ITS driver's own message (the physical doorbell).
    static func identity(endpoints: [HostHarness.Endpoint] = HostHarness.defaultEndpoints) throws -> HostHarness {
        try HostHarness.make(endpoints: endpoints, configuration: KernelConfiguration(defaultDomain: .identity))
    }
}

extension HostHarness {
    /// The kernel's `pci_dev` for hardware function `i`.
    func pci(_ i: Int) throws -> PCIDevice {
        guard let dev = kernel.pci.device(functions[i].requesterID) else { throw PCIKernelHost.FixtureMissing(path: "no pci_dev \(functions[i].requesterID)") }
        return dev
    }

    /// `pci_enable_device` + `pci_set_master` for function `i`, as a driver's probe does.
    func bind(_ i: Int) throws -> PCIDevice {
        let dev = try pci(i)
        try kernel.pci.bindDriver(dev, name: "test-driver")
        return dev
    }

    /// The ITS the machine built (hardware side, read only to check what the driver did).
    var its: ITS { machine.its[0] }

    /// (address, data, vector control) of MSI-X entry `vector` as the hardware function holds it.
    func entry(_ i: Int, _ vector: Int) -> (address: UInt64, data: UInt32, masked: Bool) {
        let table = functions[i].msixTable
        return (table?.messageAddress(vector) ?? 0, table?.messageData(vector) ?? 0, table?.isMasked(vector) ?? false)
    }
}
