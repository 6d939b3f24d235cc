import Bus
import Firmware
import Machine

/// `doorbell topology` and `doorbell presets`: what a platform description says, as the machine
/// reads it.
public enum TopologyReport {
    /// An ACPI description's IORT, MADT and MCFG fields as `iasl -d` prints them, each table
    /// followed by a blank line.
    public static func acpiFields(_ tables: ACPITableSet) -> String {
        var text = ""
        for table in [tables.iort as (any ACPIFieldDump)?, tables.madt, tables.mcfg].compactMap({ $0 }) {
            text += ACPIFieldText.render(table.fields) + "\n"
        }
        return text
    }

    /// The topology summary, what the description has that is not modelled, the memory windows
    /// chosen for host bridges without one, and the verdict for an endpoint under `bridge`.
    public static func text(_ machine: Machine, bridge: BridgeChoice?) -> String {
        // Node names come from the blob: no control characters reach the terminal.
        let summary = SafeText.escape(machine.topology.summary, keepingNewlines: true)
        var text = summary + (summary.hasSuffix("\n") ? "" : "\n")
        if !machine.notModelled.isEmpty {
            text += "not modelled:\n"
            for item in machine.notModelled { text += "  \(item)\n" }
        }
        for (rc, window) in machine.memoryWindows.enumerated() {
            if let window, window.chosen {
                text += "memory window: \(machine.rootComplexes[rc].name) has none in the description; BARs go at \(Hex.format(window.cpuAddress)) size \(Hex.format(window.size, minDigits: 1)) (free, identity-mapped)\n"
            }
        }
        let support = machine.support(bridge: bridge)
        if case .supported(let rc, let rid) = support {
            let note = machine.preITSNote(rootComplex: rc, requesterID: rid).map { "; \($0)" } ?? ""
            text += "verdict: supported (an endpoint at \(rid.hex) under \(machine.rootComplexes[rc].name))\(note)\n"
        } else {
            text += "\(support.verdict)\n"
        }
        return text
    }

    /// The built-in platforms, one a line: name and summary.
    public static var presets: String {
        MachinePreset.allCases.map { "\(TraceTable.pad($0.rawValue, 28)) \($0.summary)\n" }.joined()
    }
}
