import Bus
import Firmware
import SMMUv3

/// drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c: one instance per `arm,smmu-v3` node
/// (`struct arm_smmu_device`). It drives the SMMU only through its registers
/// (`kernel.mmio`) and the queues and tables it lays out in kernel pages (`kernel.bus`), so
/// it runs unchanged as a host driver or as a guest's driver for a vSMMU.
///
/// Probe order is `arm_smmu_device_probe`: `arm_smmu_device_hw_probe` (ID registers →
/// `features`), `arm_smmu_init_structures` (queues, stream table), `arm_smmu_device_reset`.
public final class ArmSMMUv3Driver: IOMMUDriver {
    unowned(safe) let kernel: LinuxKernel
    public let index: Int
    public let node: SMMUv3Description
    public var name: String { "arm-smmu-v3.\(index)" }

    /// What `arm_smmu_device_hw_probe` found (valid after `probe()`).
    public internal(set) var features = ArmSMMUv3Features()
    /// The page sizes a paging domain of this SMMU gets (`domain->pgsize_bitmap` after
    /// `arm_smmu_domain_finalise`): the SMMU's sizes (`smmu->pgsize_bitmap`, from IDR5)
    /// restricted by io-pgtable for the kernel's PAGE_SIZE — 4K | 2M | 1G on a 4K kernel,
    /// 64K | 512M on a 64K kernel whose SMMU has IDR5.GRAN64K.
    public var pageSizeBitmap: UInt64 {
        IOPageTableARM.restrictPageSizes(features.pageSizeBitmap, kernelPageSize: kernel.pageSize,
                                         inputBits: features.inputAddressBits, outputBits: features.outputAddressBits).pageSizes
    }

    // Queues and the stream table (`arm_smmu_init_structures`).
    var commandQueue: ArmSMMUv3Queue?
    var eventQueue: ArmSMMUv3Queue?
    /// The stream table, linear or 2-level (`struct arm_smmu_strtab_cfg`).
    public internal(set) var streamTable: ArmSMMUv3StreamTable?

    /// Commands issued, per opcode (CMD_SYNC included), so tests can compare strict and lazy
    /// invalidation. Keyed lookups only; never iterated for output.
    public internal(set) var commandCounts: [CommandOpcode: Int] = [:]
    /// Every command issued, in order (cleared by `resetCommandLog()`).
    public internal(set) var commandLog: [Command] = []
    /// Event records read from the event queue by `serviceEventQueue()`, in order.
    public internal(set) var events: [EventRecord] = []
    /// Events `arm_smmu_handle_event` handed to a vIOMMU (not dumped to the log).
    public internal(set) var forwardedEvents = 0
    /// Times the event queue reported an overflow (`"EVTQ overflow detected -- events lost"`).
    public internal(set) var eventQueueOverflows = 0
    /// Command errors recovered by `arm_smmu_cmdq_skip_err`.
    public internal(set) var commandErrors: [CommandErrorCode] = []
    /// An observation point of the model, not of Linux: called after every sync of the hitless
    /// entry writer (`arm_smmu_write_entry`) with the entry's address and its 8 qwords as the
    /// SMMU may now fetch them, so tests can see each intermediate STE or CD.
    var entryWriteObserver: ((ArmSMMUv3EntryWriter.Kind, PhysicalAddress, [UInt64]) -> Void)?

    /// `arm_smmu_asid_xa` (global in Linux; per SMMU here, which changes nothing with one SMMU)
    /// and `smmu->vmid_map`.
    var asidAllocator = ArmSMMUv3IDAllocator(minimum: 1)
    var vmidAllocator = ArmSMMUv3IDAllocator(minimum: 1)
    /// Masters by StreamID (`smmu->streams`, an rbtree keyed by SID).
    var streams: [UInt32: ArmSMMUv3Master] = [:]

    /// The static `arm_smmu_identity_domain` and `arm_smmu_blocked_domain`.
    /// Made on first use (`StaticIOMMUDomains`).
    public var identityDomain: IOMMUDomain { staticDomains.domain(.identity, of: self, kernel: kernel) }
    public var blockedDomain: IOMMUDomain { staticDomains.domain(.blocked, of: self, kernel: kernel) }
    var staticDomains = StaticIOMMUDomains()

    init(kernel: LinuxKernel, index: Int, node: SMMUv3Description) {
        self.kernel = kernel
        self.index = index
        self.node = node
    }

    func log(_ message: String) {
        kernel.log.log("arm-smmu-v3", "\(node.path): \(message)")
    }

    // MARK: Registers

    func register(_ offset: UInt64) -> PhysicalAddress { PhysicalAddress(node.region.base.rawValue &+ offset) }
    func read32(_ offset: UInt64) throws(Errno) -> UInt32 { try kernel.mmio.read32(register(offset)) }
    func write32(_ offset: UInt64, _ value: UInt32) throws(Errno) { try kernel.mmio.write32(register(offset), value) }
    func write64(_ offset: UInt64, _ value: UInt64) throws(Errno) { try kernel.mmio.write64(register(offset), value) }

    /// How many times a poll reads a register before giving up. Linux polls for
    /// ARM_SMMU_POLL_TIMEOUT_US (1 s); the model's SMMU acts on each write synchronously, so a
    /// small bound only matters for a device that never answers.
    static let pollLimit = 64

    /// `arm_smmu_write_reg_sync`: write, then poll the ACK register until it matches.
    func writeRegisterSync(_ value: UInt32, _ offset: UInt64, ack: UInt64) throws(Errno) {
        try write32(offset, value)
        for _ in 0..<Self.pollLimit where try read32(ack) == value { return }
        throw .ETIMEDOUT
    }

    /// `arm_smmu_update_gbpa`: wait for GBPA.UPDATE to clear, write the new value with UPDATE,
    /// wait again ("GBPA not responding to update").
    func updateGBPA(set: UInt32, clear: UInt32) throws(Errno) {
        let update = UInt32(1) << UInt32(SMMURegisterField.gbpaUpdateBit)
        func pollUpdate() throws(Errno) -> UInt32 {
            for _ in 0..<Self.pollLimit {
                let value = try read32(SMMURegisterOffset.gbpa)
                if value & update == 0 { return value }
            }
            log("GBPA not responding to update")
            throw .ETIMEDOUT
        }
        var value = try pollUpdate()
        value = (value & ~clear) | set
        try write32(SMMURegisterOffset.gbpa, value | update)
        _ = try pollUpdate()
    }

    // MARK: Probe

    /// `arm_smmu_device_probe`.
    func probe() throws(Errno) {
        let idr0 = try read32(SMMURegisterOffset.idr0)
        let idr1 = try read32(SMMURegisterOffset.idr1)
        let idr3 = try read32(SMMURegisterOffset.idr3)
        let idr5 = try read32(SMMURegisterOffset.idr5)
        switch ArmSMMUv3Features.decode(idr0: idr0, idr1: idr1, idr3: idr3, idr5: idr5, coherent: node.dmaCoherent,
                                        pageShift: kernel.pageShift) {
        case .success(let decoded):
            features = decoded
        case .failure(let error):
            log("hardware probe failed: \(error)")
            throw .ENXIO
        }
        if idr0.bit(4) != features.coherent {
            log("IDR0.COHACC overridden by FW configuration (\(features.coherent ? "true" : "false"))")
        }
        log("ias \(features.inputAddressBits)-bit, oas \(features.outputAddressBits)-bit (features 0x\(String(featureWord, radix: 16)))")
        try initStructures()
        try reset()
    }

    /// A summary of `smmu->features` for the probe log line (bit order of ARM_SMMU_FEAT_*:
    /// 2_LVL_STRTAB 0, 2_LVL_CDTAB 1, TT_LE 2, PRI 4, ATS 5, SEV 6, MSI 7, COHERENCY 8,
    /// TRANS_S1 9, TRANS_S2 10, STALLS 11, HYP 12, RANGE_INV 15).
    var featureWord: UInt32 {
        var w: UInt32 = 1 << 2
        if features.twoLevelStreamTable { w |= 1 << 0 }
        if features.twoLevelCDTable { w |= 1 << 1 }
        if features.sev { w |= 1 << 6 }
        if features.msi { w |= 1 << 7 }
        if features.coherent { w |= 1 << 8 }
        if features.stage1 { w |= 1 << 9 }
        if features.stage2 { w |= 1 << 10 }
        if features.stalls { w |= 1 << 11 }
        if features.hyp { w |= 1 << 12 }
        if features.rangeInvalidation { w |= 1 << 15 }
        return w
    }

    /// `arm_smmu_init_structures`: `arm_smmu_init_queues` (`arm_smmu_init_one_queue` for the
    /// command and event queues) and `arm_smmu_init_strtab`.
    func initStructures() throws(Errno) {
        let command = try allocateQueue(shift: features.commandQueueShift, entryBytes: 16)
        features.commandQueueShift = command.shift
        commandQueue = command
        let event = try allocateQueue(shift: features.eventQueueShift, entryBytes: 32)
        features.eventQueueShift = event.shift
        eventQueue = event
        streamTable = try ArmSMMUv3StreamTable(driver: self)
    }

    /// `arm_smmu_init_one_queue`: the queue at `llq.max_n_shift` entries, naturally aligned
    /// (`dmam_alloc_coherent`); when that fails, one shift smaller (`max_n_shift--`, which is
    /// the size the queue then has) until it fits or the queue is smaller than a page
    /// (then ENOMEM: "failed to allocate queue").
    private func allocateQueue(shift: Int, entryBytes: UInt64) throws(Errno) -> ArmSMMUv3Queue {
        var shift = shift
        while true {
            let bytes = (UInt64(1) << UInt64(shift)) &* entryBytes
            do {
                let base = try kernel.pages.allocate(bytes: bytes, alignment: max(bytes, 4096))
                return ArmSMMUv3Queue(base: base, shift: shift, entryBytes: entryBytes)
            } catch {
                if bytes < kernel.pageSize || shift == 0 { throw error }
                shift -= 1
            }
        }
    }

    /// `arm_smmu_device_reset`, in Linux's order (SMMUv3 §3.11, docs/hardware.md §SMMUv3 bring-up):
    /// 1. if SMMUEN is already set ("SMMU currently enabled! Resetting..."), GBPA.ABORT via
    ///    `arm_smmu_update_gbpa`; then CR0 = 0 and wait for CR0ACK (`arm_smmu_device_disable`);
    /// 2. CR1: queues and tables inner-shareable write-back; CR2: PTM | RECINVSID (E2H only
    ///    with VHE, not modelled);
    /// 3. STRTAB_BASE, STRTAB_BASE_CFG (`arm_smmu_write_strtab`);
    /// 4. CMDQ_BASE, PROD, CONS, then CMDQEN;
    /// 5. CFGI_ALL + SYNC, TLBI_EL2_ALL + SYNC if HYP, TLBI_NSNH_ALL + SYNC;
    /// 6. EVENTQ_BASE, page-1 PROD/CONS, then EVTQEN;
    /// 7. `arm_smmu_setup_irqs`: IRQ_CTRL = 0, the MSI address registers cleared; this node
    ///    has no `msi-parent`, so wired interrupts ("msi_domain absent - falling back to wired
    ///    irqs"), then IRQ_CTRL = GERROR | EVTQ (no PRI);
    /// 8. SMMUEN (Linux default `disable_bypass`: unattached streams abort).
    func reset() throws(Errno) {
        guard var cmdq = commandQueue, var evtq = eventQueue, let strtab = streamTable else { throw .ENODEV }
        let cr0 = try read32(SMMURegisterOffset.cr0)
        if cr0 & 1 != 0 {
            log("SMMU currently enabled! Resetting...")
            try updateGBPA(set: UInt32(1) << UInt32(SMMURegisterField.gbpaAbortBit), clear: 0)
        }
        try writeRegisterSync(0, SMMURegisterOffset.cr0, ack: SMMURegisterOffset.cr0ack)
        // CR1: TABLE_SH[11:10] = ISH, TABLE_OC[9:8] = TABLE_IC[7:6] = WB, QUEUE_SH[5:4] = ISH,
        // QUEUE_OC[3:2] = QUEUE_IC[1:0] = WB.
        let cr1: UInt32 = (3 << 10) | (1 << 8) | (1 << 6) | (3 << 4) | (1 << 2) | 1
        try write32(SMMURegisterOffset.cr1, cr1)
        try write32(SMMURegisterOffset.cr2, (1 << 2) | (1 << 1))   // PTM | RECINVSID
        try write64(SMMURegisterOffset.strtabBase, strtab.baseRegister)
        try write32(SMMURegisterOffset.strtabBaseCfg, strtab.baseConfigRegister)
        cmdq.prod = 0; cmdq.cons = 0
        commandQueue = cmdq
        try write64(SMMURegisterOffset.cmdqBase, cmdq.baseRegister)
        try write32(SMMURegisterOffset.cmdqProd, cmdq.prod)
        try write32(SMMURegisterOffset.cmdqCons, cmdq.cons)
        var enables: UInt32 = 1 << 3   // CMDQEN
        try writeRegisterSync(enables, SMMURegisterOffset.cr0, ack: SMMURegisterOffset.cr0ack)
        try issueWithSync([Command.cfgiAll()])
        if features.hyp { try issueWithSync([.tlbiEL2All]) }
        try issueWithSync([.tlbiNSNHAll])
        evtq.prod = 0; evtq.cons = 0
        eventQueue = evtq
        try write64(SMMURegisterOffset.eventqBase, evtq.baseRegister)
        try write32(eventQueueProdRegister, evtq.prod)
        try write32(eventQueueConsRegister, evtq.cons)
        enables |= 1 << 2              // EVTQEN
        try writeRegisterSync(enables, SMMURegisterOffset.cr0, ack: SMMURegisterOffset.cr0ack)
        try setupIRQs()
        enables |= 1                   // SMMUEN
        try writeRegisterSync(enables, SMMURegisterOffset.cr0, ack: SMMURegisterOffset.cr0ack)
    }

    /// `arm_smmu_setup_irqs` with `arm_smmu_setup_msis` and the wired fallback.
    func setupIRQs() throws(Errno) {
        try writeRegisterSync(0, SMMURegisterOffset.irqCtrl, ack: SMMURegisterOffset.irqCtrlAck)
        try write64(SMMURegisterOffset.gerrorIRQCfg0, 0)
        try write64(SMMURegisterOffset.eventqIRQCfg0, 0)
        if features.msi && node.msiParent.isEmpty {
            log("msi_domain absent - falling back to wired irqs")
        }
        // IRQ_CTRL_EVTQ_IRQEN | IRQ_CTRL_GERROR_IRQEN.
        try writeRegisterSync((1 << 2) | 1, SMMURegisterOffset.irqCtrl, ack: SMMURegisterOffset.irqCtrlAck)
    }

    // MARK: IOMMUDriver

    /// `def_domain_type`: arm-smmu-v3 forces nothing.
    public func defaultDomainType(for device: Device) -> IOMMUDomainType? { nil }

    /// `arm_smmu_get_resv_regions`: the SW_MSI window MSI_IOVA_BASE 0x0800_0000, length
    /// MSI_IOVA_LENGTH 0x10_0000, prot IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO, then
    /// `iommu_dma_get_resv_regions`: for each ITS the platform routes around the SMMU
    /// (`topology.untranslatedITSBases`, the IORT HiSilicon Hi161x quirk in
    /// `iort_iommu_msi_get_resv_regions`) an IOMMU_RESV_MSI region [base + 64K, + 64K) — the
    /// ITS's GITS_TRANSLATER page — with the same prot. Bases are taken in address order.
    /// Linux limits these to the ITSs of the device's IORT ITS group; the topology names the
    /// untranslated ITSs of the platform without saying which device reaches which, so every
    /// listed ITS is reported (the same set on the one-ITS presets). Last, as
    /// `iommu_dma_get_resv_regions` does for a device with an `of_node`,
    /// `of_iommu_get_resv_regions`: DIRECT and RESERVED regions from the device tree's
    /// reserved-memory `iommu-addresses` (`IOMMUSubsystem.deviceTreeReservedRegions`).
    ///
    /// On an ACPI topology everything after the SW_MSI window comes from the IORT instead
    /// (`iortReservedRegions`, `iort_iommu_get_resv_regions`: the HiSilicon Hi161x ITS pages of
    /// the device's own ITS group, then its RMRs); there is no `of_node`, so no device-tree part.
    public func reservedRegions(for device: Device) -> [ReservedRegion] {
        let prot: IOMMUProtection = [.write, .noExec, .mmio]
        var regions = [ReservedRegion(start: Self.msiIOVABase, length: Self.msiIOVALength, protection: prot, type: .swMSI)]
        if kernel.topology.iort != nil { return regions + iortReservedRegions(for: device) }
        for base in kernel.topology.untranslatedITSBases.map(\.rawValue).sorted() {
            let (start, overflow) = base.addingReportingOverflow(0x1_0000)
            guard !overflow else { continue }
            regions.append(ReservedRegion(start: start, length: 0x1_0000, protection: prot, type: .msi))
        }
        regions += kernel.iommu.deviceTreeReservedRegions(for: device)
        return regions
    }

    /// `MSI_IOVA_BASE`, `MSI_IOVA_LENGTH` (arm-smmu-v3.h).
    public static let msiIOVABase: UInt64 = 0x0800_0000
    public static let msiIOVALength: UInt64 = 0x10_0000
}

/// An `xa_alloc`/`ida_alloc_range`-style allocator: the lowest free id ≥ minimum.
struct ArmSMMUv3IDAllocator: Equatable {
    let minimum: Int
    private var used: [Bool] = []

    init(minimum: Int) { self.minimum = minimum }

    mutating func allocate(limit: Int) -> Int? {
        var id = minimum
        while id <= limit {
            let i = id - minimum
            if i >= used.count { used.append(true); return id }
            if !used[i] { used[i] = true; return id }
            id += 1
        }
        return nil
    }

    mutating func free(_ id: Int) {
        let i = id - minimum
        if i >= 0, i < used.count { used[i] = false }
    }
}
