import Bus

/// An `SMMUFault` as a `Journal` keeps it, and back: the journal lives in the Bus module, which
/// knows nothing of SMMU types, so the fault's enums travel as their raw values.
extension SMMUFault {
    public var journalFault: JournalFault {
        JournalFault(eventType: type.rawValue, streamID: streamID, substreamID: substreamID, inputAddress: inputAddress,
                     isWrite: isWrite, instruction: instruction, privileged: privileged, stage2: stage2,
                     faultClass: faultClass.rawValue, ipa: ipa?.rawValue, fetchAddress: fetchAddress?.rawValue,
                     tableWalkWrite: tableWalkWrite, record: record, abort: abort, level: level,
                     invalidDescriptor: invalidDescriptor, reason: reason)
    }

    /// The fault a journal entry holds; nil if its event number or CLASS is not one this model
    /// raises (a journal built by hand).
    public init?(_ entry: JournalFault) {
        guard let type = SMMUEventType(rawValue: entry.eventType), let faultClass = FaultClass(rawValue: entry.faultClass) else {
            return nil
        }
        self.init(type: type, streamID: entry.streamID, substreamID: entry.substreamID, inputAddress: entry.inputAddress,
                  isWrite: entry.isWrite, instruction: entry.instruction, privileged: entry.privileged, stage2: entry.stage2,
                  faultClass: faultClass, ipa: entry.ipa.map { IPA($0) }, fetchAddress: entry.fetchAddress.map { PhysicalAddress($0) },
                  tableWalkWrite: entry.tableWalkWrite, record: entry.record, abort: entry.abort, level: entry.level,
                  invalidDescriptor: entry.invalidDescriptor, reason: entry.reason)
    }
}
