extension IORT {
    /// Size of one ID mapping (DEN 0049E.f Table 5).
    static let mappingSize = 20

    /// Reads an IORT. Every node must lie inside the table, every array inside its node, every
    /// output reference must name the start of a node; errors name the node's offset and field.
    public init(bytes: [UInt8]) throws(ACPIError) {
        let (header, table) = try ACPITableHeader.read(bytes, expected: "IORT")
        let nodeCount = try table.u32(36, "header", 0, "Node Count")
        let nodeOffset = try table.u32(40, "header", 0, "Node Offset")
        let reserved = try table.u32(44, "header", 0, "Reserved")
        guard nodeOffset >= 48 || nodeCount == 0 else {
            throw table.error("header", 0, "Node Offset", "\(ACPIHex.format(nodeOffset)) inside the IORT header (0x30 bytes)")
        }
        var nodes: [IORTNode] = []
        var offset = Int(nodeOffset)
        for _ in 0..<nodeCount {
            // Each node is at least 16 bytes, so this loop ends within the table's length.
            let node = try Self.readNode(table, at: offset, tableRevision: header.revision)
            nodes.append(node)
            offset += Int(node.length)
        }
        self.init(header: header, nodeOffset: nodeOffset, reserved: reserved, nodes: nodes)
        try resolveReferences(table)
    }

    /// Fills in `outputNode` / `referencedNode` from the offsets read.
    private mutating func resolveReferences(_ table: ACPIBytes) throws(ACPIError) {
        var starts: [Int: Int] = [:]
        for (index, node) in nodes.enumerated() { starts[node.offset] = index }
        for index in nodes.indices {
            let node = nodes[index]
            for m in node.mappings.indices {
                let reference = node.mappings[m].outputReference
                guard let target = starts[Int(reference)] else {
                    throw table.error("node", node.offset, "ID mapping \(m) Output Reference",
                                      "\(ACPIHex.format(reference)) is not the offset of any node")
                }
                nodes[index].mappings[m].outputNode = target
            }
            if case .pmcg(var pmcg) = node.kind, pmcg.nodeReference != 0 {
                guard let target = starts[Int(pmcg.nodeReference)] else {
                    throw table.error("node", node.offset, "Node Reference",
                                      "\(ACPIHex.format(pmcg.nodeReference)) is not the offset of any node")
                }
                pmcg.referencedNode = target
                nodes[index].kind = .pmcg(pmcg)
            }
        }
    }

    private static func readNode(_ t: ACPIBytes, at base: Int, tableRevision: UInt8) throws(ACPIError) -> IORTNode {
        let s = "node"
        guard base >= 0, base < t.count, t.count - base >= 16 else {
            throw t.error(s, base, "Type", "node header (16 bytes) beyond table end \(ACPIHex.format(t.count))")
        }
        let type = try t.u8(base, s, base, "Type")
        let length = try t.u16(base + 1, s, base, "Length")
        let revision = try t.u8(base + 3, s, base, "Revision")
        let identifier = try t.u32(base + 4, s, base, "Identifier")
        let mappingCount = try t.u32(base + 8, s, base, "Mapping Count")
        let mappingOffset = try t.u32(base + 12, s, base, "Mapping Offset")
        guard length >= 16 else { throw t.error(s, base, "Length", "\(ACPIHex.format(length)) below the 16-byte node header") }
        guard t.count - base >= Int(length) else {
            throw t.error(s, base, "Length", "\(ACPIHex.format(length)) runs past table end \(ACPIHex.format(t.count))")
        }
        let nodeLength = Int(length)
        // The ID mapping array.
        var mappings: [IORTIDMapping] = []
        if mappingCount > 0 {
            guard mappingOffset >= 16 else {
                throw t.error(s, base, "ID mapping array offset", "\(ACPIHex.format(mappingOffset)) inside the node header")
            }
            guard UInt64(mappingOffset) <= UInt64(nodeLength) else {
                throw t.error(s, base, "ID mapping array offset", "\(ACPIHex.format(mappingOffset)) beyond node length \(ACPIHex.format(length))")
            }
            let room = (nodeLength - Int(mappingOffset)) / mappingSize
            guard UInt64(mappingCount) <= UInt64(room) else {
                throw t.error(s, base, "Mapping Count", "\(mappingCount) mappings of 20 bytes at \(ACPIHex.format(mappingOffset)) overrun node length \(ACPIHex.format(length))")
            }
            for i in 0..<Int(mappingCount) {
                let at = base + Int(mappingOffset) + i * mappingSize
                let field = "ID mapping \(i)"
                mappings.append(IORTIDMapping(
                    inputBase: try t.u32(at, s, base, field + " Input base"),
                    numberOfIDsMinusOne: try t.u32(at + 4, s, base, field + " ID Count"),
                    outputBase: try t.u32(at + 8, s, base, field + " Output Base"),
                    outputReference: try t.u32(at + 12, s, base, field + " Output Reference"),
                    outputNode: -1,
                    flags: try t.u32(at + 16, s, base, field + " Flags")))
            }
        }
        // The type-specific part ends at the mapping array when there is one, else at the node end.
        let fixedEnd = mappingCount > 0 ? Int(mappingOffset) : nodeLength
        let reader = NodeReader(t: t, base: base, end: nodeLength)
        let kind: IORTNode.Kind
        switch type {
        case 0:
            let count = try reader.u32(16, "ItsCount")
            guard UInt64(count) * 4 <= UInt64(nodeLength - 20 < 0 ? 0 : nodeLength - 20) else {
                throw t.error(s, base, "ItsCount", "\(count) identifiers overrun node length \(ACPIHex.format(length))")
            }
            var ids: [UInt32] = []
            for i in 0..<Int(count) { ids.append(try reader.u32(20 + 4 * i, "Identifiers[\(i)]")) }
            kind = .itsGroup(IORTITSGroup(itsIdentifiers: ids))
        case 1:
            let nameStart = 29
            guard fixedEnd >= nameStart else {
                throw t.error(s, base, "Device Name", "fixed part ends at \(ACPIHex.format(fixedEnd)), before the name at 0x1d")
            }
            kind = .namedComponent(IORTNamedComponent(
                nodeFlags: try reader.u32(16, "Node Flags"), memoryProperties: try reader.memory(20),
                memoryAddressSizeLimit: try reader.u8(28, "Memory Size Limit"),
                deviceNameField: try reader.bytes(nameStart, fixedEnd - nameStart, "Device Name")))
        case 2:
            kind = .rootComplex(IORTRootComplex(
                memoryProperties: try reader.memory(16), atsAttribute: try reader.u32(24, "ATS Attribute"),
                pciSegment: try reader.u32(28, "PCI Segment Number"),
                memoryAddressSizeLimit: fixedEnd >= 33 ? try reader.u8(32, "Memory Size Limit") : 0,
                pasidCapabilities: fixedEnd >= 35 ? try reader.u16(33, "PASID Capabilities") : 0,
                reserved: fixedEnd >= 36 ? try reader.u8(35, "Reserved") : 0,
                flags: fixedEnd >= 40 ? try reader.u32(36, "Flags") : nil))
        case 3:
            let globalOffset = try reader.u32(40, "Global Interrupt Offset")
            let contextCount = try reader.u32(44, "Context Interrupt Count")
            let contextOffset = try reader.u32(48, "Context Interrupt Offset")
            let pmuCount = try reader.u32(52, "PMU Interrupt Count")
            let pmuOffset = try reader.u32(56, "PMU Interrupt Offset")
            kind = .smmuV1V2(IORTSMMUv1v2(
                baseAddress: try reader.u64(16, "Base Address"), span: try reader.u64(24, "Span"),
                model: try reader.u32(32, "Model"), flags: try reader.u32(36, "Flags"),
                globalInterrupts: try reader.interrupts(globalOffset, 2, "Global Interrupt Offset"),
                contextInterrupts: try reader.interrupts(contextOffset, contextCount, "Context Interrupt Offset"),
                pmuInterrupts: try reader.interrupts(pmuOffset, pmuCount, "PMU Interrupt Offset"),
                globalInterruptOffset: globalOffset, contextInterruptOffset: contextOffset, pmuInterruptOffset: pmuOffset))
        case 4:
            kind = .smmuV3(IORTSMMUv3(
                baseAddress: try reader.u64(16, "Base Address"), flags: try reader.u32(24, "Flags"),
                reserved: try reader.u32(28, "Reserved"), vatosAddress: try reader.u64(32, "VATOS Address"),
                model: try reader.u32(40, "Model"), eventGSIV: try reader.u32(44, "Event GSIV"),
                priGSIV: try reader.u32(48, "PRI GSIV"), gerrGSIV: try reader.u32(52, "GERR GSIV"),
                syncGSIV: try reader.u32(56, "Sync GSIV"),
                proximityDomain: fixedEnd >= 64 ? try reader.u32(60, "Proximity Domain") : nil,
                deviceIDMappingIndex: fixedEnd >= 68 ? try reader.u32(64, "Device ID Mapping Index") : nil))
        case 5:
            kind = .pmcg(IORTPMCG(
                page0BaseAddress: try reader.u64(16, "Page 0 Base Address"),
                overflowGSIV: try reader.u32(24, "Overflow Interrupt GSIV"),
                nodeReference: try reader.u32(28, "Node Reference"), referencedNode: nil,
                page1BaseAddress: fixedEnd >= 40 ? try reader.u64(32, "Page 1 Base Address") : nil))
        case 6:
            let flags = try reader.u32(16, "Flags")
            let count = try reader.u32(20, "Number of RMR Descriptors")
            let rangeOffset = try reader.u32(24, "RMR Descriptor Offset")
            guard UInt64(rangeOffset) <= UInt64(nodeLength),
                  UInt64(count) * 20 <= UInt64(nodeLength) - UInt64(rangeOffset) else {
                throw t.error(s, base, "RMR Descriptor Offset", "\(count) descriptors of 20 bytes at \(ACPIHex.format(rangeOffset)) overrun node length \(ACPIHex.format(length))")
            }
            var ranges: [IORTMemoryRange] = []
            for i in 0..<Int(count) {
                let at = Int(rangeOffset) + 20 * i
                ranges.append(IORTMemoryRange(base: try reader.u64(at, "RMR \(i) Base Address"),
                                              length: try reader.u64(at + 8, "RMR \(i) Length"),
                                              reserved: try reader.u32(at + 16, "RMR \(i) Reserved")))
            }
            kind = .rmr(IORTRMR(flags: flags, ranges: ranges, rangeOffset: rangeOffset))
        default:
            kind = .unknown(type: type, data: try reader.bytes(16, nodeLength - 16, "node data"))
        }
        return IORTNode(offset: base, length: length, revision: revision, identifier: identifier,
                        mappingOffset: mappingOffset, mappings: mappings, kind: kind)
    }

    /// Reads fields at offsets relative to a node, refusing any byte past the node's length.
    private struct NodeReader {
        let t: ACPIBytes
        let base: Int
        let end: Int

        func check(_ at: Int, _ width: Int, _ field: String) throws(ACPIError) {
            guard at >= 0, width >= 0, at <= end, end - at >= width else {
                throw t.error("node", base, field, "at node offset \(ACPIHex.format(at)) (\(width) bytes) beyond node length \(ACPIHex.format(end))")
            }
        }
        func u8(_ at: Int, _ field: String) throws(ACPIError) -> UInt8 { try check(at, 1, field); return try t.u8(base + at, "node", base, field) }
        func u16(_ at: Int, _ field: String) throws(ACPIError) -> UInt16 { try check(at, 2, field); return try t.u16(base + at, "node", base, field) }
        func u32(_ at: Int, _ field: String) throws(ACPIError) -> UInt32 { try check(at, 4, field); return try t.u32(base + at, "node", base, field) }
        func u64(_ at: Int, _ field: String) throws(ACPIError) -> UInt64 { try check(at, 8, field); return try t.u64(base + at, "node", base, field) }
        func bytes(_ at: Int, _ count: Int, _ field: String) throws(ACPIError) -> [UInt8] {
            try check(at, count, field)
            return try t.slice(base + at, count, "node", base, field)
        }
        func memory(_ at: Int) throws(ACPIError) -> IORTMemoryAccessProperties {
            IORTMemoryAccessProperties(cacheCoherency: try u32(at, "Cache Coherency"), hints: try u8(at + 4, "Hints"),
                                       reserved: try u16(at + 5, "Reserved"), memoryFlags: try u8(at + 7, "Memory Flags"))
        }
        /// `count` (GSIV, flags) pairs at `offset` from the node start.
        func interrupts(_ offset: UInt32, _ count: UInt32, _ field: String) throws(ACPIError) -> [IORTInterrupt] {
            guard count > 0 else { return [] }
            guard UInt64(offset) <= UInt64(end), UInt64(count) * 8 <= UInt64(end) - UInt64(offset) else {
                throw t.error("node", base, field, "\(count) interrupts of 8 bytes at \(ACPIHex.format(offset)) overrun node length \(ACPIHex.format(end))")
            }
            var result: [IORTInterrupt] = []
            for i in 0..<Int(count) {
                let at = Int(offset) + 8 * i
                result.append(IORTInterrupt(gsiv: try u32(at, field), flags: try u32(at + 4, field)))
            }
            return result
        }
    }
}
