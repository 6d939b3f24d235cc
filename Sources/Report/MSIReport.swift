import Bus
import GIC
import Machine
import PCI
import SMMUv3
import Testbed

/// The result of `doorbell msi`, kept apart from printing so tests can check it.
public struct MSIReport {
    /// How the SMMU treats the function's stream.
    public enum Translation: String, CaseIterable, Sendable {
        case bypass, s1, nested
    }

    public var text: String
    /// The INTID CPU 0 acknowledged (1023 when nothing was pending).
    public var acknowledged: UInt32
    public var expectedINTID: UInt32
    public var status: TransactionStatus?
    /// The MSI's journal, from the function's write to the redistributor (for
    /// `msi --format qemu-trace`).
    public var journal: [JournalEntry] = []
    /// The same as data: `doorbell msi --format json`.
    public var json: JSONValue = .null

    public static let msiIOVA: UInt64 = 0xFFFF_F040

    /// Brings `machine` up the way firmware would, with a 4-vector MSI-X function at `rid` under
    /// root complex `rcIndex`, programs `vector` and fires it.
    public static func make(machine: Machine, rcIndex: Int, rid: RequesterID, translation: Translation,
                            vector: Int, address: UInt64?) throws -> MSIReport {
        guard let gic = machine.gic else { throw CommandFailure("\(machine.name): no GIC") }
        do {
            return try make(machine: machine, gic: gic, rcIndex: rcIndex, rid: rid, translation: translation, vector: vector, address: address)
        } catch let failure as BareMetal.Failure {
            throw CommandFailure("\(machine.name): bring-up failed: \(failure)")
        }
    }

    static func make(machine: Machine, gic: GICv3, rcIndex: Int, rid: RequesterID, translation: Translation,
                     vector: Int, address: UInt64?) throws -> MSIReport {
        if let controller = machine.msiController(rootComplex: rcIndex, requesterID: rid) {
            switch controller {
            case .its: break
            case .v2m, .mbi:
                return try makeSPI(machine: machine, gic: gic, controller: controller, rcIndex: rcIndex, rid: rid,
                                   translation: translation, vector: vector, address: address)
            }
        }
        let bm = try BareMetal(machine: machine)
        try bm.enableLPIs()
        let rc = machine.rootComplexes[rcIndex]
        guard let bar = machine.firstBARAddress(rootComplex: rcIndex, size: 0x4000) else {
            throw CommandFailure("\(machine.name): \(rc.name)'s memory window has no room for a 16 KiB BAR")
        }
        let function = try bm.addMSIXEndpoint(requesterID: rid, vectors: 4, barAddress: bar, rootComplex: rcIndex)
        let route = rc.route(for: function)
        // The ITS the MSI is for: the one the MSI map names, else the first.
        var itsIndex = 0
        if case .mapped(_, let target, _)? = route.msiLookup, Int(target) < machine.topology.its.count {
            itsIndex = machine.topology.its[..<Int(target)].filter(\.enabled).count
        }
        itsIndex = min(itsIndex, machine.its.count - 1)
        let its = machine.its[itsIndex]
        try bm.enableITS(itsIndex)
        try bm.mapDevice(route.deviceID, events: 4, firstINTID: BareMetal.firstLPI, its: itsIndex)
        // On a pre-ITS SoC the function writes the DeviceID's pre-ITS slot; elsewhere
        // GITS_TRANSLATER, the DeviceID riding with the write.
        let doorbell = (machine.doorbell(its: itsIndex, deviceID: route.deviceID) ?? its.translaterAddress).rawValue
        let doorbellPage = doorbell & ~0xFFF
        var lines: [String] = []
        var messageAddress = doorbell
        if let smmuStream = route.streamID, let port = machine.translatedPorts[rcIndex],
           let smmuIndex = machine.smmus.firstIndex(where: { $0 === port.smmu }) {
            let programmed = try SMMUv3MSISetup.program(bm, smmu: smmuIndex, streamID: smmuStream, translation: translation,
                                                        doorbell: doorbell, iova: msiIOVA, page: "the ITS translation page", attributes: deviceAttributes)
            lines += programmed.lines
            messageAddress = programmed.messageAddress
            if machine.options.untranslatedITS, address == nil {
                messageAddress = doorbell
                lines.append("the ITS is not translated by the SMMU on this platform: the physical doorbell is programmed")
            }
        } else if let smmuStream = route.streamID, rcIndex < machine.smmuV2Ports.count, let port = machine.smmuV2Ports[rcIndex],
                  let smmuIndex = machine.smmuV2s.firstIndex(where: { $0 === port.smmu }) {
            lines += try SMMUv2MSISetup.program(bm, smmu: smmuIndex, streamID: smmuStream, translation: translation,
                                                doorbellPage: doorbellPage, attributes: deviceAttributes)
            if translation == .s1 { messageAddress = msiIOVA }
            if machine.options.untranslatedITS, address == nil {
                messageAddress = doorbell
                lines.append("the ITS is not translated by the SMMU on this platform: the physical doorbell is programmed")
            }
        } else {
            lines.append("no SMMU translates RID \(rid.hex): the message address is the physical doorbell")
        }
        if let address { messageAddress = address }
        let eventID = UInt32(vector)
        try bm.writeMSIXEntry(function, vector: vector, address: messageAddress, data: eventID)
        let (outcome, log, journal) = Self.raiseTraced(function, vector: vector, on: machine)
        let intid = gic.acknowledge(cpu: 0)
        if intid == 1023 { log.append(.cpu, "acknowledge", value: 1023, "CPU0 reads ICC_IAR1_EL1 = 1023: nothing pending (spurious)") }
        if intid != 1023 { gic.endOfInterrupt(cpu: 0, intid: intid) }
        machine.trace = nil

        var text = "Doorbell: one MSI on \(machine.name), from device write to CPU\n"
        text += "  function \(rid.hex) (RID) → StreamID \(route.streamID.map { "\($0)" } ?? "none (not behind the SMMU)"), DeviceID \(route.deviceID); ITS at \(its.base), GITS_TRANSLATER \(its.translaterAddress)\n"
        if let window = machine.preITS[itsIndex] {
            text += "  pre-ITS window \(window.base) size \(Hex.format(window.size, minDigits: 1)): DeviceID \(route.deviceID) is the slot at \(Hex.format(doorbell)), whoever writes it (MSI isolation is lost)\n"
        }
        text += "  ITS: DeviceID \(route.deviceID) EventIDs 0…3 → LPIs 8192…8195 on collection 0 (CPU 0)\n"
        for line in lines { text += "  \(line)\n" }
        text += "  MSI-X vector \(vector): address \(Hex.format(messageAddress)), data \(Hex.format(UInt64(eventID), minDigits: 1))\n\n"
        let records = log.records.filter { $0.kind != .mmioRead }
        text += TraceTable.render(records)
        let expected = BareMetal.firstLPI + eventID
        let result: String
        if intid == expected {
            result = "delivered: CPU 0 took LPI \(intid) (DeviceID \(route.deviceID), EventID \(eventID))"
        } else {
            result = "not delivered (CPU 0 read \(intid)); the write ended \(outcome.result.map { "\($0.status)" } ?? "unsent")"
        }
        text += "\nresult: " + result + "\n"
        var report = MSIReport(text: text, acknowledged: intid, expectedINTID: expected, status: outcome.result?.status, journal: journal.entries)
        report.json = .object([
            "platform": .string(machine.name), "translation": .string(translation.rawValue),
            "requester-id": .number(rid.rawValue), "stream-id": .number(route.streamID?.rawValue), "device-id": .number(route.deviceID.rawValue),
            "its": .object(["index": .number(itsIndex), "base": .address(its.base.rawValue), "translater": .address(its.translaterAddress.rawValue)]),
            "pre-its-window": machine.preITS[itsIndex].map { w in .object(["base": .address(w.base.rawValue), "size": .address(w.size),
                                                                          "slot": .address(doorbell)]) } ?? .null,
            "setup": .array(lines.map { .string($0) }),
            "vector": .number(vector), "address": .address(messageAddress), "data": .number(eventID),
            "records": .records(records),
            "delivered": .bool(intid == expected), "acknowledged": .number(intid), "expected-intid": .number(expected),
            "result": .string(result),
        ])
        return report
    }

    /// Raises `vector` with a trace and a journal attached to the machine and the function. The
    /// journal is detached again at once (it holds the MSI's path, from the function's write to
    /// the pending interrupt); the trace stays attached, so the caller's acknowledge joins it
    /// and the caller detaches it.
    static func raiseTraced(_ function: PCIFunction, vector: Int, on machine: Machine) -> (RequestOutcome, TraceLog, Journal) {
        let log = TraceLog()
        let journal = Journal()
        machine.trace = log
        machine.journal = journal
        function.trace = log
        let outcome = function.raise(vector: vector)
        machine.journal = nil
        return (outcome, log, journal)
    }

    /// Linux maps MSI doorbells IOMMU_WRITE | IOMMU_MMIO (iommu_dma_get_msi_page): write, no
    /// execute, Device memory (stage-1 AttrIndx 2 = Device-nGnRE in Linux's MAIR).
    static var deviceAttributes: PageAttributes {
        var a = PageAttributes()
        a.attributeIndex = 2
        return a
    }
}

