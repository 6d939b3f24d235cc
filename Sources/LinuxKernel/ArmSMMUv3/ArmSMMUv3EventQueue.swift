import Bus
import SMMUv3

/// `arm_smmu_evtq_thread`: the event-queue interrupt's threaded handler. The model has no
/// interrupt thread, so whoever expects events (a test, the scenario runner) calls
/// `serviceEventQueue()` as the IRQ would.
extension ArmSMMUv3Driver {
    /// Reads every record between CONS and the hardware PROD (`queue_remove_raw`: read the
    /// slot, advance CONS, write CONS back each time), decodes it with `EventRecord`, keeps it
    /// in `events` and logs it as `arm_smmu_dump_event` does ("event 0x10 received:" and the
    /// four raw qwords, then a decoded line). PROD is re-read after the queue drains
    /// (`queue_sync_prod_in`); an overflow flag differing from CONS's logs "EVTQ overflow
    /// detected -- events lost", and CONS.OVACKFLG is then made equal to PROD.OVFLG
    /// (`queue_sync_cons_ovf`). Returns the records read by this call.
    @discardableResult
    public func serviceEventQueue() throws(Errno) -> [EventRecord] {
        guard var queue = eventQueue else { throw .ENODEV }
        var read: [EventRecord] = []
        let pointerMask = queue.entries | (queue.entries &- 1) | ArmSMMUv3Queue.overflowFlag
        var rounds = 0
        repeat {
            // `queue_sync_prod_in`.
            let prod = try read32(SMMURegisterOffset.eventqProd) & pointerMask
            if (prod ^ queue.prod) & ArmSMMUv3Queue.overflowFlag != 0 {
                log("EVTQ overflow detected -- events lost")
                eventQueueOverflows += 1
            }
            queue.prod = prod
            var budget = Int(queue.entries)
            while !queue.isEmpty && budget > 0 {
                budget -= 1
                let slot = queue.slot(queue.cons)
                var words: [UInt64] = []
                for i in 0..<4 { words.append(try readQword(PhysicalAddress(slot.rawValue &+ UInt64(i) * 8))) }
                queue.cons = queue.advanced(queue.cons)
                try write32(SMMURegisterOffset.eventqCons, queue.cons)
                eventQueue = queue
                let record = EventRecord(words[0], words[1], words[2], words[3])
                read.append(record)
                events.append(record)
                dumpEvent(record, words: words)
            }
            rounds += 1
        } while !queue.isEmpty && rounds < 4
        // `queue_sync_cons_ovf`.
        if (queue.prod ^ queue.cons) & ArmSMMUv3Queue.overflowFlag != 0 {
            queue.cons = (queue.prod & ArmSMMUv3Queue.overflowFlag) | (queue.cons & ~ArmSMMUv3Queue.overflowFlag)
            try write32(SMMURegisterOffset.eventqCons, queue.cons)
        }
        eventQueue = queue
        return read
    }

    /// `arm_smmu_dump_event` (the raw form every kernel prints, plus a decoded line with the
    /// event name, StreamID, SSID, input address and, for stage-2 faults, the IPA).
    func dumpEvent(_ record: EventRecord, words: [UInt64]) {
        log("event 0x\(String(format2: record.eventID)) received:")
        for word in words { log("\t0x\(hex16(word))") }
        let name = record.type.map { "\($0.name)" } ?? "UNKNOWN"
        var line = "event: \(name) client: \(clientName(record.streamID)) sid: 0x\(String(record.streamID.rawValue, radix: 16))"
        line += " ssid: 0x\(String(record.substreamID?.rawValue ?? 0, radix: 16))"
        line += " iova: 0x\(String(record.inputAddress, radix: 16))"
        if let ipa = record.ipa { line += " ipa: 0x\(String(ipa.rawValue, radix: 16))" }
        line += record.read ? " read" : " write"
        if record.stage2 { line += " S2" }
        log(line)
    }

    /// The device name owning a StreamID (`arm_smmu_find_master`), or "(unassigned sid)".
    func clientName(_ sid: StreamID) -> String {
        streams[sid.rawValue]?.device.name ?? "(unassigned sid)"
    }
}

extension String {
    /// Two lowercase hex digits ("%02x").
    init(format2 value: UInt8) {
        let digits = String(value, radix: 16)
        self = digits.count < 2 ? "0" + digits : digits
    }
}
