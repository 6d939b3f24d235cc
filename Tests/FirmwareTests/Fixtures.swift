import Foundation

/// The fixture DTBs under Tests/Fixtures, found relative to this file so the tests run from any
/// working directory.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// "qemu-virt/virt-smmu.dtb" style names of every fixture, sorted.
    static let all: [String] = {
        var names: [String] = []
        for directory in ["qemu-virt", "boards"] {
            let url = root.appendingPathComponent(directory)
            let files = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
            names += files.filter { $0.hasSuffix(".dtb") }.map { "\(directory)/\($0)" }
        }
        return names.sorted()
    }()

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: root.appendingPathComponent(name)))
    }

    static func qemu(_ name: String) throws -> [UInt8] { try bytes("qemu-virt/\(name).dtb") }
    static func board(_ name: String) throws -> [UInt8] { try bytes("boards/\(name).dtb") }
}
