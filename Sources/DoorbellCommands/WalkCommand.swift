import ArgumentParser
import Bus
import Machine
import Report
import SMMUv3
import Testbed

/// `doorbell walk`: one DMA write translated by the SMMU, every descriptor read shown.
struct WalkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "walk",
        abstract: "Translate one DMA write through the SMMU and show every fetch and descriptor read.",
        discussion: """
        Builds the configuration on a fresh machine through the SMMU's own interface (stream \
        table, CD and page tables in RAM, commands through the command queue), sends one 4-byte \
        write from StreamID 0x8 and prints what the SMMU read to translate it, then sends it again \
        to show the TLB hit. Nested translation keeps the stage-1 tables and the CD in "guest RAM" \
        (IPA 0x4000_0000, backed by host RAM in the middle of the platform's largest RAM span: PA \
        0x6000_0000 on qemu-virt), so every stage-1 table address is itself \
        translated by stage 2.
        """
    )

    typealias Stage = WalkReport.Stage

    @OptionGroup var platform: PlatformOptions

    @Option(help: "Which stages translate: s1, s2 or nested (default: nested on an SMMUv3; on an Arm SMMUv1/v2, the stage Linux's DMA domain gets).")
    var stage: Stage?

    @Option(help: "Stage-1 granule (4K, 16K, 64K).")
    var granule = GranuleArgument(.size4K)

    @Option(name: .customLong("s2-granule"), help: "Stage-2 granule (4K, 16K, 64K).")
    var stage2Granule = GranuleArgument(.size4K)

    @Option(help: "The address the device writes (an IOVA; an IPA for --stage s2).")
    var address: HexNumber = HexNumber(0x1_2345_6040)

    @Option(help: "Output format: text or json.")
    var format: TextFormat = .text

    func run() throws {
        let report = try WalkReport.make(platform: platform, stage: stage, granule: granule.granule, stage2Granule: stage2Granule.granule, address: address.value)
        print(format == .json ? JSONDocument.render(command: "walk", report: report.json) : report.text, terminator: "")
    }
}
extension WalkReport.Stage: ExpressibleByArgument {}

extension WalkReport {
    /// The report on the platform the options name.
    static func make(platform: PlatformOptions, stage: Stage?, granule: Granule, stage2Granule: Granule, address: UInt64) throws -> WalkReport {
        let machine = try platform.makeMachine()
        do {
            return try make(machine: machine, stage: stage, granule: granule, stage2Granule: stage2Granule, address: address)
        } catch let usage as UsageFailure {
            throw ValidationError(usage.message)
        }
    }
}
