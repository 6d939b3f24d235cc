import Foundation
import Testing

/// `doorbell explore --shard K/N` and `--merge`, through the built binary: the merged output is
/// the unsharded output byte for byte, in text and JSON, with the same replay files; a
/// shard's document validates against the schema; and every way a set of shards can be wrong
/// is refused with a sentence naming the file or the shard.
@Suite("explore shards")
struct ExploreShardCommandTests {
    /// A fresh directory for one test's shard files.
    static func directory(_ name: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-shards-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs every shard of `count` with `options` into `directory`; returns the files.
    static func shards(_ options: [String], count: Int, in directory: String) throws -> [String] {
        try (1...count).map { k in
            let run = try BinaryTests.run(["explore"] + options + ["--shard", "\(k)/\(count)"])
            #expect(run.status == 0, "shard \(k)/\(count): \(run.stderr)")
            let file = "\(directory)/shard-\(k).json"
            try run.stdout.write(toFile: file, atomically: true, encoding: .utf8)
            return file
        }
    }

    @Test("merged shards print the unsharded run byte for byte, text and JSON, for 1, 3 and more shards than work items",
          arguments: [(["--depth", "2", "--walks", "3", "--steps", "4"], [1, 3]),
                      (["--depth", "1", "--strategy", "vfio-override"], [30])])
    func mergeIsTheWholeRun(_ options: [String], _ counts: [Int]) throws {
        let dir = try Self.directory("whole-\(options.count)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = try BinaryTests.run(["explore"] + options)
        let json = try BinaryTests.run(["explore"] + options + ["--format", "json"])
        #expect(text.status == 1 && json.status == 1, "vfio-override breaks stability: \(text.stderr)")
        for count in counts {
            let files = try Self.shards(options, count: count, in: dir)
            let mergedText = try BinaryTests.run(["explore"] + options + ["--merge"] + files)
            #expect(mergedText.status == text.status)
            #expect(mergedText.stdout == text.stdout, "\(count) shards: \(mergedText.stderr)")
            #expect(mergedText.stderr.isEmpty, "no state had to be run by the merge")
            // The shards in another order merge to the same output.
            let mergedJSON = try BinaryTests.run(["explore"] + options + ["--format", "json", "--merge"] + files.reversed())
            #expect(mergedJSON.status == json.status)
            #expect(mergedJSON.stdout == json.stdout, "\(count) shards: \(mergedJSON.stderr)")
        }
    }

    @Test("the merge writes the same replay files as the whole run")
    func replayFiles() throws {
        let dir = try Self.directory("replays")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let options = ["--depth", "1", "--strategy", "vfio-override"]
        let whole = try BinaryTests.run(["explore"] + options + ["--out", dir + "/whole"])
        let files = try Self.shards(options, count: 2, in: dir)
        let merged = try BinaryTests.run(["explore"] + options + ["--out", dir + "/merged", "--merge"] + files)
        #expect(merged.stdout.replacingOccurrences(of: dir + "/merged", with: dir + "/whole") == whole.stdout)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir + "/whole").sorted()
        #expect(!names.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/merged").sorted() == names)
        for name in names {
            #expect(try String(contentsOfFile: "\(dir)/merged/\(name)", encoding: .utf8) == String(contentsOfFile: "\(dir)/whole/\(name)", encoding: .utf8))
        }
    }

    @Test("a shard's document validates against Schemas/doorbell.schema.json")
    func shardDocumentValidates() throws {
        let run = try BinaryTests.run(["explore", "--depth", "1", "--shard", "2/3"])
        #expect(run.status == 0, "\(run.stderr)")
        let document = try JSONTree.parse(run.stdout)
        #expect(document["command"] == .string("explore"))
        #expect(document["form"] == .string("shard"))
        #expect(document["shard"] == .integer(2) && document["shards"] == .integer(3))
        let errors = try JSONSchemaTests.schema().errors(document)
        #expect(errors.isEmpty, "\(errors.prefix(5).joined(separator: "\n"))")
    }

    @Test("missing, duplicate, foreign and mixed shards are refused with the file or shard named")
    func badSets() throws {
        let dir = try Self.directory("bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let options = ["--depth", "1", "--strategy", "rmr-identity"]
        let files = try Self.shards(options, count: 3, in: dir)
        func merge(_ paths: [String], _ extra: [String] = []) throws -> BinaryTests.Run {
            try BinaryTests.run(["explore"] + options + extra + ["--merge"] + paths)
        }
        let missing = try merge([files[0], files[2]])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("shard 2/3 is missing"), "\(missing.stderr)")
        let twice = try merge([files[0], files[1], files[1], files[2]])
        #expect(twice.status == 1)
        #expect(twice.stderr.contains("shard 2/3 is given twice: \(files[1]) and \(files[1])"), "\(twice.stderr)")
        let otherDepth = try BinaryTests.run(["explore", "--depth", "0", "--strategy", "rmr-identity", "--merge"] + files)
        #expect(otherDepth.status == 1)
        #expect(otherDepth.stderr.contains("\(files[0]) is a shard of a different run (--depth 1 (the merge: 0))"), "\(otherDepth.stderr)")
        let otherSplit = try BinaryTests.run(["explore"] + options + ["--shard", "1/2"])
        let two = dir + "/two.json"
        try otherSplit.stdout.write(toFile: two, atomically: true, encoding: .utf8)
        let mixed = try merge([files[0], two])
        #expect(mixed.status == 1)
        #expect(mixed.stderr.contains("\(files[0]) is shard 1/3 but \(two) is shard 1/2"), "\(mixed.stderr)")
        let notShard = dir + "/report.json"
        try BinaryTests.run(["explore"] + options + ["--format", "json"]).stdout.write(toFile: notShard, atomically: true, encoding: .utf8)
        let wrong = try merge([notShard])
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("\(notShard): not a shard of doorbell explore"), "\(wrong.stderr)")
        let garbage = dir + "/garbage.json"
        try "{\"schema\": 2, \"command\": \"explore\", \"form\": \"shard\", \"shard-format\": 1, \"shard\": 1}".write(toFile: garbage, atomically: true, encoding: .utf8)
        let truncated = try merge([garbage])
        #expect(truncated.status == 1)
        #expect(truncated.stderr.contains("\(garbage): the document has no key shards"), "\(truncated.stderr)")
        let absent = try merge([dir + "/absent.json"])
        #expect(absent.status == 1)
        #expect(absent.stderr.contains("\(dir)/absent.json: no such file"), "\(absent.stderr)")
        // A device is refused before any read: /dev/zero reports 0 bytes and never ends.
        let device = try merge(["/dev/zero"])
        #expect(device.status == 1)
        #expect(device.stderr.contains("/dev/zero: is a character device, not a regular file"), "\(device.stderr)")
        let directory = try merge([dir])
        #expect(directory.status == 1)
        #expect(directory.stderr.contains("\(dir): is a directory, not a regular file"), "\(directory.stderr)")
    }

    @Test("--shard K/N is 1-based and checked", arguments: [
        ("0/4", "shards are numbered from 1 (1/4 … 4/4)"),
        ("5/4", "--shard 5/4: K must be 1…4"),
        ("1/0", "the number of shards N must be 1…"),
        ("two/4", "give K/N, this shard's number K (1…N)"),
        ("1/4/2", "give K/N"),
    ])
    func shardArgument(_ argument: String, _ message: String) throws {
        let run = try BinaryTests.run(["explore", "--depth", "0", "--shard", argument])
        #expect(run.status == 64)
        #expect(run.stderr.contains(message), "\(run.stderr)")
    }

    @Test("--shard refuses --merge and --out")
    func shardConflicts() throws {
        let withMerge = try BinaryTests.run(["explore", "--shard", "1/2", "--merge", "x.json"])
        #expect(withMerge.status == 64 && withMerge.stderr.contains("give one of the two"))
        let withOut = try BinaryTests.run(["explore", "--shard", "1/2", "--out", "dir"])
        #expect(withOut.status == 64 && withOut.stderr.contains("--out belongs to --merge"))
    }
}
