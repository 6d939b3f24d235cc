/// Every bound Doorbell puts on what it reads, in one place, so a hostile or broken input is
/// refused with a sentence instead of exhausting memory or time.
///
/// Each limit is far above anything real and far below what would hurt:
/// - `maximumFileSize` (16 MiB): every input file — a device tree blob, an ACPI table, a
///   scenario file — is read with this bound, and only when it is a regular file (devices such
///   as `/dev/zero`, FIFOs, sockets and directories are refused by their file type before any
///   byte is read; `InputFile.read`). The largest real DTBs and IORT/MADT tables are tens of
///   KiB; a DSDT can reach a few MiB.
/// - `maximumDeviceTreeNodes` (100 000) and `maximumDeviceTreeDepth` (64): a DTB's structure
///   block. Linux's `unflatten_dt_nodes` stops at 64 levels (`FDT_MAX_DEPTH`); the largest
///   server trees have a few thousand nodes.
/// - `maximumScenarioEvents` (10 000) and `maximumScenarioDevices` (248): a scenario file's
///   `events:` and `devices:`. Every event fires every vector after it, so the run grows with
///   their product; the explorer's minimal counterexamples have a handful of events. 248 is the
///   most functions the guest's root bus pcie.0 holds (QEMU virt: slots 1–31 × functions 0–7;
///   `GuestPCILimits.rootBusFunctions`), so the file never refuses a scenario the model can
///   build; the world checks the platform's own limits (`World+DeviceLimits.swift`).
/// - `maximumYAMLNodes` (100 000): the nodes of a scenario file counted with every alias
///   expanded, checked on libyaml's event stream BEFORE the document is composed, because
///   composing hashes every mapping key through its aliases (a "billion laughs" key costs
///   10ⁿ). A mapping key that is an alias of a sequence or mapping is refused outright.
/// - `maximumExploreSteps` (100 000): `explore --walks × --steps`, the random-walk events one
///   strategy runs (each is a world step plus a firing of every vector, a few milliseconds).
///
/// Every refusal names the limit, its value and the file (`InputLimits.describe`).
public enum InputLimits {
    public static let maximumFileSize = 16 << 20
    public static let maximumDeviceTreeNodes = 100_000
    public static let maximumDeviceTreeDepth = 64
    public static let maximumScenarioEvents = 10_000
    public static let maximumScenarioDevices = 248
    public static let maximumYAMLNodes = 100_000
    public static let maximumExploreSteps = 100_000

    /// "the file size limit (16777216 bytes)": how an error names a limit.
    public static func describe(_ limit: String, _ value: Int, unit: String = "") -> String {
        "the \(limit) limit (\(value)\(unit.isEmpty ? "" : " " + unit))"
    }
}
