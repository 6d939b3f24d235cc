/// The PCI Express memory-mapped configuration space table (PCI Firmware Specification 3.3
/// §4.1.2, Table 4-2/4-3; ACPICA `ACPI_TABLE_MCFG`): 8 reserved bytes after the header, then
/// 16-byte allocation entries.
public struct MCFG: Hashable, Sendable, ACPIFieldDump {
    public var header: ACPITableHeader
    public var reserved: UInt64
    public var entries: [MCFGEntry]

    public init(header: ACPITableHeader = ACPITableHeader(signature: "MCFG", revision: 1), reserved: UInt64 = 0, entries: [MCFGEntry]) {
        self.header = header
        self.reserved = reserved
        self.entries = entries
    }

    /// Reads a MCFG; the entry area must be a whole number of 16-byte entries.
    public init(bytes: [UInt8]) throws(ACPIError) {
        let (header, t) = try ACPITableHeader.read(bytes, expected: "MCFG")
        let reserved = try t.u64(36, "header", 0, "Reserved")
        let area = t.count - 44
        guard area % 16 == 0 else {
            throw t.error("entry", 44 + area / 16 * 16, "Base Address", "\(area % 16) trailing bytes, not a 16-byte entry")
        }
        var entries: [MCFGEntry] = []
        for i in 0..<(area / 16) {
            let b = 44 + 16 * i
            entries.append(MCFGEntry(
                baseAddress: try t.u64(b, "entry", b, "Base Address"), segment: try t.u16(b + 8, "entry", b, "Segment Group Number"),
                startBus: try t.u8(b + 10, "entry", b, "Start Bus Number"), endBus: try t.u8(b + 11, "entry", b, "End Bus Number"),
                reserved: try t.u32(b + 12, "entry", b, "Reserved")))
        }
        self.init(header: header, reserved: reserved, entries: entries)
    }

    public func bytes() throws(ACPIError) -> [UInt8] {
        var w = ACPIByteWriter()
        header.write(into: &w)
        w.append(reserved)
        for e in entries {
            w.append(e.baseAddress); w.append(e.segment); w.append(e.startBus); w.append(e.endBus); w.append(e.reserved)
        }
        return try ACPITableHeader.finish(&w)
    }

    /// The table as `iasl -d` lists it.
    public var fields: [ACPIField] {
        var rows = header.fields
        rows.append(.hex(36, 8, "Reserved", reserved))
        for (i, e) in entries.enumerated() {
            let b = 44 + 16 * i
            rows += [.hex(b, 8, "Base Address", e.baseAddress), .hex(b + 8, 2, "Segment Group Number", UInt64(e.segment)),
                     .hex(b + 10, 1, "Start Bus Number", UInt64(e.startBus)), .hex(b + 11, 1, "End Bus Number", UInt64(e.endBus)),
                     .hex(b + 12, 4, "Reserved", UInt64(e.reserved))]
        }
        return rows
    }
}

/// One MCFG allocation: the ECAM base for bus 0 of the segment (even when `startBus` is not
/// 0: PCI Firmware Spec Table 4-3), the segment and the decoded bus range.
public struct MCFGEntry: Hashable, Sendable {
    public var baseAddress: UInt64
    public var segment: UInt16
    public var startBus: UInt8
    public var endBus: UInt8
    public var reserved: UInt32

    public init(baseAddress: UInt64, segment: UInt16, startBus: UInt8, endBus: UInt8, reserved: UInt32 = 0) {
        self.baseAddress = baseAddress
        self.segment = segment
        self.startBus = startBus
        self.endBus = endBus
        self.reserved = reserved
    }

    /// The ECAM window of buses start…end: base + start × 1 MiB, (end − start + 1) MiB; nil when
    /// end < start or the window passes 2^64.
    public var ecamWindow: (base: UInt64, size: UInt64)? {
        guard endBus >= startBus else { return nil }
        let offset = UInt64(startBus) << 20
        let size = UInt64(Int(endBus) - Int(startBus) + 1) << 20
        let (base, overflow) = baseAddress.addingReportingOverflow(offset)
        guard !overflow, base.addingReportingOverflow(size - 1).overflow == false else { return nil }
        return (base, size)
    }
}
