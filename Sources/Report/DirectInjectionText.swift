import Bus
import LinuxKernel
import Scenario

extension ReportText {
    /// Under the strategy table or the matrix, for runs on a GICv4.1 host whose KVM can forward
    /// MSIs as vLPIs: per strategy, whether its vectors were forwarded (the VMAPTI the host's
    /// ITS driver issued, and the virtual pending table the device's MSI was written into) or
    /// why not (`KVMForwardingRefusal`: then the MSI still takes the host's software path).
    /// Empty when no run had direct injection, so other scenarios print as before.
    public static func directInjection(_ results: [(ScenarioDescription, [StrategyRun])], markdown: Bool) -> String {
        var lines: [String] = []
        for (scenario, runs) in results {
            for run in runs where run.setupFailure == nil && run.directInjectionAvailable {
                lines.append((markdown ? "- " : "  - ") + "\(scenario.name) / \(run.strategy.rawValue): " + directInjectionSentence(run))
            }
        }
        guard !lines.isEmpty else { return "" }
        return "\nDirect injection (GICv4.1):\n" + (markdown ? "\n" : "") + lines.joined(separator: "\n") + "\n"
    }

    /// One run's forwarding in a sentence.
    static func directInjectionSentence(_ run: StrategyRun) -> String {
        var forwarded: [(vintid: UInt32, vpe: UInt16, vmapti: String?)] = []
        var refusals: [String] = []
        for event in run.forwarding {
            switch event {
            case .forwarded(_, _, let vintid, _, let vpe, let commands):
                forwarded.append((vintid, vpe, commands.first { $0.hasPrefix("VMAPTI") }))
            case .notForwarded(_, _, let reason):
                refusals.append("\(reason) [\(reason.rawValue)]")
            case .failed(_, _, let code, let reason):
                refusals.append("kvm_vgic_v4_set_forwarding failed (\(code), \(reason))")
            case .noRoute:
                refusals.append("the irqfd had no MSI route when VFIO registered its producer")
            case .unforwarded:
                break
            }
        }
        var parts: [String] = []
        if !forwarded.isEmpty {
            var text = "direct injection, \(forwarded.count) vector\(forwarded.count == 1 ? "" : "s") forwarded as vLPIs"
            if let command = forwarded.first?.vmapti { text += " (\(command))" }
            if let vpt = run.outcomes.compactMap(\.vptWrite).first {
                text += "; the device's MSI set vINTID \(vpt.vintid) in vPE \(vpt.vpe)'s virtual pending table (byte \(Hex.format(vpt.address))), neither the host nor KVM took it"
            } else if !run.outcomes.isEmpty {
                text += ", but no MSI reached the ITS, so nothing was injected"
            }
            parts.append(text)
        }
        var distinct: [String] = []
        for refusal in refusals where !distinct.contains(refusal) { distinct.append(refusal) }
        if !distinct.isEmpty {
            let count = refusals.count
            parts.append("\(forwarded.isEmpty ? "no direct injection" : "\(count) not forwarded"): \(distinct.joined(separator: "; ")); the MSI still goes through the host's software path (vfio_msihandler → eventfd → irqfd → vITS)")
        }
        if parts.isEmpty { return "no vector was offered for forwarding (no VFIO producer met a KVM irqfd)" }
        return parts.joined(separator: "; ")
    }
}
