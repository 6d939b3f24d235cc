import Bus
import GIC
import SMMUv3
import Scenario

/// Short and long wordings of observed outcomes, shared by every report format.
extension VectorOutcome.StageResult {
    /// A table cell: what the stage did to the MSI's address.
    public var cell: String {
        switch self {
        case .absent: "—"
        case .bypass: "bypass"
        case .translated(let from, let to): "\(Hex.format(from)) → \(Hex.format(to))"
        case .fault(let fault): "\(fault.type.name) (\(fault.shortLocation))"
        case .notReached: "not reached"
        case .untranslated: "untranslated"
        case .aborted: "aborted (no event)"
        }
    }

    /// A stable machine-readable kind, for JSON.
    public var kind: String {
        switch self {
        case .absent: "absent"
        case .bypass: "bypass"
        case .translated: "translated"
        case .fault: "fault"
        case .notReached: "not-reached"
        case .untranslated: "untranslated"
        case .aborted: "aborted"
        }
    }
}

extension SMMUFault {
    /// "S1 L1 invalid", "S2 L1 invalid", "CD fetch": the descriptor the fault names, short.
    /// From the fields the walker set (`level`, `invalidDescriptor`, `stage2`), not the words.
    public var shortLocation: String {
        if let level {
            let location = "S\(stage2 ? 2 : 1) L\(level)"
            return invalidDescriptor ? "\(location) invalid" : location
        }
        return "S2=\(stage2 ? 1 : 0) CLASS=\(faultClass.name)"
    }
}

extension VectorOutcome.ITSOutcome {
    /// "0x8, 0 → LPI 8192" or "0x8, 0 dropped: unmapped device".
    public var cell: String {
        let ids = "\(Hex.format(UInt64(deviceID), minDigits: 1)), \(eventID)"
        switch result {
        case .delivered(let intid, let cpu, _): return "\(ids) → LPI \(intid.rawValue) (CPU \(cpu))"
        case .dropped(let reason): return "\(ids) dropped: \(reason)"
        case .virtual(let vintid, let vpe, let cpu, let delivery):
            return "\(ids) → vLPI \(vintid) of vPE \(vpe) (redistributor \(cpu)): \(delivery)"
        }
    }
}

extension StrategyRun {
    /// A plain sentence saying why the strategy failed, naming the descriptor, mapping or call
    /// that was missing; nil when everything fired was delivered.
    public var explanation: String? {
        let name = strategy.rawValue
        if let setup = setupFailure {
            let because = setup.cause.map { ", because \($0)" } ?? ""
            return "\(name): the setup failed at \(setup.step): \(setup.error)\(because), so no MSI could be fired."
        }
        guard let first = firstFailure, let point = first.verdict.failurePoint else { return nil }
        var programmed = first.programmedAddress.map { Hex.format($0) } ?? "nothing"
        if let source = first.programmedBy { programmed += " (\(source.function) \(source.detail))" }
        let guest = first.guestAddress.map { Hex.format($0) } ?? "?"
        let count = "\(deliveredCount)/\(firedCount) delivered"
        switch (point, first.stage1, first.stage2) {
        case (.stage1, .fault(let fault), _):
            return "\(name) (\(count)): the host programmed \(programmed) but the guest mapped its MSI at \(guest); "
                + "the device's write walks the guest's stage 1 for \(Hex.format(fault.inputAddress)) and finds \(fault.reason) "
                + "(\(fault.type.name), StreamID \(Hex.format(UInt64(fault.streamID.rawValue), minDigits: 1)), S2=0, CLASS=\(fault.faultClass.name)): the guest never mapped that IOVA."
        case (.stage2, _, .fault(let fault)):
            let ipa = fault.ipa.map { Hex.format($0.rawValue) } ?? Hex.format(fault.inputAddress)
            return "\(name) (\(count)): the host programmed \(programmed); stage 2 has no mapping for IPA \(ipa): "
                + "\(fault.reason) (\(fault.type.name), StreamID \(Hex.format(UInt64(fault.streamID.rawValue), minDigits: 1)), S2=1, CLASS=\(fault.faultClass.name)): nothing in the host mapped that IPA to a doorbell."
        default:
            if case .failed(_, let why) = first.verdict {
                let because = first.cause.map { ", because \($0)" } ?? ""
                return "\(name) (\(count)): vector \(first.vector) of device \(first.device) programmed \(programmed): \(why)\(because)."
            }
            return nil
        }
    }
}
