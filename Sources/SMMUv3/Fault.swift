import Bus

/// SMMUv3 event numbers (§7.3, Table 7-3 "Event records").
public enum SMMUEventType: UInt8, Sendable, CaseIterable {
    case fUUT = 0x01, cBadStreamID = 0x02, fSTEFetch = 0x03, cBadSTE = 0x04, fBadATSTReq = 0x05,
         fStreamDisabled = 0x06, fTranslForbidden = 0x07, cBadSubstreamID = 0x08, fCDFetch = 0x09,
         cBadCD = 0x0A, fWalkEABT = 0x0B, fTranslation = 0x10, fAddrSize = 0x11, fAccess = 0x12,
         fPermission = 0x13, fTLBConflict = 0x20, fCfgConflict = 0x21

    /// The spec's name for the event.
    public var name: String {
        switch self {
        case .fUUT: "F_UUT"
        case .cBadStreamID: "C_BAD_STREAMID"
        case .fSTEFetch: "F_STE_FETCH"
        case .cBadSTE: "C_BAD_STE"
        case .fBadATSTReq: "F_BAD_ATS_TREQ"
        case .fStreamDisabled: "F_STREAM_DISABLED"
        case .fTranslForbidden: "F_TRANSL_FORBIDDEN"
        case .cBadSubstreamID: "C_BAD_SUBSTREAMID"
        case .fCDFetch: "F_CD_FETCH"
        case .cBadCD: "C_BAD_CD"
        case .fWalkEABT: "F_WALK_EABT"
        case .fTranslation: "F_TRANSLATION"
        case .fAddrSize: "F_ADDR_SIZE"
        case .fAccess: "F_ACCESS"
        case .fPermission: "F_PERMISSION"
        case .fTLBConflict: "F_TLB_CONFLICT"
        case .fCfgConflict: "F_CFG_CONFLICT"
        }
    }

    /// Whether the event is a translation-related fault whose recording is governed by CD.R
    /// (stage 1) or STE.S2R (stage 2) (§5.5: F_TRANSLATION, F_ADDR_SIZE, F_ACCESS,
    /// F_PERMISSION). Other events are always recorded when the event queue is enabled.
    public var isTranslationFault: Bool {
        switch self {
        case .fTranslation, .fAddrSize, .fAccess, .fPermission: true
        default: false
        }
    }
}

/// Event CLASS field (§7.3.12–16): what the SMMU was doing when it faulted.
public enum FaultClass: UInt8, Sendable {
    case cd = 0, translationTable = 1, input = 2

    /// The spec's mnemonic ("CD", "TT", "IN").
    public var name: String {
        switch self {
        case .cd: "CD"
        case .translationTable: "TT"
        case .input: "IN"
        }
    }
}

/// A fault as the translator detected it; everything an event record needs, plus why.
public struct SMMUFault: Hashable, Sendable, CustomStringConvertible {
    public var type: SMMUEventType
    public var streamID: StreamID
    public var substreamID: SubstreamID?
    public var inputAddress: UInt64          // InputAddr
    public var isWrite: Bool                 // RnW = !isWrite
    public var instruction: Bool             // InD
    public var privileged: Bool              // PnU
    public var stage2: Bool                  // S2
    public var faultClass: FaultClass        // CLASS
    public var ipa: IPA?                     // IPA field (S2 faults)
    public var fetchAddress: PhysicalAddress? // FetchAddr (F_STE_FETCH, F_CD_FETCH, F_WALK_EABT)
    public var tableWalkWrite: Bool          // TTRnW (F_PERMISSION, CLASS=TT)
    /// Whether this fault is written to the event queue: CD.R for stage-1 faults, STE.S2R for
    /// stage-2 faults, always for configuration errors (C_BAD_*), per §5.5 / §7.3.
    public var record: Bool
    /// Whether the transaction is terminated with an abort (true) or RAZ/WI (false): CD.A, §5.5.
    public var abort: Bool
    /// Not architected: which rule or descriptor caused it, for reports ("STE.Config enables
    /// stage 1 but IDR0.S1P=0", "S1 L3 descriptor at 0x… invalid").
    public var reason: String
    /// Not architected: the walk level of the descriptor the fault names (the walker sets it;
    /// nil for faults that name no descriptor), and whether that descriptor was invalid.
    public var level: Int?
    public var invalidDescriptor: Bool

    public init(type: SMMUEventType, streamID: StreamID, substreamID: SubstreamID? = nil,
                inputAddress: UInt64 = 0, isWrite: Bool = false, instruction: Bool = false,
                privileged: Bool = false, stage2: Bool = false, faultClass: FaultClass = .input,
                ipa: IPA? = nil, fetchAddress: PhysicalAddress? = nil, tableWalkWrite: Bool = false,
                record: Bool = true, abort: Bool = true, level: Int? = nil, invalidDescriptor: Bool = false,
                reason: String = "") {
        self.level = level
        self.invalidDescriptor = invalidDescriptor
        self.type = type
        self.streamID = streamID
        self.substreamID = substreamID
        self.inputAddress = inputAddress
        self.isWrite = isWrite
        self.instruction = instruction
        self.privileged = privileged
        self.stage2 = stage2
        self.faultClass = faultClass
        self.ipa = ipa
        self.fetchAddress = fetchAddress
        self.tableWalkWrite = tableWalkWrite
        self.record = record
        self.abort = abort
        self.reason = reason
    }

    @inline(never)
    public var description: String {
        var parts = ["\(type.name) StreamID \(streamID)"]
        if let substreamID { parts.append("SSID \(substreamID)") }
        parts.append("InputAddr \(Hex.format(inputAddress))")
        parts.append(isWrite ? "write" : "read")
        if type.isTranslationFault || type == .fWalkEABT {
            parts.append("S2=\(stage2 ? 1 : 0) CLASS=\(faultClass.name)")
        }
        if let ipa { parts.append("IPA \(ipa)") }
        if let fetchAddress { parts.append("FetchAddr \(fetchAddress)") }
        if !record { parts.append("(not recorded)") }
        if !abort { parts.append("(RAZ/WI)") }
        var text = parts.joined(separator: " ")
        if !reason.isEmpty { text += ": " + reason }
        return text
    }
}
