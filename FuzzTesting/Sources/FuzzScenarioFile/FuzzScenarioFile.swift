// libFuzzer entry point for scenario files: YAML text → Yams nodes → ScenarioDescription, and
// the writer's round trip.
//
// Build and run (FuzzTesting/README.md), from FuzzTesting/:
//   swift build -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
//   SWIFT_BACKTRACE=enable=off SWIFT_DETERMINISTIC_HASHING=1 .build/release/FuzzScenarioFile Corpus/FuzzScenarioFile -max_total_time=60
// Crash inputs belong in FailCases/FuzzScenarioFile/ and become regression tests in
// Tests/ScenarioTests/ScenarioFileTests.swift.
import Scenario

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 0 else { return 0 }
    // Invalid UTF-8 becomes U+FFFD here; `ScenarioFile.load` rejects it instead, but what the
    // reader sees is always a valid String, so this is the reader's whole input space.
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let scenario: ScenarioDescription
    do {
        scenario = try ScenarioFile.parse(text, path: "fuzz.yaml")
    } catch {
        // Any error is an acceptable answer, but it must point at a place in the text.
        if error.line < 1 || error.column < 1 { fatalError("error without a position: \(error)") }
        return 0
    }
    // What the reader accepts, the writer must write and the reader read back identically —
    // except strings starting with U+FEFF, which Yams drops on reading (ScenarioFileWriter.quoted).
    var strings = [scenario.name, scenario.summary]
    if case .deviceTree(let path) = scenario.platform { strings.append(path) }
    if strings.contains(where: { $0.unicodeScalars.first == "\u{FEFF}" }) { return 0 }
    let rendered = ScenarioFile.render(scenario)
    guard let again = try? ScenarioFile.parse(rendered, path: "rendered.yaml"), again == scenario else {
        fatalError("scenario file round trip differs:\n\(rendered)")
    }
    return 0
}
