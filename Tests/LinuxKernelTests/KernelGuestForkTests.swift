import Testing
import Bus
import GIC
@testable import LinuxKernel

/// A guest kernel (the same model as the host, role `.guest`, on a KVM VM's bus and vCPU
/// interface) forked with its host and VM: the copy runs on the copied VM, its ITS driver
/// writes the guest ITS commands the original's would into the copied vITS, and an MSI
/// signalled into one VM reaches that VM's guest only.
@Suite("Kernel fork: a KVM guest kernel")
struct KernelGuestForkTests {
    /// What the guest's next MSI allocation did: ITS commands, Linux numbers, LPIs, messages.
    struct Step: Equatable {
        var commands: [String]
        var irqs: [Int]
        var lpis: [UInt32]
        var messages: [MSIMessage]
    }

    /// `its_msi_prepare` + `msi_domain_alloc_irqs` for 4 vectors of DeviceID 0x8 (a device the
    /// guest sees without PCI, so the message is only cached).
    static func allocate(_ guest: LinuxKernel, device: Device) throws -> Step {
        let driver = try #require(guest.itsDrivers.first)
        let before = driver.commandLog.count
        let itsDevice = try driver.prepareDevice(deviceID: 0x8, vectors: 4)
        let descriptors = (0..<4).map { MSIDescriptor(index: $0) }
        device.msiDescriptors = descriptors
        let irqs = try guest.irq.allocateMSIIRQs(device: device, descriptors: descriptors, driver: driver,
                                                 itsDevice: itsDevice, chipName: "ITS-MSI")
        return Step(commands: Array(driver.commandLog[before...]), irqs: irqs,
                    lpis: irqs.compactMap { guest.irq.descriptor($0)?.hwirq }, messages: descriptors.map(\.message))
    }

    @Test("the guest's copy is on the copied VM and vCPU interface, and allocates, maps and takes MSIs as the original would, independently")
    func forkedGuest() throws {
        let host = try HostHarness.make()
        let process = UserProcess(kernel: host.kernel, name: "qemu")
        let vm = host.kernel.kvm.createVM(process: process)
        let va = try process.mmap(length: KVMGuestKernelTests.ramSize)
        try vm.setUserMemoryRegion(slot: 0, guestPhysical: KVMFixture.guestRAMBase, size: KVMGuestKernelTests.ramSize, userVA: va)
        try vm.createVCPUs(2)
        _ = try vm.createVGIC(distributor: KVMFixture.distributorBase, redistributors: KVMFixture.redistributorBase,
                              its: KVMFixture.itsBase)
        let guest = LinuxKernel(role: .guest, topology: try KVMGuestKernelTests.guestTopology(cpus: 2), bus: vm.guestBus,
                                cpuInterface: vm.cpuInterface)
        try guest.irq.probe()

        var map = CloneMap()
        _ = map.clone(host.machine)
        let hostCopy = map.clone(host.kernel)
        let vmCopy = map.clone(vm)
        let guestCopy = map.clone(guest)
        map.finish()
        #expect(guestCopy.role == .guest && guestCopy.bus === vmCopy.guestBus && guestCopy.cpuInterface === vmCopy.cpuInterface)
        #expect(vmCopy.kernel === hostCopy)
        #expect(CloneMap.valueFieldsThatDiffer(guest, guestCopy) == [])
        #expect(CloneMap.valueFieldsThatDiffer(guest.irq, guestCopy.irq) == [])
        #expect(CloneMap.valueFieldsThatDiffer(try #require(guest.itsDrivers.first), try #require(guestCopy.itsDrivers.first)) == [])

        let fromCopy = try Self.allocate(guestCopy, device: Device(name: "virtio"))
        #expect(guest.itsDrivers.first?.device(0x8) == nil && guest.irq.descriptors.isEmpty, "the copy's allocation is not the original's")
        let fromOriginal = try Self.allocate(guest, device: Device(name: "virtio"))
        #expect(fromOriginal == fromCopy && !fromCopy.commands.isEmpty)
        let translater = UInt32(truncatingIfNeeded: fromCopy.messages[0].address)
        #expect(fromCopy.messages.map(\.data) == [0, 1, 2, 3])

        // An MSI for event 2 into the copied VM reaches the copied guest's LPI only.
        let injected = vm.injections.count
        try guestCopy.irq.requestIRQ(fromCopy.irqs[2], name: "virtio-2") { _, _ in .handled }
        try guest.irq.requestIRQ(fromOriginal.irqs[2], name: "virtio-2") { _, _ in .handled }
        #expect(try vmCopy.signalMSI(KVMMSI(addressLo: translater, data: 2, devid: 0x8)) == 1)
        #expect(vm.injections.count == injected, "nothing was injected into the original VM")
        let taken = (0..<2).reduce(0) { $0 + guestCopy.irq.handleInterrupts(cpu: $1) }
        #expect(taken == 1 && guestCopy.irq.descriptor(fromCopy.irqs[2])?.count == 1)
        #expect((0..<2).reduce(0) { $0 + guest.irq.handleInterrupts(cpu: $1) } == 0)
        #expect(guest.irq.descriptor(fromOriginal.irqs[2])?.count == 0)
    }
}
