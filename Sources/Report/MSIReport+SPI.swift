import Bus
import GIC
import Machine
import PCI
import SMMUv3
import Testbed

/// `doorbell msi` where the function's MSIs are SPIs: a GICv2m frame (the message is the SPI
/// number written to MSI_SETSPI_NS, frame + 0x40) or a GICv3's MBIs (the SPI number written to
/// GICD_SETSPI_NSR, GICD + 0x40). The message is the one Linux composes
/// (`gicv2m_compose_msi_msg`, `mbi_compose_msi_msg`): address = the doorbell, or under a stage-1
/// DMA domain the IOVA `iommu_dma_prepare_msi` mapped the doorbell page at (`msiIOVA`, page
/// 0xFFFFF000, + the doorbell's offset 0x40); data = the SPI INTID. Vector v uses the frame's
/// (or first MBI range's) SPI base + v, the SPIs `bitmap_find_free_region` hands out first.
extension MSIReport {
    static func makeSPI(machine: Machine, gic: GICv3, controller: MSIController, rcIndex: Int, rid: RequesterID,
                        translation: Translation, vector: Int, address: UInt64?) throws -> MSIReport {
        let bm = try BareMetal(machine: machine)
        let rc = machine.rootComplexes[rcIndex]
        guard let bar = machine.firstBARAddress(rootComplex: rcIndex, size: 0x4000) else {
            throw CommandFailure("\(machine.name): \(rc.name)'s memory window has no room for a 16 KiB BAR")
        }
        let function = try bm.addMSIXEndpoint(requesterID: rid, vectors: 4, barAddress: bar, rootComplex: rcIndex)
        let route = rc.route(for: function)
        let doorbell: UInt64
        let firstSPI: UInt32
        let spiCount: UInt32
        let controllerLine: String
        switch controller {
        case .v2m(let frame):
            guard let base = frame.base?.adding(GICv2mMSIFrame.Offset.setspiNS) else { throw CommandFailure("\(machine.name): v2m frame not mapped") }
            doorbell = base.rawValue
            firstSPI = frame.baseSPI
            spiCount = frame.spiCount
            controllerLine = "GICv2m frame \(frame.number) at \(frame.base.map { "\($0)" } ?? "?"): MSI_TYPER = \(Hex.format(UInt64(frame.typer), minDigits: 8)) (SPIs \(frame.baseSPI)…\(UInt64(frame.baseSPI) + UInt64(frame.spiCount) &- 1)), MSI_SETSPI_NS \(Hex.format(doorbell))"
        case .mbi(let distributor, let ranges):
            guard let first = ranges.first, let base = distributor.adding(Distributor.MBIOffset.setspiNSR) else {
                throw CommandFailure("\(machine.name): no MBI range")
            }
            doorbell = base.rawValue
            firstSPI = first.base
            spiCount = first.count
            controllerLine = "GICv3 MBIs: GICD_TYPER.MBIS = 1, mbi-ranges SPIs \(first.base)…\(UInt64(first.base) + UInt64(first.count) &- 1), GICD_SETSPI_NSR \(Hex.format(doorbell))"
        case .its:
            throw CommandFailure("\(machine.name): internal: an ITS is not an SPI controller")
        }
        guard spiCount > UInt32(clamping: vector) else {
            throw CommandFailure("\(machine.name): vector \(vector) needs SPI \(UInt64(firstSPI) + UInt64(vector)), beyond the controller's \(spiCount) SPIs")
        }
        let spi = firstSPI + UInt32(vector)
        try bm.enableMSISPI(spi)
        let pageOffset = doorbell & 0xFFF
        let iova = (msiIOVA & ~0xFFF) | pageOffset
        var lines: [String] = [controllerLine]
        var messageAddress = doorbell
        if let smmuStream = route.streamID, let port = machine.translatedPorts[rcIndex],
           let smmuIndex = machine.smmus.firstIndex(where: { $0 === port.smmu }) {
            let programmed = try SMMUv3MSISetup.program(bm, smmu: smmuIndex, streamID: smmuStream, translation: translation,
                                                        doorbell: doorbell, iova: iova, page: "the doorbell page, iommu_dma_prepare_msi", attributes: deviceAttributes)
            lines += programmed.lines
            messageAddress = programmed.messageAddress
        } else if let smmuStream = route.streamID, rcIndex < machine.smmuV2Ports.count, let port = machine.smmuV2Ports[rcIndex],
                  let smmuIndex = machine.smmuV2s.firstIndex(where: { $0 === port.smmu }) {
            // An Arm SMMUv1/v2 in front of the frame (Juno's MMU-401): the doorbell page mapped at
            // the MSI IOVA in the bank the DMA domain got, as `iommu_dma_prepare_msi` does.
            lines += try SMMUv2MSISetup.program(bm, smmu: smmuIndex, streamID: smmuStream, translation: translation,
                                                doorbellPage: doorbell & ~0xFFF, page: "the doorbell page, iommu_dma_prepare_msi",
                                                attributes: deviceAttributes)
            if translation == .s1 { messageAddress = iova }
        } else {
            lines.append("no SMMU translates RID \(rid.hex): the message address is the physical doorbell")
        }
        if let address { messageAddress = address }
        try bm.writeMSIXEntry(function, vector: vector, address: messageAddress, data: spi)
        let (outcome, log, journal) = Self.raiseTraced(function, vector: vector, on: machine)
        let intid = try bm.acknowledgeAndEnd()
        let register = gic.configuration.version == 2 ? "GICC_IAR" : "ICC_IAR1_EL1"
        log.append(.cpu, "acknowledge", value: UInt64(intid),
                   intid == 1023 ? "CPU0 reads \(register) = 1023: nothing pending (spurious)" : "CPU0 reads \(register) = \(intid), then ends it")
        machine.trace = nil

        var text = "Doorbell: one MSI on \(machine.name), from device write to CPU\n"
        text += "  function \(rid.hex) (RID) → StreamID \(route.streamID.map { "\($0)" } ?? "none (not behind the SMMU)"); the MSI is an SPI\n"
        for line in lines { text += "  \(line)\n" }
        text += "  MSI-X vector \(vector): address \(Hex.format(messageAddress)), data \(Hex.format(UInt64(spi), minDigits: 1)) (SPI \(spi))\n\n"
        let records = log.records.filter { $0.kind != .mmioRead }
        text += TraceTable.render(records)
        let result: String
        if intid == spi {
            result = "delivered: CPU 0 took SPI \(spi)"
        } else {
            result = "not delivered (CPU 0 read \(intid)); the write ended \(outcome.result.map { "\($0.status)" } ?? "unsent")"
        }
        text += "\nresult: " + result + "\n"
        let controllerName: String
        if case .v2m = controller { controllerName = "gicv2m" } else { controllerName = "mbi" }
        var report = MSIReport(text: text, acknowledged: intid, expectedINTID: spi, status: outcome.result?.status, journal: journal.entries)
        report.json = .object([
            "platform": .string(machine.name), "translation": .string(translation.rawValue),
            "requester-id": .number(rid.rawValue), "stream-id": .number(route.streamID?.rawValue), "device-id": .number(route.deviceID.rawValue),
            "its": .null, "pre-its-window": .null,
            "spi-controller": .string(controllerName),
            "doorbell": .address(doorbell),
            "setup": .array(lines.map { .string($0) }),
            "vector": .number(vector), "address": .address(messageAddress), "data": .number(spi),
            "records": .records(records),
            "delivered": .bool(intid == spi), "acknowledged": .number(intid), "expected-intid": .number(spi),
            "result": .string(result),
        ])
        return report
    }
}
