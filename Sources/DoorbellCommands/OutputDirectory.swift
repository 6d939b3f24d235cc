import Foundation
import Report

/// A directory the command will write into (`explore --out`), checked before any work is done.
enum OutputDirectory {
    /// Makes sure `path` is a directory a file can be created in: creates it (and its parents)
    /// when missing, then creates and removes a probe file — a real write, since permission
    /// bits say nothing for root or on a read-only mount. Returns whether it created the
    /// directory, so the caller can remove it again if nothing was written.
    @discardableResult
    static func checkWritable(_ path: String) throws -> Bool {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        let existed = manager.fileExists(atPath: path, isDirectory: &isDirectory)
        if existed && !isDirectory.boolValue {
            throw CommandFailure("--out \(path): exists and is not a directory")
        }
        if !existed {
            do { try manager.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
                throw CommandFailure("--out \(path): the directory cannot be created (\(describe(error)))")
            }
        }
        let probe = (path as NSString).appendingPathComponent(".doorbell-write-probe-\(getpid())")
        guard manager.createFile(atPath: probe, contents: Data()) else {
            throw CommandFailure("--out \(path): no file can be created in this directory")
        }
        try? manager.removeItem(atPath: probe)
        return !existed
    }

    /// Removes `path` if it is an empty directory (one `checkWritable` created for nothing).
    static func removeIfEmpty(_ path: String) {
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: path), entries.isEmpty {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// A file-system error as a sentence, without NSError's domain and code.
    static func describe(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain,
           let text = strerror(Int32(underlying.code)) {
            return String(cString: text)
        }
        if ns.domain == NSPOSIXErrorDomain, let text = strerror(Int32(ns.code)) { return String(cString: text) }
        return "the file system refused the write"
    }
}
