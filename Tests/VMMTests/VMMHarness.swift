import Bus
import Firmware
import GIC
import LinuxKernel
import Machine
import PCI
import SMMUv3
import Testbed
@testable import VMM

/// A qemu-virt host with one MSI-X function (00:01.0, 4 vectors, 16 KiB BAR 0 with the table at
/// 0 and the PBA at 0x800), the host kernel booted on it, and a VMM passing the function through
/// to a guest which is then booted. The same shape as LinuxKernelTests' HostHarness (not
/// importable from here), plus the VM.
struct VMMHarness {
    let machine: Machine
    let host: LinuxKernel
    let function: PCIFunction
    let vmm: VirtualMachineMonitor
    let guest: LinuxKernel
    static let hostRID = RequesterID(bus: 0, device: 1, function: 0)

    static func make(viommu: VirtualMachineMonitor.VIOMMU, host hostConfiguration: KernelConfiguration = KernelConfiguration(),
                     guest guestConfiguration: KernelConfiguration = KernelConfiguration(), vcpus: Int = 2,
                     layout: GuestMemoryMap = .virt, msi: MSIPlan = MSIPlan(),
                     plainMSI: MSIConfiguration? = nil, firmware: GuestFirmware? = nil,
                     hostSMMU: SMMUConfiguration? = nil, ramSize: UInt64 = 0x100_0000) throws -> VMMHarness {
        // The host is QEMU's virt (`SMMUConfiguration.qemuVirt`) unless another SMMU is given.
        var options = MachinePreset.qemuVirt.options
        if let hostSMMU { options.smmu = hostSMMU }
        let machine = try Machine(topology: try MachinePreset.qemuVirt.topology(), options: options, name: MachinePreset.qemuVirt.rawValue)
        // With `plainMSI` the function has an MSI capability and no MSI-X.
        let function = try PCIFunction(name: "ep0", requesterID: hostRID, vendorID: 0x1AF4, deviceID: 0x1041,
                                       bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                       msi: plainMSI, msix: plainMSI == nil ? MSIXConfiguration(tableSize: 4) : nil)
        try machine.rootComplexes[0].attach(function)
        let host = try HostMachine(machine).bootHost(hostConfiguration)
        guard let pdev = host.pci.device(hostRID) else { throw HarnessError.noDevice }
        let vmm = try VirtualMachineMonitor(host: host, device: pdev.device,
                                            configuration: .init(ramSize: ramSize, vcpuCount: vcpus, viommu: viommu, guestKernel: guestConfiguration,
                                                                                 layout: layout, msi: msi, firmware: firmware))
        let guest = try vmm.bootGuest()
        return VMMHarness(machine: machine, host: host, function: function, vmm: vmm, guest: guest)
    }

    enum HarnessError: Error { case noDevice }

    /// The guest's pci_dev of the passthrough function.
    var guestDevice: PCIDevice? { guest.pci.device(vmm.configuration.guestRequesterID) }

    /// The host page behind a guest physical address.
    func hostPhysical(ofGuest gpa: UInt64) -> PhysicalAddress? { vmm.vm.hostPhysical(ofGuest: gpa) }

    /// Fires one vector from the device and lets the host and then the guest take their
    /// interrupts (host: vfio_msihandler signals the eventfd → irqfd → vITS; guest: its LPI).
    func fire(_ vector: Int, guestCPUs: Int) -> (host: Int, guest: Int) {
        _ = function.raise(vector: vector)
        let h = host.irq.handleInterrupts(cpu: 0)
        var g = 0
        for cpu in 0..<guestCPUs { g += guest.irq.handleInterrupts(cpu: cpu) }
        return (h, g)
    }
}
