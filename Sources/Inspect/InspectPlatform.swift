import Firmware
import Machine

/// The machine the snapshot's firmware describes, as the model builds it: a device tree blob
/// through the DT reader, ACPI's IORT, MADT and MCFG through the ACPI reader (with the
/// default RAM map, flagged, since ACPI carries none; UEFI's memory map is not in sysfs).
public enum InspectPlatform {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func machine(_ snapshot: MachineSnapshot) throws(Failure) -> Machine {
        let topology: Topology
        switch snapshot.firmware {
        case .deviceTree(let bytes)?:
            do { topology = try Topology(dtb: bytes).withDefaultMemory() } catch {
                throw Failure(description: "sys/firmware/fdt: \(error)")
            }
        case .acpi(let tables)?:
            // An MADT whose interrupt controllers are x86's (type 0 Processor Local APIC, 1 I/O
            // APIC, 9 Local x2APIC; ACPI 6.5 §5.2.12) and no GIC structure is another
            // architecture's machine, said as such rather than as a missing GIC.
            if let madt = tables.madt, madt.giccs.isEmpty, madt.gicds.isEmpty,
               madt.structures.contains(where: { [0, 1, 9].contains($0.type) }) {
                throw Failure(description: "the MADT describes x86 interrupt controllers (Local APIC, I/O APIC), not a GIC: this is not an Arm machine")
            }
            do {
                var t = try Topology(acpi: tables, memory: tables.defaultMemory())
                t.memoryIsDefault = true
                topology = t
            } catch {
                throw Failure(description: "sys/firmware/acpi/tables: \(error)")
            }
        case nil:
            throw Failure(description: "no Arm firmware description: neither sys/firmware/fdt nor an ACPI IORT, APIC or MCFG table")
        }
        do { return try Machine(topology: topology, name: snapshot.source) } catch {
            throw Failure(description: "the firmware description does not make a machine the model can build: \(error)")
        }
    }
}
