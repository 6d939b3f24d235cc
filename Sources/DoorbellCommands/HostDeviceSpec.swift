import ArgumentParser
import PCI
import Report
import Scenario

/// `--device` of `doorbell host`, parsed (see `HostDeviceSpec`).
extension HostDeviceSpec: ExpressibleByArgument {
    public init?(argument: String) {
        guard let spec = try? Self.parse(argument) else { return nil }
        self = spec
    }

    /// Parses one spec, or says what is wrong with it.
    static func parse(_ text: String) throws(ValidationError) -> HostDeviceSpec {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first else { throw ValidationError("--device: empty") }
        let rid: RequesterID
        switch RequesterID.parsing(bdf: first) {
        case .success(let value): rid = value
        case .failure(let mistake): throw ValidationError("--device \(text): \(mistake)")
        }
        var spec = HostDeviceSpec(requesterID: rid)
        var vectorsGiven = false
        for part in parts.dropFirst() {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw ValidationError("--device \(text): '\(part)' is not key=value") }
            switch kv[0] {
            case "behind":
                guard let bridge = DeviceDescription.Bridge(rawValue: kv[1]) else {
                    throw ValidationError("--device \(text): behind= takes \(DeviceDescription.Bridge.allCases.map(\.rawValue).joined(separator: " or "))")
                }
                spec.bridge = bridge
            case "interrupts":
                guard let interrupts = Interrupts(rawValue: kv[1]) else {
                    throw ValidationError("--device \(text): interrupts= takes \(Interrupts.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                spec.interrupts = interrupts
            case "vectors":
                guard kv[1].count <= 4, let n = Int(kv[1]) else { throw ValidationError("--device \(text): vectors= takes a number") }
                spec.vectors = n
                vectorsGiven = true
            default:
                throw ValidationError("--device \(text): unknown key '\(kv[0])' (behind, interrupts, vectors)")
            }
        }
        if spec.interrupts == .intx {
            guard !vectorsGiven || spec.vectors == 1 else { throw ValidationError("--device \(text): an INTx function has one interrupt (vectors=1)") }
            spec.vectors = 1
        }
        switch spec.interrupts {
        case .msix: guard (1...2048).contains(spec.vectors) else { throw ValidationError("--device \(text): MSI-X Table Size is 1…2048") }
        case .msi: guard [1, 2, 4, 8, 16, 32].contains(spec.vectors) else { throw ValidationError("--device \(text): MSI vectors are 1, 2, 4, 8, 16 or 32") }
        case .intx: break
        }
        if spec.bridge != nil, rid.bus == 0 {
            throw ValidationError("--device \(text): \(rid) is on bus 0: nothing is behind a bridge there")
        }
        return spec
    }

    static var helpText: String {
        "BDF[,behind=root-port|pcie-to-pci-bridge][,interrupts=msi-x|msi|intx][,vectors=N]"
    }
}
