import Foundation
import Inspect

extension InspectReport {
    struct Document: Encodable {
        var schema = JSONDocument.schema
        var command = "inspect"
        var form = "machine"
        var source: String
        var firmware: String?
        var release: String?
        var modelledAs: String?
        var defaultDomain: String?
        var commandLine: String?
        var missing: [String]
        var problems: [String]
        var notes: [String]
        var answered: Bool
        var failure: String?
        var functions: [Function]
        var disagreements: [Disagreement]

        enum CodingKeys: String, CodingKey {
            case schema, command, form, source, firmware, release, missing, problems, notes, answered, failure, functions, disagreements
            case modelledAs = "modelled-as", defaultDomain = "default-domain", commandLine = "command-line"
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(schema, forKey: .schema)
            try c.encode(command, forKey: .command)
            try c.encode(form, forKey: .form)
            try c.encode(source, forKey: .source)
            try c.encode(firmware, forKey: .firmware)
            try c.encode(release, forKey: .release)
            try c.encode(modelledAs, forKey: .modelledAs)
            try c.encode(defaultDomain, forKey: .defaultDomain)
            try c.encode(commandLine, forKey: .commandLine)
            try c.encode(missing, forKey: .missing)
            try c.encode(problems, forKey: .problems)
            try c.encode(notes, forKey: .notes)
            try c.encode(answered, forKey: .answered)
            try c.encode(failure, forKey: .failure)
            try c.encode(functions, forKey: .functions)
            try c.encode(disagreements, forKey: .disagreements)
        }
    }

    struct Function: Encodable {
        var name: String
        var vendor: Int?
        var device: Int?
        var driver: String?
        var requesterID: Int?
        var streamIDs: [Int]
        var deviceID: Int?
        var its: String?
        var model: Side
        var machine: Side

        enum CodingKeys: String, CodingKey {
            case name, vendor, device, driver, model, machine, its
            case requesterID = "requester-id", streamIDs = "stream-ids", deviceID = "device-id"
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(vendor, forKey: .vendor)
            try c.encode(device, forKey: .device)
            try c.encode(driver, forKey: .driver)
            try c.encode(requesterID, forKey: .requesterID)
            try c.encode(streamIDs, forKey: .streamIDs)
            try c.encode(deviceID, forKey: .deviceID)
            try c.encode(its, forKey: .its)
            try c.encode(model, forKey: .model)
            try c.encode(machine, forKey: .machine)
        }
    }

    struct Side: Encodable {
        var group: Int?
        var groupType: String?
        var reservedRegions: [String]
        var mode: String?
        var vectors: [Vector]

        enum CodingKeys: String, CodingKey {
            case group, mode, vectors
            case groupType = "group-type", reservedRegions = "reserved-regions"
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(group, forKey: .group)
            try c.encode(groupType, forKey: .groupType)
            try c.encode(reservedRegions, forKey: .reservedRegions)
            try c.encode(mode, forKey: .mode)
            try c.encode(vectors, forKey: .vectors)
        }
    }

    struct Vector: Encodable {
        var index: Int?
        var irq: Int?
        var address: String?
        var data: Int?
        var lpi: Int?
        var chip: String?
        var hwirqRequesterID: Int?

        enum CodingKeys: String, CodingKey {
            case index, irq, address, data, lpi, chip
            case hwirqRequesterID = "hwirq-requester-id"
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(irq, forKey: .irq)
            try c.encode(address, forKey: .address)
            try c.encode(data, forKey: .data)
            try c.encode(lpi, forKey: .lpi)
            try c.encode(chip, forKey: .chip)
            try c.encode(hwirqRequesterID, forKey: .hwirqRequesterID)
        }
    }

    struct Disagreement: Encodable {
        var device: String
        var what: String
        var model: String
        var machine: String
        var kind: String
        var reason: String
    }

    /// `0x` and lowercase hex digits, no separators.
    static func plainHex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    /// The report as JSON (schema 2, `Schemas/doorbell.schema.json`: `command` inspect, `form` machine; sorted keys, every key present, `null` for absent values).
    public func json() throws -> String {
        var firmwareName: String?
        switch snapshot.firmware {
        case .deviceTree?: firmwareName = "device-tree"
        case .acpi?: firmwareName = "acpi"
        case nil: firmwareName = nil
        }
        let functions: [Function] = (comparison?.rows ?? []).map { row in
            let model = row.predicted
            return Function(
                name: row.name, vendor: row.vendor.map(Int.init), device: row.device.map(Int.init), driver: row.driver,
                requesterID: model.map { Int($0.requesterID.rawValue) }, streamIDs: model?.streamIDs.map(Int.init) ?? [],
                deviceID: model?.deviceID.map(Int.init), its: model?.its,
                model: Side(group: model?.group, groupType: model?.groupType, reservedRegions: model?.reservedRegions ?? [],
                            mode: model?.mode,
                            vectors: model?.vectors.map { Vector(index: $0.index, irq: nil, address: Self.plainHex($0.address), data: Int($0.data),
                                                                  lpi: $0.lpi.map(Int.init), chip: nil, hwirqRequesterID: nil) } ?? []),
                machine: Side(group: row.machineGroup, groupType: row.machineGroupType, reservedRegions: row.machineRegions,
                              mode: row.observed.first.map { $0.mode == "msix" ? "MSI-X" : "MSI" },
                              vectors: row.observed.map { Vector(index: $0.hwirq?.index, irq: $0.irq, address: $0.address.map(Self.plainHex),
                                                                 data: $0.data.map(Int.init), lpi: nil, chip: $0.chip,
                                                                 hwirqRequesterID: $0.hwirq?.requesterID.map(Int.init)) }))
        }
        let document = Document(
            source: snapshot.source, firmware: firmwareName, release: snapshot.release,
            modelledAs: prediction?.configuration.version.rawValue, defaultDomain: prediction?.configuration.defaultDomain.rawValue,
            commandLine: snapshot.commandLine?.text, missing: snapshot.missing, problems: snapshot.problems,
            notes: prediction?.notes ?? configurationNotes, answered: answered, failure: failure, functions: functions,
            disagreements: (comparison?.disagreements ?? []).map {
                Disagreement(device: $0.device, what: $0.what, model: $0.model, machine: $0.machine, kind: $0.kind.rawValue, reason: $0.reason)
            })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(document), as: UTF8.self)
    }
}
