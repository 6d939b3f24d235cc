import Bus
import Firmware
import GIC
import LinuxKernel
import Machine
import PCI
import Testbed
@testable import VMM

/// VMMHarness's world (qemu-virt host, one MSI-X function at host 00:01.0 with 4 vectors,
/// the host kernel, a VMM, a booted guest) with the function at a guest RID of the caller's
/// choice. The hot-plug events need it off the guest's root bus: a function on bus 0 is an
/// integrated endpoint, which QEMU cannot hot-unplug; at 01:00.0 the VMM puts an emulated
/// pcie-root-port (00:1f.0, secondary bus 1) above it, as `-device pcie-root-port` +
/// `-device vfio-pci,bus=…` would.
enum EventHarness {
    static let slotRID = RequesterID(bus: 1, device: 0, function: 0)

    static func make(viommu: VirtualMachineMonitor.VIOMMU, host hostConfiguration: KernelConfiguration = KernelConfiguration(),
                     guest guestConfiguration: KernelConfiguration = KernelConfiguration(), msi: MSIPlan = MSIPlan(),
                     guestRID: RequesterID = slotRID, plainMSI: MSIConfiguration? = nil) throws -> VMMHarness {
        let machine = try MachinePreset.qemuVirt.makeMachine()
        let function = try PCIFunction(name: "ep0", requesterID: VMMHarness.hostRID, vendorID: 0x1AF4, deviceID: 0x1041,
                                       bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                       msi: plainMSI, msix: plainMSI == nil ? MSIXConfiguration(tableSize: 4) : nil)
        try machine.rootComplexes[0].attach(function)
        let host = try HostMachine(machine).bootHost(hostConfiguration)
        guard let pdev = host.pci.device(VMMHarness.hostRID) else { throw VMMHarness.HarnessError.noDevice }
        let vmm = try VirtualMachineMonitor(host: host, device: pdev.device,
                                            configuration: .init(vcpuCount: 2, viommu: viommu, guestKernel: guestConfiguration,
                                                                 guestRequesterID: guestRID, msi: msi))
        let guest = try vmm.bootGuest()
        return VMMHarness(machine: machine, host: host, function: function, vmm: vmm, guest: guest)
    }

    /// The strategies the events are run under (`Strategy.hostPatches`, `Strategy.msiPlan`; docs/strategies.md): `rmr-identity` = the
    /// accelerated vSMMU, an unpatched v6.15 host and the guest RMR over the host's SW_MSI
    /// window; `irqchip-relay` = the host patches of RFCv1 + IOAS_MAP_MSI and the VMM's
    /// PREPARE of the guest IOVAs with the vITS page mapped.
    static func rmrIdentity(guestRID: RequesterID = slotRID) throws -> VMMHarness {
        try make(viommu: .acceleratedSMMUv3, msi: .rmrIdentity, guestRID: guestRID)
    }

    static func irqchipRelay(guestRID: RequesterID = slotRID) throws -> VMMHarness {
        try make(viommu: .acceleratedSMMUv3, host: KernelConfiguration(patches: [.vfioMSIIOVAPrepare, .irqchipMSIIOVA, .iommufdIOASMapMSI]),
                 msi: .guestIOVAs, guestRID: guestRID)
    }

    /// A guest config-space read through its ECAM window (what `pci_bus_read_config_dword`
    /// would see) of `rid`'s register `offset`.
    static func guestConfigRead(_ h: VMMHarness, _ rid: RequesterID, _ offset: UInt64 = 0) throws -> UInt64 {
        let ecam = h.vmm.configuration.layout.ecam.base
        return try h.vmm.vm.guestBus.read(PhysicalAddress(ecam + (UInt64(rid.rawValue) << 12) + offset), size: 4)
    }
}
