import Bus

/// Stream table and CD table lookup (SMMUv3 §3.3.2, §5.1–5.4; docs/hardware.md §Stream table, §STE, §CD).
///
/// Choices where the spec allows several behaviours (each documented at its check):
/// - The stream table walk is `StreamTableWalker`'s; its C_BAD_STREAMID is recorded only with
///   CR2.RECINVSID (§5.1.1).
/// - An L1CD with V=0, or an L2Ptr beyond the OAS (S1-only) / IAS (nested), is
///   C_BAD_SUBSTREAMID (§5.3.1, §3.4.3 notes 3/4, choice (a)).
extension SMMUTranslator {
    /// The configuration-cache entry for the transaction's StreamID, fetching and validating the
    /// STE on a miss.
    func streamState(for context: TransactionContext, hit: inout Bool) throws(TranslationStop) -> StreamState {
        let sid = context.streamID.rawValue
        if let cached = streamCache[UInt64(sid)] { return cached }
        hit = false
        let walker = StreamTableWalker(table: streamTable, configuration: configuration)
        let fetched: (address: UInt64, entry: StreamTableEntry)
        do {
            fetched = try walker.fetch(context.streamID, read: { (address) throws(BusError) -> UInt64 in
                try readTable(address)
            }, levelOne: { l1Index, l1Address, l1 in
                counters.steFetches &+= 1
                journal?.append(.l1stdRead(streamID: context.streamID, address: l1Address, descriptor: l1.rawValue))
                if let trace {
                    trace.append(.smmu, "L1STD fetch", address: l1Address, value: l1.rawValue,
                                 "StreamID \(context.streamID) → L1[\(l1Index)]: Span=\(l1.span), L2Ptr=\(Hex.format(l1.l2Ptr))")
                }
            })
        } catch {
            switch error.eventType {
            case .cBadStreamID:
                throw fault(.cBadStreamID, context, record: recordInvalidStreamIDs, reason: error.description)
            default:
                throw fault(error.eventType, context, fetchAddress: error.fetchAddress, reason: error.description)
            }
        }
        let steAddress = fetched.address
        let ste = fetched.entry
        counters.steFetches &+= 1
        journal?.append(.steRead(streamID: context.streamID, address: steAddress, dw0: ste.dw0))
        if let trace { trace.append(.smmu, "STE fetch", address: steAddress, value: ste.dw0, describe(ste, sid: context.streamID)) }
        if let rule = ste.illegalRule(on: configuration) {
            throw fault(.cBadSTE, context, reason: "STE at \(Hex.format(steAddress)): \(rule.description)")
        }
        let state = ste.decoded(on: configuration)
        streamCache.set(state, for: UInt64(sid))
        return state
    }

    /// The configuration-cache entry for CD `index` of the stream, fetching (through stage 2
    /// when nested) and validating it on a miss.
    func contextDescriptor(index: UInt32, stream: StreamState, context: inout TransactionContext, hit: inout Bool) throws(TranslationStop) -> Stage1Configuration {
        let key = ContextCacheKey(streamID: context.streamID.rawValue, index: index)
        if let cached = contextCache[key.packed] { return cached }
        hit = false
        let ste = stream.ste
        let nested = stream.config == .nested
        let s2 = nested ? stream.stage2 : nil
        if let s2 { context.stage2Record = s2.record }
        let cdMax = configuration.effectiveSubstreamIDBits == 0 ? 0 : ste.s1CDMax
        let pointer = ste.s1ContextPtr
        let space = nested ? "IPA" : "PA"
        var cdAddress: UInt64
        if cdMax > 0 && (ste.s1Fmt == 1 || ste.s1Fmt == 2) {
            // 2-level CD table: 64 CDs (4 KiB) or 1024 CDs (64 KiB) per leaf (§5.2 S1Fmt).
            let leafBits = ste.s1Fmt == 1 ? 6 : 10
            let l1Index = cdMax > leafBits ? UInt64(index) >> UInt64(leafBits) : 0
            let l1Address = pointer &+ l1Index &* 8
            let l1Physical = try structureAddress(l1Address, s2: s2, context, what: "L1CD")
            let raw: UInt64
            do { raw = try readTable(l1Physical) } catch {
                throw fault(.fCDFetch, context, fetchAddress: l1Physical, reason: "L1CD fetch aborted: \(error)")
            }
            counters.cdFetches &+= 1
            journal?.append(.l1cdRead(streamID: context.streamID, index: index, address: l1Physical, descriptor: raw))
            let l1 = LevelOneContextDescriptor(rawValue: raw)
            if let trace {
                trace.append(.smmu, nested ? "L1CD fetch via S2" : "L1CD fetch", address: l1Physical, value: raw,
                             "L1CD[\(l1Index)] (\(space) \(Hex.format(l1Address))): V=\(l1.valid ? 1 : 0), L2Ptr=\(Hex.format(l1.l2Ptr))")
            }
            if !l1.valid {
                throw fault(.cBadSubstreamID, context, reason: "L1CD[\(l1Index)] at \(space) \(Hex.format(l1Address)) has V=0 (§5.3.1)")
            }
            // 64 KiB leaves: L2Ptr[15:12] are RES0 (§5.2 S1Fmt); treated as zero here.
            let l2 = ste.s1Fmt == 2 ? l1.l2Ptr & ~UInt64(0xF000) : l1.l2Ptr
            let limit = nested ? configuration.iasBits : configuration.oasBits
            if l2 >> UInt64(limit) != 0 {
                throw fault(.cBadSubstreamID, context, reason: "L1CD.L2Ptr \(Hex.format(l2)) beyond the \(limit)-bit \(nested ? "IAS" : "OAS") (§3.4.3)")
            }
            cdAddress = l2 &+ (UInt64(index) & UInt64.lowMask(leafBits)) &* 64
        } else {
            cdAddress = pointer &+ UInt64(index) &* 64
        }
        let cdPhysical = try structureAddress(cdAddress, s2: s2, context, what: "CD")
        var cd = ContextDescriptor()
        for i in 0..<8 {
            do {
                let word = try readTable(cdPhysical &+ UInt64(i * 8))
                switch i {
                case 0: cd.dw0 = word
                case 1: cd.dw1 = word
                case 2: cd.dw2 = word
                case 3: cd.dw3 = word
                case 4: cd.dw4 = word
                case 5: cd.dw5 = word
                case 6: cd.dw6 = word
                default: cd.dw7 = word
                }
            } catch {
                throw fault(.fCDFetch, context, fetchAddress: cdPhysical, reason: "CD fetch aborted: \(error)")
            }
        }
        counters.cdFetches &+= 1
        journal?.append(.cdRead(streamID: context.streamID, index: index, address: cdPhysical, dw0: cd.dw0))
        if let trace {
            trace.append(.smmu, nested ? "CD fetch via S2" : "CD fetch", address: cdPhysical, value: cd.dw0,
                         "CD[\(index)] (\(space) \(Hex.format(cdAddress))): \(describe(cd))")
        }
        if let rule = cd.illegalRule(on: configuration, ste: ste) {
            throw fault(.cBadCD, context, reason: "CD[\(index)] at \(space) \(Hex.format(cdAddress)): \(rule.description)")
        }
        let decoded = cd.decoded(on: configuration, world: stream.world)
        contextCache.set(decoded, for: key.packed)
        return decoded
    }

    /// The PA of a CD or L1CD: through stage 2 (CLASS=CD, IPA = the structure's IPA) when
    /// nested, else the address itself, which must be within the OAS (F_CD_FETCH otherwise,
    /// §3.4.3).
    private func structureAddress(_ address: UInt64, s2: Stage2Configuration?, _ context: TransactionContext, what: String) throws(TranslationStop) -> UInt64 {
        if let s2 {
            if let trace { trace.append(.smmu, "\(what) IPA → S2", address: address, "translating the \(what) address through stage 2 (CLASS=CD)") }
            return try stage2Walk(address, s2, purpose: .cd, write: false, instruction: false, context).output
        }
        if address >> UInt64(configuration.oasBits) != 0 {
            throw fault(.fCDFetch, context, fetchAddress: address, reason: "\(what) address beyond the OAS (§3.4.3)")
        }
        return address
    }

    @inline(never)
    func describe(_ ste: StreamTableEntry, sid: StreamID) -> String {
        var text = "StreamID \(sid): V=\(ste.valid ? 1 : 0) Config=\(ste.config)"
        if ste.config.stage1Enabled {
            text += ", S1ContextPtr=\(Hex.format(ste.s1ContextPtr)) S1CDMax=\(ste.s1CDMax) S1Fmt=\(ste.s1Fmt) S1DSS=\(ste.s1DSS)"
        }
        if ste.config.stage2Enabled {
            text += ", VMID=\(ste.s2VMID) S2T0SZ=\(ste.s2T0SZ) S2SL0=\(ste.s2SL0) S2TG=\(ste.s2TGField) S2PS=\(ste.s2PS) S2TTB=\(Hex.format(ste.s2TTB)) S2R=\(ste.s2R ? 1 : 0)"
        }
        return text
    }

    @inline(never)
    func describe(_ cd: ContextDescriptor) -> String {
        "V=\(cd.valid ? 1 : 0) ASID=\(cd.asid) T0SZ=\(cd.t0sz) TG0=\(cd.tg0Field) IPS=\(cd.ips) EPD0=\(cd.epd0 ? 1 : 0) EPD1=\(cd.epd1 ? 1 : 0) TTB0=\(Hex.format(cd.ttb0)) R=\(cd.record ? 1 : 0) A=\(cd.abort ? 1 : 0) AFFD=\(cd.affd ? 1 : 0)"
    }
}
