import Bus
import GIC
@testable import LinuxKernel

/// A VM on the qemu-virt host, laid out as QEMU's virt machine lays out its guest: RAM at IPA
/// 0x4000_0000, GICD 0x0800_0000, vITS 0x0808_0000 (GITS_TRANSLATER 0x0809_0040), GICR from
/// 0x080A_0000. Guest RAM is the VMM process's anonymous memory, as QEMU's is.
struct KVMFixture {
    static let guestRAMBase: UInt64 = 0x4000_0000
    static let guestRAMSize: UInt64 = 0x40_0000
    static let distributorBase = PhysicalAddress(0x0800_0000)
    static let itsBase = PhysicalAddress(0x0808_0000)
    static let redistributorBase = PhysicalAddress(0x080A_0000)
    /// The vITS doorbell: ITS base + 0x1_0040 (GICv3 §12.19 GITS_TRANSLATER offset).
    static let translater: UInt32 = 0x0809_0040

    let host: HostHarness
    let process: UserProcess
    let vm: KVMVirtualMachine
    let ramUserVA: UInt64

    static func make(vcpus: Int = 2, its: Bool = true) throws -> KVMFixture {
        let host = try HostHarness.make()
        return try make(host: host, process: UserProcess(kernel: host.kernel, name: "qemu"), vcpus: vcpus, its: its)
    }

    /// The same VM for an existing host and VMM process (e.g. one that also drives VFIO).
    static func make(host: HostHarness, process: UserProcess, vcpus: Int = 2, its: Bool = true) throws -> KVMFixture {
        let vm = host.kernel.kvm.createVM(process: process)
        let va = try process.mmap(length: guestRAMSize)
        try vm.setUserMemoryRegion(slot: 0, guestPhysical: guestRAMBase, size: guestRAMSize, userVA: va)
        try vm.createVCPUs(vcpus)
        try vm.createVGIC(distributor: distributorBase, redistributors: redistributorBase, its: its ? itsBase : nil)
        return KVMFixture(host: host, process: process, vm: vm, ramUserVA: va)
    }
}

/// The guest kernel's side, reduced to what irq-gic-v3(-its).c does to bring LPIs up, issued as
/// vCPU 0 stores on the guest bus: `its_cpu_init_lpis` (PROPBASER, PENDBASER, EnableLPIs per
/// redistributor), `its_alloc_tables` (one GITS_BASER per table type, 4 KiB pages),
/// CBASER/CWRITER, GITS_CTLR.Enabled, `its_cpu_init_collection` (MAPC ICID n → vCPU n, PTA=0
/// so the target is the processor number), and `its_create_device`/`its_irq_domain_alloc`
/// (MAPD, MAPTI, INV, SYNC). Tables come from a bump allocator over guest RAM.
final class GuestGICBringUp {
    let vm: KVMVirtualMachine
    /// Where the guest's stores go: the VM's guest bus, or a forked copy of it (`forked(onto:)`).
    var bus: SystemBus
    var next: UInt64
    let end: UInt64
    var queue: UInt64 = 0
    var writer: UInt64 = 0
    var propTable: UInt64 = 0
    private(set) var deviceTable: UInt64 = 0
    private(set) var collectionTable: UInt64 = 0
    private(set) var itts: [UInt32: UInt64] = [:]

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    init(vm: KVMVirtualMachine, ramBase: UInt64 = KVMFixture.guestRAMBase, ramSize: UInt64 = KVMFixture.guestRAMSize) {
        self.vm = vm
        bus = vm.guestBus
        next = ramBase
        end = ramBase + ramSize
    }

    /// The same guest, from now on storing to `bus` (a forked world's copy of the guest bus):
    /// its allocator, queue writer and table addresses carry over.
    func forked(onto bus: SystemBus) -> GuestGICBringUp {
        let copy = GuestGICBringUp(vm: vm, ramBase: next, ramSize: end - next)
        copy.bus = bus
        copy.queue = queue
        copy.writer = writer
        copy.propTable = propTable
        copy.deviceTable = deviceTable
        copy.collectionTable = collectionTable
        copy.itts = itts
        return copy
    }

    func allocate(_ bytes: UInt64, alignment: UInt64 = 4096) throws -> UInt64 {
        let base = (next + alignment - 1) & ~(alignment - 1)
        guard base + bytes <= end else { throw Failure(description: "guest RAM exhausted") }
        next = base + bytes
        return base
    }

    func write(_ address: UInt64, _ size: Int, _ value: UInt64) throws {
        try bus.write(PhysicalAddress(address), size: size, value: value, requester: .cpu(0))
    }

    func read(_ address: UInt64, _ size: Int) throws -> UInt64 {
        try bus.read(PhysicalAddress(address), size: size, requester: .cpu(0))
    }

    /// Redistributor LPI tables for every vCPU and ICC_PMR_EL1 = 0xF0 (`DEFAULT_PMR_VALUE`).
    func enableLPIs(idBits: UInt64 = 16) throws {
        propTable = try allocate((1 << idBits) - 8192)
        for cpu in 0..<vm.vcpus.count {
            let rd = KVMFixture.redistributorBase.rawValue + UInt64(cpu) * KVMConstants.vgicV3RedistributorSize
            let pending = try allocate(0x1_0000, alignment: 0x1_0000)
            try write(rd + Redistributor.Offset.waker, 4, 0)
            try write(rd + Redistributor.Offset.propbaser, 8, propTable | (idBits - 1))
            try write(rd + Redistributor.Offset.pendbaser, 8, pending)
            try write(rd + Redistributor.Offset.ctlr, 4, 1)
            vm.cpuInterface.writePMR(cpu: cpu, 0xF0)
        }
    }

    /// Device and collection tables (one 4 KiB page each: DeviceIDs and ICIDs below 512), a
    /// 4 KiB command queue, Enabled, and MAPC ICID n → vCPU n.
    func enableITS() throws {
        let its = KVMFixture.itsBase.rawValue
        for n in 0..<8 {
            let at = its + ITS.Offset.baser + UInt64(n) * 8
            let baser = try read(at, 8)
            let type = baser.bits(58, 56)
            guard type == GITSBaser.TableType.devices || type == GITSBaser.TableType.collections else { continue }
            let table = try allocate(4096)
            if type == GITSBaser.TableType.devices { deviceTable = table } else { collectionTable = table }
            try write(at, 8, 1 << 63 | baser.keepingBits(58, 48) | table)
        }
        queue = try allocate(4096)
        try write(its + ITS.Offset.cbaser, 8, 1 << 63 | queue)
        try write(its + ITS.Offset.cwriter, 8, 0)
        try write(its + ITS.Offset.ctlr, 4, 1)
        var commands: [ITSCommand] = (0..<vm.vcpus.count).map {
            .mapc(collection: CollectionID(UInt16($0)), target: .processor($0), valid: true)
        }
        commands.append(.sync(target: .processor(0)))
        try issue(commands)
    }

    func issue(_ commands: [ITSCommand]) throws {
        for command in commands {
            let (w0, w1, w2, w3) = command.encodeWords()
            for (i, word) in [w0, w1, w2, w3].enumerated() {
                try write(queue + writer + UInt64(i) * 8, 8, word)
            }
            writer = (writer + 32) % 4096
        }
        try write(KVMFixture.itsBase.rawValue + ITS.Offset.cwriter, 8, writer)
    }

    /// MAPD `device` with an ITT for `events` (a power of two) and EventID e → LPI
    /// `firstINTID + e` on collection `collection`, each enabled at priority 0xA0
    /// (`LPI_PROP_DEFAULT_PRIO`) in the configuration table before MAPTI/INV.
    func mapDevice(_ device: UInt32, events: Int, firstINTID: UInt32, collection: UInt16) throws {
        let eventBits = max(1, Int.bitWidth - (events - 1).leadingZeroBitCount)
        let entrySize = UInt64(KVMVGIC.configuration(vcpuCount: 1).ittEntrySize)
        let itt = try allocate(max(entrySize << UInt64(eventBits), 256), alignment: 256)
        itts[device] = itt
        var commands: [ITSCommand] = [.mapd(device: DeviceID(device), size: UInt8(eventBits - 1), ittAddress: PhysicalAddress(itt), valid: true)]
        for event in 0..<events {
            let intid = firstINTID + UInt32(event)
            try write(propTable + UInt64(intid - 8192), 1, 0xA0 | 0b10 | 1)
            commands.append(.mapti(device: DeviceID(device), event: EventID(UInt32(event)), intid: INTID(intid), collection: CollectionID(collection)))
            commands.append(.inv(device: DeviceID(device), event: EventID(UInt32(event))))
        }
        commands.append(.sync(target: .processor(Int(collection))))
        try issue(commands)
    }
}
