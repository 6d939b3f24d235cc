import ArgumentParser

/// The `doorbell` command: the root of every subcommand.
public struct Doorbell: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "doorbell",
        abstract: "Model, to the bit, how a PCIe MSI reaches an Arm CPU through an SMMUv3 and a GICv3 ITS.",
        discussion: "With no subcommand, `doorbell` follows one MSI on qemu-virt through nested translation to its LPI (`doorbell msi`).",
        subcommands: [MSICommand.self, WalkCommand.self, HostCommand.self, TopologyCommand.self, PresetsCommand.self],
        defaultSubcommand: MSICommand.self
    )
    public init() {}
}
