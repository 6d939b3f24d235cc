import Bus
import Scenario

/// One vector's path through the layers as an SVG drawing: device → SMMU stage 1 → stage 2 →
/// ITS → host → KVM → vITS → guest, each box coloured by what the outcome records for it:
/// passed (green), skipped because the layer is absent or in bypass (grey outline), failed
/// (red, with the reason under it), not reached (pale). Everything comes from the
/// `VectorOutcome` the journal fold produced.
enum HTMLPathDiagram {
    enum State: String {
        case passed, skipped, failed, unreached
    }

    struct Box {
        var label: String
        var state: State
        var note: String
    }

    static func boxes(_ outcome: VectorOutcome) -> [Box] {
        let point = outcome.verdict.failurePoint
        func stage(_ label: String, _ result: VectorOutcome.StageResult, failsAt: FailurePoint) -> Box {
            switch result {
            case .absent: return Box(label: label, state: .skipped, note: "no such stage")
            case .bypass: return Box(label: label, state: .skipped, note: "bypass")
            case .translated(let from, let to): return Box(label: label, state: .passed, note: "\(Hex.format(from)) → \(Hex.format(to))")
            case .fault(let fault): return Box(label: label, state: .failed, note: fault.shortLocation)
            case .notReached: return Box(label: label, state: point == failsAt ? .failed : .unreached, note: "")
            case .untranslated: return Box(label: label, state: .passed, note: "untranslated window")
            case .aborted: return Box(label: label, state: .failed, note: "aborted")
            }
        }
        var boxes: [Box] = []
        boxes.append(Box(label: "device", state: point == .device ? .failed : .passed,
                         note: outcome.programmedAddress.map { Hex.format($0) } ?? ""))
        boxes.append(stage("SMMU S1", outcome.stage1, failsAt: .stage1))
        boxes.append(stage("SMMU S2", outcome.stage2, failsAt: .stage2))
        let itsNote = outcome.its.map { "DeviceID \(Hex.format(UInt64($0.deviceID), minDigits: 1)), EventID \($0.eventID)" } ?? ""
        let beforeITS: Set<FailurePoint> = [.device, .setup, .stage1, .stage2, .smmuConfiguration]
        let reachedITS = !(point.map { beforeITS.contains($0) } ?? false)
        boxes.append(Box(label: "ITS", state: point == .its ? .failed : reachedITS ? .passed : .unreached, note: itsNote))
        let afterITS = reachedITS && point != .its
        boxes.append(Box(label: "host", state: point == .host ? .failed : afterITS ? .passed : .unreached, note: ""))
        let delivered = outcome.delivered
        let guestReached = afterITS && point != .host
        boxes.append(Box(label: "KVM", state: guestReached ? .passed : .unreached, note: ""))
        boxes.append(Box(label: "vITS", state: guestReached ? .passed : .unreached, note: ""))
        boxes.append(Box(label: "guest", state: delivered ? .passed : point == .misrouted ? .failed : .unreached,
                         note: outcome.handled.first.map { "\($0.intidName) on vCPU \($0.cpu)" } ?? ""))
        return boxes
    }

    static func svg(_ outcome: VectorOutcome) -> String {
        let boxes = boxes(outcome)
        let w = 112, h = 46, gap = 22, top = 8
        let width = boxes.count * (w + gap) + 8
        var out = "<svg class=\"path\" role=\"img\" viewBox=\"0 0 \(width) 62\" width=\"\(width)\" height=\"62\" xmlns=\"http://www.w3.org/2000/svg\">"
        for (i, box) in boxes.enumerated() {
            let x = 4 + i * (w + gap)
            out += "<g class=\"layer \(box.state.rawValue)\" data-layer=\"\(HTMLEscape.text(box.label))\">"
            out += "<rect x=\"\(x)\" y=\"\(top)\" width=\"\(w)\" height=\"\(h)\" rx=\"6\"/>"
            out += "<text x=\"\(x + w / 2)\" y=\"\(top + 20)\" text-anchor=\"middle\" class=\"name\">\(HTMLEscape.text(box.label))</text>"
            out += "<text x=\"\(x + w / 2)\" y=\"\(top + 36)\" text-anchor=\"middle\" class=\"note\">\(HTMLEscape.text(String(box.note.prefix(22))))</text>"
            out += "<title>\(HTMLEscape.text(box.label + ": " + box.state.rawValue + (box.note.isEmpty ? "" : " — " + box.note)))</title></g>"
            if i + 1 < boxes.count {
                let ax = x + w
                out += "<line class=\"arrow\" x1=\"\(ax + 2)\" y1=\"\(top + h / 2)\" x2=\"\(ax + gap - 4)\" y2=\"\(top + h / 2)\"/>"
            }
        }
        return out + "</svg>"
    }
}
