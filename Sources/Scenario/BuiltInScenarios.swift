import Bus
import Machine
import PCI

/// The built-in scenarios: the platform and guest shapes of docs/strategies.md that change the
/// answer. Each is an ordinary `ScenarioDescription`; `doorbell compare` runs them all.
public enum BuiltInScenarios {
    static let rid = RequesterID(bus: 0, device: 1, function: 0)

    /// The seed: qemu-virt, an accelerated vSMMU, a guest DMA domain (nested stage 1 + stage 2),
    /// one MSI-X function with 4 vectors. `doorbell` with no arguments runs this.
    public static let seed = ScenarioDescription(
        name: "seed", summary: "qemu-virt, vSMMU, guest DMA domain (nested), 4 MSI-X vectors")

    public static let all: [ScenarioDescription] = [
        seed,
        ScenarioDescription(name: "guest-identity", summary: "vSMMU, guest identity domain (bypass vSTE: stage 2 only)",
                            vm: VMOptions(guestDomain: .identity)),
        ScenarioDescription(name: "no-viommu", summary: "no vIOMMU: the device's DMA addresses are GPAs (stage 2 only)",
                            vm: VMOptions(viommu: .none)),
        ScenarioDescription(name: "untranslated-its", summary: "an ITS the SMMU does not translate (Hi161x-style quirk)",
                            platform: .preset(.qemuVirtUntranslatedITS)),
        ScenarioDescription(name: "host-64k", summary: "a 64K-page host (the MSI window holds 16 pages)",
                            host: HostOptions(pageSize: .size64K)),
        ScenarioDescription(name: "guest-64k", summary: "a 64K-page guest (its stage 1 uses the 64K granule)",
                            vm: VMOptions(guestPageSize: .size64K)),
        ScenarioDescription(name: "two-its", summary: "two ITSs, msi-map splits the RIDs: 00:01.0 → ITS 0, 01:00.0 → ITS 1",
                            platform: .preset(.qemuVirtTwoITS),
                            devices: [DeviceDescription(), DeviceDescription(requesterID: RequesterID(bus: 1, device: 0, function: 0))]),
        ScenarioDescription(name: "ram-at-msi-window", summary: "guest RAM at 0x0800_0000, over the host's MSI window",
                            vm: VMOptions(layout: .ramAtMSIWindow)),
        ScenarioDescription(name: "msi", summary: "plain MSI (4 vectors) instead of MSI-X", devices: [DeviceDescription(interrupts: .msi, vectors: 4)]),
        ScenarioDescription(name: "root-port", summary: "the seed with the function behind a guest pcie-root-port (hot-pluggable)",
                            vm: VMOptions(behindRootPorts: true)),
        ScenarioDescription(name: "msix-1", summary: "one MSI-X vector", devices: [DeviceDescription(vectors: 1)]),
        ScenarioDescription(name: "msix-64", summary: "64 MSI-X vectors", devices: [DeviceDescription(vectors: 64)]),
        seedGICv2m,
        seedGICv4,
    ]

    /// The seed on a GICv4.1 host (qemu-virt-gicv4: two CPUs, `gic: v4.1`): KVM forwards each
    /// vector whose route names the vITS as a vLPI (VMAPTI), so the device's MSI is written into
    /// the vCPU's virtual pending table without the host or KVM taking it.
    public static let seedGICv4 = ScenarioDescription(
        name: "seed-gicv4", summary: "the seed on a GICv4.1 host: MSIs forwarded as vLPIs (direct injection)",
        platform: .preset(.qemuVirtGICv4), host: HostOptions(gic: .v41))

    /// The built-in scenario named `name`.
    public static func named(_ name: String) -> ScenarioDescription? { all.first { $0.name == name } }
}
