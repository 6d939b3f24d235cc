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
    /// identity `iommu-map` and `msi-map` over RIDs 0…0xFFFF, ECAM at 0x40_1000_0000. The SMMU
    /// is QEMU 11.0's `arm-smmuv3` with `stage=nested` (`SMMUConfiguration.qemuVirt`).
    case qemuVirt = "qemu-virt"
    /// The same platform with its ITS outside the SMMU's reach: device writes to the doorbell
    /// page are not translated (the shape of Marc Zyngier's question in the seed thread).
    case qemuVirtUntranslatedITS = "qemu-virt-untranslated-its"
    /// QEMU's `virt` with a second ITS, the shape of a two-socket server whose `msi-map` sends
    /// RID ranges to different ITSs (hip07-d05 in Tests/Fixtures/boards has eight ITSs this
    /// way). Built by editing QEMU's own device tree: an `arm,gic-v3-its` node at 0x0910_0000 (a
    /// hole in QEMU's virt memory map, between the secure GPIO and virtio-mmio windows) and
    /// `msi-map = <0x0 &its0 0x0 0x100>, <0x100 &its1 0x100 0xff00>`: bus 0 → ITS 0, buses
    /// 1–255 → ITS 1. Nothing else changes, so the reader and the machine see a real DTB.
    case qemuVirtTwoITS = "qemu-virt-two-its"
    /// QEMU's `virt` with gic-version=4 (which needs virtualization=on: the GIC node carries the
    /// maintenance interrupt), from the device tree QEMU dumped, with a second CPU node
    /// (`cpu@1`, MPIDR 1, what `-smp 2` adds) so a vCPU can move between redistributors. A
    /// device tree does not tell GICv3 from GICv4, so the GIC comes from the options: a GICv4.1
    /// (`GICConfiguration.virtualLPIs`: GITS_TYPER.Virtual, VMOVP and VMAPP, GICD_TYPER2.VIL,
    /// GICR_TYPER.VLPIS/RVPEID, CommonLPIAff 0). QEMU's own emulation stops at GICv4.0; the
    /// preset is the same platform with the GICv4.1 a server part (GIC-700) would have.
    case qemuVirtGICv4 = "qemu-virt-gicv4"

    public var summary: String {
        switch self {
        case .qemuVirt: "QEMU virt, GICv3 + ITS behind an SMMUv3 (the default)"
        case .qemuVirtUntranslatedITS: "QEMU virt with the ITS doorbell not translated by the SMMU"
        case .qemuVirtTwoITS: "QEMU virt with a second ITS at 0x0910_0000; bus 0 → ITS 0, buses 1–255 → ITS 1"
        case .qemuVirtGICv4: "QEMU virt (gic-version=4 tree, 2 CPUs) with a GICv4.1: direct vLPI injection"
        }
    }

    /// The device tree blob the preset is built from.
    public var deviceTreeBlob: [UInt8] {
        switch self {
        case .qemuVirt, .qemuVirtUntranslatedITS:
            MachinePreset.virtSmmuBlob
        case .qemuVirtTwoITS:
            MachinePreset.twoITSVirtBlob
        case .qemuVirtGICv4:
            MachinePreset.gicv4VirtBlob
        }
    }

    /// Decoded once per process: every world of a comparison or an exploration starts here.
    static let virtSmmuBlob: [UInt8] = decode(EmbeddedDeviceTrees.virtSmmu)
    static let twoITSVirtBlob: [UInt8] = twoITSBlob(from: virtSmmuBlob)
    static let gicv4VirtBlob: [UInt8] = secondCPUBlob(from: decode(EmbeddedDeviceTrees.virtSmmuGic4))

    /// What the device tree cannot say. Every preset is QEMU 11.0's `virt`, so its SMMU
    /// advertises exactly the ID registers of QEMU's emulated SMMUv3 (`smmuv3_init_id_regs`
    /// with `stage=nested`: `SMMUConfiguration.qemuVirt`), among them IDR5.OAS = 44 bits.
    public var options: MachineOptions {
        var options = MachineOptions()
        options.smmu = .qemuVirt
        if self == .qemuVirtUntranslatedITS { options.untranslatedITS = true }
        if self == .qemuVirtGICv4 { options.gic = .gicv41 }
        return options
    }

    /// The platform description of the preset.
    /// For `qemuVirtUntranslatedITS` every ITS is listed in `untranslatedITSBases`, so software
    /// reading the description (the kernel model's IORT-quirk equivalent) learns it too.
    public func topology() throws(MachineError) -> Topology {
        var topology: Topology
        do { topology = try Topology(dtb: deviceTreeBlob) } catch { throw .topology(error) }
        if self == .qemuVirtUntranslatedITS {
            topology.untranslatedITSBases = topology.its.filter(\.enabled).map(\.region.base)
        }
        return topology
    }

    /// A freshly assembled machine of this preset.
    public func makeMachine() throws(MachineError) -> Machine {
        try Machine(topology: try topology(), options: options, name: rawValue)
    }

    /// QEMU virt's tree with the second ITS added and the `msi-map` split (see `qemuVirtTwoITS`).
    /// An edit that fails (it cannot for the embedded tree) leaves the blob unchanged.
    static func twoITSBlob(from blob: [UInt8]) -> [UInt8] {
        guard var root = try? DeviceTree(dtb: blob).root else { return blob }
        let secondITSPhandle: UInt32 = 0x8100
        guard let gicIndex = root.children.firstIndex(where: { $0.isCompatible(with: "arm,gic-v3") }),
              let firstITS = root.children[gicIndex].children.first(where: { $0.isCompatible(with: "arm,gic-v3-its") }),
              let firstPhandle = firstITS.phandle,
              let pcieIndex = root.children.firstIndex(where: { $0.isCompatible(with: "pci-host-ecam-generic") }) else { return blob }
        root.children[gicIndex].children.append(DeviceTreeNode(name: "its@9100000", properties: [
            DeviceTreeProperty(name: "phandle", cells: [secondITSPhandle]),
            DeviceTreeProperty(name: "reg", cells: [0x0, 0x0910_0000, 0x0, 0x2_0000]),
            DeviceTreeProperty(name: "#msi-cells", cells: [1]),
            DeviceTreeProperty(name: "msi-controller"),
            DeviceTreeProperty(name: "compatible", strings: ["arm,gic-v3-its"]),
        ]))
        var pcie = root.children[pcieIndex]
        pcie.properties.removeAll { $0.name == "msi-map" }
        pcie.properties.append(DeviceTreeProperty(name: "msi-map", cells: [0x0, firstPhandle, 0x0, 0x100, 0x100, secondITSPhandle, 0x100, 0xFF00]))
        root.children[pcieIndex] = pcie
        return (try? DeviceTreeWriter.write(DeviceTree(root: root))) ?? blob
    }

    /// QEMU virt's tree with `cpu@1` added next to `cpu@0` (a copy with `reg = <1>` and its own
    /// phandle), as `-smp 2` would dump it; the cpu-map is left alone (Linux's topology code is
    /// not modelled). An edit that fails leaves the blob unchanged.
    static func secondCPUBlob(from blob: [UInt8]) -> [UInt8] {
        guard var root = try? DeviceTree(dtb: blob).root,
              let cpusIndex = root.children.firstIndex(where: { $0.name == "cpus" }),
              let first = root.children[cpusIndex].children.first(where: { $0.name == "cpu@0" }) else { return blob }
        var second = first
        second.name = "cpu@1"
        second.properties.removeAll { $0.name == "reg" || $0.name == "phandle" }
        second.properties.append(DeviceTreeProperty(name: "reg", cells: [1]))
        second.properties.append(DeviceTreeProperty(name: "phandle", cells: [0x8101]))
        root.children[cpusIndex].children.append(second)
        return (try? DeviceTreeWriter.write(DeviceTree(root: root))) ?? blob
    }

    static func decode(_ text: String) -> [UInt8] {
        Data(base64Encoded: text, options: .ignoreUnknownCharacters).map { [UInt8]($0) } ?? []
    }
}

extension Machine {
    /// A machine from a preset name (`qemu-virt`, …).
    public static func preset(_ name: String) throws(MachineError) -> Machine {
        guard let preset = MachinePreset(rawValue: name) else { throw .unknownPreset(name) }
        return try preset.makeMachine()
    }
}
