import Testing
import Bus
import GIC
@testable import LinuxKernel

/// The VM-level KVM ioctls: memory slots, vCPUs, vGIC creation and its ID registers, GSI
/// routing and irqfd argument checks.
@Suite("KVM: VM, memory slots, vGIC")
struct KVMVMTests {
    @Test("guest RAM: a guest store at IPA 0x4000_0000 lands in the VMM's user page (host RAM)")
    func guestRAMIsProcessMemory() throws {
        let fixture = try KVMFixture.make()
        try fixture.vm.guestBus.write(PhysicalAddress(0x4000_1238), size: 8, value: 0xD00D_FEED, requester: .cpu(0))
        let bytes = try fixture.process.read(vaddr: fixture.ramUserVA + 0x1238, count: 4)
        #expect(bytes == [0xED, 0xFE, 0x0D, 0xD0])
        // And the reverse: the VMM writes, the guest reads.
        try fixture.process.write(vaddr: fixture.ramUserVA + 0x3000, bytes: [0x5A])
        #expect(try fixture.vm.guestBus.read(PhysicalAddress(0x4000_3000), size: 1) == 0x5A)
        let slot = try #require(fixture.vm.memorySlots.first)
        #expect(slot.windows.reduce(0) { $0 + $1.size } == KVMFixture.guestRAMSize)
    }

    @Test("KVM_SET_USER_MEMORY_REGION argument checks")
    func memoryRegionChecks() throws {
        let fixture = try KVMFixture.make()
        let vm = fixture.vm
        let va = try fixture.process.mmap(length: 0x2000)
        // Unaligned size / GPA / user address (__kvm_set_memory_region: EINVAL).
        #expect(throws: Errno.EINVAL) { try vm.setUserMemoryRegion(slot: 1, guestPhysical: 0x8000_0000, size: 0x1800, userVA: va) }
        #expect(throws: Errno.EINVAL) { try vm.setUserMemoryRegion(slot: 1, guestPhysical: 0x8000_0800, size: 0x1000, userVA: va) }
        #expect(throws: Errno.EINVAL) { try vm.setUserMemoryRegion(slot: 1, guestPhysical: 0x8000_0000, size: 0x1000, userVA: va + 8) }
        #expect(throws: Errno.EINVAL) { try vm.setUserMemoryRegion(slot: 40000, guestPhysical: 0x8000_0000, size: 0x1000, userVA: va) }
        // Overlapping slot 0's range: EEXIST; overlapping the vITS frame: EEXIST (model's bus).
        #expect(throws: Errno.EEXIST) { try vm.setUserMemoryRegion(slot: 1, guestPhysical: 0x4000_1000, size: 0x1000, userVA: va) }
        #expect(throws: Errno.EEXIST) { try vm.setUserMemoryRegion(slot: 1, guestPhysical: 0x0808_0000, size: 0x1000, userVA: va) }
        // User range with no VMA (the one-page hole after the mapping): EFAULT.
        #expect(throws: Errno.EFAULT) { try vm.setUserMemoryRegion(slot: 1, guestPhysical: 0x8000_0000, size: 0x3000, userVA: va) }
        try vm.setUserMemoryRegion(slot: 1, guestPhysical: 0x8000_0000, size: 0x2000, userVA: va)
        #expect(vm.hostPhysical(ofGuest: 0x8000_1004) == fixture.process.physicalPage(of: va + 0x1000).map { PhysicalAddress($0.rawValue + 4) })
        #expect(vm.hostPhysical(ofGuest: 0x8000_2000) == nil)
    }

    @Test("vITS GITS_TYPER as KVM's vgic_mmio_read_its_typer: Physical, Devbits 15, IDbits 15, ITT entry 8 bytes, PTA 0, CIL 0")
    func vitsTyper() throws {
        let fixture = try KVMFixture.make()
        let typer = try fixture.vm.guestBus.read(PhysicalAddress(0x0808_0008), size: 8, requester: .cpu(0))
        // GITS_TYPER_PLPIS | (16−1) << DEVBITS_SHIFT(13) | (16−1) << IDBITS_SHIFT(8) | (8−1) << ITT_ENTRY_SIZE_SHIFT(4).
        let kvm: UInt64 = 1 | 15 << 13 | 15 << 8 | 7 << 4
        #expect(typer == kvm)
        // GICR_TYPER of vCPU 1: Processor_Number 1 in [23:8], affinity Aff0 = 1 in [39:32], and
        // Last set on the final frame (2 vCPUs).
        let gicrTyper = try fixture.vm.guestBus.read(PhysicalAddress(0x080C_0008), size: 8, requester: .cpu(0))
        #expect(gicrTyper.bits(23, 8) == 1)
        #expect(gicrTyper.bits(63, 32) == 1)
        #expect(gicrTyper.bit(4))
    }

    @Test("vCPU and vGIC ordering: vGIC needs vCPUs, comes once, freezes the vCPU count")
    func vgicOrdering() throws {
        let host = try HostHarness.make()
        let process = UserProcess(kernel: host.kernel)
        let vm = host.kernel.kvm.createVM(process: process)
        #expect(vm.cpuInterface.readIAR1(cpu: 0) == 1023)
        // No in-kernel irqchip yet: KVM_IRQFD is EAGAIN (kvm_arch_intc_initialized), and
        // KVM_SIGNAL_MSI EINVAL (kvm_send_userspace_msi: !kvm_arch_irqchip_in_kernel).
        let (fd, _) = process.eventfd()
        #expect(throws: Errno.EAGAIN) { try vm.irqfd(eventfd: fd, gsi: 0) }
        #expect(throws: Errno.EINVAL) { try vm.signalMSI(KVMMSI(addressLo: KVMFixture.translater, data: 0, devid: 8)) }
        #expect(throws: Errno.ENXIO) { try vm.createVGIC(distributor: KVMFixture.distributorBase, redistributors: KVMFixture.redistributorBase, its: nil) }
        try vm.createVCPUs(3)
        #expect(vm.vcpus.map(\.affinity) == [0, 1, 2])
        #expect(throws: Errno.EINVAL) { try vm.createVGIC(distributor: PhysicalAddress(0x0800_1000), redistributors: KVMFixture.redistributorBase, its: nil) }
        // vITS overlapping the redistributor region (3 × 128 KiB from 0x080A_0000).
        #expect(throws: Errno.EEXIST) { try vm.createVGIC(distributor: KVMFixture.distributorBase, redistributors: KVMFixture.redistributorBase, its: PhysicalAddress(0x080C_0000)) }
        #expect(vm.vgic == nil)
        try vm.createVGIC(distributor: KVMFixture.distributorBase, redistributors: KVMFixture.redistributorBase, its: KVMFixture.itsBase)
        #expect(vm.vgic?.gic.redistributors.count == 3)
        #expect(vm.cpuInterface.cpuCount == 3)
        #expect(throws: Errno.EEXIST) { try vm.createVGIC(distributor: KVMFixture.distributorBase, redistributors: KVMFixture.redistributorBase, its: nil) }
        #expect(throws: Errno.EBUSY) { try vm.createVCPUs(1) }
    }

    @Test("KVM_SET_GSI_ROUTING and KVM_IRQFD argument checks")
    func routingAndIRQFDChecks() throws {
        let fixture = try KVMFixture.make()
        let vm = fixture.vm
        let doorbell = KVMFixture.translater
        #expect(throws: Errno.EINVAL) { try vm.setGSIRouting([KVMMSIRoute(gsi: 4096, addressLo: doorbell, data: 0, devid: 1)]) }
        #expect(throws: Errno.EINVAL) { try vm.setGSIRouting([KVMMSIRoute(gsi: 1, addressLo: doorbell, data: 0, devid: 1, flags: 2)]) }
        #expect(throws: Errno.EINVAL) {
            try vm.setGSIRouting([KVMMSIRoute(gsi: 1, addressLo: doorbell, data: 0, devid: 1), KVMMSIRoute(gsi: 1, addressLo: doorbell, data: 1, devid: 1)])
        }
        // A failed call leaves the previous table; a successful one replaces it whole.
        try vm.setGSIRouting([KVMMSIRoute(gsi: 2, addressLo: doorbell, data: 0, devid: 1), KVMMSIRoute(gsi: 1, addressLo: doorbell, data: 0, devid: 1)])
        #expect(vm.gsiRoutes.map(\.gsi) == [1, 2])
        try vm.setGSIRouting([KVMMSIRoute(gsi: 3, addressLo: doorbell, data: 0, devid: 1)])
        #expect(vm.gsiRoutes.map(\.gsi) == [3])
        #expect(vm.route(gsi: 1) == nil)

        #expect(throws: Errno.EBADF) { try vm.irqfd(eventfd: 42, gsi: 3) }
        let other = fixture.process.openOtherFile("/dev/vfio/devices/vfio0")
        #expect(throws: Errno.EINVAL) { try vm.irqfd(eventfd: other, gsi: 3) }
        let (fd, _) = fixture.process.eventfd()
        try vm.irqfd(eventfd: fd, gsi: 3)
        #expect(throws: Errno.EBUSY) { try vm.irqfd(eventfd: fd, gsi: 4) }
        #expect(vm.assignedIRQFDs.map(\.gsi) == [3])
        // Deassigning a pair that does not exist succeeds and changes nothing.
        try vm.irqfd(eventfd: fd, gsi: 4, deassign: true)
        #expect(vm.assignedIRQFDs.map(\.gsi) == [3])
    }
}

/// The Linux model as a guest on the VM's bus: its own RAM stores (page zeroing, command queue
/// slots, table entries) must land in the host pages backing guest RAM, not in the host's page
/// at the same address (qemu-virt puts both host RAM and guest RAM at 0x4000_0000).
@Suite("KVM: a guest kernel's RAM stores go through the guest bus's windows")
struct KVMGuestKernelMemoryTests {
    @Test("guest PhysicalPages zero guest RAM (host backing pages) and leave the host page at the same address alone")
    func guestPageZeroing() throws {
        let fixture = try KVMFixture.make()
        let hostBus = fixture.host.machine.bus
        let ipa = KVMFixture.guestRAMBase
        // A host word at host PA 0x4000_0000 (host kernel memory) and a dirty guest word at IPA
        // 0x4000_0000 (which is some other host page).
        let hostBefore = try hostBus.read(PhysicalAddress(ipa), size: 8)
        // The booted host kernel's first page there is in use (not zero), so zeroing the wrong
        // page would show.
        #expect(hostBefore != 0)
        try fixture.vm.guestBus.write(PhysicalAddress(ipa), size: 8, value: 0xBAD0_BAD0)
        let pages = PhysicalPages(bus: fixture.vm.guestBus, ranges: [(ipa, KVMFixture.guestRAMSize)])
        let page = try pages.allocate(bytes: 4096)
        #expect(page.rawValue == ipa)
        #expect(try fixture.vm.guestBus.read(PhysicalAddress(ipa), size: 8) == 0)
        #expect(try hostBus.read(PhysicalAddress(ipa), size: 8) == hostBefore)
        // kernelWriteBytes across a page boundary lands in the two backing pages.
        fixture.vm.guestBus.kernelWriteBytes(ipa + 0xFFE, [1, 2, 3, 4])
        #expect(try fixture.process.read(vaddr: fixture.ramUserVA + 0xFFE, count: 4) == [1, 2, 3, 4])
    }
}
