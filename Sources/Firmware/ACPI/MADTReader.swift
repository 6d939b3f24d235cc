extension MADT {
    /// Reads a MADT: the GIC structures decoded, others kept as bytes. A structure whose
    /// length is below 2, below its type's minimum, or runs past the table is an error naming
    /// its offset.
    public init(bytes: [UInt8]) throws(ACPIError) {
        let (header, t) = try ACPITableHeader.read(bytes, expected: "APIC")
        let address = try t.u32(36, "header", 0, "Local Apic Address")
        let flags = try t.u32(40, "header", 0, "Flags")
        var structures: [MADTStructure] = []
        var at = 44
        while at < t.count {
            let s = "structure"
            let type = try t.u8(at, s, at, "Subtable Type")
            let length = Int(try t.u8(at + 1, s, at, "Length"))
            guard length >= 2 else { throw t.error(s, at, "Length", "\(length) below the 2-byte structure header") }
            guard t.count - at >= length else {
                throw t.error(s, at, "Length", "\(ACPIHex.format(length)) runs past table end \(ACPIHex.format(t.count))")
            }
            func need(_ minimum: Int, _ name: String) throws(ACPIError) {
                guard length >= minimum else {
                    throw t.error("\(name) structure", at, "Length", "\(length) below the \(minimum) bytes of a \(name)")
                }
            }
            let b = at
            let name: String
            let decoded: Int
            let kind: MADTStructure.Kind
            switch type {
            case 0x0B:
                name = "GICC"; try need(76, name)
                kind = .gicc(MADTGICC(
                    reserved: try t.u16(b + 2, name, b, "Reserved"), cpuInterfaceNumber: try t.u32(b + 4, name, b, "CPU Interface Number"),
                    uid: try t.u32(b + 8, name, b, "Processor UID"), flags: try t.u32(b + 12, name, b, "Flags"),
                    parkingProtocolVersion: try t.u32(b + 16, name, b, "Parking Protocol Version"),
                    performanceInterrupt: try t.u32(b + 20, name, b, "Performance Interrupt"),
                    parkedAddress: try t.u64(b + 24, name, b, "Parked Address"),
                    physicalBaseAddress: try t.u64(b + 32, name, b, "Base Address"),
                    gicvBaseAddress: try t.u64(b + 40, name, b, "Virtual GIC Base Address"),
                    gichBaseAddress: try t.u64(b + 48, name, b, "Hypervisor GIC Base Address"),
                    vgicMaintenanceInterrupt: try t.u32(b + 56, name, b, "Virtual GIC Interrupt"),
                    gicrBaseAddress: try t.u64(b + 60, name, b, "Redistributor Base Address"),
                    mpidr: try t.u64(b + 68, name, b, "ARM MPIDR"),
                    efficiencyClass: length >= 78 ? try t.u8(b + 76, name, b, "Efficiency Class") : nil,
                    reserved2: length >= 78 ? try t.u8(b + 77, name, b, "Reserved") : nil,
                    speOverflowInterrupt: length >= 80 ? try t.u16(b + 78, name, b, "SPE Overflow Interrupt") : nil,
                    trbeInterrupt: length >= 82 ? try t.u16(b + 80, name, b, "TRBE Interrupt") : nil))
                decoded = length >= 82 ? 82 : length >= 80 ? 80 : length >= 78 ? 78 : 76
            case 0x0C:
                name = "GICD"; try need(24, name)
                kind = .gicd(MADTGICD(
                    reserved: try t.u16(b + 2, name, b, "Reserved"), gicID: try t.u32(b + 4, name, b, "Local GIC Hardware ID"),
                    baseAddress: try t.u64(b + 8, name, b, "Base Address"), systemVectorBase: try t.u32(b + 16, name, b, "Interrupt Base"),
                    version: try t.u8(b + 20, name, b, "Version"), reserved2: try t.slice(b + 21, 3, name, b, "Reserved")))
                decoded = 24
            case 0x0D:
                name = "GIC MSI frame"; try need(24, name)
                kind = .msiFrame(MADTGICMSIFrame(
                    reserved: try t.u16(b + 2, name, b, "Reserved"), frameID: try t.u32(b + 4, name, b, "MSI Frame ID"),
                    baseAddress: try t.u64(b + 8, name, b, "Base Address"), flags: try t.u32(b + 16, name, b, "Flags"),
                    spiCount: try t.u16(b + 20, name, b, "SPI Count"), spiBase: try t.u16(b + 22, name, b, "SPI Base")))
                decoded = 24
            case 0x0E:
                name = "GICR"; try need(16, name)
                kind = .gicr(MADTGICR(reserved: try t.u16(b + 2, name, b, "Reserved"),
                                      baseAddress: try t.u64(b + 4, name, b, "Base Address"), length: try t.u32(b + 12, name, b, "Length")))
                decoded = 16
            case 0x0F:
                name = "GIC ITS"; try need(20, name)
                kind = .its(MADTGICITS(reserved: try t.u16(b + 2, name, b, "Reserved"),
                                       translationID: try t.u32(b + 4, name, b, "Translation ID"),
                                       baseAddress: try t.u64(b + 8, name, b, "Base Address"), reserved2: try t.u32(b + 16, name, b, "Reserved")))
                decoded = 20
            default:
                kind = .other(type: type, body: try t.slice(b + 2, length - 2, "structure", b, "body"))
                decoded = length
            }
            structures.append(MADTStructure(offset: at, kind: kind, extra: try t.slice(b + decoded, length - decoded, "structure", b, "trailing bytes")))
            at += length
        }
        self.init(header: header, localInterruptControllerAddress: address, flags: flags, structures: structures)
    }

    /// The table's bytes: structures in order, each at its decoded length plus `extra`.
    /// Throws when a structure would exceed 255 bytes.
    public func bytes() throws(ACPIError) -> [UInt8] {
        var w = ACPIByteWriter()
        header.write(into: &w)
        w.append(localInterruptControllerAddress)
        w.append(flags)
        for structure in structures {
            var body = ACPIByteWriter()
            switch structure.kind {
            case .gicc(let c):
                body.append(c.reserved); body.append(c.cpuInterfaceNumber); body.append(c.uid); body.append(c.flags)
                body.append(c.parkingProtocolVersion); body.append(c.performanceInterrupt); body.append(c.parkedAddress)
                body.append(c.physicalBaseAddress); body.append(c.gicvBaseAddress); body.append(c.gichBaseAddress)
                body.append(c.vgicMaintenanceInterrupt); body.append(c.gicrBaseAddress); body.append(c.mpidr)
                // Each later field only when every earlier one is present (the length implies them).
                if let e = c.efficiencyClass {
                    body.append(e); body.append(c.reserved2 ?? 0)
                    if let spe = c.speOverflowInterrupt {
                        body.append(spe)
                        if let trbe = c.trbeInterrupt { body.append(trbe) }
                    }
                }
            case .gicd(let d):
                body.append(d.reserved); body.append(d.gicID); body.append(d.baseAddress); body.append(d.systemVectorBase)
                body.append(d.version); body.ascii(d.reserved2, width: 3, pad: 0)
            case .msiFrame(let f):
                body.append(f.reserved); body.append(f.frameID); body.append(f.baseAddress); body.append(f.flags)
                body.append(f.spiCount); body.append(f.spiBase)
            case .gicr(let r):
                body.append(r.reserved); body.append(r.baseAddress); body.append(r.length)
            case .its(let i):
                body.append(i.reserved); body.append(i.translationID); body.append(i.baseAddress); body.append(i.reserved2)
            case .other(_, let raw):
                body.append(raw)
            }
            body.append(structure.extra)
            guard body.bytes.count + 2 <= 255 else {
                throw ACPIError(signature: "APIC", structure: "structure", offset: w.bytes.count, field: "Length",
                                problem: "\(body.bytes.count + 2) bytes do not fit the 1-byte length")
            }
            w.append(structure.type)
            w.append(UInt8(body.bytes.count + 2))
            w.append(body.bytes)
        }
        return try ACPITableHeader.finish(&w)
    }

    /// The table as `iasl -d` lists it (ACPICA `AcpiDmDumpMadt`); structures other than the
    /// GIC ones are listed by their type and length only.
    public var fields: [ACPIField] {
        var rows = header.fields
        rows.append(.hex(36, 4, "Local Apic Address", UInt64(localInterruptControllerAddress)))
        rows.append(.hex(40, 4, "Flags (decoded below)", UInt64(flags)))
        for s in structures {
            let b = s.offset
            rows.append(.hex(b, 1, "Subtable Type", UInt64(s.type)))
            let length: Int
            switch s.kind {
            case .gicc(let c): length = 76 + (c.efficiencyClass == nil ? 0 : 2) + (c.speOverflowInterrupt == nil ? 0 : 2) + (c.trbeInterrupt == nil ? 0 : 2)
            case .gicd: length = 24
            case .msiFrame: length = 24
            case .gicr: length = 16
            case .its: length = 20
            case .other(_, let body): length = 2 + body.count
            }
            rows.append(.hex(b + 1, 1, "Length", UInt64(length + (s.kind.isOther ? 0 : s.extra.count))))
            switch s.kind {
            case .gicc(let c):
                rows += [
                    .hex(b + 2, 2, "Reserved", UInt64(c.reserved)), .hex(b + 4, 4, "CPU Interface Number", UInt64(c.cpuInterfaceNumber)),
                    .hex(b + 8, 4, "Processor UID", UInt64(c.uid)), .hex(b + 12, 4, "Flags (decoded below)", UInt64(c.flags)),
                    .hex(b + 16, 4, "Parking Protocol Version", UInt64(c.parkingProtocolVersion)),
                    .hex(b + 20, 4, "Performance Interrupt", UInt64(c.performanceInterrupt)),
                    .hex(b + 24, 8, "Parked Address", c.parkedAddress), .hex(b + 32, 8, "Base Address", c.physicalBaseAddress),
                    .hex(b + 40, 8, "Virtual GIC Base Address", c.gicvBaseAddress),
                    .hex(b + 48, 8, "Hypervisor GIC Base Address", c.gichBaseAddress),
                    .hex(b + 56, 4, "Virtual GIC Interrupt", UInt64(c.vgicMaintenanceInterrupt)),
                    .hex(b + 60, 8, "Redistributor Base Address", c.gicrBaseAddress), .hex(b + 68, 8, "ARM MPIDR", c.mpidr),
                ]
                if let e = c.efficiencyClass { rows += [.hex(b + 76, 1, "Efficiency Class", UInt64(e)), .hex(b + 77, 1, "Reserved", UInt64(c.reserved2 ?? 0))] }
                if let spe = c.speOverflowInterrupt { rows.append(.hex(b + 78, 2, "SPE Overflow Interrupt", UInt64(spe))) }
                if let trbe = c.trbeInterrupt { rows.append(.hex(b + 80, 2, "TRBE Interrupt", UInt64(trbe))) }
            case .gicd(let d):
                rows += [
                    .hex(b + 2, 2, "Reserved", UInt64(d.reserved)), .hex(b + 4, 4, "Local GIC Hardware ID", UInt64(d.gicID)),
                    .hex(b + 8, 8, "Base Address", d.baseAddress), .hex(b + 16, 4, "Interrupt Base", UInt64(d.systemVectorBase)),
                    .hex(b + 20, 1, "Version", UInt64(d.version)),
                    .hex(b + 21, 3, "Reserved", d.reserved2.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }),
                ]
            case .msiFrame(let f):
                rows += [
                    .hex(b + 2, 2, "Reserved", UInt64(f.reserved)), .hex(b + 4, 4, "MSI Frame ID", UInt64(f.frameID)),
                    .hex(b + 8, 8, "Base Address", f.baseAddress), .hex(b + 16, 4, "Flags (decoded below)", UInt64(f.flags)),
                    .hex(b + 20, 2, "SPI Count", UInt64(f.spiCount)), .hex(b + 22, 2, "SPI Base", UInt64(f.spiBase)),
                ]
            case .gicr(let r):
                rows += [.hex(b + 2, 2, "Reserved", UInt64(r.reserved)), .hex(b + 4, 8, "Base Address", r.baseAddress),
                         .hex(b + 12, 4, "Length", UInt64(r.length))]
            case .its(let i):
                rows += [.hex(b + 2, 2, "Reserved", UInt64(i.reserved)), .hex(b + 4, 4, "Translation ID", UInt64(i.translationID)),
                         .hex(b + 8, 8, "Base Address", i.baseAddress), .hex(b + 16, 4, "Reserved", UInt64(i.reserved2))]
            case .other:
                break
            }
        }
        return rows
    }
}

extension MADTStructure.Kind {
    var isOther: Bool { if case .other = self { return true } else { return false } }
}
