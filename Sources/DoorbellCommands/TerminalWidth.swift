#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// How wide the user's terminal is: `COLUMNS` when it is set to a positive number, else the
/// window size of standard output when that is a terminal (`TIOCGWINSZ`), else nil (a pipe or
/// a file: tables keep their full width, so saved output does not depend on a window).
enum TerminalWidth {
    static func columns(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
        if let value = environment["COLUMNS"], let columns = Int(value), columns > 0 { return columns }
        guard isatty(STDOUT_FILENO) != 0 else { return nil }
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }
}
