import Firmware
import Foundation
import Testing

/// Bad inputs, run through the built `doorbell` binary as a user would: each case names the
/// command line, the exit status (1: the input is unusable; 64: a usage error) and a part of
/// the message that must appear — a sentence naming the file and, for a limit, the limit and
/// its value. None may crash, hang or print a Swift enum, an NSError domain or a wrapped number.
@Suite("bad inputs")
struct BadInputTests {
    /// One bad input: the files it needs (name → bytes; nil makes a special file by `setUp`),
    /// the arguments (`$DIR` is the case's directory), and what must come out.
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var files: [String: [UInt8]] = [:]
        var setUp: @Sendable (String) throws -> Void = { _ in }
        var arguments: [String]
        var status: Int32
        var message: String
        var description: String { name }
    }

    static var fixtures: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").path
    }

    static func dtb() -> [UInt8] {
        (try? DeviceTreeFile.read(path: fixtures + "/qemu-virt/virt-smmu.dtb")) ?? []
    }

    /// The fixture with the SMMU's `reg` at 2^64 − 64 KiB, 128 KiB long: base + size wraps.
    static func overflowingDTB() -> [UInt8] {
        guard let tree = try? FlattenedDeviceTree(bytes: dtb()).tree,
              let edited = tree.setting(DeviceTreeProperty(name: "reg", cells: [0xFFFF_FFFF, 0xFFFF_0000, 0, 0x2_0000]), at: "/smmuv3@9050000"),
              let bytes = try? DeviceTreeWriter.write(edited) else { return [] }
        return bytes
    }

    /// The fixture with its `dma-coherent` property name misspelt (one bit: 'c' → 'C'), so no
    /// device is coherent and the VMM cannot allocate a vIOMMU on it.
    static func notCoherentDTB() -> [UInt8] {
        var bytes = dtb()
        let name = Array("dma-coherent".utf8)
        guard let at = bytes.indices.first(where: { bytes[$0...].starts(with: name) }) else { return [] }
        bytes[at + 4] ^= 0x20
        return bytes
    }

    static func yaml(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Ten levels of ten aliases: 10¹⁰ nodes once expanded.
    static var aliasBomb: String {
        var text = "name: bomb\nl0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1..<10 {
            text += "l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        return text + "? *l9\n: 1\n"
    }

    static let cases: [Case] = [
        Case(name: "truncated DTB", files: ["t.dtb": Array(dtb().prefix(20))],
             arguments: ["topology", "--platform", "$DIR/t.dtb"], status: 1, message: "DTB truncated: 20 bytes is shorter than the header"),
        Case(name: "bit-flipped DTB totalsize", files: ["f.dtb": { var b = dtb(); b[4] ^= 0x80; return b }()],
             arguments: ["topology", "--platform", "$DIR/f.dtb"], status: 1, message: "exceeds the"),
        Case(name: "DTB region whose base + size overflows names the node and property",
             files: ["o.dtb": overflowingDTB()],
             arguments: ["topology", "--platform", "$DIR/o.dtb"], status: 1,
             message: "/smmuv3@9050000: reg: region 0xffff_ffff_ffff_0000 size 0x2_0000 runs past the end of the 64-bit address space"),
        Case(name: "oversized platform (sparse)", setUp: { dir in
                 FileManager.default.createFile(atPath: dir + "/big.dtb", contents: nil)
                 let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/big.dtb"))
                 try handle.truncate(atOffset: UInt64(InputLimits.maximumFileSize) + 1)
                 try handle.close()
             },
             arguments: ["topology", "--platform", "$DIR/big.dtb"], status: 1,
             message: "big.dtb: 16777217 bytes is more than the file size limit (16777216 bytes)"),
        Case(name: "/dev/zero behind a .dtb symlink", setUp: { dir in
                 try FileManager.default.createSymbolicLink(atPath: dir + "/z.dtb", withDestinationPath: "/dev/zero")
             },
             arguments: ["topology", "--platform", "$DIR/z.dtb"], status: 1, message: "z.dtb: is a character device, not a regular file"),
        Case(name: "a FIFO as the scenario", setUp: { dir in _ = mkfifo(dir + "/s.yaml", 0o600) },
             arguments: ["run", "$DIR/s.yaml"], status: 1, message: "s.yaml: is a FIFO (named pipe), not a regular file"),
        Case(name: "a directory as the scenario", setUp: { dir in
                 try FileManager.default.createDirectory(atPath: dir + "/d.yaml", withIntermediateDirectories: false)
             },
             arguments: ["run", "$DIR/d.yaml"], status: 1, message: "d.yaml: is a directory, not a regular file"),
        Case(name: "a directory called x.dtb as the platform", setUp: { dir in
                 try FileManager.default.createDirectory(atPath: dir + "/x.dtb", withIntermediateDirectories: false)
             },
             arguments: ["topology", "--platform", "$DIR/x.dtb"], status: 1, message: "x.dtb: a directory with no IORT, APIC (MADT) or MCFG table"),
        Case(name: "compare on a corrupt platform fails before any table", files: ["c.dtb": Array(repeating: 0x41, count: 64)],
             arguments: ["compare", "--platform", "$DIR/c.dtb"], status: 1, message: "c.dtb: not a platform description"),
        Case(name: "compare on a platform nothing can be set up on exits 1 without a table of setup cells",
             files: ["nc.dtb": notCoherentDTB()],
             arguments: ["compare", "--scenario", "seed", "--platform", "$DIR/nc.dtb"], status: 1,
             message: "nc.dtb: no strategy could be set up on this platform (the first failed at VMM:"),
        Case(name: "a scenario naming a platform file that does not exist", files: ["p.yaml": yaml("name: p\nplatform: boards/none.dtb\n")],
             arguments: ["run", "$DIR/p.yaml"], status: 1, message: "p.yaml: platform: unknown platform"),
        Case(name: "non-UTF-8 scenario", files: ["n.yaml": [0x6E, 0x61, 0x6D, 0x65, 0x3A, 0x20, 0xFF, 0x0A]],
             arguments: ["run", "$DIR/n.yaml"], status: 1, message: "n.yaml:1:7: the file is not valid UTF-8"),
        Case(name: "alias bomb as a mapping key", files: ["b.yaml": yaml(aliasBomb)],
             arguments: ["run", "$DIR/b.yaml"], status: 1, message: "the YAML node limit (100000 nodes)"),
        Case(name: "a key that is an alias of a collection", files: ["k.yaml": yaml("name: k\nlist: &k [1]\n? *k\n: 1\n")],
             arguments: ["run", "$DIR/k.yaml"], status: 1, message: "k.yaml:3:3: a mapping key is the alias *k of a sequence or mapping"),
        Case(name: "more events than the limit",
             files: ["e.yaml": yaml("name: e\nevents:\n" + String(repeating: "  - save-restore\n", count: InputLimits.maximumScenarioEvents + 1))],
             arguments: ["run", "$DIR/e.yaml"], status: 1, message: "events: 10001 events is more than the scenario event limit (10000 events)"),
        Case(name: "a number beyond 64 bits", files: ["h.yaml": yaml("name: h\ndevices:\n  - vectors: 99999999999999999999999\n")],
             arguments: ["run", "$DIR/h.yaml"], status: 1, message: "does not fit in 64 bits"),
        Case(name: "explore --walks × --steps beyond the limit", arguments: ["explore", "--walks", "1000000000"], status: 64,
             message: "--walks 1000000000 × --steps 8 is more than the explore step limit (100000"),
        Case(name: "explore --out is a file: refused before the run", files: ["out": []],
             arguments: ["explore", "--depth", "0", "--out", "$DIR/out"], status: 1, message: "out: exists and is not a directory"),
    ]

    @Test("a bad input exits with its status and a sentence naming the file and the problem", arguments: cases)
    func badInput(_ c: Case) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-bad-\(getpid())-\(abs(c.name.hashValue))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, bytes) in c.files.sorted(by: { $0.key < $1.key }) {
            #expect(!bytes.isEmpty || name == "out", "fixture \(name) could not be built")
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
        }
        try c.setUp(dir)
        let run = try BinaryTests.run(c.arguments.map { $0.replacingOccurrences(of: "$DIR", with: dir) })
        #expect(run.status == c.status, "\(c.name): stderr \(run.stderr)")
        #expect(run.stderr.contains(c.message), "\(c.name): stderr \(run.stderr)")
        for leak in ["NSCocoaErrorDomain", "Error Domain=", "Kind.", "FDTError(", "LoadError."] {
            #expect(!run.stderr.contains(leak), "\(c.name): \(leak) in \(run.stderr)")
        }
        if c.status == 1 { #expect(run.stdout.isEmpty, "\(c.name): printed a report for an unusable input: \(run.stdout)") }
    }

    @Test("control characters in a scenario's name and summary are escaped in text, Markdown and Mermaid")
    func controlCharacters() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-ctl-\(getpid()).yaml")
        try "name: \"evil\\e]0;title\\a\\nrow\\x9b\"\nsummary: \"s\\e[2J\"\nstrategy: legacy\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        for arguments in [["run", file.path], ["run", file.path, "--format", "markdown"],
                          ["trace", file.path, "--strategy", "legacy", "--format", "mermaid"]] {
            let run = try BinaryTests.run(arguments)
            #expect(run.status == 0 || run.status == 1, "\(arguments): \(run.stderr)")
            let controls = run.stdout.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value) }
            #expect(controls.isEmpty, "\(arguments): raw control characters \(controls.map(\.value))")
            // Mermaid's own cleaning turns ';' into ',': the escapes around it are what matter.
            #expect(run.stdout.contains("evil\\u{1b}]0") && run.stdout.contains("title\\u{7}\\u{a}row\\u{9b}"), "\(arguments): \(run.stdout)")
        }
    }

    @Test("a replay written by explore from a scenario in a subdirectory with a relative platform runs from another directory")
    func replayFromAnotherDirectory() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-replay-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
        try Data(Self.dtb()).write(to: URL(fileURLWithPath: root + "/sub/board.dtb"))
        try "name: rel\nplatform: board.dtb\nstrategy: vfio-override\n".write(toFile: root + "/sub/s.yaml", atomically: true, encoding: .utf8)
        let explore = try BinaryTests.run(["explore", root + "/sub/s.yaml", "--depth", "1", "--out", root + "/out"])
        #expect(explore.status == 1, "\(explore.stderr)")
        let replay = try #require(try FileManager.default.contentsOfDirectory(atPath: root + "/out").sorted().first)
        let text = try String(contentsOfFile: root + "/out/" + replay, encoding: .utf8)
        #expect(text.contains("platform: ../sub/board.dtb"), "\(text)")
        let rerun = try BinaryTests.run(["run", root + "/out/" + replay])
        #expect(rerun.status == 1, "\(rerun.stderr)")
        #expect(rerun.stdout.contains("expected every invariant to hold"), "\(rerun.stdout)")
    }
}
