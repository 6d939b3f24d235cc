import Bus
import Firmware
import Machine
import PCI
@testable import LinuxKernel

/// Hosts booted on ACPI tables: the committed fixtures under Tests/Fixtures/acpi, optionally
/// with the IORT or the topology edited in code.
enum ACPIHost {
    static func tables(_ directory: String) throws -> ACPITableSet {
        let tests = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false).dropLast(2).joined(separator: "/")
        return try ACPITableSet(contentsOf: tests + "/Fixtures/acpi/" + directory)
    }

    /// QEMU virt's MADT and MCFG with `iort` (default: the fixture's own IORT), `edit` applied
    /// to the derived topology, and a host booted on the machine built from it.
    static func host(_ directory: String = "qemu-virt", iort: IORT? = nil,
                     endpoints: [HostHarness.Endpoint] = HostHarness.defaultEndpoints,
                     options: MachineOptions = MachineOptions(),
                     edit: (inout Topology) -> Void = { _ in }) throws -> HostHarness {
        var set = try tables("qemu-virt")
        if directory != "qemu-virt" { set.iort = try tables(directory).iort }
        if let iort { set.iort = iort }
        var topology = try Topology(acpi: set, memory: set.defaultMemory())
        edit(&topology)
        let machine = try Machine(topology: topology, options: options, name: "acpi/" + directory)
        return try HostHarness.make(machine: machine, endpoints: endpoints)
    }

    /// The kernel's device for `rid`.
    static func device(_ host: HostHarness, _ rid: RequesterID) throws -> PCIDevice {
        guard let pci = host.kernel.pci.devices.first(where: { $0.requesterID == rid }) else { throw Missing(rid: rid) }
        return pci
    }

    struct Missing: Error { let rid: RequesterID }
}
