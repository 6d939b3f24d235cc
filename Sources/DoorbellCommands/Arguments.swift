import ArgumentParser
import Bus
import Firmware
import Machine

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

extension Granule: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument.uppercased() {
        case "4K", "4096": self = .size4K
        case "16K", "16384": self = .size16K
        case "64K", "65536": self = .size64K
        default: return nil
        }
    }
    public static var allValueStrings: [String] { ["4K", "16K", "64K"] }
    public var defaultValueDescription: String { description }
}

/// `--platform`: a preset name, or the path of a device tree blob.
struct PlatformOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("A preset (\(MachinePreset.allCases.map(\.rawValue).joined(separator: ", "))) or the path of a .dtb file.", valueName: "preset|file.dtb"))
    var platform: String = MachinePreset.qemuVirt.rawValue

    @Flag(name: .long, help: "Treat every ITS as not translated by the SMMU (a platform quirk a device tree cannot express).")
    var untranslatedITS = false

    func makeMachine() throws -> Machine {
        if let preset = MachinePreset(rawValue: platform) {
            var options = preset.options
            if untranslatedITS { options.untranslatedITS = true }
            return try Machine(topology: try preset.topology(), options: options, name: preset.rawValue)
        }
        guard platform.hasSuffix(".dtb") else {
            throw ValidationError("unknown platform '\(platform)': use a preset (\(MachinePreset.allCases.map(\.rawValue).joined(separator: ", "))) or a .dtb path")
        }
        let bytes = try readFile(platform)
        var options = MachineOptions()
        options.untranslatedITS = untranslatedITS
        return try Machine(topology: try Topology(dtb: bytes), options: options, name: platform)
    }
}

/// Reads a whole file.
func readFile(_ path: String) throws -> [UInt8] {
    do { return try DeviceTreeFile.read(path: path) } catch { throw ValidationError("\(error)") }
}
