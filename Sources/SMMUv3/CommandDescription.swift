import Bus

/// Commands as reports and traces print them: the spec's name and its parameters in the spec's
/// notation, e.g. `CMD_TLBI_NH_VA(VMID 0x7, ASID 0x42, Addr 0xffbf_0000, Leaf)`.
extension Command: CustomStringConvertible {
    @inline(never)
    public var description: String {
        func hex(_ v: UInt64) -> String { Hex.format(v, minDigits: 1) }
        func stream(_ sid: StreamID, _ ssid: SubstreamID?) -> String {
            ssid.map { "StreamID \(sid), SubstreamID \($0)" } ?? "StreamID \(sid)"
        }
        func rangeText(_ r: TLBIRangeFields) -> String {
            r.tg == 0 ? "" : ", NUM \(r.num), SCALE \(r.scale), TG \(r.tg), TTL \(r.ttl)"
        }
        let leafText = { (leaf: Bool) in leaf ? ", Leaf" : "" }
        let args: String
        switch self {
        case .prefetchConfig(let sid, let ssid):
            args = stream(sid, ssid)
        case .prefetchAddress(let sid, let ssid, let address, let size, let stride):
            args = "\(stream(sid, ssid)), Addr \(hex(address)), Size \(size), Stride \(stride)"
        case .cfgiSTE(let sid, let leaf):
            args = "StreamID \(sid)\(leafText(leaf))"
        case .cfgiSTERange(let sid, let range):
            return range & 0x1F == 31 ? "CMD_CFGI_ALL" : "\(opcode)(StreamID \(sid), Range \(range))"
        case .cfgiCD(let sid, let ssid, let leaf):
            args = "StreamID \(sid), SubstreamID \(ssid)\(leafText(leaf))"
        case .cfgiCDAll(let sid), .stallTerminate(let sid):
            args = "StreamID \(sid)"
        case .tlbiNHAll(let vmid), .tlbiS12VMAll(let vmid):
            args = "VMID \(vmid)"
        case .tlbiNHASID(let vmid, let asid):
            args = "VMID \(vmid), ASID \(asid)"
        case .tlbiNHVA(let vmid, let asid, let address, let leaf, let r):
            args = "VMID \(vmid), ASID \(asid), Addr \(hex(address))\(leafText(leaf))\(rangeText(r))"
        case .tlbiNHVAA(let vmid, let address, let leaf, let r):
            args = "VMID \(vmid), Addr \(hex(address))\(leafText(leaf))\(rangeText(r))"
        case .tlbiEL2All, .tlbiNSNHAll:
            return opcode.description
        case .tlbiEL2ASID(let asid):
            args = "ASID \(asid)"
        case .tlbiEL2VA(let asid, let address, let leaf, let r):
            args = "ASID \(asid), Addr \(hex(address))\(leafText(leaf))\(rangeText(r))"
        case .tlbiEL2VAA(let address, let leaf, let r):
            args = "Addr \(hex(address))\(leafText(leaf))\(rangeText(r))"
        case .tlbiS2IPA(let vmid, let ipa, let leaf, let r):
            args = "VMID \(vmid), IPA \(hex(ipa))\(leafText(leaf))\(rangeText(r))"
        case .atcInvalidate(let sid, let ssid, let global, let address, let size):
            args = "\(stream(sid, ssid)), Addr \(hex(address)), Size \(size)\(global ? ", Global" : "")"
        case .priResponse(let sid, let ssid, let group, let response):
            args = "\(stream(sid, ssid)), PRGIndex \(group), Resp \(response)"
        case .resume(let sid, let stag, let retry, let abort):
            args = "StreamID \(sid), STAG \(stag), \(retry ? "Retry" : abort ? "Terminate(abort)" : "Terminate(RAZ/WI)")"
        case .sync(let sync):
            switch sync.completionSignal {
            case .none: args = "SIG_NONE"
            case .sendEvent: args = "SIG_SEV"
            case .interrupt: args = "SIG_IRQ, MSIAddress \(hex(sync.msiAddress)), MSIData \(hex(UInt64(sync.msiData)))"
            }
        case .secureOnly(_, let w0, let w1), .unimplementedFeature(_, let w0, let w1):
            args = "\(hex(w0)), \(hex(w1))"
        }
        return "\(opcode)(\(args))"
    }
}
