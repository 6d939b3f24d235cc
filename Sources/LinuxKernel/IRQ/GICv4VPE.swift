import Bus
import GIC

/// `struct its_vm` (include/linux/irqchip/arm-gic-v4.h): one VM's vPEs, its vLPI configuration
/// table (`vprop_page`) and the block of doorbell LPIs (`db_lpi_base`, `nr_db_lpis`).
public final class ITSVM {
    public internal(set) var vpes: [ITSVPE] = []
    /// `vprop_page`: LPI_PROPBASE_SZ bytes, one configuration byte per vINTID − 8192, reset to
    /// `LPI_PROP_DEFAULT_PRIO | LPI_PROP_GROUP1` (`its_allocate_prop_table`). VMAPP names it as
    /// VConf_addr on GICv4.1.
    public let propertyTable: PhysicalAddress
    public let doorbellBase: UInt32
    public let doorbellCount: Int

    init(propertyTable: PhysicalAddress, doorbellBase: UInt32, doorbellCount: Int) {
        self.propertyTable = propertyTable
        self.doorbellBase = doorbellBase
        self.doorbellCount = doorbellCount
    }
}

/// `struct its_vpe`: a vCPU as the GIC knows it.
public final class ITSVPE {
    /// `vpe_id` (`its_vpe_id_alloc`: the lowest free vPEID).
    public let id: UInt16
    /// The vCPU index in its VM.
    public let index: Int
    /// `vpt_page`: the virtual pending table, LPI_PENDBASE_SZ zeroed bytes, 64 KiB aligned.
    public let pendingTable: PhysicalAddress
    /// `vpe_db_lpi`: the default doorbell (a physical LPI of the VM's block).
    public let doorbellLPI: UInt32
    /// `irq`: the Linux interrupt of the doorbell (the vPE domain's interrupt).
    public internal(set) var irq = 0
    /// `col_idx`: the CPU whose redistributor VMAPP/VMOVP last named.
    public internal(set) var cpu = 0
    /// `resident`.
    public internal(set) var resident = false
    /// The CPU whose redistributor holds the vPE while it is resident.
    public internal(set) var residentCPU: Int?
    /// `pending_last`: PendingLast read back when made non-resident, or set by the doorbell
    /// handler.
    public internal(set) var pendingLast = false
    /// `vmapp_count`: ITSs that have it mapped (GICv4.1 Alloc bit bookkeeping).
    public internal(set) var vmappCount = 0
    /// `vlpi_count`: vLPIs forwarded to it.
    public internal(set) var vlpiCount = 0
    /// Doorbells taken for it (`vgic_v4_doorbell_handler` runs).
    public internal(set) var doorbellsTaken = 0

    init(id: UInt16, index: Int, pendingTable: PhysicalAddress, doorbellLPI: UInt32) {
        self.id = id
        self.index = index
        self.pendingTable = pendingTable
        self.doorbellLPI = doorbellLPI
    }
}

extension IRQSubsystem {
    /// The ITS drivers with GICv4 support (`is_v4`), in probe order (`its_nodes`).
    var v4ITSDrivers: [GICv3ITSDriver] { kernel.itsDrivers.filter(\.isV4) }

    /// `find_4_1_its`: the first GICv4.1 ITS.
    var first41ITSDriver: GICv3ITSDriver? { kernel.itsDrivers.first(where: \.isV41) }

    /// `its_alloc_vcpu_irqs(vm)` (irq-gic-v4.c) → `its_vpe_irq_domain_alloc`, then
    /// `request_irq` of every doorbell as `vgic_v4_init` does (`vgic_v4_request_vpe_irq`, the
    /// handler `vgic_v4_doorbell_handler`, named "vcpu"):
    /// - `its_lpi_alloc(roundup_pow_of_two(nr_vpes))` doorbell LPIs and the VM's `vprop_page`;
    /// - per vPE `its_vpe_init`: the lowest free vPEID, a zeroed VPT, `its_alloc_vpe_table`
    ///   (the vPE table entry on every GICv4 ITS, `its_alloc_table_entry`, and on GICv4.1 every
    ///   redistributor's, `allocate_vpe_l2_table`);
    /// - `request_irq` → `irq_activate` → `its_vpe_irq_domain_activate`: GICv4.1 maps eagerly
    ///   (`gic_requires_eager_mapping`): `col_idx` = the first online CPU, VMAPP + VINVALL on
    ///   every GICv4 ITS; then `irq_startup` → `its_vpe_4_1_unmask_irq` (the doorbell's
    ///   configuration byte enabled and INVDB, since on GICv4.1 the doorbell "is managed in HW
    ///   and must be left enabled": IRQ_NOAUTOEN cleared).
    /// GICv4.0 (no RVPEID) maps vPEs lazily and needs per-vLPI doorbells; it is not modelled
    /// (ENXIO). `onDoorbell` runs in the doorbell's handler.
    public func allocateVCPUIRQs(vcpuCount: Int, onDoorbell: @escaping (ITSVPE, Int) -> Void) throws(Errno) -> ITSVM {
        guard gicv4.hasRVPEID, !v4ITSDrivers.isEmpty else { throw .ENXIO }
        guard vcpuCount > 0 else { throw .EINVAL }
        var count = 1
        while count < vcpuCount { count <<= 1 }
        guard let (dbBase, dbCount) = lpiAllocator.allocate(count), dbCount >= vcpuCount else { throw .ENOMEM }
        let propBytes = (UInt64(1) << UInt64(lpiIDBits) + 0xFFFF) & ~0xFFFF
        let vprop = try kernel.pages.allocate(bytes: propBytes, alignment: 0x1_0000)
        kernel.bus.kernelWriteBytes(vprop.rawValue, [UInt8](repeating: IRQSubsystem.defaultLPIConfiguration, count: Int(propBytes)))
        let vm = ITSVM(propertyTable: vprop, doorbellBase: dbBase, doorbellCount: dbCount)
        let pendBytes = max((UInt64(1) << UInt64(lpiIDBits)) / 8, 0x1_0000)
        for index in 0..<vcpuCount {
            guard let id = (0..<(1 << gicv4.maxVPEIDBits)).lazy.map({ UInt16(truncatingIfNeeded: $0) }).first(where: { !vpeIDsInUse.contains($0) }) else {
                throw .ENOSPC
            }
            let vpt = try kernel.pages.allocate(bytes: pendBytes, alignment: 0x1_0000)
            for driver in v4ITSDrivers { try driver.ensureVPETableEntry(id) }
            guard allocateVPEL2Tables(vpe: id) else { throw .ENOMEM }
            vpeIDsInUse.insert(id)
            let vpe = ITSVPE(id: id, index: index, pendingTable: vpt, doorbellLPI: dbBase &+ UInt32(index))
            vm.vpes.append(vpe)
        }
        itsVMs.append(vm)
        for vpe in vm.vpes {
            let irq = nextIRQ
            nextIRQ += 1
            let d = IRQDescriptor(irq: irq, hwirq: vpe.doorbellLPI, chipName: "GICv4.1-vpe", device: nil, msiDescriptor: nil,
                                  itsIndex: v4ITSDrivers[0].index, eventID: 0, cpuCount: cpuCount)
            descriptors[irq] = d
            descriptorByHWIRQ[vpe.doorbellLPI] = d
            vpe.irq = irq
            d.action = IRQAction(name: "vcpu", kind: .handler(vpeDoorbellHandler(vpe, vm: vm, onDoorbell: onDoorbell)))
            try activateVPE(vpe, vm: vm)
            d.isActivated = true
            d.effectiveCPU = vpe.cpu
            try setDoorbellEnabled(vpe, true)
            d.isStarted = true
            d.isMasked = false
        }
        kernel.log.log("GICv4", "VM of \(vcpuCount) vPE(s): vPEIDs \(vm.vpes.map { "\($0.id)" }.joined(separator: ", ")), doorbells LPI \(dbBase)-\(dbBase &+ UInt32(vcpuCount) &- 1), VConf @\(vprop)")
        return vm
    }

    /// `vgic_v4_doorbell_handler` around KVM's `onDoorbell`: counts the doorbell, sets
    /// the vPE's `pending_last`, then KVM kicks the vCPU (`onDoorbell`).
    func vpeDoorbellHandler(_ vpe: ITSVPE, vm: ITSVM, onDoorbell: @escaping (ITSVPE, Int) -> Void) -> (Int, Int) -> IRQReturn {
        { [weak vm] _, cpu in
            guard vm != nil else { return .none }
            vpe.doorbellsTaken += 1
            vpe.pendingLast = true
            onDoorbell(vpe, cpu)
            return .handled
        }
    }

    /// `its_vpe_irq_domain_activate`: `col_idx` = the first online CPU, then on every GICv4 ITS
    /// VMAPP (V = 1, VPT_size = LPI_NRBITS − 1, Alloc on the first map, PTZ = 0 — "we never
    /// advertise PTZ" — VConf_addr = the VM's `vprop_page`, Default doorbell = `vpe_db_lpi`) +
    /// VSYNC, then VINVALL + VSYNC.
    func activateVPE(_ vpe: ITSVPE, vm: ITSVM) throws(Errno) {
        vpe.cpu = 0
        for driver in v4ITSDrivers {
            try driver.sendVMAPP(vpe, vm: vm, valid: true)
            try driver.sendVirtual(.vinvall(vpe: vpe.id), vsync: vpe.id)
        }
    }

    /// `its_vpe_4_1_mask_irq` / `its_vpe_4_1_unmask_irq`: the doorbell LPI's configuration
    /// byte (`lpi_write_config` on the parent), then INVDB to the first GICv4.1 ITS
    /// (`its_vpe_4_1_send_inv`: "INVDB ... broadcast to all RDs") + VSYNC.
    func setDoorbellEnabled(_ vpe: ITSVPE, _ enable: Bool) throws(Errno) {
        guard let byte = propertyTable.adding(UInt64(vpe.doorbellLPI &- 8192)) else { throw .EINVAL }
        let old = UInt8(truncatingIfNeeded: kernel.bus.kernelRead(byte.rawValue, size: 1))
        kernel.bus.kernelWrite(byte.rawValue, size: 1, value: UInt64(enable ? old | 1 : old & ~1))
        try first41ITSDriver?.sendVirtual(.invdb(vpe: vpe.id), vsync: vpe.id)
    }

    /// `its_vpe_set_affinity(d, cpumask_of(cpu))`: nothing when `col_idx` is already `cpu`;
    /// else `col_idx` = `cpu`, and unless `cpu`'s redistributor shares its vPE table with the
    /// old one's (`vpe_table_mask`: "GICv4.1 allows us to skip VMOVP if moving to a cpu whose
    /// RD is sharing its VPE table with the current one"), `its_send_vmovp`: with single-VMOVP
    /// ITSs (no ITSList) one VMOVP to the first ITS (SequenceNumber and ITSList 0, RDbase of
    /// `cpu`'s collection, DB = 1 and the default doorbell on GICv4.1) + VSYNC. Returns whether
    /// VMOVP was sent.
    @discardableResult
    public func setVPEAffinity(_ vpe: ITSVPE, cpu: Int) throws(Errno) -> Bool {
        guard cpu >= 0, cpu < redistributors.count else { throw .EINVAL }
        let from = vpe.cpu
        guard from != cpu else { return false }
        vpe.cpu = cpu
        if let d = descriptors[vpe.irq] { d.effectiveCPU = cpu }
        if gicv4.vpeTableMask(cpu).contains(from) {
            kernel.log.log("GICv4", "vPE \(vpe.id): CPU\(from) → CPU\(cpu) share a vPE table, no VMOVP")
            return false
        }
        guard let driver = kernel.itsDrivers.first else { throw .ENODEV }
        guard driver.singleVMOVP else {
            kernel.log.log("GICv4", "vPE \(vpe.id): ITSList VMOVP (no GITS_TYPER.VMOVP) is not modelled")
            throw .ENXIO
        }
        guard let target = driver.collectionTarget(cpu) else { throw .EINVAL }
        try driver.sendVirtual(.vmovp(vpe: vpe.id, target: target, sequence: 0, itsList: 0,
                                      doorbellValid: driver.isV41, defaultDoorbell: driver.isV41 ? vpe.doorbellLPI : 0),
                               vsync: vpe.id)
        return true
    }

    /// `its_make_vpe_resident(vpe, g0en, g1en)` on `cpu` → `its_vpe_4_1_schedule`: that CPU's
    /// GICR_VPENDBASER = Valid | vGrp0En | vGrp1En | vPEID (one 64-bit write).
    public func makeVPEResident(_ vpe: ITSVPE, cpu: Int, group0: Bool = false, group1: Bool) throws(Errno) {
        guard redistributors.indices.contains(cpu), let vpend = redistributors[cpu].base.adding(VPropbaser41.vpendbaserOffset) else {
            throw .EINVAL
        }
        try kernel.mmio.write64(vpend, GICRVPendbaser.scheduling(vpe: vpe.id, group0: group0, group1: group1))
        vpe.resident = true
        vpe.residentCPU = cpu
    }

    /// `its_make_vpe_non_resident(vpe, db)` → `its_vpe_4_1_deschedule` on the CPU holding it:
    /// `its_clear_vpend_valid` (read GICR_VPENDBASER, clear Valid, with `db` clear PendingLast
    /// and set DB — "if we read-back PendingLast clear, then a doorbell will be delivered when
    /// an interrupt comes" — else set PendingLast; write; poll Dirty), `pending_last` from
    /// what reads back.
    public func makeVPENonResident(_ vpe: ITSVPE, doorbell: Bool) throws(Errno) {
        guard vpe.resident, let cpu = vpe.residentCPU, redistributors.indices.contains(cpu),
              let vpend = redistributors[cpu].base.adding(VPropbaser41.vpendbaserOffset) else { throw .EINVAL }
        var value = try kernel.mmio.read64(vpend).settingBit(GICRVPendbaser.valid, to: false)
        if doorbell {
            value = value.settingBit(GICRVPendbaser.pendingLast, to: false).settingBit(GICRVPendbaser.doorbell, to: true)
        } else {
            value = value.settingBit(GICRVPendbaser.pendingLast, to: true)
        }
        try kernel.mmio.write64(vpend, value)
        var readBack = value
        for _ in 0..<1000 {
            readBack = try kernel.mmio.read64(vpend)
            if !readBack.bit(GICRVPendbaser.dirty) { break }
        }
        vpe.pendingLast = doorbell ? readBack.bit(GICRVPendbaser.pendingLast) : true
        vpe.resident = false
        vpe.residentCPU = nil
    }
}

extension GICv3ITSDriver {
    /// `its_send_vmapp(its, vpe, valid)` + VSYNC: RDbase of `its->collections[vpe->col_idx]`.
    func sendVMAPP(_ vpe: ITSVPE, vm: ITSVM, valid: Bool) throws(Errno) {
        guard let target = collectionTarget(vpe.cpu) else { throw .EINVAL }
        let alloc: Bool
        if valid {
            alloc = vpe.vmappCount == 0
            vpe.vmappCount += 1
        } else {
            vpe.vmappCount = max(vpe.vmappCount - 1, 0)
            alloc = vpe.vmappCount == 0
        }
        let idBits = kernel.irq.lpiIDBits
        try sendVirtual(.vmapp(vpe: vpe.id, target: target, valid: valid, vptAddress: valid ? vpe.pendingTable : PhysicalAddress(0),
                               vptSize: valid ? UInt8(idBits - 1) : 0, vconfAddress: valid ? vm.propertyTable : PhysicalAddress(0),
                               alloc: isV41 && alloc, ptz: false, defaultDoorbell: valid && isV41 ? vpe.doorbellLPI : 0),
                        vsync: vpe.id)
    }
}
