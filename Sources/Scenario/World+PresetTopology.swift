import Firmware
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
    static func presetMachine(_ preset: MachinePreset) throws(MachineError) -> Machine {
        guard let parsed = presetTopologies[preset] else { return try preset.makeMachine() }
        return try Machine(topology: try parsed.get(), options: preset.options, name: preset.rawValue)
    }
}
