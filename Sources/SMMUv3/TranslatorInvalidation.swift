import Bus

/// Applying CFGI_* and TLBI_* scopes (SMMUv3 §4.3, §4.4, §3.17; docs/hardware.md §TLB and invalidation).
///
/// The TLB holds only leaf entries, so the Leaf flag of CFGI_STE/CFGI_CD/TLBI_*_VA/S2_IPA
/// changes nothing here (a non-leaf invalidation is a superset, and there is no walk cache or
/// separately cached L1STD/L1CD to drop). The TTL hint of a range TLBI is ignored: it only
/// permits an implementation to invalidate less, never more.
extension SMMUTranslator {
    /// Applies one invalidation (B calls this when it executes a CFGI_* / TLBI_* command).
    public func invalidate(_ scope: Invalidation) {
        var removed = 0
        switch scope {
        case .configurationAll, .streamTableEntry, .streamTableEntryRange, .contextDescriptor, .contextDescriptorAll:
            // Routes are derived from cached STEs and CDs: drop them all before any of those goes.
            hitRoutes.removeAll()
        default:
            break
        }
        switch scope {
        case .configurationAll:
            streamCache.removeAll()
            contextCache.removeAll()
        case .streamTableEntry(let sid, _):
            // "Invalidation of an STE also implicitly invalidates cached CDs fetched through the
            // STE" (§5.2.1).
            dropStreams { $0 == sid.rawValue }
        case .streamTableEntryRange(let sid, let range):
            // 2^(Range+1) StreamIDs from SID aligned down to that size; Range ≥ 31 covers all
            // (CMD_CFGI_ALL, §4.3.3).
            if range >= 31 {
                streamCache.removeAll()
                contextCache.removeAll()
            } else {
                let span = UInt64(1) << UInt64(max(range, 0) + 1)
                let first = UInt64(sid.rawValue) & ~(span - 1)
                dropStreams { UInt64($0) >= first && UInt64($0) - first < span }
            }
        case .contextDescriptor(let sid, let ssid, _):
            let key = ContextCacheKey(streamID: sid.rawValue, index: ssid.rawValue).packed
            contextCache.removeAll { $0 == key }
        case .contextDescriptorAll(let sid):
            contextCache.removeAll { $0 &>> 32 == UInt64(sid.rawValue) }
        case .nhAll(let vmid):
            removed = tlb.removeAll { ($0.kind == .stage1 || $0.kind == .nested) && $0.vmid == vmid.rawValue }
        case .nhASID(let vmid, let asid):
            // Global (nG=0) entries are not ASID-tagged and survive (§4.4.2 CMD_TLBI_NH_ASID).
            removed = tlb.removeAll {
                ($0.kind == .stage1 || $0.kind == .nested) && $0.vmid == vmid.rawValue && $0.asid == UInt32(asid.rawValue)
            }
        case .nhVA(let vmid, let asid, let address, _, let range):
            // Matches the ASID or global entries at the address (as TLBI VAE1).
            let (first, last) = Self.span(address, range)
            removed = tlb.removeAll {
                ($0.kind == .stage1 || $0.kind == .nested) && $0.vmid == vmid.rawValue
                    && ($0.asid == UInt32(asid.rawValue) || $0.asid == TLBKey.global)
                    && $0.base <= last && first <= $0.last
            }
        case .nhVAA(let vmid, let address, _, let range):
            let (first, last) = Self.span(address, range)
            removed = tlb.removeAll {
                ($0.kind == .stage1 || $0.kind == .nested) && $0.vmid == vmid.rawValue && $0.base <= last && first <= $0.last
            }
        case .el2All:
            removed = tlb.removeAll { $0.kind == .el2 }
        case .s12VMAll(let vmid):
            removed = tlb.removeAll { $0.kind != .el2 && $0.vmid == vmid.rawValue }
        case .s2IPA(let vmid, let ipa, _, let range):
            // Stage-2-only entries; combined S1+S2 entries are indexed by VA and need a
            // following NH_ALL/S12_VMALL (§4.4.6 CMD_TLBI_S2_IPA; Linux
            // arm_smmu_tlb_inv_range_domain for nest parents).
            let (first, last) = Self.span(ipa, range)
            removed = tlb.removeAll { $0.kind == .stage2 && $0.vmid == vmid.rawValue && $0.base <= last && first <= $0.last }
        case .nsnhAll:
            removed = tlb.removeAll { $0.kind != .el2 }
        }
        counters.tlbInvalidatedEntries &+= removed
        if let trace { trace.append(.smmu, "invalidate", "\(scope): \(removed) TLB entries removed") }
    }

    private func dropStreams(_ matches: (UInt32) -> Bool) {
        streamCache.removeAll { matches(UInt32(truncatingIfNeeded: $0)) }
        contextCache.removeAll { matches(UInt32(truncatingIfNeeded: $0 &>> 32)) }
    }

    /// The inclusive address span a (range) TLBI covers: one address without a range, else
    /// [address, address + (NUM+1) × 2^SCALE × granule).
    static func span(_ address: UInt64, _ range: TLBIRange?) -> (UInt64, UInt64) {
        guard let range else { return (address, address) }
        let first = address & ~(range.granule.size &- 1)
        let (end, overflow) = first.addingReportingOverflow(range.byteLength)
        return (first, overflow ? .max : end &- 1)
    }
}
