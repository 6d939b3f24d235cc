import Bus

/// One 32-byte SMMUv3 event record (§7.3), as the SMMU writes it into the Event queue.
///
/// Common layout (§7.3.2–7.3.14; Linux `EVTQ_*` masks):
/// - dw0: EventID[7:0], SSV[11], SubstreamID[31:12], StreamID[63:32]
/// - dw1: STAG[15:0], Stall[31], PnU[33], InD[34], RnW[35] (1 = read), S2[39], CLASS[41:40]
///   (0 CD, 1 TT, 2 IN), TTRnW[44] (1 = the table-walk access was a read)
/// - dw2: InputAddr[63:0]
/// - dw3: IPA[55:12] for F_TRANSLATION/F_ADDR_SIZE/F_ACCESS/F_PERMISSION, or FetchAddr[55:3]
///   for F_STE_FETCH/F_CD_FETCH/F_WALK_EABT
///
/// Each event defines only some of these fields; the rest are RES0 (§7.3 "Portions of event
/// records that are not explicitly defined in this section are RES0"). `init(fault:)` writes
/// exactly the fields the event's layout defines:
/// - F_STREAM_DISABLED carries only the StreamID (§7.3.7);
/// - C_BAD_SUBSTREAMID always carries the SubstreamID, without an SSV bit (§7.3.9);
/// - RnW/InD/PnU: F_UUT, F_WALK_EABT and the four translation faults; F_TRANSL_FORBIDDEN has
///   RnW only (§7.3.8);
/// - InputAddr: F_UUT, F_TRANSL_FORBIDDEN, F_WALK_EABT, translation faults, F_TLB_CONFLICT,
///   F_CFG_CONFLICT;
/// - S2/CLASS: F_WALK_EABT and translation faults; IPA only when S2 = 1 (with S2 = 0 the IPA is
///   UNKNOWN, written as 0, §7.3.13); TTRnW for F_PERMISSION.
/// STAG and Stall are always 0: the model is terminate-only and never stalls.
public struct EventRecord: Hashable, Sendable {
    /// The EventID byte; an `SMMUEventType` when the model knows it.
    public var eventID: UInt8
    public var streamID: StreamID
    public var substreamID: SubstreamID?
    public var stag: UInt16
    public var stall: Bool
    public var privileged: Bool
    public var instruction: Bool
    /// RnW: true for a read.
    public var read: Bool
    public var stage2: Bool
    /// CLASS[41:40]; 0b11 is Reserved.
    public var faultClass: UInt8
    /// TTRnW: true when the faulting table-walk access was a read.
    public var tableWalkRead: Bool
    public var inputAddress: UInt64
    public var ipa: IPA?
    public var fetchAddress: PhysicalAddress?

    /// The architected event type, nil for an EventID this model does not know.
    public var type: SMMUEventType? { SMMUEventType(rawValue: eventID) }

    /// The record the SMMU writes for `fault`.
    public init(fault: SMMUFault) {
        let layout = Layout(fault.type)
        eventID = fault.type.rawValue
        streamID = fault.streamID
        substreamID = layout.substream ? fault.substreamID : nil
        if fault.type == .cBadSubstreamID { substreamID = fault.substreamID ?? SubstreamID(0) }
        stag = 0
        stall = false
        privileged = layout.attributes && fault.privileged
        instruction = layout.attributes && fault.instruction
        read = (layout.attributes || layout.readWriteOnly) && !fault.isWrite
        stage2 = layout.stageAndClass && fault.stage2
        faultClass = layout.stageAndClass ? fault.faultClass.rawValue : 0
        tableWalkRead = layout.tableWalkDirection && !fault.tableWalkWrite
        inputAddress = layout.inputAddress ? fault.inputAddress : 0
        ipa = layout.ipa && fault.stage2 ? fault.ipa.map { IPA($0.rawValue.keepingBits(55, 12)) } : nil
        fetchAddress = layout.fetchAddress ? fault.fetchAddress.map { PhysicalAddress($0.rawValue.keepingBits(55, 3)) } : nil
    }

    /// Decodes a record from its four words (nil unless exactly four). Fields the event's layout
    /// does not define are left at their defaults (nil / false / 0), like `init(fault:)`.
    public init?(words: [UInt64]) {
        guard words.count == 4 else { return nil }
        self.init(words[0], words[1], words[2], words[3])
    }

    /// Decodes a record from its four words.
    public init(_ w0: UInt64, _ w1: UInt64, _ w2: UInt64, _ w3: UInt64) {
        eventID = UInt8(truncatingIfNeeded: w0)
        let known = SMMUEventType(rawValue: eventID)
        let layout = known.map(Layout.init) ?? Layout.unknown
        streamID = StreamID(UInt32(truncatingIfNeeded: w0.bits(63, 32)))
        let ssid = SubstreamID(UInt32(truncatingIfNeeded: w0.bits(31, 12)))
        if known == .cBadSubstreamID {
            substreamID = ssid
        } else {
            substreamID = layout.substream && w0.bit(11) ? ssid : nil
        }
        stag = UInt16(truncatingIfNeeded: w1.bits(15, 0))
        stall = w1.bit(31)
        privileged = layout.attributes && w1.bit(33)
        instruction = layout.attributes && w1.bit(34)
        read = (layout.attributes || layout.readWriteOnly) && w1.bit(35)
        stage2 = layout.stageAndClass && w1.bit(39)
        faultClass = layout.stageAndClass ? UInt8(truncatingIfNeeded: w1.bits(41, 40)) : 0
        tableWalkRead = layout.tableWalkDirection && w1.bit(44)
        inputAddress = layout.inputAddress ? w2 : 0
        ipa = layout.ipa && stage2 ? IPA(w3.keepingBits(55, 12)) : nil
        fetchAddress = layout.fetchAddress ? PhysicalAddress(w3.keepingBits(55, 3)) : nil
    }

    /// The four little-endian words, without allocating.
    public var dwords: (UInt64, UInt64, UInt64, UInt64) {
        var w0 = UInt64(eventID).settingBits(63, 32, to: UInt64(streamID.rawValue))
        if let substreamID {
            w0 = w0.settingBits(31, 12, to: UInt64(substreamID.rawValue))
            if type != .cBadSubstreamID { w0 = w0.settingBit(11, to: true) }
        }
        let w1 = UInt64(stag)
            .settingBit(31, to: stall)
            .settingBit(33, to: privileged)
            .settingBit(34, to: instruction)
            .settingBit(35, to: read)
            .settingBit(39, to: stage2)
            .settingBits(41, 40, to: UInt64(faultClass))
            .settingBit(44, to: tableWalkRead)
        let w3 = ipa.map { $0.rawValue.keepingBits(55, 12) } ?? fetchAddress.map { $0.rawValue.keepingBits(55, 3) } ?? 0
        return (w0, w1, inputAddress, w3)
    }

    /// The four words as an array (for tests and reports).
    public var words: [UInt64] {
        let (a, b, c, d) = dwords
        return [a, b, c, d]
    }

    /// The fault this record reports, with `record`/`abort` true and no reason (the record does
    /// not carry them); fields the event does not define take `SMMUFault`'s defaults. Nil for an
    /// unknown EventID or a Reserved CLASS.
    public var fault: SMMUFault? {
        guard let type else { return nil }
        let layout = Layout(type)
        // Events without a CLASS field report the SMMUFault default (.input).
        guard let cls = layout.stageAndClass ? FaultClass(rawValue: faultClass) : .input else { return nil }
        return SMMUFault(type: type, streamID: streamID, substreamID: substreamID, inputAddress: inputAddress,
                         isWrite: (layout.attributes || layout.readWriteOnly) && !read,
                         instruction: instruction, privileged: privileged, stage2: stage2, faultClass: cls,
                         ipa: ipa, fetchAddress: fetchAddress,
                         tableWalkWrite: layout.tableWalkDirection && !tableWalkRead)
    }

    /// Which fields an event's layout defines (§7.3.2–7.3.16).
    struct Layout {
        var substream = true
        var attributes = false
        var readWriteOnly = false
        var inputAddress = false
        var stageAndClass = false
        var ipa = false
        var fetchAddress = false
        var tableWalkDirection = false

        static let unknown = Layout(substream: false)

        init(substream: Bool = true) { self.substream = substream }

        init(_ type: SMMUEventType) {
            switch type {
            case .fUUT:
                attributes = true; inputAddress = true
            case .cBadStreamID, .cBadSTE, .cBadCD, .fBadATSTReq, .cBadSubstreamID:
                break
            case .fStreamDisabled:
                substream = false
            case .fTranslForbidden:
                readWriteOnly = true; inputAddress = true
            case .fSTEFetch, .fCDFetch:
                fetchAddress = true
            case .fWalkEABT:
                attributes = true; inputAddress = true; stageAndClass = true; fetchAddress = true
            case .fTranslation, .fAddrSize, .fAccess:
                attributes = true; inputAddress = true; stageAndClass = true; ipa = true
            case .fPermission:
                attributes = true; inputAddress = true; stageAndClass = true; ipa = true; tableWalkDirection = true
            case .fTLBConflict, .fCfgConflict:
                inputAddress = true
            }
        }
    }
}
