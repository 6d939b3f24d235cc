import ArgumentParser
import Firmware
import Foundation
import Inspect
import Report
import Scenario

/// `doorbell inspect [ROOT]`: read a machine's sysfs and procfs, build the model from the same
/// firmware, release, command line and devices, and print the prediction next to what the
/// machine shows, with every disagreement.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Read a real machine (or a snapshot of one), predict every device's MSI path, and list where model and machine disagree.",
        discussion: """
        ROOT is / (this machine), a directory laid out like one (ROOT/sys/…, ROOT/proc/…), or a \
        snapshot archive written by --snapshot. Read, whichever exist: /sys/firmware/fdt or \
        /sys/firmware/acpi/tables/{IORT,APIC,MCFG}; /sys/kernel/iommu_groups/*/{type,reserved_regions,devices/}; \
        /sys/bus/pci/devices/*/{vendor,device,class,config,irq,driver,iommu_group,msi_irqs/}; \
        /proc/interrupts, /proc/iomem, /proc/cmdline, /proc/sys/kernel/osrelease and \
        /boot/config-RELEASE. Missing files are listed; unreadable ones are named and the rest is read.

        Per PCI function: BDF, RID, StreamID, DeviceID, IOMMU group and its default domain type, \
        reserved regions, and each enabled vector's predicted address and data next to what the \
        machine shows (configuration space for MSI, the hwirq of /proc/interrupts for both). \
        Then every disagreement with the model's reason.

        --snapshot OUT.tar writes exactly the files and links read (links as link entries holding \
        their target text) and nothing else, for a bug report; `doorbell inspect OUT.tar` reads it back.

        Exit status: 0 when the model answered (disagreements are findings, listed); 1 when it \
        cannot model this machine (no Arm firmware description, no GICv3) or ROOT is unusable.
        """
    )

    @Argument(help: ArgumentHelp("The machine: / (default), a directory laid out like a root, or a snapshot archive.", valueName: "root"))
    var root: String = "/"

    @Option(help: ArgumentHelp("Write the files read to this tar archive (for a bug report).", valueName: "out.tar"))
    var snapshot: String?

    @Option(help: "Output format: text or json.")
    var format: InspectFormat = .text

    @Option(help: ArgumentHelp("Pass this function through to a VM (with an accelerated vSMMU, and without a vIOMMU) and run the strategies on it.", valueName: "BDF"))
    var passthrough: String?

    @Option(help: ArgumentHelp("With --passthrough: a strategy id (\(Strategy.allCases.map(\.rawValue).joined(separator: ", "))) or all.", valueName: "id|all"), completion: CommandLineCompletions.strategyOrAll)
    var strategy: String = "all"

    func validate() throws {
        if strategy != "all", Strategy(rawValue: strategy) == nil {
            throw ValidationError("unknown strategy '\(strategy)': one of \(Strategy.allCases.map(\.rawValue).joined(separator: ", ")), or all")
        }
        if strategy != "all", passthrough == nil { throw ValidationError("--strategy needs --passthrough") }
    }

    enum InspectFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    func run() throws {
        let source = try Self.open(root)
        let recorder = snapshot == nil ? nil : RecordingSnapshot(source)
        let machine = MachineSnapshot(recorder ?? source)
        let report = InspectReport(snapshot: machine)
        if let snapshot, let recorder {
            let bytes = recorder.archive()
            guard FileManager.default.createFile(atPath: snapshot, contents: Data(bytes)) else {
                throw CommandFailure("--snapshot \(snapshot): cannot write the archive there")
            }
            FileHandle.standardError.write(Data("inspect: wrote \(recorder.recorded.count) files and links (\(bytes.count) bytes) to \(snapshot)\n".utf8))
        }
        guard let passthrough else {
            switch format {
            case .text: print(report.text, terminator: "")
            case .json: print(try report.json())
            }
            if !report.answered { throw ExitCode(1) }
            return
        }
        guard let prediction = report.prediction else {
            print(report.text, terminator: "")
            throw ExitCode(1)
        }
        let strategies = strategy == "all" ? [] : [Strategy(rawValue: strategy)].compactMap { $0 }
        let whatIf: InspectPassthrough
        do { whatIf = try InspectPassthrough(snapshot: machine, prediction: prediction, device: passthrough, strategies: strategies) } catch {
            throw CommandFailure(error.description)
        }
        switch format {
        case .text: print(InspectPassthroughReport.text(whatIf), terminator: "")
        case .json: print(try InspectPassthroughReport.json(whatIf))
        }
    }

    /// The source ROOT names: a directory, or a regular file read as a tar archive.
    static func open(_ root: String) throws -> any SnapshotSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) else {
            throw CommandFailure("\(root): no such file or directory")
        }
        if isDirectory.boolValue { return DirectorySnapshot(root: root) }
        let bytes: [UInt8]
        do { bytes = try InputFile.read(root, maximumSize: SnapshotLimits.archive) } catch { throw CommandFailure("\(error)") }
        do { return try ArchiveSnapshot(name: root, bytes: bytes) } catch { throw CommandFailure(error.description) }
    }
}
