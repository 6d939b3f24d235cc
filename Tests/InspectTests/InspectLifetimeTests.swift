import Foundation
import LinuxKernel
import Testing
@testable import Inspect

/// The model `inspect` boots for a snapshot must go when the prediction does. FuzzSnapshot's
/// first run found LeakSanitizer reports on every seed: each probed device's SMMU master and
/// the device held each other (FailCases/FuzzSnapshot/leak-9a35da91…), so every inspected
/// machine stayed in memory.
@Suite("inspect model lifetime") struct InspectLifetimeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/snapshots")

    struct Weak {
        weak var object: AnyObject?
        let name: String
    }

    @Test("the booted kernel, its devices and their SMMU masters are freed with the prediction",
          arguments: ["acpi-smmuv3", "dt-smmuv3"])
    func modelIsFreed(_ name: String) throws {
        var watched: [Weak] = []
        do {
            let snapshot = MachineSnapshot(DirectorySnapshot(root: Self.root.appendingPathComponent(name).path))
            let prediction = try InspectPrediction(snapshot)
            watched.append(Weak(object: prediction.kernel, name: "kernel"))
            for device in prediction.kernel.devices {
                watched.append(Weak(object: device, name: device.name))
                if let master = device.iommu?.driverData { watched.append(Weak(object: master, name: "\(device.name) master")) }
            }
            #expect(watched.count > 2)
        }
        #expect(watched.filter { $0.object != nil }.map(\.name) == [])
    }
}
