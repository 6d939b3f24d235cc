/// An answer that is not a usage error: the model ran (or read the input) and the answer is
/// "this does not work here". ArgumentParser prints it as `Error: <message>` and exits 1;
/// `ValidationError` stays for usage errors (exit 64).
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}
