import Bus
import Firmware
import Machine

/// `doorbell topology --format json`: the same description `TopologyReport.text` summarises, as
/// data — memory, GIC with its ITSs, SMMUs, other IOMMUs, PCIe host bridges with their ID maps,
/// what is not modelled, the memory windows chosen, the verdict — and, for an ACPI description,
/// the IORT, MADT and MCFG fields `iasl -d` would print.
public enum TopologyJSON {
    public static func render(_ machine: Machine, bridge: BridgeChoice?, acpi: ACPITableSet?) -> String {
        let t = machine.topology
        func range(_ r: MemoryRange) -> JSONValue { .object(["base": .address(r.base.rawValue), "size": .address(r.size)]) }
        func idMap(_ map: IDMap?) -> JSONValue {
            guard let map else { return .null }
            return .object(["mask": .number(map.mask), "entries": .array(map.entries.map { e in
                .object(["id-base": .number(e.idBase), "target": .string("\(e.target)"),
                         "output-base": .array(e.outputBase.map { .number($0) }), "length": .number(e.length)])
            })])
        }
        var gic: JSONValue = .null
        if let g = t.gic {
            gic = .object([
                "architecture": .string(g.architecture.rawValue), "path": .string(g.path), "distributor": range(g.distributor),
                "redistributors": .array(g.redistributorRegions.map(range)),
                "its": .array(g.its.map { its in
                    .object(["path": .string(its.path), "region": range(its.region), "enabled": .bool(its.enabled),
                             "translater": .address(its.translaterAddress?.rawValue),
                             "pre-its-window": its.preITSWindow.map { w in
                                 .object(["base": .address(UInt64(w.base)), "size": .address(UInt64(w.size))]) } ?? .null])
                }),
                "v2m-frames": .array(g.v2mFrames.map { f in .object(["path": .string(f.path), "region": range(f.region), "enabled": .bool(f.enabled)]) }),
            ])
        }
        var windows: [JSONValue] = []
        for (rc, window) in machine.memoryWindows.enumerated() {
            if let window, window.chosen {
                windows.append(.object(["root-complex": .string(machine.rootComplexes[rc].name), "base": .address(window.cpuAddress),
                                        "size": .address(window.size)]))
            }
        }
        let support = machine.support(bridge: bridge)
        var verdict: [String: JSONValue] = ["supported": .bool(false), "root-complex": .null, "requester-id": .null, "note": .null,
                                            "text": .string(support.description)]
        if case .supported(let rc, let rid) = support {
            verdict["supported"] = .bool(true)
            verdict["root-complex"] = .string(machine.rootComplexes[rc].name)
            verdict["requester-id"] = .number(rid.rawValue)
            verdict["note"] = .string(machine.preITSNote(rootComplex: rc, requesterID: rid))
        }
        var tables: JSONValue = .null
        if let acpi {
            tables = .array([acpi.iort as (any ACPIFieldDump)?, acpi.madt, acpi.mcfg].compactMap { $0 }.map { table in
                .array(table.fields.map { f in
                    .object(["offset": .number(f.offset), "length": .number(f.length), "label": .string(f.label), "value": .string(f.value)])
                })
            })
        }
        return JSONDocument.render(command: "topology", [
            "platform": .string(machine.name), "model": .string(t.model), "compatible": .array(t.compatible.map { .string($0) }),
            "cpus": .array(t.cpus.map { .object(["path": .string($0.path), "mpidr": .number($0.mpidr)]) }),
            "memory": .array(t.memory.map(range)), "memory-is-default": .bool(t.memoryIsDefault),
            "gic": gic,
            "smmus": .array(t.smmus.map { s in
                .object(["path": .string(s.path), "region": range(s.region), "enabled": .bool(s.enabled), "dma-coherent": .bool(s.dmaCoherent)])
            }),
            "other-iommus": .array(t.otherIOMMUs.map { i in
                .object(["path": .string(i.path), "compatible": .string(i.compatible.first), "enabled": .bool(i.enabled)])
            }),
            "pcie-host-bridges": .array(t.pcieHostBridges.map { b in
                .object(["path": .string(b.path), "compatible": .string(b.compatible.first), "enabled": .bool(b.enabled),
                         "bus-first": .number(b.busRange.lowerBound), "bus-last": .number(b.busRange.upperBound),
                         "config-space": b.configSpace.map(range) ?? .null,
                         "iommu-map": idMap(b.iommuMap), "msi-map": idMap(b.msiMap)])
            }),
            "untranslated-its-bases": .array(t.untranslatedITSBases.sorted().map { .address($0.rawValue) }),
            "not-modelled": .array(machine.notModelled.map { .string($0) }),
            "chosen-memory-windows": .array(windows),
            "verdict": .object(verdict),
            "acpi-tables": tables,
        ])
    }
}
