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
            let prod = try read32(eventQueueProdRegister) & pointerMask
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
                try write32(eventQueueConsRegister, queue.cons)
                eventQueue = queue
                let record = EventRecord(words[0], words[1], words[2], words[3])
                read.append(record)
                events.append(record)
                // arm_smmu_evtq_thread: `if (arm_smmu_handle_event(…)) arm_smmu_dump_event(…)`.
                do throws(Errno) {
                    try handleEvent(record, words: words)
                    forwardedEvents += 1
                } catch {
                    dumpEvent(record, words: words)
                }
            }
            rounds += 1
        } while !queue.isEmpty && rounds < 4
        // `queue_sync_cons_ovf`.
        if (queue.prod ^ queue.cons) & ArmSMMUv3Queue.overflowFlag != 0 {
            queue.cons = (queue.prod & ArmSMMUv3Queue.overflowFlag) | (queue.cons & ~ArmSMMUv3Queue.overflowFlag)
            try write32(eventQueueConsRegister, queue.cons)
        }
        eventQueue = queue
        return read
    }

    /// `arm_smmu_dump_event` (v6.15+; for every event `arm_smmu_handle_event` did not hand to
    /// a vIOMMU — stalls are not modelled): `arm_smmu_dump_raw_event` ("event 0x%02x received:" and the four raw
    /// qwords), then for F_TRANSLATION/F_ADDR_SIZE/F_ACCESS/F_PERMISSION
    /// "event: %s client: %s sid: %#x ssid: %#x iova: %#llx ipa: %#llx" and
    /// "%s %s %s %s \"%s\"%s%s stag: %#x" (priv/unpriv, inst/data, read/write, s1/s2, the CLASS
    /// string, " ttd_read"/" ttd_write" for a permission fault on a table walk, " stall");
    /// for F_STE_FETCH/F_CD_FETCH/F_VMS_FETCH "… fetch_addr: %#llx"; otherwise the first part.
    /// Names come from Linux's `event_str` (others print "UNKNOWN"); ipa is raw[3] & [51:12],
    /// fetch_addr raw[3] & [51:3]; `%#x` prints 0 as "0".
    func dumpEvent(_ record: EventRecord, words: [UInt64]) {
        log("event 0x\(String(format2: record.eventID)) received:")
        for word in words { log("\t0x\(hex16(word))") }
        let id = record.eventID
        let name = Self.linuxEventNames[Int(id)] ?? "UNKNOWN"
        let ssid = words[0].bit(11) ? words[0].bits(31, 12) : 0
        let head = "event: \(name) client: \(clientName(record.streamID)) sid: \(alternateHex(words[0].bits(63, 32))) ssid: \(alternateHex(ssid))"
        switch id {
        case 0x10, 0x11, 0x12, 0x13:
            log(head + " iova: \(alternateHex(words[2])) ipa: \(alternateHex(words[3].keepingBits(51, 12)))")
            let classNames = ["CD fetch", "Stage 1 translation table fetch", "Input address caused fault", "Reserved"]
            let faultClass = Int(words[1].bits(41, 40))
            var ttd = ""
            if id == 0x13 && faultClass == 1 { ttd = words[1].bit(44) ? " ttd_read" : " ttd_write" }
            let line = "\(words[1].bit(33) ? "priv" : "unpriv") \(words[1].bit(34) ? "inst" : "data") "
                + "\(words[1].bit(35) ? "read" : "write") \(words[1].bit(39) ? "s2" : "s1") \"\(classNames[faultClass])\""
                + ttd + (words[1].bit(31) ? " stall" : "") + " stag: \(alternateHex(words[1].bits(15, 0)))"
            log(line)
        case 0x03, 0x09, 0x25:
            log(head + " fetch_addr: \(alternateHex(words[3].keepingBits(51, 3)))")
        default:
            log(head)
        }
    }

    /// Linux's `event_str`.
    static let linuxEventNames: [Int: String] = [
        0x02: "C_BAD_STREAMID", 0x03: "F_STE_FETCH", 0x04: "C_BAD_STE", 0x06: "F_STREAM_DISABLED",
        0x08: "C_BAD_SUBSTREAMID", 0x09: "F_CD_FETCH", 0x0A: "C_BAD_CD", 0x10: "F_TRANSLATION",
        0x11: "F_ADDR_SIZE", 0x12: "F_ACCESS", 0x13: "F_PERMISSION", 0x25: "F_VMS_FETCH",
    ]

    /// printf's `%#x` / `%#llx`: "0x…" except for zero, which prints "0".
    func alternateHex(_ value: UInt64) -> String {
        value == 0 ? "0" : "0x" + String(value, radix: 16)
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
