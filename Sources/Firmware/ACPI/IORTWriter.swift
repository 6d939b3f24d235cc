extension IORT {
    /// The table's bytes in the canonical layout (see `IORT`): node array at 0x30, each node's
    /// fixed part sized by what it holds (optional fields present or not), then its arrays and
    /// ID mappings; RMR nodes put the ID mappings before the memory range descriptors, as
    /// QEMU's `build_iort_rmr_nodes` does. Output references are written as the new offsets
    /// of `outputNode`. Table Length and Checksum are computed. Throws when a node exceeds
    /// 64 KiB or the table 4 GiB.
    public func bytes() throws(ACPIError) -> [UInt8] {
        let bodies = nodes.map { Self.nodeBody($0) }
        var offsets: [Int] = []
        var position = 48
        for (index, body) in bodies.enumerated() {
            guard body.size <= Int(UInt16.max) else {
                throw ACPIError(signature: "IORT", structure: "node", offset: position, field: "Length",
                                problem: "node \(index) needs \(body.size) bytes, more than 0xffff")
            }
            offsets.append(position)
            position += body.size
        }
        var w = ACPIByteWriter()
        header.write(into: &w)
        w.append(UInt32(clamping: nodes.count))
        w.append(UInt32(48))
        w.append(reserved)
        for (index, node) in nodes.enumerated() {
            let body = bodies[index]
            w.append(node.type)
            w.append(UInt16(body.size))
            w.append(node.revision)
            w.append(node.identifier)
            w.append(UInt32(clamping: node.mappings.count))
            w.append(UInt32(body.mappingOffset))
            let start = w.bytes.count
            var mappingBytes = ACPIByteWriter()
            for mapping in node.mappings {
                mappingBytes.append(mapping.inputBase)
                mappingBytes.append(mapping.numberOfIDsMinusOne)
                mappingBytes.append(mapping.outputBase)
                let reference = offsets.indices.contains(mapping.outputNode) ? UInt32(offsets[mapping.outputNode]) : mapping.outputReference
                mappingBytes.append(reference)
                mappingBytes.append(mapping.flags)
            }
            body.write(&w, node, mappingBytes.bytes, offsets)
            // The body writer must produce exactly the size the layout promised.
            let written = w.bytes.count - start + 16
            if written != body.size {
                throw ACPIError(signature: "IORT", structure: "node", offset: offsets[index], field: "Length",
                                problem: "writer produced \(written) bytes for a \(body.size)-byte layout")
            }
        }
        return try ACPITableHeader.finish(&w)
    }

    /// A node's canonical layout: total size, mapping array offset, and how to write the part after the header.
    private struct Body {
        var size: Int
        var mappingOffset: Int
        var write: (inout ACPIByteWriter, IORTNode, [UInt8], [Int]) -> Void
    }

    private static func nodeBody(_ node: IORTNode) -> Body {
        let mappingsSize = node.mappings.count * mappingSize
        func layout(fixed: Int, arrays: Int, _ write: @escaping (inout ACPIByteWriter, IORTNode, [UInt8], [Int]) -> Void) -> Body {
            Body(size: fixed + arrays + mappingsSize, mappingOffset: node.mappings.isEmpty ? 0 : fixed + arrays, write: write)
        }
        func memory(_ w: inout ACPIByteWriter, _ m: IORTMemoryAccessProperties) {
            w.append(m.cacheCoherency); w.append(m.hints); w.append(m.reserved); w.append(m.memoryFlags)
        }
        switch node.kind {
        case .itsGroup(let group):
            return layout(fixed: 20, arrays: 4 * group.itsIdentifiers.count) { w, _, maps, _ in
                w.append(UInt32(clamping: group.itsIdentifiers.count))
                for id in group.itsIdentifiers { w.append(id) }
                w.append(maps)
            }
        case .namedComponent(let nc):
            return layout(fixed: 29 + nc.deviceNameField.count, arrays: 0) { w, _, maps, _ in
                w.append(nc.nodeFlags); memory(&w, nc.memoryProperties); w.append(nc.memoryAddressSizeLimit)
                w.append(nc.deviceNameField)
                w.append(maps)
            }
        case .rootComplex(let rc):
            return layout(fixed: rc.flags == nil ? 36 : 40, arrays: 0) { w, _, maps, _ in
                memory(&w, rc.memoryProperties); w.append(rc.atsAttribute); w.append(rc.pciSegment)
                w.append(rc.memoryAddressSizeLimit); w.append(rc.pasidCapabilities); w.append(rc.reserved)
                if let flags = rc.flags { w.append(flags) }
                w.append(maps)
            }
        case .smmuV1V2(let smmu):
            let global = 60, context = global + 8 * smmu.globalInterrupts.count
            let pmu = context + 8 * smmu.contextInterrupts.count
            let arrays = 8 * (smmu.globalInterrupts.count + smmu.contextInterrupts.count + smmu.pmuInterrupts.count)
            return layout(fixed: 60, arrays: arrays) { w, _, maps, _ in
                w.append(smmu.baseAddress); w.append(smmu.span); w.append(smmu.model); w.append(smmu.flags)
                w.append(UInt32(global)); w.append(UInt32(clamping: smmu.contextInterrupts.count)); w.append(UInt32(context))
                w.append(UInt32(clamping: smmu.pmuInterrupts.count)); w.append(UInt32(pmu))
                for irq in smmu.globalInterrupts + smmu.contextInterrupts + smmu.pmuInterrupts { w.append(irq.gsiv); w.append(irq.flags) }
                w.append(maps)
            }
        case .smmuV3(let smmu):
            let fixed = smmu.deviceIDMappingIndex != nil ? 68 : (smmu.proximityDomain != nil ? 64 : 60)
            return layout(fixed: fixed, arrays: 0) { w, _, maps, _ in
                w.append(smmu.baseAddress); w.append(smmu.flags); w.append(smmu.reserved); w.append(smmu.vatosAddress)
                w.append(smmu.model); w.append(smmu.eventGSIV); w.append(smmu.priGSIV); w.append(smmu.gerrGSIV); w.append(smmu.syncGSIV)
                if fixed >= 64 { w.append(smmu.proximityDomain ?? 0) }
                if fixed >= 68 { w.append(smmu.deviceIDMappingIndex ?? 0) }
                w.append(maps)
            }
        case .pmcg(let pmcg):
            return layout(fixed: pmcg.page1BaseAddress == nil ? 32 : 40, arrays: 0) { w, _, maps, offsets in
                w.append(pmcg.page0BaseAddress); w.append(pmcg.overflowGSIV)
                let reference = pmcg.referencedNode.flatMap { offsets.indices.contains($0) ? UInt32(offsets[$0]) : nil } ?? pmcg.nodeReference
                w.append(reference)
                if let page1 = pmcg.page1BaseAddress { w.append(page1) }
                w.append(maps)
            }
        case .rmr(let rmr):
            // Mappings first (at 28), then the descriptors, as QEMU lays it out.
            let rangeOffset = 28 + mappingsSize
            return Body(size: rangeOffset + 20 * rmr.ranges.count, mappingOffset: node.mappings.isEmpty ? 0 : 28) { w, _, maps, _ in
                w.append(rmr.flags); w.append(UInt32(clamping: rmr.ranges.count)); w.append(UInt32(rangeOffset))
                w.append(maps)
                for range in rmr.ranges { w.append(range.base); w.append(range.length); w.append(range.reserved) }
            }
        case .unknown(_, let data):
            // Raw: written as read, the mapping offset too, except each decoded ID mapping's
            // Output Reference, which must follow its node to the node's new offset (the array
            // is inside `data`, 20 bytes a mapping, the reference at +12).
            return Body(size: 16 + data.count, mappingOffset: Int(node.mappingOffset)) { w, node, _, offsets in
                var raw = data
                for (i, mapping) in node.mappings.enumerated() where offsets.indices.contains(mapping.outputNode) {
                    let at = Int(node.mappingOffset) - 16 + 20 * i + 12
                    guard at >= 0, at + 4 <= raw.count else { continue }
                    let reference = UInt32(offsets[mapping.outputNode])
                    for b in 0..<4 { raw[at + b] = UInt8(truncatingIfNeeded: reference >> (8 * UInt32(b))) }
                }
                w.append(raw)
            }
        }
    }
}
