import Bus

/// What an ITS tells the redistributor a vPE is mapped to (VMAPP, VMOVP): where its virtual
/// pending and configuration tables are and which physical LPI is its default doorbell.
///
/// GICv4.1 leaves how the ITS and the redistributors share vPE information IMPLEMENTATION
/// DEFINED (a shared vPE table when GITS_TYPER.SVPET ≠ 0, else private tables); this model
/// reports SVPET = 0 and hands the entry to the target redistributor when the command executes,
/// as QEMU's ITS passes the VPT address to its redistributor calls.
public struct VPEMapping: Hashable, Sendable {
    /// VMAPP VPT_addr: the virtual pending table, one bit per vINTID as the LPI pending table
    /// (IHI 0069H §5.1.2 format), 64 KiB aligned.
    public var pendingTable: PhysicalAddress
    /// VMAPP VPT_size + 1: vINTID bits the pending table covers.
    public var idBits: Int
    /// VMAPP VConf_addr (GICv4.1): the vLPI configuration table, one byte per vLPI as the LPI
    /// configuration table (Priority[7:2], Enable[0]).
    public var configurationTable: PhysicalAddress
    /// VMAPP/VMOVP Default doorbell: the physical LPI rung when a vLPI arrives for the vPE while
    /// it is not resident and a doorbell was requested; 1023 = none.
    public var defaultDoorbell: UInt32

    public init(pendingTable: PhysicalAddress, idBits: Int, configurationTable: PhysicalAddress, defaultDoorbell: UInt32) {
        self.pendingTable = pendingTable
        self.idBits = idBits
        self.configurationTable = configurationTable
        self.defaultDoorbell = defaultDoorbell
    }
}

/// What became of a vLPI at its vPE's redistributor.
public enum VirtualLPIDelivery: Hashable, Sendable, CustomStringConvertible {
    /// Pending in the VPT of a resident vPE (GICR_VPENDBASER.Valid = 1 with its vPEID): the
    /// virtual CPU interface signals it to the running vCPU.
    case resident
    /// Pending in the VPT of a non-resident vPE, and the doorbell (physical LPI `intid`) was made
    /// pending on this redistributor so the hypervisor schedules the vCPU.
    case doorbell(intid: UInt32)
    /// Pending in the VPT of a non-resident vPE without a doorbell (none requested, already rung,
    /// or the vPE has none): it is seen when the vPE is next made resident.
    case pendingNotResident
    /// The bit could not be written (a bus fault on the VPT).
    case tableFault

    public var description: String {
        switch self {
        case .resident: "pending, vPE resident"
        case .doorbell(let intid): "pending, vPE not resident, doorbell LPI \(intid) rung"
        case .pendingNotResident: "pending, vPE not resident, no doorbell"
        case .tableFault: "virtual pending table fault"
        }
    }
}

/// The GICv4.1 state of one redistributor: GICR_VPROPBASER, GICR_VPENDBASER, the vPEs mapped to
/// it and which of them asked for a doorbell when made non-resident.
public struct VirtualLPIState: Hashable, Sendable {
    public var vpropbaser: UInt64 = 0
    public var vpendbaser: UInt64 = 0
    /// vPEs VMAPP/VMOVP mapped to this redistributor, by vPEID.
    public var mapped: [UInt16: VPEMapping] = [:]
    /// vPEs descheduled with GICR_VPENDBASER.DB = 1 and PendingLast read as 0: the next vLPI
    /// rings their default doorbell (once).
    public var doorbellRequested: Set<UInt16> = []
    public var counters = Counters()

    public struct Counters: Hashable, Sendable {
        public var vlpisSetPending = 0
        public var doorbellsRung = 0
        public var schedules = 0
        public var deschedules = 0
        public var invalidations = 0
        public var tableFaults = 0
        public init() {}
    }

    public init() {}
}

/// GICR_VPENDBASER, GICv4.1 layout (IHI 0069H §12.11, GICR_VPENDBASER; Linux
/// `GICR_VPENDBASER_Valid`, `_4_1_DB`, `_PendingLast`, `_Dirty`, `_4_1_VGRP0EN`, `_4_1_VGRP1EN`,
/// `_4_1_VPEID`): Valid[63], Doorbell[62], PendingLast[61], Dirty[60], vGrp0En[59],
/// vGrp1En[58], vPEID[15:0].
public enum GICRVPendbaser {
    public static let valid = 63
    public static let doorbell = 62
    public static let pendingLast = 61
    public static let dirty = 60
    public static let vGrp0En = 59
    public static let vGrp1En = 58

    public static func scheduling(vpe: UInt16, group0: Bool = false, group1: Bool = true) -> UInt64 {
        UInt64(vpe).settingBit(valid, to: true).settingBit(vGrp0En, to: group0).settingBit(vGrp1En, to: group1)
    }
}

/// GICR_VPROPBASER, GICv4.1 layout (IHI 0069H §12.11, GICR_VPROPBASER; Linux
/// `GICR_VPROPBASER_4_1_*`): Valid[63], Entry_Size[61:59], Indirect[55], Page_Size[54:53],
/// Z[52], Physical_Address[51:12], Size[6:0]. It names the redistributor's vPE table; this model
/// keeps it as a register (software reads back what it wrote; Entry_Size reads as the ITS's
/// vPE entry size in 64-bit words − 1, the unit Linux `allocate_vpe_l1_table` divides by:
/// `epp = psz / (esz * SZ_8)`) and takes vPE information from the ITS (`VPEMapping`).
public enum GICRVPropbaser {
    public static let writableMask: UInt64 = UInt64(1) << 63 | UInt64(1) << 55 | UInt64(3) << 53 | UInt64(1) << 52
        | UInt64(0xFF_FFFF_FFFF) << 12 | 0x7F
}

extension Redistributor {
    /// RD_base offsets of the GICv4.1 / DirectLPI maintenance registers (IHI 0069H §12.11).
    public enum VirtualOffset {
        public static let invlpir: UInt64 = 0x00A0
        public static let invallr: UInt64 = 0x00B0
        public static let syncr: UInt64 = 0x00C0
        /// VLPI_base + 0x70 / + 0x78.
        public static let vpropbaser: UInt64 = 0x2_0070
        public static let vpendbaser: UInt64 = 0x2_0078
    }

    /// The vPE resident on this redistributor (GICR_VPENDBASER.Valid = 1), if any.
    public var residentVPE: UInt16? {
        virtualState.vpendbaser.bit(GICRVPendbaser.valid) ? UInt16(truncatingIfNeeded: virtualState.vpendbaser) : nil
    }

    /// A read the GICv4.1 registers answer, or nil when the offset is not one of them.
    func virtualRead(offset: UInt64) -> UInt64? {
        guard configuration.virtualLPIs else { return nil }
        switch offset & ~7 {
        case VirtualOffset.vpropbaser:
            return virtualState.vpropbaser.settingBits(61, 59, to: UInt64(ITS.vpeEntrySize / 8 - 1))
        case VirtualOffset.vpendbaser: return virtualState.vpendbaser
        case VirtualOffset.invlpir, VirtualOffset.invallr: return 0
        // GICR_SYNCR.Busy[0]: every invalidation completes at once.
        case VirtualOffset.syncr: return 0
        default: return nil
        }
    }

    /// A write the GICv4.1 registers take (true), or false when the offset is not one of them.
    func virtualWrite(offset: UInt64, size: Int, value: UInt64) -> Bool {
        guard configuration.virtualLPIs else { return false }
        switch offset & ~7 {
        case VirtualOffset.vpropbaser:
            let merged = GICv3.merge(virtualState.vpropbaser, at: offset & 7, size: size, value: value)
            virtualState.vpropbaser = merged & GICRVPropbaser.writableMask
        case VirtualOffset.vpendbaser:
            // Linux writes it with one 64-bit store (gicr_write_vpendbaser); a 32-bit half
            // merges and acts when the half holding Valid is written.
            let merged = GICv3.merge(virtualState.vpendbaser, at: offset & 7, size: size, value: value)
            if size == 8 || offset & 4 != 0 { writeVPendbaser(merged) } else { virtualState.vpendbaser = merged }
        case VirtualOffset.invlpir:
            // GICR_INVLPIR, GICv4.1 layout (Linux GICR_INVLPIR_V/_VPEID/_INTID): V[63],
            // vPEID[47:32], INTID[31:0]. V = 1 names a vLPI (or, with the vPE's default
            // doorbell INTID, nothing more than a re-read): the model reads vLPI configuration
            // from VConf at use, so there is no cached copy to drop. V = 0 is a physical INV.
            guard size == 8 || offset & 4 == 0 else { return true }
            virtualState.counters.invalidations &+= 1
            if !value.bit(63) { invalidate(INTID(UInt32(truncatingIfNeeded: value))) }
        case VirtualOffset.invallr:
            virtualState.counters.invalidations &+= 1
            if !value.bit(63) { invalidateAll() }
        case VirtualOffset.syncr:
            break
        default:
            return false
        }
        return true
    }

    /// GICR_VPENDBASER written (IHI 0069H §12.11, GICR_VPENDBASER): Valid 0→1 makes
    /// vPEID resident (Dirty reads 0 at once: the model parses the VPT synchronously; a
    /// pending doorbell request for it is dropped); Valid 1→0 makes it non-resident and sets
    /// PendingLast to whether an enabled vLPI is pending in its VPT; with Doorbell = 1 and
    /// PendingLast = 0 the next vLPI for it rings its default doorbell (Linux
    /// `its_vpe_4_1_deschedule`: "if we read-back PendingLast clear, then a doorbell will be
    /// delivered when an interrupt comes").
    func writeVPendbaser(_ value: UInt64) {
        let wasValid = virtualState.vpendbaser.bit(GICRVPendbaser.valid)
        let old = UInt16(truncatingIfNeeded: virtualState.vpendbaser)
        var new = value.settingBit(GICRVPendbaser.dirty, to: false)
        let vpe = UInt16(truncatingIfNeeded: value)
        if value.bit(GICRVPendbaser.valid) {
            if !wasValid || old != vpe { virtualState.counters.schedules &+= 1 }
            new = new.settingBit(GICRVPendbaser.pendingLast, to: false)
            virtualState.doorbellRequested.remove(vpe)
            trace?.append(.redistributor, "vPE resident", value: UInt64(vpe), "CPU\(processorNumber): vPE \(vpe) scheduled")
        } else if wasValid {
            virtualState.counters.deschedules &+= 1
            let pending = hasPendingVLPI(old)
            new = new.settingBits(15, 0, to: UInt64(old)).settingBit(GICRVPendbaser.pendingLast, to: pending)
            if value.bit(GICRVPendbaser.doorbell), !pending {
                virtualState.doorbellRequested.insert(old)
            }
            trace?.append(.redistributor, "vPE not resident", value: UInt64(old),
                          "CPU\(processorNumber): vPE \(old) descheduled, PendingLast=\(pending ? 1 : 0), doorbell \(value.bit(GICRVPendbaser.doorbell) && !pending ? "requested" : "not requested")")
        }
        virtualState.vpendbaser = new
    }

    /// VMAPP/VMOVP: `vpe` is now mapped here (nil: unmapped).
    func mapVPE(_ vpe: UInt16, _ mapping: VPEMapping?) {
        if let mapping { virtualState.mapped[vpe] = mapping } else {
            virtualState.mapped[vpe] = nil
            virtualState.doorbellRequested.remove(vpe)
        }
    }

    /// Makes vINTID pending in `vpe`'s VPT and signals it: to the vCPU when resident, through a
    /// doorbell when not (a per-vLPI doorbell `doorbell` ≠ 1023 from the ITE, GICv4.0 style,
    /// else the vPE's default doorbell if requested).
    func setVirtualPending(_ vintid: UInt32, vpe: UInt16, mapping: VPEMapping, doorbell: UInt32) -> VirtualLPIDelivery {
        guard writeVirtualPendingBit(vintid, mapping: mapping, set: true) else {
            virtualState.counters.tableFaults &+= 1
            return .tableFault
        }
        virtualState.counters.vlpisSetPending &+= 1
        if let journal, let byte = Self.vptByte(vintid, mapping) {
            journal.append(.vptWrite(vpe: vpe, vintid: vintid, address: byte.rawValue, cpu: processorNumber))
        }
        if residentVPE == vpe { return .resident }
        var ring: UInt32?
        if doorbell != ITSVirtualCommand.noDoorbell {
            ring = doorbell
        } else if virtualState.doorbellRequested.contains(vpe), mapping.defaultDoorbell != ITSVirtualCommand.noDoorbell {
            virtualState.doorbellRequested.remove(vpe)
            ring = mapping.defaultDoorbell
        }
        guard let ring else { return .pendingNotResident }
        virtualState.counters.doorbellsRung &+= 1
        setPending(INTID(ring))
        trace?.append(.redistributor, "doorbell", value: UInt64(ring), "CPU\(processorNumber): vPE \(vpe) not resident, doorbell LPI \(ring)")
        return .doorbell(intid: ring)
    }

    /// Clears vINTID in `vpe`'s VPT; returns whether it was pending.
    @discardableResult
    func clearVirtualPending(_ vintid: UInt32, mapping: VPEMapping) -> Bool {
        guard isVirtualPending(vintid, mapping: mapping) else { return false }
        return writeVirtualPendingBit(vintid, mapping: mapping, set: false)
    }

    /// Whether vINTID's bit is set in the VPT (false when out of range or unreadable).
    public func isVirtualPending(_ vintid: UInt32, mapping: VPEMapping) -> Bool {
        guard let bus, let address = Self.vptByte(vintid, mapping),
              let byte = try? bus.read(address, size: 1, requester: .hardware) else { return false }
        return byte & LPIPendingTable.bitMask(INTID(vintid)) != 0
    }

    static func vptByte(_ vintid: UInt32, _ mapping: VPEMapping) -> PhysicalAddress? {
        guard vintid >= 8192, UInt64(vintid) < UInt64(1) &<< UInt64(min(mapping.idBits, 32)) else { return nil }
        return LPIPendingTable.byteAddress(base: mapping.pendingTable, intid: INTID(vintid))
    }

    private func writeVirtualPendingBit(_ vintid: UInt32, mapping: VPEMapping, set: Bool) -> Bool {
        guard let bus, let address = Self.vptByte(vintid, mapping) else { return false }
        do {
            let old = try bus.read(address, size: 1, requester: .hardware)
            let mask = LPIPendingTable.bitMask(INTID(vintid))
            try bus.write(address, size: 1, value: set ? old | mask : old & ~mask, requester: .hardware)
            return true
        } catch {
            return false
        }
    }

    /// Whether any vLPI of `vpe` is pending and enabled (its VConf byte's Enable bit): what
    /// PendingLast reports on deschedule.
    func hasPendingVLPI(_ vpe: UInt16) -> Bool {
        guard let mapping = virtualState.mapped[vpe], let bus else { return false }
        let bits = min(mapping.idBits, configuration.lpiIDBits)
        guard bits >= 14 else { return false }
        let count = (1 << bits) / 8
        for byteIndex in 1024..<count {
            guard let a = mapping.pendingTable.adding(UInt64(byteIndex)),
                  let byte = try? bus.read(a, size: 1, requester: .hardware), byte != 0 else { continue }
            for bit in 0..<8 where (byte >> UInt64(bit)) & 1 == 1 {
                let vintid = UInt32(byteIndex * 8 + bit)
                guard let c = LPIConfigurationTable.entryAddress(base: mapping.configurationTable, intid: INTID(vintid)),
                      let config = try? bus.read(c, size: 1, requester: .hardware) else { continue }
                if LPIConfigurationTable.isEnabled(UInt8(truncatingIfNeeded: config)) { return true }
            }
        }
        return false
    }
}
