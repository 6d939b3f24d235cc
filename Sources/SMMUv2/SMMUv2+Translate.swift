import Bus
import SMMUv3

extension SMMUv2 {
    /// How a fault ends a transaction, before it is recorded.
    enum ContextFault: Error {
        /// FSR bit to set, the walk level (FSYNR0.PLVL), and a sentence for traces.
        case fault(UInt32, level: Int, String)
    }

    /// A client transaction (IHI 0062D §2.4 "Stream mapping" and §3 "Translation"): sCR0.CLIENTPD
    /// bypasses everything; otherwise the StreamID is matched against the valid SMRs (or indexes
    /// S2CR directly without stream matching), the S2CR bypasses, faults, or hands the
    /// transaction to its context bank.
    public func handle(_ transaction: DeviceTransaction) -> SMMUv2Response {
        let address = transaction.address.rawValue
        let sid = transaction.streamID.rawValue
        if sCR0.bit(SMMUv2Field.sCR0ClientPD) {
            trace?.append(.smmu, "sCR0.CLIENTPD", address: address, "client ports disabled: the transaction bypasses the SMMU")
            return bypass(address)
        }
        let group: Int
        switch streamMapping(sid) {
        case .matched(let n):
            group = n
        case .unidentified:
            guard sCR0.bit(SMMUv2Field.sCR0USFCFG) else {
                trace?.append(.smmu, "unidentified stream", address: address, value: UInt64(sid), "no SMR matches StreamID \(sid); sCR0.USFCFG = 0: bypass")
                return bypass(address)
            }
            return globalFault(SMMUv2Field.gfsrUSF, transaction, "no SMR matches StreamID \(sid); sCR0.USFCFG = 1: unidentified stream fault (sGFSR.USF)")
        case .conflict(let groups):
            return globalFault(SMMUv2Field.gfsrSMCF, transaction, "StreamID \(sid) matches SMR \(groups.map(String.init).joined(separator: ", ")): stream match conflict (sGFSR.SMCF)")
        }
        let entry = s2cr[group]
        let type = entry.bits(17, 16)
        switch type {
        case SMMUv2Field.s2crTypeBypass:
            trace?.append(.smmu, "S2CR\(group)", address: address, value: UInt64(entry), "TYPE = bypass")
            return bypass(address)
        case SMMUv2Field.s2crTypeTranslate:
            let bank = Int(entry & 0xFF)
            guard bank < contextBanks.count else {
                return globalFault(SMMUv2Field.gfsrICF, transaction, "S2CR\(group).CBNDX = \(bank) names no context bank: invalid context fault (sGFSR.ICF)")
            }
            trace?.append(.smmu, "S2CR\(group)", address: address, value: UInt64(entry), "TYPE = translate, context bank \(bank)")
            return translate(transaction, bank: bank)
        default:
            // TYPE = fault (and the reserved encoding 3, which the model treats the same): the
            // transaction is terminated; an abort returns when sCR0.GFRE is set.
            trace?.append(.smmu, "S2CR\(group)", address: address, value: UInt64(entry), "TYPE = fault: the transaction is terminated")
            journal?.append(.smmuAborted(input: address))
            return .terminated(abort: sCR0.bit(SMMUv2Field.sCR0GFRE), reason: "S2CR\(group).TYPE = fault")
        }
    }

    enum StreamMapping: Equatable {
        case matched(Int)
        case unidentified
        case conflict([Int])
    }

    /// §2.4.1 "Stream matching": SMRn matches when VALID is set and the StreamID equals SMRn.ID in
    /// every bit SMRn.MASK does not ignore. Several matches are a stream match conflict (§2.4.2:
    /// with sCR0.SMCFCFG = 1 a Stream match conflict fault; with 0 the behaviour is UNPREDICTABLE,
    /// and the model raises the same fault). Without stream matching (IDR0.SMS = 0) the StreamID
    /// indexes S2CR directly (stream indexing, §2.4.3).
    func streamMapping(_ sid: UInt32) -> StreamMapping {
        let idMask = UInt32(truncatingIfNeeded: UInt64.lowMask(configuration.streamIDBits))
        guard configuration.streamMatching else {
            let n = Int(sid & idMask)
            return n < s2cr.count ? .matched(n) : .unidentified
        }
        var matches: [Int] = []
        for (n, value) in smr.enumerated() where value.bit(31) {
            let id = value & idMask
            let mask = (value >> 16) & idMask
            if (sid ^ id) & ~mask & idMask == 0 { matches.append(n) }
        }
        switch matches.count {
        case 0: return .unidentified
        case 1: return .matched(matches[0])
        default: return .conflict(matches)
        }
    }

    func bypass(_ address: UInt64) -> SMMUv2Response {
        journal?.append(.smmuTranslated(input: address, intermediate: nil, output: address, stage1: false, stage2: false))
        return .translated(output: PhysicalAddress(address), contextBank: nil)
    }

    /// Records a global fault (§3.5.2 "Global faults"): the first fault fills sGFSR, sGFAR and
    /// sGFSYNR0-1 (WNR[1], PNU[2], IND[3]; StreamID in sGFSYNR1[15:0]); a fault while one is
    /// recorded only sets sGFSR.MULTI. An abort returns to the client when sCR0.GFRE is set.
    func globalFault(_ bit: UInt32, _ transaction: DeviceTransaction, _ why: String) -> SMMUv2Response {
        let address = transaction.address.rawValue
        if sGFSR & SMMUv2Field.gfsrFaults == 0 {
            sGFSR |= bit
            sGFAR = address
            var syndrome: UInt32 = 0
            if transaction.isWrite { syndrome |= 1 << 1 }
            if !transaction.privileged { syndrome |= 1 << 2 }
            if transaction.instruction { syndrome |= 1 << 3 }
            sGFSYNR0 = syndrome
            sGFSYNR1 = transaction.streamID.rawValue & 0xFFFF
        } else {
            sGFSR |= SMMUv2Field.gfsrMULTI
        }
        trace?.append(.smmu, "global fault", address: address, value: UInt64(sGFSR), why)
        journal?.append(.smmuAborted(input: address))
        return .terminated(abort: sCR0.bit(SMMUv2Field.sCR0GFRE), reason: why)
    }

    /// Translation by context bank `bank` (§3.3, chapter 14): with SCTLR.M clear the bank's
    /// translation is disabled and the address passes through; a stage-1 bank (CBAR.TYPE = 1)
    /// walks TTBR0/TTBR1 in the VMSAv8-64 format (CBA2R.VA64), a stage-2 bank (TYPE = 0) walks
    /// TTBR0 as the VTTBR. With CBA2R.VA64 clear (always on version 1) the bank uses the AArch32
    /// long-descriptor formats (`SMMUv2+AArch32.swift`) when IDR0.PTFS advertises them. TYPE 2
    /// (stage 1 then stage-2 fault) and 3 (nested) are not modelled and are reported as an
    /// invalid context (sGFSR.ICF), as is a stage the SMMU lacks, an AArch32 bank on an SMMU
    /// without the AArch32 formats, or a stage-1 AArch32 bank with TTBCR.EAE clear (the
    /// short-descriptor format is not modelled).
    func translate(_ transaction: DeviceTransaction, bank: Int) -> SMMUv2Response {
        let cb = contextBanks[bank]
        let input = transaction.address.rawValue
        let type = cb.type
        let stage1 = type == SMMUv2Field.cbarTypeS1BypassS2
        guard type == SMMUv2Field.cbarTypeS2 || stage1,
              stage1 ? configuration.stage1 : configuration.stage2 else {
            return globalFault(SMMUv2Field.gfsrICF, transaction, "context bank \(bank): CBAR.TYPE \(type) is not a context this SMMU model translates: invalid context fault (sGFSR.ICF)")
        }
        let aarch64 = cb.va64
        guard aarch64 || configuration.aarch32LongDescriptor else {
            return globalFault(SMMUv2Field.gfsrICF, transaction, "context bank \(bank): CBA2R.VA64 = 0 selects an AArch32 format, which IDR0.PTFS says this SMMU lacks: invalid context fault (sGFSR.ICF)")
        }
        guard aarch64 || !stage1 || cb.tcr.bit(31) else {
            return globalFault(SMMUv2Field.gfsrICF, transaction, "context bank \(bank): TTBCR.EAE = 0 selects the AArch32 short-descriptor format, which the model does not translate: invalid context fault (sGFSR.ICF)")
        }
        guard cb.enabled else {
            trace?.append(.smmu, "CB\(bank) SCTLR.M = 0", address: input, "the bank's translation is disabled: output = input")
            return bypass(input)
        }
        let vmid = cb.vmid(sixteenBit: sCR0.bit(31))
        let asid: UInt16 = stage1 ? stage1ASID(input, cb) : 0
        let page = input & ~0xFFF
        if let hit = tlb.lookup(bank: bank, vmid: vmid, asid: asid, page: page) {
            journal?.append(.tlb(hit: true, address: input, stage1: stage1, stage2: !stage1))
            if transaction.isWrite ? !hit.writable : !hit.readable {
                return contextFault(bank, .fault(SMMUv2Field.fsrPF, level: 3, "permission fault (TLB entry)"), transaction)
            }
            let output = hit.outputPage | (input & 0xFFF)
            trace?.append(.smmu, "CB\(bank) TLB hit", address: input, value: output, "VMID \(vmid) ASID \(asid)")
            return translated(input: input, output: output, bank: bank, stage1: stage1)
        }
        journal?.append(.tlb(hit: false, address: input, stage1: stage1, stage2: !stage1))
        do {
            let leaf: Leaf
            switch (stage1, aarch64) {
            case (true, true): leaf = try walkStage1(input, cb, transaction)
            case (false, true): leaf = try walkStage2(input, cb, transaction)
            case (true, false): leaf = try walkStage1AArch32(input, cb, transaction)
            case (false, false): leaf = try walkStage2AArch32(input, cb, transaction)
            }
            let outputPage = leaf.output & ~0xFFF
            tlb.insert(SMMUv2TLB.Entry(bank: bank, vmid: vmid, asid: asid, page: page, outputPage: outputPage, writable: leaf.writable, readable: leaf.readable))
            return translated(input: input, output: leaf.output, bank: bank, stage1: stage1)
        } catch {
            return contextFault(bank, error, transaction)
        }
    }

    func translated(input: UInt64, output: UInt64, bank: Int, stage1: Bool) -> SMMUv2Response {
        trace?.append(.smmu, "CB\(bank) translated", address: input, value: output,
                      "\(Hex.format(input)) → \(Hex.format(output)) (stage \(stage1 ? 1 : 2))")
        journal?.append(.smmuTranslated(input: input, intermediate: nil, output: output, stage1: stage1, stage2: !stage1))
        return .translated(output: PhysicalAddress(output), contextBank: bank)
    }

    /// Records a context fault in the bank (§3.5.1 "Context faults", §14.4 SMMU_CBn_FSR): the
    /// first fault sets its FSR bit, FAR = the input address and FSYNR0 = PLVL[1:0], WNR[4],
    /// PNU[5], IND[6]; a further fault while FSR holds one only sets FSR.MULTI. SCTLR.CFRE says
    /// whether the client sees an abort (else the write is ignored, the read returns zero).
    func contextFault(_ bank: Int, _ fault: ContextFault, _ transaction: DeviceTransaction) -> SMMUv2Response {
        guard case .fault(let bit, let level, let why) = fault else { return .terminated(abort: true, reason: "") }
        let input = transaction.address.rawValue
        if contextBanks[bank].fsr & SMMUv2Field.fsrFaults == 0 {
            contextBanks[bank].fsr |= bit
            contextBanks[bank].far = input
            var syndrome = UInt32(clamping: max(0, min(level, 3)))
            if transaction.isWrite { syndrome |= 1 << 4 }
            if !transaction.privileged { syndrome |= 1 << 5 }
            if transaction.instruction { syndrome |= 1 << 6 }
            contextBanks[bank].fsynr0 = syndrome
        } else {
            contextBanks[bank].fsr |= SMMUv2Field.fsrMULTI
        }
        trace?.append(.smmu, "CB\(bank) context fault", address: input, value: UInt64(contextBanks[bank].fsr), why)
        journal?.append(.smmuAborted(input: input))
        let abort = contextBanks[bank].sctlr.bit(SMMUv2Field.sctlrCFRE)
        return .terminated(abort: abort, reason: "context bank \(bank): \(why)")
    }

    struct Leaf {
        var output: UInt64
        var writable: Bool
        var readable: Bool
    }

    /// Physical address bits for a PASIZE/PS encoding, capped by IDR2.OAS.
    func outputBits(_ field: UInt32) -> Int {
        let oas = SMMUv2Configuration.addressBits(configuration.outputAddressSize) ?? 48
        return min(SMMUv2Configuration.addressBits(Int(field)) ?? oas, oas)
    }

    /// Stage 1, VMSAv8-64 with the 4 KiB granule (§14.3 SMMU_CBn_TCR in its AArch64 form; Arm ARM
    /// D8.2): TTBR0 for addresses below 2^(64−T0SZ), TTBR1 for those at or above 2^64 − 2^(64−T1SZ),
    /// a translation fault between or when the region's EPDn is set. TxSZ is clamped to 16…39 (the
    /// Arm ARM's CONSTRAINED UNPREDICTABLE choice of the nearest valid value). The output size is
    /// SMMU_CBn_TCR2.PASIZE[2:0].
    func walkStage1(_ va: UInt64, _ cb: SMMUv2ContextBank, _ transaction: DeviceTransaction) throws(ContextFault) -> Leaf {
        let tcr = cb.tcr
        let upper = va.bit(63)
        let txsz = Int(upper ? tcr.bits(21, 16) : tcr.bits(5, 0))
        let inputSize = 64 - min(max(txsz, 16), 39)
        let disabled = upper ? tcr.bit(23) : tcr.bit(7)
        let inRange = upper ? va >> UInt64(inputSize) == UInt64.max >> UInt64(inputSize) : va >> UInt64(inputSize) == 0
        let geometry = WalkGeometry(granule: .size4K, inputSize: inputSize,
                                    startLevel: WalkGeometry.stage1StartLevel(granule: .size4K, inputSize: inputSize))
        guard inRange, !disabled else {
            throw .fault(SMMUv2Field.fsrTF, level: geometry.startLevel, "input \(Hex.format(va)) is outside TTBR\(upper ? 1 : 0)'s region or EPD\(upper ? 1 : 0) is set")
        }
        let ttbr = upper ? cb.ttbr1 : cb.ttbr0
        return try walk(va: va, geometry: geometry, tableBase: ttbr & UInt64.lowMask(48) & ~(geometry.startTableBytes &- 1),
                        outputBits: outputBits(cb.tcr2 & 7), stage: 1, transaction)
    }

    /// Stage 2, VMSAv8-64 with the 4 KiB granule (SMMU_CBn_TCR as VTCR: T0SZ[5:0], SL0[7:6],
    /// PS[18:16]; TTBR0 as VTTBR). An SL0 the Arm ARM calls invalid for the size is a translation
    /// fault at level 0 (AArch64.S2InvalidSL).
    func walkStage2(_ ipa: UInt64, _ cb: SMMUv2ContextBank, _ transaction: DeviceTransaction) throws(ContextFault) -> Leaf {
        let tcr = cb.tcr
        let inputSize = 64 - min(max(Int(tcr.bits(5, 0)), 16), 39)
        let oas = outputBits(tcr.bits(18, 16))
        guard ipa >> UInt64(inputSize) == 0 else {
            throw .fault(SMMUv2Field.fsrTF, level: 0, "IPA \(Hex.format(ipa)) is beyond T0SZ's \(inputSize) bits")
        }
        guard let start = WalkGeometry.stage2StartLevel(granule: .size4K, sl0: Int(tcr.bits(7, 6)), physicalAddressBits: oas, smallTables: false) else {
            throw .fault(SMMUv2Field.fsrTF, level: 0, "VTCR.SL0 \(tcr.bits(7, 6)) is invalid for a \(oas)-bit output")
        }
        let geometry = WalkGeometry(granule: .size4K, inputSize: inputSize, startLevel: start)
        guard geometry.concatenatedTables <= 16 else {
            throw .fault(SMMUv2Field.fsrTF, level: start, "T0SZ and SL0 need more than 16 concatenated start tables")
        }
        return try walk(va: ipa, geometry: geometry, tableBase: cb.ttbr0 & UInt64.lowMask(48) & ~(geometry.startTableBytes &- 1),
                        outputBits: oas, stage: 2, transaction)
    }

    /// The descriptor walk both stages share (Arm ARM D8.3 "Translation table descriptor formats"):
    /// bits[1:0] 0b11 = table (levels 0-2) or page (level 3), 0b01 = block (levels 1-2), other =
    /// translation fault; output address bits [47:12]; AF[10] clear = access flag fault (the
    /// SMMUv2 has no hardware access flag update); stage-1 AP[2] / APTable[1] make the page
    /// read-only, stage-2 S2AP[7:6] grant write and read; a table or output address beyond the
    /// output size is an address size fault; a read the bus refuses is an external fault.
    func walk(va: UInt64, geometry: WalkGeometry, tableBase: UInt64, outputBits oas: Int, stage: Int,
              _ transaction: DeviceTransaction) throws(ContextFault) -> Leaf {
        var table = tableBase
        var readOnly = false
        for level in geometry.startLevel...3 {
            guard table >> UInt64(oas) == 0 else {
                throw .fault(SMMUv2Field.fsrASF, level: level, "table address \(Hex.format(table)) is beyond the \(oas)-bit output size")
            }
            let address = table &+ geometry.index(of: va, at: level) &* 8
            let descriptor: UInt64
            do { descriptor = try bus.read64(PhysicalAddress(address)) } catch {
                throw .fault(SMMUv2Field.fsrEF, level: level, "descriptor read at \(Hex.format(address)) failed: \(error)")
            }
            journal?.append(.walkRead(stage: stage, level: level, address: address, descriptor: descriptor))
            trace?.append(.smmu, "S\(stage) L\(level) descriptor", address: address, value: descriptor, "")
            let kind = descriptor & 3
            guard kind == 3 || (kind == 1 && (level == 1 || level == 2)) else {
                throw .fault(SMMUv2Field.fsrTF, level: level, "invalid level-\(level) descriptor \(Hex.format(descriptor))")
            }
            let outputAddress = descriptor & UInt64.lowMask(48) & ~0xFFF
            if kind == 3 && level < 3 {
                if stage == 1 && descriptor.bit(62) { readOnly = true }
                table = outputAddress
                continue
            }
            let shift = geometry.granule.levelShift(level)
            let output = (outputAddress & ~UInt64.lowMask(shift)) | (va & UInt64.lowMask(shift))
            guard output >> UInt64(oas) == 0 else {
                throw .fault(SMMUv2Field.fsrASF, level: level, "output \(Hex.format(output)) is beyond the \(oas)-bit output size")
            }
            guard descriptor.bit(10) else {
                throw .fault(SMMUv2Field.fsrAFF, level: level, "access flag clear in \(Hex.format(descriptor))")
            }
            let writable = stage == 1 ? !readOnly && !descriptor.bit(7) : descriptor.bit(7)
            let readable = stage == 1 || descriptor.bit(6)
            if transaction.isWrite ? !writable : !readable {
                throw .fault(SMMUv2Field.fsrPF, level: level, transaction.isWrite ? "write to a page without write permission" : "read of a page without read permission")
            }
            return Leaf(output: output, writable: writable, readable: readable)
        }
        throw .fault(SMMUv2Field.fsrTF, level: 3, "walk ended without a leaf")
    }
}
