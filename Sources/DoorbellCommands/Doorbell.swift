import ArgumentParser

/// The `doorbell` command: the root of every subcommand.
public struct Doorbell: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "doorbell",
        abstract: "Model, to the bit, how a PCIe MSI reaches an Arm CPU through an SMMUv3 and a GICv3 ITS.",
        discussion: "With no subcommand, `doorbell` runs the seed: a passthrough device's MSI on qemu-virt under three guest shapes, and the nested failure step by step (`doorbell seed`).",
        subcommands: [MSICommand.self, WalkCommand.self, HostCommand.self, SeedCommand.self, TopologyCommand.self, PresetsCommand.self],
        defaultSubcommand: SeedCommand.self
    )
    public init() {}
}
