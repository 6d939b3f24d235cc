import Foundation
import Inspect

extension InspectReport {
    struct Document: Encodable {
        var schema = JSONDocument.schema
        var command = "inspect"
        var form = "machine"
        var source: String
        @ReportJSON.Null var firmware: String?
        @ReportJSON.Null var release: String?
        @ReportJSON.Null var modelledAs: String?
        @ReportJSON.Null var defaultDomain: String?
        @ReportJSON.Null var commandLine: String?
        var missing: [String]
        var problems: [String]
        var notes: [String]
        var answered: Bool
        @ReportJSON.Null var failure: String?
        var functions: [Function]
        var disagreements: [Disagreement]

        enum CodingKeys: String, CodingKey {
            case schema, command, form, source, firmware, release, missing, problems, notes, answered, failure, functions, disagreements
            case modelledAs = "modelled-as", defaultDomain = "default-domain", commandLine = "command-line"
        }

    }

    struct Function: Encodable {
        var name: String
        @ReportJSON.Null var vendor: Int?
        @ReportJSON.Null var device: Int?
        @ReportJSON.Null var driver: String?
        @ReportJSON.Null var requesterID: Int?
        var streamIDs: [Int]
        @ReportJSON.Null var deviceID: Int?
        @ReportJSON.Null var its: String?
        var model: Side
        var machine: Side

        enum CodingKeys: String, CodingKey {
            case name, vendor, device, driver, model, machine, its
            case requesterID = "requester-id", streamIDs = "stream-ids", deviceID = "device-id"
        }

    }

    struct Side: Encodable {
        @ReportJSON.Null var group: Int?
        @ReportJSON.Null var groupType: String?
        var reservedRegions: [String]
        @ReportJSON.Null var mode: String?
        var vectors: [Vector]

        enum CodingKeys: String, CodingKey {
            case group, mode, vectors
            case groupType = "group-type", reservedRegions = "reserved-regions"
        }

    }

    struct Vector: Encodable {
        @ReportJSON.Null var index: Int?
        @ReportJSON.Null var irq: Int?
        @ReportJSON.Null var address: String?
        @ReportJSON.Null var data: Int?
        @ReportJSON.Null var lpi: Int?
        @ReportJSON.Null var chip: String?
        @ReportJSON.Null var hwirqRequesterID: Int?

        enum CodingKeys: String, CodingKey {
            case index, irq, address, data, lpi, chip
            case hwirqRequesterID = "hwirq-requester-id"
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
