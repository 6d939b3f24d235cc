import Bus

/// An Arm SMMU architecture version 2 implementation (Arm MMU-500, a generic `arm,smmu-v2`), or a
/// version 1 one (Arm MMU-401, `arm,smmu-v1`: `SMMUv2Configuration.architectureVersion` 1), driven
/// only through its registers (IHI 0062D, which specifies both versions). A client transaction is matched against the stream mapping table
/// (SMRn → S2CRn, §2.4 / §3.3), which bypasses, faults, or names a translation context bank;
/// the bank's stage-1 (VMSAv8-64, 4 KiB granule) or stage-2 tables are walked in memory
/// (`SMMUv2+Translate.swift`), and faults are recorded in the bank's FSR/FAR/FSYNR0 or, for
/// streams the table does not identify, in SMMU_sGFSR/sGFAR/sGFSYNRn (§3.5 "Fault handling").
///
/// Not modelled: the secure register banks (an NS-only SMMU, as NXP and Qualcomm expose it),
/// stall mode (faults always terminate), interrupts (FSR/sGFSR are recorded, no SPI is raised),
/// the ATOS address translation operations, nested (CBAR.TYPE 3) contexts, the AArch32
/// short-descriptor format and the 64 KiB granule of the SMMUv1 64KB Translation Granule
/// Supplement. The AArch32 long-descriptor (VMSAv7 LPAE) formats are walked when the
/// configuration advertises them (`SMMUv2+AArch32.swift`).
public final class SMMUv2: MMIODevice {
    public let configuration: SMMUv2Configuration
    /// Not owned: the bus owns the SMMU (one of its MMIO devices), so a strong reference back is
    /// a retain cycle that keeps the bus, its RAM and the SMMU alive after the machine is dropped
    /// (FuzzSMMUv2's first input was that LeakSanitizer report). As for `SMMUv3.bus`.
    public unowned(safe) let bus: SystemBus
    public var mmioName: String { configuration.architectureVersion < 2 ? "SMMUv1" : "SMMUv2" }

    /// SMMU_sCR0. Resets with CLIENTPD set (the MMU-500 reset value: clients bypass until
    /// software enables the SMMU, MMU-500 TRM §3.3.1).
    public internal(set) var sCR0: UInt32 = 1 << 0
    public internal(set) var sACR: UInt32 = 0
    public internal(set) var sGFSR: UInt32 = 0
    public internal(set) var sGFAR: UInt64 = 0
    public internal(set) var sGFSYNR0: UInt32 = 0
    public internal(set) var sGFSYNR1: UInt32 = 0
    public internal(set) var sGFSYNR2: UInt32 = 0
    /// SMMU_SMRn / SMMU_S2CRn (reset UNKNOWN; zero here, with SMR.VALID clear).
    public internal(set) var smr: [UInt32]
    public internal(set) var s2cr: [UInt32]
    public internal(set) var contextBanks: [SMMUv2ContextBank]
    var tlb: SMMUv2TLB

    /// Observation hooks, attached by the machine.
    public var trace: TraceLog?
    public var journal: Journal?

    public init(configuration: SMMUv2Configuration, bus: SystemBus) {
        self.configuration = configuration
        self.bus = bus
        let groups = min(max(configuration.streamMappingGroups, 1), 128)
        let banks = min(max(configuration.contextBanks, 1), 128)
        smr = Array(repeating: 0, count: groups)
        // S2CR resets to fault on an MMU-500 when unmatched streams fault; zero (translate, bank
        // 0) is the architected encoding software must overwrite, so the model starts there.
        s2cr = Array(repeating: 0, count: groups)
        contextBanks = Array(repeating: SMMUv2ContextBank(), count: banks)
        tlb = SMMUv2TLB(capacity: configuration.tlbEntries)
    }

    public var mmioSize: UInt64 { configuration.mmioSize }
    /// TLB entries now held (for tests of invalidation).
    public var tlbCount: Int { tlb.count }

    // MARK: MMIO

    /// Register accesses are 32 or 64 bits, naturally aligned (§10.2 "Register access"); other
    /// sizes are bus errors. Reserved and unimplemented offsets read as zero and ignore writes
    /// (§10.2: "RAZ/WI").
    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        guard size == 4 || size == 8, offset & UInt64(size - 1) == 0 else {
            throw .badAccess(PhysicalAddress(offset), size: size)
        }
        if size == 8 {
            return UInt64(read32(offset)) | UInt64(read32(offset &+ 4)) << 32
        }
        return UInt64(read32(offset))
    }

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        guard size == 4 || size == 8, offset & UInt64(size - 1) == 0 else {
            throw .badAccess(PhysicalAddress(offset), size: size)
        }
        if size == 8 {
            write(offset, value: value, size: 8)
        } else {
            write(offset, value: value & 0xFFFF_FFFF, size: 4)
        }
    }

    enum Page { case gr0(UInt64), gr1(UInt64), contextBank(Int, UInt64), none }

    func page(_ offset: UInt64) -> Page {
        let shift = UInt64(configuration.pageShift)
        let pageIndex = offset >> shift
        let within = offset & (configuration.pageSize - 1)
        if pageIndex == 0 { return .gr0(within) }
        if pageIndex == 1 { return .gr1(within) }
        if pageIndex >= configuration.globalPages {
            let bank = pageIndex - configuration.globalPages
            if bank < UInt64(contextBanks.count) { return .contextBank(Int(bank), within) }
        }
        return .none
    }

    func read32(_ offset: UInt64) -> UInt32 {
        switch page(offset) {
        case .gr0(let r): return readGR0(r)
        case .gr1(let r): return readGR1(r)
        case .contextBank(let n, let r): return readContextBank(n, r)
        case .none: return 0
        }
    }

    func readGR0(_ r: UInt64) -> UInt32 {
        typealias R = SMMUv2Register
        switch r {
        case R.sCR0: return sCR0
        case R.sACR: return sACR
        case R.idr0: return configuration.idr0
        case R.idr1: return configuration.idr1
        case R.idr2: return configuration.idr2
        case R.idr7: return configuration.idr7
        case R.sGFAR: return UInt32(truncatingIfNeeded: sGFAR)
        case R.sGFAR + 4: return UInt32(truncatingIfNeeded: sGFAR >> 32)
        case R.sGFSR, R.sGFSRRESTORE: return sGFSR
        case R.sGFSYNR0: return sGFSYNR0
        case R.sGFSYNR1: return sGFSYNR1
        case R.sGFSYNR2: return sGFSYNR2
        // The model completes every invalidation as it is written: GSACTIVE is never set.
        case R.sTLBGSTATUS: return 0
        default:
            if let n = index(r, base: R.smrBase, count: smr.count) { return smr[n] }
            if let n = index(r, base: R.s2crBase, count: s2cr.count) { return s2cr[n] }
            return 0
        }
    }

    func readGR1(_ r: UInt64) -> UInt32 {
        typealias R = SMMUv2Register
        if let n = index(r, base: R.cbarBase, count: contextBanks.count) { return contextBanks[n].cbar }
        if let n = index(r, base: R.cbfrsynraBase, count: contextBanks.count) { return contextBanks[n].cbfrsynra }
        // SMMU_CBA2Rn is version 2 only: RAZ/WI on version 1.
        if configuration.architectureVersion >= 2, let n = index(r, base: R.cba2rBase, count: contextBanks.count) { return contextBanks[n].cba2r }
        return 0
    }

    func readContextBank(_ n: Int, _ r: UInt64) -> UInt32 {
        typealias R = SMMUv2Register
        let cb = contextBanks[n]
        switch r {
        case R.cbSCTLR: return cb.sctlr
        case R.cbACTLR: return cb.actlr
        case R.cbTCR2: return configuration.architectureVersion >= 2 ? cb.tcr2 : 0
        case R.cbTTBR0: return UInt32(truncatingIfNeeded: cb.ttbr0)
        case R.cbTTBR0 + 4: return UInt32(truncatingIfNeeded: cb.ttbr0 >> 32)
        case R.cbTTBR1: return UInt32(truncatingIfNeeded: cb.ttbr1)
        case R.cbTTBR1 + 4: return UInt32(truncatingIfNeeded: cb.ttbr1 >> 32)
        case R.cbTCR: return cb.tcr
        case R.cbCONTEXTIDR: return cb.contextIDR
        case R.cbMAIR0: return cb.mair0
        case R.cbMAIR1: return cb.mair1
        case R.cbPAR: return UInt32(truncatingIfNeeded: cb.par)
        case R.cbPAR + 4: return UInt32(truncatingIfNeeded: cb.par >> 32)
        case R.cbFSR, R.cbFSRRESTORE: return cb.fsr
        case R.cbFAR: return UInt32(truncatingIfNeeded: cb.far)
        case R.cbFAR + 4: return UInt32(truncatingIfNeeded: cb.far >> 32)
        case R.cbFSYNR0: return cb.fsynr0
        case R.cbFSYNR1: return cb.fsynr1
        // Synchronous invalidation: SACTIVE is never set.
        case R.cbTLBSTATUS: return 0
        default: return 0
        }
    }

    /// The index of a 4-byte register in an array of `count` starting at `base`.
    func index(_ r: UInt64, base: UInt64, count: Int) -> Int? {
        guard r >= base, r & 3 == 0 else { return nil }
        let n = (r - base) >> 2
        return n < UInt64(count) ? Int(n) : nil
    }

    func write(_ offset: UInt64, value: UInt64, size: Int) {
        switch page(offset) {
        case .gr0(let r): writeGR0(r, value: value, size: size)
        case .gr1(let r):
            writeGR1(r, UInt32(truncatingIfNeeded: value))
            if size == 8 { writeGR1(r &+ 4, UInt32(truncatingIfNeeded: value >> 32)) }
        case .contextBank(let n, let r): writeContextBank(n, r, value: value, size: size)
        case .none: break
        }
    }

    func writeGR0(_ r: UInt64, value: UInt64, size: Int) {
        typealias R = SMMUv2Register
        let low = UInt32(truncatingIfNeeded: value)
        switch r {
        case R.sCR0:
            // VMID16EN[31] exists only with IDR2.VMID16S (version 2 here).
            sCR0 = low & SMMUv2Field.sCR0Writable & (configuration.architectureVersion >= 2 ? ~0 : ~(1 << 31))
        case R.sACR:
            sACR = low
        case R.sGFSR:
            // Write 1 to clear (§10.6.6).
            sGFSR &= ~low
        case R.sGFSRRESTORE:
            sGFSR = low
        case R.tlbiVMID:
            // SMMU_TLBIVMID.VMID[15:0] (§10.6.11): every entry tagged with the VMID.
            tlb.invalidate { $0.vmid == UInt16(truncatingIfNeeded: low) }
        case R.tlbiAllNSNH, R.tlbiAllH:
            // Non-secure non-hyp and hyp entries: the model has only non-secure, non-hyp
            // contexts, so TLBIALLH finds nothing of its own and TLBIALLNSNH clears everything.
            if r == R.tlbiAllNSNH { tlb.invalidate { _ in true } }
        case R.sTLBGSYNC:
            break
        default:
            if let n = index(r, base: R.smrBase, count: smr.count) {
                // VALID[31], MASK[30:16], ID[14:0]; bits beyond NUMSIDB are RES0.
                let idMask = UInt32(truncatingIfNeeded: UInt64.lowMask(configuration.streamIDBits))
                smr[n] = low & (1 << 31 | idMask << 16 | idMask)
            } else if let n = index(r, base: R.s2crBase, count: s2cr.count) {
                // PRIVCFG[25:24], INSTCFG[27:26], TYPE[17:16], CBNDX[7:0] etc.; TYPE 3 is
                // reserved and behaves as fault (the model's choice of the permitted behaviours).
                s2cr[n] = low & 0x0FFF_FFFF
            }
        }
    }

    func writeGR1(_ r: UInt64, _ value: UInt32) {
        typealias R = SMMUv2Register
        if let n = index(r, base: R.cbarBase, count: contextBanks.count) {
            contextBanks[n].cbar = value
        } else if let n = index(r, base: R.cbfrsynraBase, count: contextBanks.count) {
            contextBanks[n].cbfrsynra = value
        } else if configuration.architectureVersion >= 2, let n = index(r, base: R.cba2rBase, count: contextBanks.count) {
            contextBanks[n].cba2r = value & 0xFFFF_0003
        }
    }

    func writeContextBank(_ n: Int, _ r: UInt64, value: UInt64, size: Int) {
        typealias R = SMMUv2Register
        let low = UInt32(truncatingIfNeeded: value)
        func set64(_ field: WritableKeyPath<SMMUv2ContextBank, UInt64>, at base: UInt64) {
            let old = contextBanks[n][keyPath: field]
            if size == 8 { contextBanks[n][keyPath: field] = value }
            else if r == base { contextBanks[n][keyPath: field] = old & ~0xFFFF_FFFF | UInt64(low) }
            else { contextBanks[n][keyPath: field] = old & 0xFFFF_FFFF | UInt64(low) << 32 }
        }
        switch r {
        case R.cbSCTLR: contextBanks[n].sctlr = low
        case R.cbACTLR: contextBanks[n].actlr = low
        case R.cbRESUME: break   // stall mode is not modelled: nothing is ever stalled
        case R.cbTCR2: if configuration.architectureVersion >= 2 { contextBanks[n].tcr2 = low }
        case R.cbTTBR0, R.cbTTBR0 + 4: set64(\.ttbr0, at: R.cbTTBR0)
        case R.cbTTBR1, R.cbTTBR1 + 4: set64(\.ttbr1, at: R.cbTTBR1)
        case R.cbTCR: contextBanks[n].tcr = low
        case R.cbCONTEXTIDR: contextBanks[n].contextIDR = low
        case R.cbMAIR0: contextBanks[n].mair0 = low
        case R.cbMAIR1: contextBanks[n].mair1 = low
        case R.cbFSR: contextBanks[n].fsr &= ~low    // write 1 to clear (§14.4)
        case R.cbFSRRESTORE: contextBanks[n].fsr = low
        case R.cbFAR, R.cbFAR + 4: set64(\.far, at: R.cbFAR)
        case R.cbFSYNR0: contextBanks[n].fsynr0 = low
        case R.cbFSYNR1: contextBanks[n].fsynr1 = low
        case R.cbTLBIALL:
            tlb.invalidate { $0.bank == n }
        case R.cbTLBIASID:
            // ASID[15:0] (§14.6.3), within the bank's VMID.
            let asid = UInt16(truncatingIfNeeded: low)
            let vmid = contextBanks[n].vmid(sixteenBit: sCR0.bit(31))
            tlb.invalidate { $0.vmid == vmid && $0.asid == asid }
        case R.cbTLBIVA, R.cbTLBIVAL, R.cbTLBIVAA, R.cbTLBIVAAL:
            // 64-bit form (AArch64 banks, CBA2R.VA64 = 1): VA[55:12] in bits [43:0], ASID[63:48]
            // (§14.6.1). 32-bit form (AArch32 banks): VA[31:12] in bits [31:12], ASID[7:0] in
            // bits [7:0]. The -A forms match any ASID.
            let aarch64 = contextBanks[n].va64
            let page = aarch64 ? (value & UInt64.lowMask(44)) << 12 : value & 0xFFFF_F000
            let anyASID = r == R.cbTLBIVAA || r == R.cbTLBIVAAL
            let asid = aarch64 ? UInt16(truncatingIfNeeded: value >> 48) : UInt16(value & 0xFF)
            let vmid = contextBanks[n].vmid(sixteenBit: sCR0.bit(31))
            tlb.invalidate { $0.vmid == vmid && $0.page == page && (anyASID || $0.asid == asid) }
        case R.cbTLBIIPAS2, R.cbTLBIIPAS2L:
            // IPA[47:12] in bits [35:0] (§14.6.8), this bank's VMID.
            let page = (value & UInt64.lowMask(36)) << 12
            let vmid = contextBanks[n].vmid(sixteenBit: sCR0.bit(31))
            tlb.invalidate { $0.vmid == vmid && $0.page == page }
        case R.cbTLBSYNC: break
        default: break
        }
    }
}

/// Copying the SMMUv2 for a forked world: registers, context banks and the TLB are values.
extension SMMUv2: WorldCloneable {
    public func clone(into map: inout CloneMap) -> SMMUv2 {
        let bus = map.clone(self.bus)
        if let done = map.copy(of: self) { return done }
        let copy = SMMUv2(configuration: configuration, bus: bus)
        copy.sCR0 = sCR0
        copy.sACR = sACR
        copy.sGFSR = sGFSR
        copy.sGFAR = sGFAR
        copy.sGFSYNR0 = sGFSYNR0
        copy.sGFSYNR1 = sGFSYNR1
        copy.sGFSYNR2 = sGFSYNR2
        copy.smr = smr
        copy.s2cr = s2cr
        copy.contextBanks = contextBanks
        copy.tlb = tlb
        return copy
    }
}
