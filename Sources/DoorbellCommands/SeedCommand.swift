import ArgumentParser
import Bus
import LinuxKernel
import Machine
import PCI
import Report
import SMMUv3
import VMM

/// `doorbell seed`: the seed thread's situation on qemu-virt — a 4-vector MSI-X function passed
/// through to a guest — in three guest shapes, and the failing one step by step.
struct SeedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract: "The seed's problem: a passthrough device's MSI under three guest shapes, with the nested failure step by step.",
        discussion: """
        Boots the host kernel model on qemu-virt, passes 00:01.0 (4 MSI-X vectors) through to a \
        guest with the VMM, boots the guest kernel model and lets it enable MSI-X, then fires \
        every vector. Shapes: no vIOMMU (stage 2 only), an accelerated vSMMU with a guest identity \
        domain, and an accelerated vSMMU with a guest DMA domain (nested) while the host behaves \
        as before v6.15 (strategy `legacy`). The last one is the seed's failure: the host \
        programs an MSI address the guest never mapped in its stage 1.
        """
    )

    @Option(help: "The host kernel behaviour for the nested shape: v6.14 (legacy, the seed) or v6.15.")
    var hostKernel: KernelConfiguration.Version = .v6_14

    @Option(help: "Output format: text or json.")
    var format: TextFormat = .text

    func run() throws {
        let report: SeedReport
        do { report = try SeedReport.make(nestedHost: hostKernel) } catch let usage as UsageFailure { throw ValidationError(usage.message) }
        print(format == .json ? JSONDocument.render(command: "seed", report: report.json) : report.text, terminator: "")
    }
}

