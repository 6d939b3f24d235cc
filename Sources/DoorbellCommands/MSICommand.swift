import ArgumentParser
import Bus
import Firmware
import GIC
import Machine
import PCI
import Report
import SMMUv3
import Testbed

/// `doorbell msi`: one MSI-X vector from a PCIe function to the CPU that takes its LPI.
struct MSICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "msi",
        abstract: "Follow one MSI-X write from a PCIe function through the SMMU to the ITS and the CPU.",
        discussion: """
        Brings the platform up the way firmware would (ITS, redistributor LPI tables, SMMU, one \
        4-vector MSI-X function at 00:01.0), maps the function's events to LPIs 8192…, programs \
        the chosen vector, fires it, and prints every step: the MSI-X entry, the requester-ID \
        maps, each SMMU fetch and descriptor read, the ITS table lookups, the LPI made pending and \
        the CPU acknowledging it.
        """
    )

    typealias Translation = MSIReport.Translation

    @OptionGroup var platform: PlatformOptions

    @Option(help: "How the SMMU treats the function's stream: bypass, s1 or nested (default: nested behind an SMMUv3, s1 behind an SMMUv2, which has no nesting in Linux).")
    var translation: Translation?

    @Option(help: "The MSI-X vector to fire (0…3).")
    var vector: Int = 2

    @Option(help: "The message address to program (default: the ITS doorbell as this translation reaches it).")
    var address: HexNumber?

    @Option(help: "Output format: text, json, or qemu-trace (QEMU 7.2's smmuv3_*/smmu_*/gicv3_its_* trace events for this MSI).")
    var format: MSIFormat = .text

    enum MSIFormat: String, ExpressibleByArgument, CaseIterable { case text, json, qemuTrace = "qemu-trace" }

    func validate() throws {
        guard (0..<4).contains(vector) else { throw ValidationError("--vector must be 0…3") }
    }

    func run() throws {
        let report = try MSIReport.make(platform: platform, translation: translation, vector: vector, address: address?.value)
        switch format {
        case .text: print(report.text, terminator: "")
        case .json: print(JSONDocument.render(command: "msi", report: report.json), terminator: "")
        case .qemuTrace: print(QEMUTrace.lines(report.journal).joined(separator: "\n"))
        }
    }
}

extension MSIReport.Translation: ExpressibleByArgument {}

extension MSIReport {
    /// The report on the platform the options name (exit 1 when it cannot carry the device).
    static func make(platform: PlatformOptions, translation: Translation?, vector: Int, address: UInt64?) throws -> MSIReport {
        let (machine, rcIndex, rid) = try platform.makeSupportedMachine()
        let behindSMMUv2 = rcIndex < machine.smmuV2Ports.count && machine.smmuV2Ports[rcIndex] != nil
        return try make(machine: machine, rcIndex: rcIndex, rid: rid, translation: translation ?? (behindSMMUv2 ? .s1 : .nested),
                        vector: vector, address: address)
    }
}

/// `doorbell topology`: what a platform description says, as the machine reads it.
struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Print a platform's topology: memory, GIC and ITSs, SMMUs, PCIe host bridges and their ID maps."
    )

    @OptionGroup var platform: PlatformOptions

    @Option(help: "Output format: text or json.")
    var format: TextFormat = .text

    func run() throws {
        let machine: Machine
        var acpi: ACPITableSet?
        if MachinePreset(rawValue: platform.platform) == nil {
            try CommandLineNames.checkPlatform(platform.platform)
            let file = try PlatformFile.load(platform.platform)
            acpi = file.acpi
            // The tables print before the machine is built: a description the machine refuses
            // still shows what it said.
            if let tables = file.acpi, format == .text { print(TopologyReport.acpiFields(tables), terminator: "") }
            machine = try platform.makeMachine(from: file)
        } else {
            machine = try platform.makeMachine()
        }
        let bridge = platform.bridge.map(BridgeChoice.init)
        switch format {
        case .text: print(TopologyReport.text(machine, bridge: bridge), terminator: "")
        case .json: print(TopologyJSON.render(machine, bridge: bridge, acpi: acpi), terminator: "")
        }
    }
}

/// `doorbell presets`: the built-in platforms.
struct PresetsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "presets", abstract: "List the built-in platforms.")

    @Option(help: "Output format: text or json.")
    var format: TextFormat = .text

    func run() {
        switch format {
        case .text: print(TopologyReport.presets, terminator: "")
        case .json:
            print(JSONDocument.render(command: "presets", ["presets": .array(MachinePreset.allCases.map {
                .object(["name": .string($0.rawValue), "summary": .string($0.summary)])
            })]), terminator: "")
        }
    }
}
