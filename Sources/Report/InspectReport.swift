import Bus
import Foundation
import Inspect
import LinuxKernel
import PCI

/// `doorbell inspect`: what was read, the model's prediction per function next to what the
/// machine shows, and the list of disagreements. Text for people; JSON (schema 1, keys
/// kebab-case and sorted, addresses as plain `0x`-prefixed lowercase hex without separators so
/// `parseInt`/`jq` read them, IDs as numbers) for machines.
public struct InspectReport {
    public var snapshot: MachineSnapshot
    public var prediction: InspectPrediction?
    /// Why there is no prediction (no Arm firmware, a platform the model cannot build).
    public var failure: String?
    public var comparison: InspectComparison?
    public var configurationNotes: [String]

    public init(snapshot: MachineSnapshot) {
        self.snapshot = snapshot
        configurationNotes = InspectPrediction.configuration(for: snapshot).1
        do {
            let prediction = try InspectPrediction(snapshot)
            self.prediction = prediction
            comparison = InspectComparison(snapshot: snapshot, prediction: prediction)
        } catch {
            failure = error.description
        }
    }

    /// Whether the model answered for this machine.
    public var answered: Bool { prediction != nil }

    public var text: String {
        var out = "Doorbell inspect: \(SafeText.escape(snapshot.source))\n"
        let firmware: String
        switch snapshot.firmware {
        case .deviceTree?: firmware = "device tree (sys/firmware/fdt)"
        case .acpi(let tables)?:
            firmware = "ACPI (" + [tables.iort != nil ? "IORT" : nil, tables.madt != nil ? "APIC" : nil, tables.mcfg != nil ? "MCFG" : nil].compactMap { $0 }.joined(separator: ", ") + ")"
        case nil: firmware = "none found"
        }
        out += "  firmware: \(firmware)\n"
        out += "  kernel: \(SafeText.escape(snapshot.release ?? "unknown"))"
        if let prediction { out += " → modelled as \(prediction.configuration.version.rawValue), default domain \(prediction.configuration.defaultDomain.rawValue)" }
        out += "\n"
        if let cmdline = snapshot.commandLine { out += "  command line: \(SafeText.escape(cmdline.text))\n" }
        out += "  read: \(snapshot.groups.count) IOMMU group(s), \(snapshot.functions.count) PCI function(s)"
        out += snapshot.interrupts.map { ", /proc/interrupts (\($0.lines.count) interrupts, \($0.cpus) CPUs)" } ?? ""
        out += "\n"
        if !snapshot.missing.isEmpty { out += "  not available: \(snapshot.missing.map { SafeText.escape($0) }.joined(separator: ", "))\n" }
        for problem in snapshot.problems { out += "  unreadable: \(SafeText.escape(problem))\n" }
        for note in configurationNotes { out += "  note: \(note)\n" }
        for note in prediction?.notes.dropFirst(configurationNotes.count) ?? [] { out += "  note: \(SafeText.escape(note))\n" }
        guard let comparison else {
            out += "\nNo prediction: \(SafeText.escape(failure ?? "unknown reason")).\n"
            out += "Doorbell models Arm machines (a GICv3 ITS, optionally an SMMUv3) described by a device tree or ACPI IORT/MADT/MCFG; this machine's MSIs cannot be modelled.\n"
            return out
        }
        for row in comparison.rows {
            out += "\n" + Self.block(row)
        }
        out += "\nDisagreements: \(comparison.disagreements.isEmpty ? "none" : String(comparison.disagreements.count))\n"
        for d in comparison.disagreements {
            out += "  - \(d.device) \(d.what): model \(SafeText.escape(d.model)), machine \(SafeText.escape(d.machine)) [\(d.kind.rawValue)] — \(d.reason)\n"
        }
        return out
    }

    static func block(_ row: InspectComparison.Row) -> String {
        var ids = ""
        if let v = row.vendor, let d = row.device { ids = " " + InspectPrediction.hex(UInt64(v), 4) + ":" + InspectPrediction.hex(UInt64(d), 4) }
        if let c = row.classCode { ids += " class " + InspectPrediction.hex(UInt64(c), 6) }
        var out = "\(row.name)\(ids), driver \(SafeText.escape(row.driver ?? "none"))\n"
        guard let model = row.predicted else { return out + "  not in the model\n" }
        var rid = "  RID \(model.requesterID)"
        if model.wireRequesterID != model.requesterID { rid += ", requests carry \(model.wireRequesterID)" }
        rid += "; StreamID " + (model.streamIDs.isEmpty ? "none" : model.streamIDs.map { "0x" + String($0, radix: 16) }.joined(separator: ", "))
        rid += "; DeviceID " + (model.deviceID.map { "0x" + String($0, radix: 16) } ?? "-")
        if let its = model.its { rid += " (ITS \(its))" }
        out += rid + "\n"
        let modelGroup = [model.group.map(String.init) ?? "none", model.groupType].compactMap { $0 }.joined(separator: " ")
        let machineGroup = [row.machineGroup.map(String.init) ?? "none", row.machineGroupType].compactMap { $0 }.joined(separator: " ")
        out += "  group: model \(modelGroup), machine \(SafeText.escape(machineGroup))\n"
        let regions = Set(model.reservedRegions).union(row.machineRegions).sorted()
        for region in regions {
            let inModel = model.reservedRegions.contains(region), inMachine = row.machineRegions.contains(region)
            out += "  reserved \(region)\(inModel && inMachine ? "" : inModel ? " (model only)" : " (machine only)")\n"
        }
        if model.isBridge { return out }
        out += "  interrupts: model \(model.mode.map { "\(model.vectors.count) \($0)" } ?? "none"), machine "
        out += row.observed.isEmpty ? "none\n" : "\(row.observed.count) \(row.observed[0].mode == "msix" ? "MSI-X" : "MSI")\n"
        for (k, v) in model.vectors.enumerated() {
            var line = "    vector \(v.index): address \(Hex.format(v.address)) data \(Hex.format(UInt64(v.data), minDigits: 1))"
            line += v.lpi.map { ", LPI \($0)" } ?? ""
            if k < row.observed.count {
                let seen = row.observed[k]
                line += " | machine irq \(seen.irq)"
                if let chip = seen.chip { line += " \(SafeText.escape(chip))" }
                if let hw = seen.hwirq {
                    line += " hwirq → " + (hw.requesterID.map { "RID \(RequesterID($0).description) " } ?? "") + "index \(hw.index)"
                }
                if let a = seen.address, let d = seen.data { line += ", message \(Hex.format(a)) / \(Hex.format(UInt64(d), minDigits: 1))" }
                else if seen.mode == "msix" { line += ", message in the MSI-X table (a BAR; not in sysfs)" }
            }
            out += line + "\n"
        }
        return out
    }
}
