import Yams

/// One event of a scenario file's `events:` list: a one-key mapping from the `EventKind` raw
/// value to the fields `EventKind.fields` names (`- fire: {device: 0, vector: 1}`), or the bare
/// kind for an event whose fields may all be left out (`- save-restore`).
///
/// Each field is checked against the scenario it belongs to, so a script never names something
/// the run cannot have: `device` an index into `devices` (optional when there is exactly one
/// device, then 0), `vector` below that device's vector count (MSI-X table size or MSI vectors:
/// `add-vector` allocates a free entry of the same table, `pci_msix_alloc_irq_at`, so it does
/// not raise the bound), `cpu` below the VM's vCPUs for `guest-affinity` and below 4096 for
/// `host-affinity` (arm64 `CONFIG_NR_CPUS` ranges 2–4096, arch/arm64/Kconfig; the platform's
/// own CPU count is not part of the description (the preset device trees QEMU dumped have one
/// CPU) and an affinity to a CPU the host lacks is for the run to report, as
/// `irq_set_affinity` does with -EINVAL), `event-id` 32 bits (GITS_TRANSLATER is
/// a 32-bit register: GICv3 architecture, GITS_TRANSLATER; docs/hardware.md §ITS registers), `ipa` 64 bits, `domain` a `GuestDomainChange`.
struct ScenarioFileEventReader {
    let nodes: ScenarioFileNodes
    let scenario: ScenarioDescription

    /// arm64 `CONFIG_NR_CPUS` at most (arch/arm64/Kconfig: `range 2 4096`).
    static let hostCPULimit = 4096

    func event(_ item: Node, keyPath: String) throws(ScenarioFileError) -> ScenarioEvent {
        let kinds = EventKind.allCases.map(\.rawValue)
        let kindNode: Node
        let fieldsNode: Node?
        switch item {
        case .scalar where !ScenarioFileNodes.isNull(item):
            kindNode = item
            fieldsNode = nil
        case .mapping(let mapping):
            guard mapping.count == 1, let pair = mapping.first else {
                let keys = mapping.compactMap { $0.key.string.map { ScenarioFileNodes.shortened($0) } }
                var message = "an event is a mapping with one key, its kind; found \(mapping.count) keys"
                if !keys.isEmpty { message += " (\(keys.joined(separator: ", ")))" }
                if let kind = keys.compactMap({ EventKind(rawValue: $0) }).first,
                   keys.contains(where: { kind.fields.contains($0) }) {
                    message += "; indent the fields under '\(kind.rawValue)' or write \(kind.rawValue): {\(kind.fields.map { "\($0): …" }.joined(separator: ", "))}"
                }
                throw nodes.error(at: item, key: keyPath, message)
            }
            kindNode = pair.key
            fieldsNode = pair.value
        default:
            throw nodes.error(at: item, key: keyPath,
                              "expected an event (kind: {fields}), found \(ScenarioFileNodes.describe(item))")
        }
        let word = try nodes.string(kindNode, key: keyPath, expecting: "an event kind")
        guard let kind = EventKind(rawValue: word) else {
            throw nodes.error(at: kindNode, key: "\(keyPath).\(ScenarioFileNodes.shortened(word))",
                              ScenarioFileValues.unknown("event", ScenarioFileNodes.shortened(word), expected: kinds))
        }
        let path = "\(keyPath).\(kind.rawValue)"
        let fields: ScenarioFileNodes.Fields
        if let fieldsNode, !ScenarioFileNodes.isNull(fieldsNode) {
            fields = try nodes.fields(fieldsNode, keyPath: path, allowed: kind.fields, what: "field",
                                      expecting: "the fields of \(kind.rawValue) (\(kind.fields.isEmpty ? "none: write {}" : kind.fields.joined(separator: ", ")))")
        } else {
            // No fields written: a missing one is reported at the event's kind.
            fields = ScenarioFileNodes.Fields(node: kindNode, keyPath: path, entries: [])
        }
        return try Built(reader: self, kind: kind, fields: fields).event()
    }

    /// One event's fields being read; `device` first, since `vector` is checked against it.
    private struct Built {
        let reader: ScenarioFileEventReader
        let kind: EventKind
        let fields: ScenarioFileNodes.Fields
        var nodes: ScenarioFileNodes { reader.nodes }
        var scenario: ScenarioDescription { reader.scenario }

        func missing(_ name: String, _ why: String = "") throws(ScenarioFileError) -> Never {
            throw nodes.error(at: fields.node, key: fields.path(name),
                              "missing field '\(name)' for \(kind.rawValue)\(why.isEmpty ? "" : " (\(why))")")
        }

        func device() throws(ScenarioFileError) -> Int {
            let count = scenario.devices.count
            guard let node = fields.value("device") else {
                if count == 1 { return 0 }
                try missing("device", "the scenario has \(count) devices")
            }
            let why = count == 1 ? "the scenario has 1 device" : "the scenario has \(count) devices"
            return try nodes.integer(node, key: fields.path("device"), in: 0...(max(count, 1) - 1), what: "device", why: why)
        }

        func vector(device: Int) throws(ScenarioFileError) -> Int {
            guard let node = fields.value("vector") else { try missing("vector") }
            let vectors = scenario.devices.indices.contains(device) ? scenario.devices[device].activeVectors : 1
            let unit = vectors == 1 ? "vector" : "vectors"
            return try nodes.integer(node, key: fields.path("vector"), in: 0...(max(vectors, 1) - 1), what: "vector",
                                     why: "device \(device) has \(vectors) \(unit)")
        }

        func cpu(host: Bool) throws(ScenarioFileError) -> Int {
            guard let node = fields.value("cpu") else { try missing("cpu") }
            let key = fields.path("cpu")
            if host {
                return try nodes.integer(node, key: key, in: 0...(ScenarioFileEventReader.hostCPULimit - 1), what: "cpu",
                                         why: "arm64 NR_CPUS is at most \(ScenarioFileEventReader.hostCPULimit)")
            }
            let vcpus = scenario.vm.vcpus
            return try nodes.integer(node, key: key, in: 0...(max(vcpus, 1) - 1), what: "cpu", why: "the VM has \(vcpus) vCPUs")
        }

        func event() throws(ScenarioFileError) -> ScenarioEvent {
            switch kind {
            case .saveRestore:
                return .saveRestore
            case .vpeMigrate, .vcpuNonResident, .vcpuResident:
                guard let node = fields.value("vcpu") else { try missing("vcpu") }
                let vcpus = max(scenario.vm.vcpus, 1)
                let vcpu = try nodes.integer(node, key: fields.path("vcpu"), in: 0...(vcpus - 1), what: "vcpu", why: "the VM has \(vcpus) vCPUs")
                switch kind {
                case .vpeMigrate: return .vpeMigrate(vcpu: vcpu, cpu: try cpu(host: true))
                case .vcpuNonResident: return .vcpuNonResident(vcpu: vcpu)
                default: return .vcpuResident(vcpu: vcpu)
                }
            case .fire, .guestMask, .guestUnmask, .guestRewrite, .hostReactivate:
                let d = try device()
                let v = try vector(device: d)
                switch kind {
                case .fire: return .fire(device: d, vector: v)
                case .guestMask: return .guestMask(device: d, vector: v)
                case .guestUnmask: return .guestUnmask(device: d, vector: v)
                case .guestRewrite: return .guestRewrite(device: d, vector: v)
                default: return .hostReactivate(device: d, vector: v)
                }
            case .guestAffinity, .hostAffinity:
                let d = try device()
                let v = try vector(device: d)
                let c = try cpu(host: kind == .hostAffinity)
                return kind == .hostAffinity ? .hostAffinity(device: d, vector: v, cpu: c) : .guestAffinity(device: d, vector: v, cpu: c)
            case .msixReenable: return .msixReenable(device: try device())
            case .addVector: return .addVector(device: try device())
            case .functionLevelReset: return .functionLevelReset(device: try device())
            case .suspendResume: return .suspendResume(device: try device())
            case .hotUnplug: return .hotUnplug(device: try device())
            case .hotPlug: return .hotPlug(device: try device())
            case .guestCorruptSTE: return .guestCorruptSTE(device: try device())
            case .guestDomain:
                let d = try device()
                guard let node = fields.value("domain") else { try missing("domain") }
                return .guestDomain(device: d, domain: try nodes.choice(node, key: fields.path("domain"), GuestDomainChange.self))
            case .forgedEventID:
                let d = try device()
                guard let node = fields.value("event-id") else { try missing("event-id") }
                let id = try nodes.integer(node, key: fields.path("event-id"), in: 0...Int(UInt32.max), what: "event-id",
                                           why: "GITS_TRANSLATER takes 32 bits")
                return .forgedEventID(device: d, eventID: UInt32(id))
            case .guestMapOutsideRAM:
                let d = try device()
                guard let node = fields.value("ipa") else { try missing("ipa") }
                return .guestMapOutsideRAM(device: d, ipa: try nodes.number(node, key: fields.path("ipa")))
            }
        }
    }
}
