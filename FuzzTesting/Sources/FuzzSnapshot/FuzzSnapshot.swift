// libFuzzer entry point for `doorbell inspect`'s readers: a snapshot archive (tar) holding a
// machine's sysfs/procfs files → `ArchiveSnapshot` → `MachineSnapshot` (every parser) →
// `InspectReport` (the model built from the archive's firmware, booted, compared) → text and
// JSON. A tar the reader accepts must write and read back to the same members.
//
// Build and run from FuzzTesting/ (README.md): FuzzTesting/fuzz.sh FuzzSnapshot 60
// Seeds: Corpus/FuzzSnapshot/ (the committed snapshots as archives). Crash inputs belong in
// FailCases/FuzzSnapshot/ and become regression tests.
import Inspect
import Report

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let members = try? TarArchive.read(bytes) else { return 0 }
    let again = try? TarArchive.read(TarArchive.write(members))
    guard let again, again.filter({ $0.member != .directory }).map(\.path).sorted() == members.filter({ $0.member != .directory }).map(\.path).sorted() else {
        fatalError("tar round trip lost members")
    }
    guard let source = try? ArchiveSnapshot(name: "fuzz.tar", bytes: bytes) else { return 0 }
    let report = InspectReport(snapshot: MachineSnapshot(source))
    _ = report.text
    _ = try? report.json()
    return 0
}
