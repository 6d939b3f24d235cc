import Bus
import Firmware

/// Why a machine could not be assembled from a platform description.
public enum MachineError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The platform description itself could not be read.
    case topology(TopologyError)
    /// Two components of the description claim overlapping addresses.
    case bus(BusError)
    /// The PCI model refused a function or bridge.
    case pci(String)
    /// No preset of that name.
    case unknownPreset(String)
    /// The description asks for something the model cannot build (named).
    case unsupported(String)

    public var description: String {
        switch self {
        case .topology(let error): "platform description: \(error)"
        case .bus(let error): "bus: \(error)"
        case .pci(let why): "PCI: \(why)"
        case .unknownPreset(let name): "no preset named '\(name)' (known: \(MachinePreset.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .unsupported(let what): "not modelled: \(what)"
        }
    }
}
