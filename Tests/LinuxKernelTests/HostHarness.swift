import Bus
import Firmware
import GIC
import LinuxKernel
import Machine
import PCI
import Testbed

/// A host to test the kernel model on: a machine from a preset with PCIe functions plugged in
/// (hardware only, nothing programmed), and a Linux model booted on it. Everything the kernel
/// does to the hardware goes through the machine's bus and the GIC's system registers.
struct HostHarness {
    let machine: Machine
    let kernel: LinuxKernel
    let functions: [PCIFunction]

    /// One plugged-in function: its RID, how many MSI-X vectors it has, and a 16 KiB 64-bit
    /// BAR 0 holding the MSI-X table (at 0) and PBA (at 0x800).
    struct Endpoint {
        var requesterID: RequesterID
        var vectors: Int = 4
        var name: String = "endpoint"
        /// Header Type bit 7: set on function 0 of a multi-function device.
        var multifunction = false
    }

    /// 00:01.0 and 00:02.0, 4 vectors each: RIDs 0x0008 and 0x0010, which qemu-virt's identity
    /// iommu-map and msi-map turn into StreamIDs and DeviceIDs 0x8 and 0x10.
    static let defaultEndpoints = [
        Endpoint(requesterID: RequesterID(bus: 0, device: 1, function: 0), name: "ep0"),
        Endpoint(requesterID: RequesterID(bus: 0, device: 2, function: 0), name: "ep1"),
    ]

    static func make(preset: MachinePreset = .qemuVirt, endpoints: [Endpoint] = defaultEndpoints,
                     configuration: KernelConfiguration = KernelConfiguration(), boot: Bool = true) throws -> HostHarness {
        try make(machine: try preset.makeMachine(), endpoints: endpoints, configuration: configuration, boot: boot)
    }

    /// The same on any machine (a fixture DTB, an edited tree).
    static func make(machine: Machine, endpoints: [Endpoint] = defaultEndpoints,
                     configuration: KernelConfiguration = KernelConfiguration(), boot: Bool = true) throws -> HostHarness {
        var functions: [PCIFunction] = []
        for endpoint in endpoints {
            let function = try PCIFunction(name: endpoint.name, requesterID: endpoint.requesterID, vendorID: 0x1AF4, deviceID: 0x1041,
                                           bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                           msix: MSIXConfiguration(tableSize: endpoint.vectors),
                                           multifunction: endpoint.multifunction)
            try machine.rootComplexes[0].attach(function)
            functions.append(function)
        }
        let host = try HostMachine(machine)
        let kernel = boot ? try host.bootHost(configuration) : host.makeHost(configuration)
        return HostHarness(machine: machine, kernel: kernel, functions: functions)
    }
}
