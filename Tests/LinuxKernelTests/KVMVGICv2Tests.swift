import Bus
import GIC
import Testing
@testable import LinuxKernel

/// KVM's vGICv2 as a `gic-version=2` guest gets it: no vITS, IRQCHIP routes GSI i → SPI i + 32,
/// and irqfds that inject SPIs (arch/arm64/kvm/vgic/vgic-irqfd.c `vgic_irqfd_set_irq`).
@Suite("KVM vGICv2 and IRQCHIP routes")
struct KVMVGICv2Tests {
    static let gicc = PhysicalAddress(0x0801_0000)

    /// A VM with `vcpus` vCPUs and no irqchip yet; the host is returned to keep it alive (the VM
    /// holds its kernel unowned).
    static func vm(vcpus: Int = 2) throws -> (KVMVirtualMachine, UserProcess, HostHarness) {
        let host = try HostHarness.make()
        let process = UserProcess(kernel: host.kernel, name: "qemu")
        let vm = host.kernel.kvm.createVM(process: process)
        try vm.createVCPUs(vcpus)
        return (vm, process, host)
    }

    @Test("KVM_CREATE_DEVICE(vgic-v2): E2BIG past 8 vCPUs, EINVAL unaligned, EEXIST twice; GICD_TYPER and the default routes")
    func create() throws {
        let (big, _, bigHost) = try Self.vm(vcpus: 9)
        #expect(throws: Errno.E2BIG) { try big.createVGICv2(distributor: KVMFixture.distributorBase, cpuInterface: Self.gicc) }
        withExtendedLifetime(bigHost) {}
        let (vm, _, host) = try Self.vm()
        defer { withExtendedLifetime(host) {} }
        #expect(throws: Errno.EINVAL) { try vm.createVGICv2(distributor: PhysicalAddress(0x0800_0800), cpuInterface: Self.gicc) }
        #expect(throws: Errno.EEXIST) { try vm.createVGICv2(distributor: KVMFixture.distributorBase, cpuInterface: PhysicalAddress(0x0800_0000)) }
        let vgic = try vm.createVGICv2(distributor: KVMFixture.distributorBase, cpuInterface: Self.gicc)
        #expect(throws: Errno.EEXIST) { try vm.createVGICv2(distributor: KVMFixture.distributorBase, cpuInterface: Self.gicc) }
        #expect(vgic.its == nil && vgic.cpuInterfaceBase == Self.gicc)
        // GICD_TYPER: ITLinesNumber = (256 + 32) / 32 − 1 = 8, CPUNumber = 2 − 1.
        let typer = try vm.guestBus.read(PhysicalAddress(0x0800_0004), size: 4, requester: .cpu(0))
        #expect(typer == 8 | 1 << 5)
        #expect(vm.irqchipPin(gsi: 0) == 0 && vm.irqchipPin(gsi: 255) == 255 && vm.irqchipPin(gsi: 256) == nil)
    }

    @Test("an irqfd on GSI 48 makes edge SPI 80 pending for the vCPU GICD_ITARGETSR names; an MSI route there is EINVAL")
    func irqfdInjectsSPI() throws {
        let (vm, process, host) = try Self.vm()
        defer { withExtendedLifetime(host) {} }
        try vm.createVGICv2(distributor: KVMFixture.distributorBase, cpuInterface: Self.gicc)
        let gicd = KVMFixture.distributorBase.rawValue
        // The guest's gic_configure_irq (edge: GICD_ICFGR20 bit 1 of INTID 80's field), target
        // CPU 1 (GICD_ITARGETSR byte 80), enable (GICD_ISENABLER2 bit 16), GICD_CTLR.Enable.
        try vm.guestBus.write(PhysicalAddress(gicd + 0xC00 + 80 / 16 * 4), size: 4, value: 2 << ((80 % 16) * 2), requester: .cpu(0))
        try vm.guestBus.write(PhysicalAddress(gicd + 0x800 + 80), size: 1, value: 0x2, requester: .cpu(0))
        try vm.guestBus.write(PhysicalAddress(gicd + 0x100 + 80 / 32 * 4), size: 4, value: 1 << (80 % 32), requester: .cpu(0))
        try vm.guestBus.write(PhysicalAddress(gicd), size: 4, value: 1, requester: .cpu(0))
        let (fd, eventfd) = process.eventfd()
        try vm.irqfd(eventfd: fd, gsi: 48)
        eventfd.signal(irq: 40, cpu: 0)
        #expect(vm.injections.last?.outcome == .delivered(intid: 80, vcpu: 1))
        #expect(vm.gsiRoutes.isEmpty)
        let distributor = try #require(vm.vgic?.gic.distributor)
        #expect(distributor.isPending(intid: 80), "irqfd_inject's level 1 then 0 latched the edge")
        // kvm_set_routing_entry / setup_routing_entry: no MSI entry beside an IRQCHIP one.
        #expect(throws: Errno.EINVAL) { try vm.setGSIRouting([KVMMSIRoute(gsi: 48, addressLo: 0x0802_0040, data: 80, devid: 8)]) }
        // KVM_SIGNAL_MSI has nowhere to go without a vITS (kvm_set_msi: -ENODEV).
        #expect(throws: Errno.ENODEV) { _ = try vm.signalMSI(KVMMSI(addressLo: 0x0802_0040, data: 80, devid: 8)) }
        // An IRQCHIP pin beyond the vGIC's SPIs fails vgic_valid_spi.
        try vm.setIRQChipRoutes([300: 300])
        let (fd2, eventfd2) = process.eventfd()
        try vm.irqfd(eventfd: fd2, gsi: 300)
        eventfd2.signal(irq: 41, cpu: 0)
        #expect(vm.injections.last?.outcome == .failed(.EINVAL))
    }
}
