import ArgumentParser

/// The `doorbell` command: the root of every subcommand.
public struct Doorbell: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "doorbell",
        abstract: "Model, to the bit, how a PCIe MSI reaches an Arm CPU through an SMMUv3 and a GICv3 ITS.",
        subcommands: []
    )
    public init() {}
    public func run() throws {
        print("doorbell: nothing to run yet")
    }
}
