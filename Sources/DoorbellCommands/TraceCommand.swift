import Firmware
import ArgumentParser
import Bus
import Report
import Scenario

/// `doorbell trace`: one MSI of one strategy, every step.
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "One MSI under one strategy, every step from the device's write to the guest's handler.",
        discussion: """
        Builds the scenario's world under the strategy, runs its event script up to the first \
        time the device fires the vector, and traces that MSI: the MSI-X entry, the requester-ID \
        maps, each SMMU fetch and descriptor read (address, value, meaning), the ITS table \
        lookups, the host's LPI and VFIO's eventfd, KVM's injection into the vITS with its own \
        table lookups, and the guest's handler. Mermaid output is a sequence diagram.
        """
    )

    /// `qemu-trace`: QEMU 7.2's smmuv3_*/smmu_*/gicv3_its_* trace events; `ftrace`: the host's
    /// and guest's irq_handler_entry/exit tracepoints (`QEMUTrace`).
    enum Format: String, ExpressibleByArgument, CaseIterable { case text, mermaid, json, qemuTrace = "qemu-trace", ftrace }

    @Argument(help: ArgumentHelp("A scenario file (YAML).", valueName: "file"))
    var file: String?

    @Option(help: ArgumentHelp("A built-in scenario instead of a file (\(BuiltInScenarios.all.map(\.name).joined(separator: ", "))).", valueName: "name"), completion: CommandLineCompletions.scenario)
    var scenario: String?

    @Option(help: ArgumentHelp("The strategy (\(Strategy.allCases.map(\.rawValue).joined(separator: ", "))); a scenario file that names exactly one strategy gives it.", valueName: "id"),
            completion: CommandLineCompletions.strategy, transform: CommandLineNames.strategy)
    var strategy: Strategy?

    @Option(help: "The device (index in the scenario's device list).")
    var device: Int = 0

    @Option(help: "The vector to trace.")
    var vector: Int = 0

    @OptionGroup var kernel: KernelReleaseOption

    @Option(help: "Output format: text, mermaid or json.")
    var format: Format = .text

    func validate() throws {
        guard (file == nil) != (scenario == nil) else { throw ValidationError("give a scenario file or --scenario NAME (one of them)") }
        guard device >= 0, vector >= 0 else { throw ValidationError("--device and --vector are not negative") }
    }

    func run() throws {
        let (loaded, platformTopology) = try loadScenario(file: file, builtIn: scenario)
        let description = kernel.apply(to: loaded)
        let strategy: Strategy
        if let chosen = self.strategy {
            strategy = chosen
        } else if description.strategies.count == 1 {
            strategy = description.strategies[0]
        } else {
            let why = description.strategies.isEmpty ? "runs every strategy" : "runs \(description.strategies.count) strategies"
            throw ValidationError("give --strategy ID: \(description.name) \(why) (one of \(Strategy.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard description.devices.indices.contains(device) else {
            throw ValidationError("the scenario has \(description.devices.count) device(s); --device \(device) does not exist")
        }
        guard vector < description.devices[device].activeVectors else {
            throw ValidationError("device \(device) has \(description.devices[device].activeVectors) vector(s); --vector \(vector) does not exist")
        }
        var traced = description
        // Without an event script, trace the vector's first MSI on a fresh world (so the SMMU's
        // walk shows, not a TLB hit left by other vectors).
        var script = description.events.isEmpty ? [] : description.script
        let step: Int
        if let index = script.firstIndex(of: .fire(device: device, vector: vector)) {
            step = index
        } else {
            script.append(.fire(device: device, vector: vector))
            step = script.count - 1
        }
        traced.events = Array(script.prefix(step + 1))
        let log = TraceLog()
        var firmware: [String] = []
        let run = ScenarioRunner.run(traced, strategy: strategy, platformTopology: platformTopology, traceStep: step, trace: log) { world, _ in
            firmware = world.guestFirmwareLines(device: device)
        }
        if let setup = run.setupFailure {
            // The model answered (this strategy cannot be set up here): exit 1, not usage.
            throw CommandFailure("\(strategy.rawValue) on \(description.name): the setup failed at \(setup.step): \(setup.error)\(setup.cause.map { ", because \($0)" } ?? "")")
        }
        let outcome = run.outcomes.last { $0.step == step }
        let records = log.records.filter { $0.kind != .mmioRead }
        switch format {
        case .text:
            print(TraceReport.text(scenario: description.name, strategy: strategy, device: device, vector: vector, firmware: firmware,
                                   records: records, outcome: outcome, run: run), terminator: "")
        case .json:
            print(TraceJSON.render(scenario: description.name, strategy: strategy, device: device, vector: vector, firmware: firmware,
                                   records: records, outcome: outcome, run: run), terminator: "")
        case .mermaid:
            print(TraceReport.mermaid(scenario: description.name, strategy: strategy, vector: vector, records: records, outcome: outcome),
                  terminator: "")
        case .qemuTrace:
            print(QEMUTrace.lines(log.journal).joined(separator: "\n"))
        case .ftrace:
            print(QEMUTrace.ftrace(log.journal).joined(separator: "\n"))
        }
    }
}

extension Strategy: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

/// A scenario from a file or the built-in catalogue, with the device tree blob its platform
/// needs.
func loadScenario(file: String?, builtIn: String?) throws -> (ScenarioDescription, Topology?) {
    let description: ScenarioDescription
    if let builtIn {
        description = try CommandLineNames.builtInScenario(builtIn)
    } else if let file {
        description = try loadScenarioFile(file)
    } else {
        throw ValidationError("no scenario")
    }
    var platformTopology: Topology?
    if case .deviceTree(let path) = description.platform {
        // A scenario file's platform that does not exist is an unusable input (exit 1), not a
        // usage error: the command line was right, the file it named is not.
        do { platformTopology = try PlatformFile.topology(at: path) } catch let error as ValidationError {
            throw CommandFailure("\(file ?? "scenario"): platform: \(error.message)")
        }
    }
    return (description, platformTopology)
}
