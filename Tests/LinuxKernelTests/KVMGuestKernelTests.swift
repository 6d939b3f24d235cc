import Testing
import Bus
import Firmware
import GIC
@testable import LinuxKernel

/// The same Linux model, booted as the guest on the VM (docs/architecture.md, principle 2): its GICv3/ITS
/// bring-up runs against KVM's vGIC on the guest bus — KVM's GITS_TYPER (8-byte ITT entries,
/// 16-bit ICIDs with CIL=0, PTA=0), tables allocated from guest RAM.
@Suite("KVM: the Linux model booted as the guest on the vGIC")
struct KVMGuestKernelTests {
    static let ramSize: UInt64 = 0x80_0000

    /// A minimal guest tree in QEMU virt's layout: memory, CPUs, GICv3 + ITS (no PCI).
    static func guestTopology(cpus: Int) throws -> Topology {
        typealias P = DeviceTreeProperty
        func reg(_ windows: [(UInt64, UInt64)]) -> [UInt32] {
            windows.flatMap { [UInt32($0.0 >> 32), UInt32(truncatingIfNeeded: $0.0), UInt32($0.1 >> 32), UInt32(truncatingIfNeeded: $0.1)] }
        }
        let its = DeviceTreeNode(name: "its@8080000", properties: [
            P(name: "phandle", cells: [0x8003]),
            P(name: "reg", cells: reg([(0x0808_0000, 0x2_0000)])),
            P(name: "#msi-cells", cells: [1]),
            P(name: "msi-controller"),
            P(name: "compatible", strings: ["arm,gic-v3-its"]),
        ])
        let gic = DeviceTreeNode(name: "intc@8000000", properties: [
            P(name: "phandle", cells: [0x8002]),
            P(name: "reg", cells: reg([(0x0800_0000, 0x1_0000), (0x080A_0000, 0xF6_0000)])),
            P(name: "#redistributor-regions", cells: [1]),
            P(name: "compatible", strings: ["arm,gic-v3"]),
            P(name: "ranges"),
            P(name: "#size-cells", cells: [2]),
            P(name: "#address-cells", cells: [2]),
            P(name: "interrupt-controller"),
            P(name: "#interrupt-cells", cells: [3]),
        ], children: [its])
        let cpuNodes = (0..<cpus).map { index in
            DeviceTreeNode(name: "cpu@\(index)", properties: [
                P(name: "reg", cells: [UInt32(index)]),
                P(name: "enable-method", strings: ["psci"]),
                P(name: "compatible", strings: ["arm,cortex-a57"]),
                P(name: "device_type", strings: ["cpu"]),
            ])
        }
        let root = DeviceTreeNode(name: "", properties: [
            P(name: "interrupt-parent", cells: [0x8002]),
            P(name: "#size-cells", cells: [2]),
            P(name: "#address-cells", cells: [2]),
            P(name: "compatible", strings: ["linux,dummy-virt"]),
        ], children: [
            DeviceTreeNode(name: "memory@40000000", properties: [
                P(name: "reg", cells: reg([(KVMFixture.guestRAMBase, ramSize)])),
                P(name: "device_type", strings: ["memory"]),
            ]),
            gic,
            DeviceTreeNode(name: "cpus", properties: [P(name: "#size-cells", cells: [0]), P(name: "#address-cells", cells: [1])],
                           children: cpuNodes),
        ])
        return try Topology(dtb: try DeviceTreeWriter.write(DeviceTree(root: root)))
    }

    @Test("guest irq probe on the vGIC: vITS enabled, collections mapped, LPIs on; an unmapped DeviceID is then blocked (0), not EBUSY")
    func guestProbesVGIC() throws {
        let host = try HostHarness.make()
        let process = UserProcess(kernel: host.kernel, name: "qemu")
        let vm = host.kernel.kvm.createVM(process: process)
        let va = try process.mmap(length: Self.ramSize)
        try vm.setUserMemoryRegion(slot: 0, guestPhysical: KVMFixture.guestRAMBase, size: Self.ramSize, userVA: va)
        try vm.createVCPUs(2)
        let vgic = try vm.createVGIC(distributor: KVMFixture.distributorBase, redistributors: KVMFixture.redistributorBase,
                                     its: KVMFixture.itsBase)
        // Before the guest runs, the vITS is disabled: KVM answers EBUSY.
        #expect(throws: Errno.EBUSY) { try vm.signalMSI(KVMMSI(addressLo: KVMFixture.translater, data: 0, devid: 0x8)) }

        let guest = LinuxKernel(role: .guest, topology: try Self.guestTopology(cpus: 2), bus: vm.guestBus, cpuInterface: vm.cpuInterface)
        try guest.irq.probe()

        let its = try #require(vgic.its)
        #expect(its.enabled)
        #expect(its.counters.commandErrors == 0)
        #expect(vgic.gic.redistributors.filter { !$0.enableLPIs }.isEmpty)
        // The guest's tables are in guest RAM: GITS_BASER0's table address is a guest IPA
        // inside the slot, backed by one of the VMM's pages.
        let deviceTable = GITSBaser(rawValue: its.baser[0])
        #expect(deviceTable.valid)
        let tableIPA = deviceTable.physicalAddress.rawValue
        #expect(tableIPA >= KVMFixture.guestRAMBase && tableIPA < KVMFixture.guestRAMBase + Self.ramSize)
        #expect(vm.hostPhysical(ofGuest: tableIPA) == process.physicalPage(of: va + (tableIPA - KVMFixture.guestRAMBase)))
        // ITS enabled and LPIs on: an MSI for a device the guest has not mapped is blocked (0).
        #expect(try vm.signalMSI(KVMMSI(addressLo: KVMFixture.translater, data: 0, devid: 0x8)) == 0)
        #expect(vm.injections.last?.outcome == .blocked(.unmappedDevice))
    }
}
