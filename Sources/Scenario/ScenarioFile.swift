import Firmware
import Foundation

/// Scenario files: a `ScenarioDescription` written as YAML, for hand-written scenarios
/// (`Examples/`) and for the replay files the explorer writes.
///
/// ```yaml
/// name: seed                       # required, not empty
/// summary: one line                # optional
/// platform: qemu-virt              # a MachinePreset raw value, or a path (.dtb, an ACPI table, a tables directory)
/// bridge: 1                        # optional: the host bridge (index or node path)
/// host:
///   page-size: 4K                  # 4K | 64K
///   gic: v4.1                      # optional: v3 | v4.1 (GICv4.1 direct vLPI injection); default: the platform's
/// vm:
///   viommu: smmuv3-accel           # none | smmuv3-accel
///   guest-domain: dma-strict       # dma-strict | dma-lazy | identity
///   guest-page-size: 4K            # 4K | 64K
///   layout: virt                   # virt | ram-at-msi-window
///   vcpus: 2                       # 1…8
///   slot: root-bus                 # root-bus (00:0N.0) | root-port (0N:00.0, hot-pluggable)
///   firmware: acpi                 # acpi | dt; default: acpi with smmuv3-accel, dt without
///   guest-owner: driver            # driver | vfio-type1 | vfio-iommufd (a guest VFIO user owns the functions)
///   guest-gic: v3                  # v3 (vGICv3 + vITS) | v2m (vGICv2 + GICv2m frame, QEMU gic-version=2)
/// devices:                         # a non-empty list; default: one 00:01.0, msi-x, 4 vectors
///   - bdf: "00:01.0"               # bus:device.function in hex (device < 0x20, function < 8)
///     interrupts: msi-x            # msi-x | msi
///     vectors: 4                   # msi-x: 1…2048; msi: 1, 2, 4, 8, 16 or 32
/// strategy: all                    # all | one id | a list of ids, e.g. [legacy, rmr-identity]
/// events:                          # optional; default: fire every vector of every device once
///   - fire: {device: 0, vector: 0}
///   - host-affinity: {device: 0, vector: 1, cpu: 1}
///   - save-restore: {}             # or just `- save-restore`
/// expect:                          # optional
///   - strategy: legacy             # optional: omitted = every strategy the scenario runs
///     delivered: none              # all | none | a number
///     first-failure: stage-1       # a FailurePoint raw value
///     invariants: hold             # hold | violated
/// ```
///
/// Rules:
/// - Every key is checked at every level (top level, `host`, `vm`, each device, each event's
///   fields, each expectation); an unknown key is an error naming the allowed keys and, when
///   one is close, "did you mean". A key given twice is an error.
/// - Left-out keys take the defaults of the Swift initialisers (`HostOptions()`, `VMOptions()`,
///   `DeviceDescription()`); `host:`, `vm:`, `events:`, `expect:` and an event's fields may
///   also be present but empty. Other values may not be empty.
/// - Numbers are decimal or `0x` hex, with `_` separators allowed (`ipa: 0x0800_0000`); no
///   signs, floats or YAML 1.1 octal.
/// - Events are one-key mappings from an `EventKind` raw value to the fields
///   `EventKind.fields` names: `device` (an index into `devices`; may be left out when there is
///   exactly one device), `vector` (below the device's `vectors`), `cpu` (below `vm.vcpus` for
///   `guest-affinity`; below the preset's CPU count for `host-affinity`), `domain`
///   (`identity | dma | detach`), `event-id` (32 bits), `ipa` (64 bits). See
///   `ScenarioFileEventReader` for the reasoning behind each bound.
/// - An expectation names at least one of `delivered`, `first-failure`, `invariants`; its
///   `strategy` must be one the scenario runs.
/// - Limits (`InputLimits`): the file is at most 16 MiB and a regular file; at most 10 000
///   events and 64 devices; at most 100 000 YAML nodes with every alias expanded, counted
///   before composing (`ScenarioFileAliases`), and no mapping key may be an alias of a
///   sequence or mapping.
/// - Every error is a `ScenarioFileError` with the file, the 1-based line and column of the
///   offending key or value, and the dotted key path (`vm.viommu`, `devices[1].bdf`,
///   `events[3].fire.vector`); YAML syntax errors carry libyaml's position.
public enum ScenarioFile {
    /// Reads a scenario from YAML text; `path` only names the text in errors (and is not used
    /// to resolve a relative `.dtb` platform: `load` does that).
    public static func parse(_ text: String, path: String = "<scenario>") throws(ScenarioFileError) -> ScenarioDescription {
        // Aliases are bounded before Yams composes (and hashes keys through them).
        try ScenarioFileAliases.check(text, path: path)
        let root = try ScenarioFileSyntax.compose(text, path: path)
        let nodes = ScenarioFileNodes(path: path, text: text)
        return try ScenarioFileReader(nodes: nodes).scenario(root)
    }

    /// Reads a scenario file: a regular file of at most `InputLimits.maximumFileSize` bytes
    /// (`InputFile.read`; a directory, device or FIFO is refused before any read). The bytes
    /// must be UTF-8 (an invalid sequence is an error at its line and column, not silently
    /// replaced). A relative platform path is taken relative to the directory holding the
    /// scenario file, so a scenario and its board can move together and the file means the
    /// same thing from any working directory.
    public static func load(path: String) throws(ScenarioFileError) -> ScenarioDescription {
        let bytes: [UInt8]
        do {
            bytes = try InputFile.read(path)
        } catch {
            throw ScenarioFileError(path: path, line: 0, column: 0, message: error.problem)
        }
        let text = try decodeUTF8(bytes, path: path)
        var scenario = try parse(text, path: path)
        if case .deviceTree(let dtb) = scenario.platform, !dtb.hasPrefix("/") {
            scenario.platform = .deviceTree(path: resolve(dtb, relativeTo: path))
        }
        return scenario
    }

    /// The scenario as a file `parse` reads back to an equal value (for every description whose
    /// values the format can express: see the rules above, e.g. page sizes 4K and 64K only).
    public static func render(_ scenario: ScenarioDescription) -> String {
        ScenarioFileWriter.render(scenario)
    }

    /// `dtb` relative to the directory of `scenarioPath` (unchanged if that is the current one).
    static func resolve(_ dtb: String, relativeTo scenarioPath: String) -> String {
        guard let slash = scenarioPath.lastIndex(of: "/") else { return dtb }
        let directory = scenarioPath[...slash]
        return String(directory) + dtb
    }

    /// Strict UTF-8 decoding; the first invalid byte is reported at its line and column
    /// (lines and columns counted as libyaml counts them: `ScenarioFileSyntax.isLineBreak`).
    static func decodeUTF8(_ bytes: [UInt8], path: String) throws(ScenarioFileError) -> String {
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        var scalars = String.UnicodeScalarView()
        var line = 1
        var column = 1
        var previousCR = false
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                scalars.append(scalar)
                if scalar == "\n" && previousCR {
                    // CR LF: one break, already counted at the CR.
                } else if ScenarioFileSyntax.isLineBreak(scalar) {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
                previousCR = scalar == "\r"
            case .emptyInput:
                return String(scalars)
            case .error:
                throw ScenarioFileError(path: path, line: line, column: column, message: "the file is not valid UTF-8")
            }
        }
    }
}
