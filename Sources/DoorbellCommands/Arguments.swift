import ArgumentParser
import Bus
import Firmware
import Machine
import PCI
import Report

/// An address or number on the command line: `0x0800_0040`, `0x80900000` or decimal.
public struct HexNumber: ExpressibleByArgument, Hashable, Sendable {
    public let value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public init?(argument: String) {
        guard let value = Hex.parse(argument) else { return nil }
        self.value = value
    }
    public var defaultValueDescription: String { Hex.format(value) }
}

/// A translation granule on the command line: `4K`, `16K`, `64K` (or the byte count). A struct
/// rather than `Granule` itself: swift-argument-parser prints the default of a CaseIterable
/// RawRepresentable as its raw value ("12", the log2) and lists its cases with empty
/// descriptions.
struct GranuleArgument: ExpressibleByArgument, Hashable, Sendable {
    let granule: Granule
    init(_ granule: Granule) { self.granule = granule }
    init?(argument: String) {
        switch argument.uppercased() {
        case "4K", "4096": granule = .size4K
        case "16K", "16384": granule = .size16K
        case "64K", "65536": granule = .size64K
        default: return nil
        }
    }
    static var allValueStrings: [String] { ["4K", "16K", "64K"] }
    var defaultValueDescription: String { granule.description }
}

/// `--platform`: a preset name, or the path of a platform description (see `PlatformFile`).
struct PlatformOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("A preset (\(MachinePreset.allCases.map(\.rawValue).joined(separator: ", "))) or a platform description, recognised by its contents: a device tree blob, an ACPI IORT/APIC/MCFG table, or a directory of ACPI tables laid out like /sys/firmware/acpi/tables.", valueName: "preset|file|dir"), completion: CommandLineCompletions.platform)
    var platform: String = MachinePreset.qemuVirt.rawValue

    @Option(name: .long, help: ArgumentHelp("The PCIe host bridge the device goes under: an index as `topology` lists them, or a node path (default: the first enabled one).", valueName: "index|path"))
    var bridge: String?

    @Flag(name: .long, help: "Treat every ITS as not translated by the SMMU (a platform quirk a device tree cannot express): the machine routes doorbell writes around the SMMU and the host kernel reserves each ITS page as a hardware MSI region, as on the qemu-virt-untranslated-its preset.")
    var untranslatedITS = false

    func makeMachine() throws -> Machine {
        if let preset = MachinePreset(rawValue: platform) {
            var options = preset.options
            if untranslatedITS { options.untranslatedITS = true }
            return try Machine(topology: withUntranslatedITS(try preset.topology()), options: options, name: preset.rawValue)
        }
        try CommandLineNames.checkPlatform(platform)
        return try makeMachine(from: try PlatformFile.load(platform))
    }

    /// The description with every enabled ITS listed in `untranslatedITSBases` under
    /// `--untranslated-its`, as `MachinePreset.topology()` does for the untranslated preset: the
    /// bus option alone would route around the SMMU while the kernel model, which reads only
    /// the description, kept using the SW_MSI window.
    func withUntranslatedITS(_ topology: Topology) -> Topology {
        guard untranslatedITS else { return topology }
        var topology = topology
        topology.untranslatedITSBases = topology.its.filter(\.enabled).map(\.region.base)
        return topology
    }

    /// A machine from a description file already loaded.
    func makeMachine(from file: PlatformFile) throws -> Machine {
        let topology = withUntranslatedITS(file.topology)
        var options = MachineOptions()
        options.untranslatedITS = untranslatedITS
        do { return try Machine(topology: topology, options: options, name: platform) } catch { throw CommandFailure("\(platform): \(error)") }
    }

    /// The machine and where its endpoint goes, or exit 1 with the platform's one-line verdict.
    func makeSupportedMachine() throws -> (machine: Machine, rootComplex: Int, requesterID: RequesterID) {
        let machine = try makeMachine()
        switch machine.support(bridge: bridge.map(BridgeChoice.init)) {
        case .supported(let rc, let rid): return (machine, rc, rid)
        case .unsupported(let why): throw CommandFailure("\(machine.name): \(why)")
        }
    }
}

/// Reads a whole file.
func readFile(_ path: String) throws -> [UInt8] {
    do { return try DeviceTreeFile.read(path: path) } catch { throw CommandFailure("\(error)") }
}
