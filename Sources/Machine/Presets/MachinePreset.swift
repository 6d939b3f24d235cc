#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Bus
import Firmware

/// Built-in platforms. Each is a real device tree read by the same reader a user's DTB goes
/// through, never a retyped description; a preset only adds what a device tree cannot say.
public enum MachinePreset: String, CaseIterable, Sendable {
    /// QEMU's `virt` machine with gic-version=3 and iommu=smmuv3, from the device tree QEMU
    /// itself dumped: ITS at 0x0808_0000, redistributors at 0x080A_0000, SMMUv3 at 0x0905_0000,
    /// identity `iommu-map` and `msi-map` over RIDs 0…0xFFFF, ECAM at 0x40_1000_0000.
    case qemuVirt = "qemu-virt"
    /// The same platform with its ITS outside the SMMU's reach: device writes to the doorbell
    /// page are not translated (the shape of Marc Zyngier's question in the seed thread).
    case qemuVirtUntranslatedITS = "qemu-virt-untranslated-its"

    public var summary: String {
        switch self {
        case .qemuVirt: "QEMU virt, GICv3 + ITS behind an SMMUv3 (the default)"
        case .qemuVirtUntranslatedITS: "QEMU virt with the ITS doorbell not translated by the SMMU"
        }
    }

    /// The device tree blob the preset is built from.
    public var deviceTreeBlob: [UInt8] {
        switch self {
        case .qemuVirt, .qemuVirtUntranslatedITS:
            MachinePreset.decode(EmbeddedDeviceTrees.virtSmmu)
        }
    }

    public var options: MachineOptions {
        var options = MachineOptions()
        if self == .qemuVirtUntranslatedITS { options.untranslatedITS = true }
        return options
    }

    /// The platform description of the preset.
    public func topology() throws(MachineError) -> Topology {
        do { return try Topology(dtb: deviceTreeBlob) } catch { throw .topology(error) }
    }

    /// A freshly assembled machine of this preset.
    public func makeMachine() throws(MachineError) -> Machine {
        try Machine(topology: try topology(), options: options, name: rawValue)
    }

    static func decode(_ text: String) -> [UInt8] {
        let compact = text.filter { !$0.isWhitespace }
        return Data(base64Encoded: compact).map { [UInt8]($0) } ?? []
    }
}

extension Machine {
    /// A machine from a preset name (`qemu-virt`, …).
    public static func preset(_ name: String) throws(MachineError) -> Machine {
        guard let preset = MachinePreset(rawValue: name) else { throw .unknownPreset(name) }
        return try preset.makeMachine()
    }
}
