import Bus
import Firmware
import Machine
import PCI
import SMMUv3
import Testbed
@testable import LinuxKernel

/// A machine from a preset (optionally with another SMMU implementation), two PCI functions at
/// RIDs 0x0008 and 0x0010, and a kernel that has probed only its SMMUs: the SMMUv3 driver is
/// tested on its own, with `Device`s made here as the IOMMU core would (fwspec StreamIDs =
/// RIDs, qemu-virt's identity iommu-map).
struct SMMUFixture {
    let machine: Machine
    let kernel: LinuxKernel
    let functions: [PCIFunction]
    var driver: ArmSMMUv3Driver { kernel.smmuDrivers[0] }

    static func make(preset: MachinePreset = .qemuVirt, smmu: SMMUConfiguration? = nil, trace: TraceLog? = nil) throws -> SMMUFixture {
        var options = preset.options
        if let smmu { options.smmu = smmu }
        let machine = try Machine(topology: try preset.topology(), options: options, name: preset.rawValue)
        var functions: [PCIFunction] = []
        for (index, rid) in [RequesterID(bus: 0, device: 1, function: 0), RequesterID(bus: 0, device: 2, function: 0)].enumerated() {
            let function = try PCIFunction(name: "ep\(index)", requesterID: rid, vendorID: 0x1AF4, deviceID: 0x1041,
                                           bars: [BaseAddressRegister(index: 0, kind: .memory64, size: 0x4000)],
                                           msix: MSIXConfiguration(tableSize: 4))
            try machine.rootComplexes[0].attach(function)
            // Command.Bus Master Enable, so the function may DMA (pci_set_master's effect).
            function.configWrite(offset: 4, size: 2, value: 0x6)
            functions.append(function)
        }
        let host = try HostMachine(machine)
        machine.bus.trace = trace
        let kernel = host.makeHost()
        try kernel.probeSMMUs()
        return SMMUFixture(machine: machine, kernel: kernel, functions: functions)
    }

    /// A device as `of_iommu_configure` leaves it: fwspec on SMMU 0 with `sids`, then probed.
    func device(_ name: String, sids: [UInt32]) throws -> Device {
        let device = Device(name: name)
        device.iommu = DeviceIOMMU(iommuIndex: 0, streamIDs: sids.map(StreamID.init))
        try driver.probeDevice(device)
        return device
    }

    /// A page of RAM from the kernel's allocator filled with a recognisable pattern.
    func buffer() throws -> PhysicalAddress { try kernel.pages.allocate(bytes: 4096) }

    func ram(_ address: UInt64) throws -> UInt64 { try machine.bus.read64(PhysicalAddress(address)) }
}
