/// An answer that is not a usage error: the model ran (or read the input) and the answer is
/// "this does not work here". ArgumentParser prints it as `Error: <message>` and exits 1;
/// `UsageFailure` is for usage errors (the command line turns it into a `ValidationError`,
/// exit 64).
/// The message goes through `SafeText.escape` (newlines kept): it often quotes a file name or
/// a value from a file.
public struct CommandFailure: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = SafeText.escape(message, keepingNewlines: true) }
    public var description: String { message }
}

/// The input asks for something the model refuses as a usage error (a `--device` given twice, a
/// VFIO owner on a device not behind an IOMMU): the command line rethrows it as ArgumentParser's
/// `ValidationError`, so it prints the usage and exits 64.
public struct UsageFailure: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = SafeText.escape(message, keepingNewlines: true) }
    public var description: String { message }
}
