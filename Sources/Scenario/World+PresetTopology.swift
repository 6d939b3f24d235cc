import Firmware
import GIC
import Machine

extension World {
    /// Every preset's platform description, parsed from its device tree once per process.
    /// A description is a value (`Topology`, nothing in it changes when a machine is built
    /// from it), so every world of a comparison or an exploration can start from the same
    /// one; before, each world parsed the blob again (a tenth of an explore state's build).
    static let presetTopologies: [MachinePreset: Result<Topology, MachineError>] = Dictionary(
        uniqueKeysWithValues: MachinePreset.allCases.map { preset in
            (preset, Result { () throws(MachineError) -> Topology in try preset.topology() })
        })

    /// The machine `preset.makeMachine()` assembles, from the parsed description.
    static func presetMachine(_ preset: MachinePreset, gic: HostOptions.GIC? = nil) throws(MachineError) -> Machine {
        var options = preset.options
        if let gic { options.gic = gicConfiguration(gic) }
        guard let parsed = presetTopologies[preset] else { return try Machine(topology: try preset.topology(), options: options, name: preset.rawValue) }
        return try Machine(topology: try parsed.get(), options: options, name: preset.rawValue)
    }

    /// The GIC a scenario's `gic:` names.
    static func gicConfiguration(_ gic: HostOptions.GIC) -> GICConfiguration {
        switch gic {
        case .v3: .qemuVirt
        case .v41: .gicv41
        }
    }
}
