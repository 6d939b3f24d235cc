/// Reading a device tree blob (or any file) from disk for the command line (`--platform`) and
/// the tests (Tests/Fixtures): `InputFile.read`, bounded by `InputLimits.maximumFileSize`, regular
/// files only.
public enum DeviceTreeFile {
    public typealias ReadError = InputFile.ReadError

    /// The whole file at `path`.
    public static func read(path: String) throws(ReadError) -> [UInt8] {
        try InputFile.read(path)
    }
}
