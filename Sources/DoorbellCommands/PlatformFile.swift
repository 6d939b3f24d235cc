import ArgumentParser
import Bus
import Firmware
import Foundation
import Machine
import Report

/// A platform description named by path, recognised by its contents rather than its name:
/// - a flattened device tree starts with the magic 0xd00dfeed (Devicetree Specification v0.4
///   §5.2), so `/sys/firmware/fdt` and a blob called anything work alike;
/// - an ACPI table starts with its signature (ACPI 6.5 §5.2.6): IORT, APIC (the MADT) or MCFG;
/// - a directory is a set of ACPI tables laid out like `/sys/firmware/acpi/tables`, each file
///   recognised by its signature (others, such as DSDT, ignored).
/// Every file is read with a bound and only when it is a regular file (`InputFile.read`, under
/// `InputLimits`), so a device or FIFO named as a platform is refused, not read forever.
struct PlatformFile {
    var topology: Topology
    /// The ACPI tables, when the description is ACPI.
    var acpi: ACPITableSet?

    static func load(_ path: String) throws -> PlatformFile {
        // Neither a preset nor an existing file: the argument itself is wrong (usage, exit 64).
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("unknown platform '\(SafeText.escape(path))': not a preset (\(MachinePreset.allCases.map(\.rawValue).joined(separator: ", "))) and no such file")
        }
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        var tables = ACPITableSet()
        if isDirectory.boolValue {
            do { tables = try ACPITableSet(contentsOf: path) } catch { throw CommandFailure("\(error)") }
        } else {
            let bytes: [UInt8]
            do { bytes = try ACPITableSet.read(path) } catch { throw CommandFailure("\(error)") }
            if bytes.count >= 4, bytes[0] == 0xD0, bytes[1] == 0x0D, bytes[2] == 0xFE, bytes[3] == 0xED {
                do { return PlatformFile(topology: try Topology(dtb: bytes).withDefaultMemory()) } catch { throw CommandFailure("\(path): \(error)") }
            }
            guard ["IORT", "APIC", "MCFG"].contains(ACPITableHeader.signature(of: bytes)) else {
                throw CommandFailure("\(path): not a platform description: neither a device tree (magic 0xd00dfeed) nor an ACPI IORT, APIC or MCFG table")
            }
            do { try tables.add(bytes, name: path) } catch { throw CommandFailure("\(error)") }
        }
        guard tables.iort != nil || tables.madt != nil || tables.mcfg != nil else {
            throw CommandFailure("\(path): a directory with no IORT, APIC (MADT) or MCFG table in it (a directory is read as a set of ACPI tables)")
        }
        do {
            // ACPI carries no RAM map (it is in UEFI's memory map): a default that overlaps
            // nothing the tables describe, flagged as such.
            var topology = try Topology(acpi: tables, memory: tables.defaultMemory())
            topology.memoryIsDefault = true
            return PlatformFile(topology: topology, acpi: tables)
        } catch {
            throw CommandFailure("\(path): \(error)")
        }
    }

    /// The description's topology (see `load`).
    static func topology(at path: String) throws -> Topology {
        try load(path).topology
    }
}
