import Bus

/// `ScenarioDescription` → scenario file text that `ScenarioFile.parse` reads back to an equal
/// value. Everything but an empty summary, script and expectation list is written out, so a
/// replay file states the whole run even if a default changes later. Strings that could be
/// misread as something else are double-quoted with YAML escapes (YAML 1.2 §5.7); the rest are
/// plain, so the common case reads like the hand-written examples.
enum ScenarioFileWriter {
    static func render(_ s: ScenarioDescription) -> String {
        var out: [String] = []
        out.append("name: \(string(s.name))")
        if !s.summary.isEmpty { out.append("summary: \(string(s.summary))") }
        out.append("platform: \(string(s.platform.description))")
        if let bridge = s.bridge { out.append("bridge: \(string(bridge))") }
        out.append("host:")
        out.append("  page-size: \(ScenarioFileValues.pageSizeName(s.host.pageSize))")
        if let kernel = s.host.kernel { out.append("  kernel: \(kernel.rawValue)") }
        if let gic = s.host.gic { out.append("  gic: \(gic.rawValue)") }
        out.append("vm:")
        out.append("  viommu: \(s.vm.viommu.rawValue)")
        out.append("  guest-domain: \(s.vm.guestDomain.rawValue)")
        out.append("  guest-page-size: \(ScenarioFileValues.pageSizeName(s.vm.guestPageSize))")
        out.append("  layout: \(s.vm.layout.rawValue)")
        out.append("  vcpus: \(s.vm.vcpus)")
        out.append("  slot: \(s.vm.behindRootPorts ? "root-port" : "root-bus")")
        out.append("  firmware: \(s.vm.firmware.rawValue)")
        // Written only when not the default, so files from before the key render as they did.
        if s.vm.guestOwner != .driver { out.append("  guest-owner: \(s.vm.guestOwner.rawValue)") }
        if s.vm.guestGIC != .gicv3 { out.append("  guest-gic: \(s.vm.guestGIC.rawValue)") }
        out.append("devices:")
        for device in s.devices {
            out.append("  - bdf: \"\(device.requesterID)\"")
            if let bridge = device.hostBridge { out.append("    host-behind: \(bridge.rawValue)") }
            if let rid = device.guestRequesterID { out.append("    guest-rid: \"\(rid)\"") }
            if let bridge = device.guestBridge { out.append("    behind: \(bridge.rawValue)") }
            out.append("    interrupts: \(device.interrupts.rawValue)")
            out.append("    vectors: \(device.vectors)")
            // The keys that came after `vectors` are written only when set, so files from
            // before them render as they did.
            if let enabled = device.enabledVectors { out.append("    enabled: \(enabled)") }
            if device.affinity != .unmanaged { out.append("    affinity: \(device.affinity.rawValue)") }
            if device.preVectors != 0 { out.append("    pre-vectors: \(device.preVectors)") }
            if device.postVectors != 0 { out.append("    post-vectors: \(device.postVectors)") }
        }
        switch s.strategies.count {
        case 0: out.append("strategy: all")
        case 1: out.append("strategy: \(s.strategies[0].rawValue)")
        default: out.append("strategy: [\(s.strategies.map(\.rawValue).joined(separator: ", "))]")
        }
        if !s.events.isEmpty {
            out.append("events:")
            for event in s.events { out.append("  - \(self.event(event, omitDevice: s.devices.count == 1))") }
        }
        if !s.expectations.isEmpty {
            out.append("expect:")
            for expectation in s.expectations {
                var lines: [String] = []
                if let strategy = expectation.strategy { lines.append("strategy: \(strategy.rawValue)") }
                switch expectation.delivered {
                case .some(.all): lines.append("delivered: all")
                case .some(.nothing): lines.append("delivered: none")
                case .some(.count(let n)): lines.append("delivered: \(n)")
                case nil: break
                }
                if let point = expectation.firstFailure { lines.append("first-failure: \(point.rawValue)") }
                if let hold = expectation.invariantsHold { lines.append("invariants: \(hold ? "hold" : "violated")") }
                for (i, line) in lines.enumerated() { out.append((i == 0 ? "  - " : "    ") + line) }
            }
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// `kind: {field: value, …}` in `EventKind.fields` order; `device` is left out when the
    /// scenario has one device (the reader's default).
    static func event(_ event: ScenarioEvent, omitDevice: Bool) -> String {
        var values: [String: String] = [:]
        if let device = event.device { values["device"] = String(device) }
        switch event {
        case .fire(_, let v), .guestMask(_, let v), .guestUnmask(_, let v), .guestRewrite(_, let v), .hostReactivate(_, let v):
            values["vector"] = String(v)
        case .guestAffinity(_, let v, let c), .hostAffinity(_, let v, let c):
            values["vector"] = String(v)
            values["cpu"] = String(c)
        case .guestDomain(_, let domain): values["domain"] = domain.rawValue
        case .forgedEventID(_, let id): values["event-id"] = Hex.format(UInt64(id), minDigits: 1)
        case .guestMapOutsideRAM(_, let ipa): values["ipa"] = Hex.format(ipa, minDigits: 8)
        case .vpeMigrate(let vcpu, let cpu):
            values["vcpu"] = String(vcpu)
            values["cpu"] = String(cpu)
        case .vcpuNonResident(let vcpu), .vcpuResident(let vcpu): values["vcpu"] = String(vcpu)
        default: break
        }
        let kind = event.kind
        let fields = kind.fields.filter { !(omitDevice && $0 == "device") }.compactMap { name in values[name].map { "\(name): \($0)" } }
        return "\(kind.rawValue): {\(fields.joined(separator: ", "))}"
    }

    /// Plain when the text is a run of letters, digits and `._/+-` (with single inner spaces)
    /// starting with a letter, digit, `.` or `/`, and is not a YAML null word; otherwise
    /// double-quoted. Plain scalars cannot start with an indicator or hold `: ` or ` #`, and the
    /// allowed set has neither.
    static func string(_ text: String) -> String {
        let plainSafe = !text.isEmpty && !["~", "null", "Null", "NULL"].contains(text)
            && text.unicodeScalars.allSatisfy { s in
                (s.value < 0x80 && (s.properties.isAlphabetic || ("0"..."9").contains(s))) || "._/+- ".unicodeScalars.contains(s)
            }
            && text.unicodeScalars.first.map { s in s.properties.isAlphabetic || ("0"..."9").contains(s) || s == "." || s == "/" } == true
            && text.unicodeScalars.last != " " && !text.contains("  ")
        return plainSafe ? text : quoted(text)
    }

    /// A YAML double-quoted scalar. Escaped: `"` and `\`, and every character libyaml would not
    /// take raw inside quotes (YAML 1.2 §5.1 c-printable: not TAB/LF/CR/x20–x7E/NEL/xA0–xD7FF/
    /// xE000–xFFFD/x10000+), plus the line breaks (LF, CR, NEL, LS, PS) and TAB, which quotes
    /// would fold or keep ambiguously.
    ///
    /// One string cannot round-trip: one starting with U+FEFF loses it, because Yams (6.2,
    /// `Event.scalarValue`) decodes each scalar with Foundation's `String(bytes:encoding:)`,
    /// which drops a leading byte-order mark whatever the escape used here.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            let v = scalar.value
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                let printable = (0x20...0x7E).contains(v) || (0xA0...0xD7FF).contains(v) || (0xE000...0xFFFD).contains(v) || v >= 0x10000
                let lineBreak = v == 0x85 || v == 0x2028 || v == 0x2029
                let bom = v == 0xFEFF
                if printable && !lineBreak && !bom {
                    out.unicodeScalars.append(scalar)
                } else if v <= 0xFF {
                    out += "\\x" + hex(v, digits: 2)
                } else if v <= 0xFFFF {
                    out += "\\u" + hex(v, digits: 4)
                } else {
                    out += "\\U" + hex(v, digits: 8)
                }
            }
        }
        return out + "\""
    }

    private static func hex(_ v: UInt32, digits: Int) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - s.count)) + s
    }
}
