extension IORT {
    /// The table as `iasl -d` lists it (ACPICA `AcpiDmDumpIort`), rows in offset order.
    /// Labels follow iasl; where ACPICA's labels changed, the current ones are used for the
    /// fields older iasl does not know (root complex "PASID Capabilities" and "Flags", the RMR
    /// node), and the node header's word at +4 is "Identifier" from table revision 3 (E.b)
    /// on, "Reserved" before, as current iasl prints it.
    public var fields: [ACPIField] {
        var rows = header.fields
        rows.append(.hex(36, 4, "Node Count", UInt64(nodes.count)))
        rows.append(.hex(40, 4, "Node Offset", UInt64(nodeOffset)))
        rows.append(.hex(44, 4, "Reserved", UInt64(reserved)))
        if nodeOffset > 48, let first = nodes.first, first.offset == Int(nodeOffset) {
            rows.append(.buffer(48, "Optional Padding", Array(repeating: 0, count: Int(nodeOffset) - 48)))
        }
        for node in nodes { rows += nodeFields(node) }
        return rows
    }

    private func nodeFields(_ node: IORTNode) -> [ACPIField] {
        let b = node.offset
        var rows: [ACPIField] = [
            .hex(b, 1, "Type", UInt64(node.type)),
            .hex(b + 1, 2, "Length", UInt64(node.length)),
            .hex(b + 3, 1, "Revision", UInt64(node.revision)),
            .hex(b + 4, 4, header.revision >= 3 ? "Identifier" : "Reserved", UInt64(node.identifier)),
            .hex(b + 8, 4, "Mapping Count", UInt64(node.mappings.count)),
            .hex(b + 12, 4, "Mapping Offset", UInt64(node.mappingOffset)),
        ]
        func memory(_ at: Int, _ m: IORTMemoryAccessProperties) {
            rows.append(.hex(b + at, 4, "Cache Coherency", UInt64(m.cacheCoherency)))
            rows.append(.hex(b + at + 4, 1, "Hints (decoded below)", UInt64(m.hints)))
            rows.append(.hex(b + at + 5, 2, "Reserved", UInt64(m.reserved)))
            rows.append(.hex(b + at + 7, 1, "Memory Flags (decoded below)", UInt64(m.memoryFlags)))
        }
        let fixedEnd = node.mappings.isEmpty ? Int(node.length) : Int(node.mappingOffset)
        switch node.kind {
        case .itsGroup(let group):
            rows.append(.hex(b + 16, 4, "ItsCount", UInt64(group.itsIdentifiers.count)))
            for (i, id) in group.itsIdentifiers.enumerated() { rows.append(.hex(b + 20 + 4 * i, 4, "Identifiers", UInt64(id))) }
        case .namedComponent(let nc):
            rows.append(.hex(b + 16, 4, "Node Flags", UInt64(nc.nodeFlags)))
            memory(20, nc.memoryProperties)
            rows.append(.hex(b + 28, 1, "Memory Size Limit", UInt64(nc.memoryAddressSizeLimit)))
            let nameLength = min(nc.deviceNameField.count, (nc.deviceNameField.firstIndex(of: 0) ?? nc.deviceNameField.count) + 1)
            rows.append(ACPIField(offset: b + 29, length: nameLength, label: "Device Name", value: "\"\(nc.deviceName)\""))
            let padding = Array(nc.deviceNameField.dropFirst(nameLength))
            if !padding.isEmpty { rows.append(.buffer(b + 29 + nameLength, "Padding", padding)) }
        case .rootComplex(let rc):
            memory(16, rc.memoryProperties)
            rows.append(.hex(b + 24, 4, "ATS Attribute", UInt64(rc.atsAttribute)))
            rows.append(.hex(b + 28, 4, "PCI Segment Number", UInt64(rc.pciSegment)))
            if fixedEnd >= 33 { rows.append(.hex(b + 32, 1, "Memory Size Limit", UInt64(rc.memoryAddressSizeLimit))) }
            if node.revision >= 4 {
                if fixedEnd >= 35 { rows.append(.hex(b + 33, 2, "PASID Capabilities", UInt64(rc.pasidCapabilities))) }
                if fixedEnd >= 36 { rows.append(.hex(b + 35, 1, "Reserved", UInt64(rc.reserved))) }
            } else if fixedEnd >= 36 {
                rows.append(.hex(b + 33, 3, "Reserved", UInt64(rc.pasidCapabilities) | UInt64(rc.reserved) << 16))
            }
            if let flags = rc.flags { rows.append(.hex(b + 36, 4, "Flags", UInt64(flags))) }
        case .smmuV1V2(let smmu):
            rows.append(.hex(b + 16, 8, "Base Address", smmu.baseAddress))
            rows.append(.hex(b + 24, 8, "Span", smmu.span))
            rows.append(.hex(b + 32, 4, "Model", UInt64(smmu.model)))
            rows.append(.hex(b + 36, 4, "Flags (decoded below)", UInt64(smmu.flags)))
            rows.append(.hex(b + 40, 4, "Global Interrupt Offset", UInt64(smmu.globalInterruptOffset)))
            rows.append(.hex(b + 44, 4, "Context Interrupt Count", UInt64(smmu.contextInterrupts.count)))
            rows.append(.hex(b + 48, 4, "Context Interrupt Offset", UInt64(smmu.contextInterruptOffset)))
            rows.append(.hex(b + 52, 4, "PMU Interrupt Count", UInt64(smmu.pmuInterrupts.count)))
            rows.append(.hex(b + 56, 4, "PMU Interrupt Offset", UInt64(smmu.pmuInterruptOffset)))
            let g = b + Int(smmu.globalInterruptOffset)
            for (i, (name, irq)) in zip(["NSgIrpt", "NSgCfgIrpt"], smmu.globalInterrupts).enumerated() {
                rows.append(.hex(g + 8 * i, 4, name, UInt64(irq.gsiv)))
                rows.append(.hex(g + 8 * i + 4, 4, "\(name) Flags (decoded below)", UInt64(irq.flags)))
            }
            for (i, irq) in smmu.contextInterrupts.enumerated() {
                rows.append(.hex(b + Int(smmu.contextInterruptOffset) + 8 * i, 8, "Context Interrupt", UInt64(irq.gsiv) | UInt64(irq.flags) << 32))
            }
            for (i, irq) in smmu.pmuInterrupts.enumerated() {
                rows.append(.hex(b + Int(smmu.pmuInterruptOffset) + 8 * i, 8, "PMU Interrupt", UInt64(irq.gsiv) | UInt64(irq.flags) << 32))
            }
        case .smmuV3(let smmu):
            rows.append(.hex(b + 16, 8, "Base Address", smmu.baseAddress))
            rows.append(.hex(b + 24, 4, "Flags (decoded below)", UInt64(smmu.flags)))
            rows.append(.hex(b + 28, 4, "Reserved", UInt64(smmu.reserved)))
            rows.append(.hex(b + 32, 8, "VATOS Address", smmu.vatosAddress))
            rows.append(.hex(b + 40, 4, "Model", UInt64(smmu.model)))
            rows.append(.hex(b + 44, 4, "Event GSIV", UInt64(smmu.eventGSIV)))
            rows.append(.hex(b + 48, 4, "PRI GSIV", UInt64(smmu.priGSIV)))
            rows.append(.hex(b + 52, 4, "GERR GSIV", UInt64(smmu.gerrGSIV)))
            rows.append(.hex(b + 56, 4, "Sync GSIV", UInt64(smmu.syncGSIV)))
            if let pxm = smmu.proximityDomain { rows.append(.hex(b + 60, 4, "Proximity Domain", UInt64(pxm))) }
            if let index = smmu.deviceIDMappingIndex { rows.append(.hex(b + 64, 4, "Device ID Mapping Index", UInt64(index))) }
        case .pmcg(let pmcg):
            rows.append(.hex(b + 16, 8, "Page 0 Base Address", pmcg.page0BaseAddress))
            rows.append(.hex(b + 24, 4, "Overflow Interrupt GSIV", UInt64(pmcg.overflowGSIV)))
            rows.append(.hex(b + 28, 4, "Node Reference", UInt64(pmcg.nodeReference)))
            if let page1 = pmcg.page1BaseAddress { rows.append(.hex(b + 32, 8, "Page 1 Base Address", page1)) }
        case .rmr(let rmr):
            rows.append(.hex(b + 16, 4, "Flags (decoded below)", UInt64(rmr.flags)))
            rows.append(.hex(b + 20, 4, "Number of RMR Descriptors", UInt64(rmr.ranges.count)))
            rows.append(.hex(b + 24, 4, "RMR Descriptor Offset", UInt64(rmr.rangeOffset)))
            for (i, range) in rmr.ranges.enumerated() {
                let at = b + Int(rmr.rangeOffset) + 20 * i
                rows.append(.hex(at, 8, "Base Address of RMR", range.base))
                rows.append(.hex(at + 8, 8, "Length of RMR", range.length))
                rows.append(.hex(at + 16, 4, "Reserved", UInt64(range.reserved)))
            }
        case .unknown:
            break
        }
        for (i, m) in node.mappings.enumerated() {
            let at = b + Int(node.mappingOffset) + IORT.mappingSize * i
            rows.append(.hex(at, 4, "Input base", UInt64(m.inputBase)))
            rows.append(.hex(at + 4, 4, "ID Count", UInt64(m.numberOfIDsMinusOne)))
            rows.append(.hex(at + 8, 4, "Output Base", UInt64(m.outputBase)))
            rows.append(.hex(at + 12, 4, "Output Reference", UInt64(m.outputReference)))
            rows.append(.hex(at + 16, 4, "Flags (decoded below)", UInt64(m.flags)))
        }
        // Stable: rows at one offset keep their order.
        return rows.enumerated().sorted { ($0.element.offset, $0.offset) < ($1.element.offset, $1.offset) }.map(\.element)
    }
}
