import ArgumentParser

/// The `doorbell` command: the root of every subcommand.
public struct Doorbell: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "doorbell",
        abstract: "Model, to the bit, how a PCIe MSI reaches an Arm CPU through an SMMUv3 and a GICv3 ITS.",
        discussion: "With no subcommand, `doorbell` runs the main job (`doorbell strategies`): the seed's passthrough device on qemu-virt under every proposed MSI strategy, side by side, and why the failing ones fail.",
        version: DoorbellVersion.string,
        subcommands: [StrategiesCommand.self, CompareCommand.self, RunCommand.self, TraceCommand.self, ExploreCommand.self, SeedCommand.self, MSICommand.self, WalkCommand.self,
                      HostCommand.self, InspectCommand.self, ReportCommand.self, TopologyCommand.self, PresetsCommand.self, ExplainCommand.self],
        defaultSubcommand: StrategiesCommand.self
    )
    public init() {}
}
