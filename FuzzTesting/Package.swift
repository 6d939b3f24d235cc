// swift-tools-version: 6.1
// libFuzzer targets for everything in Doorbell that takes bytes from outside: SMMU tables and
// commands, ITS commands, MSI-X table writes, device-tree blobs, scenario files. Kept out of
// the main package so users never build them. See README.md here for the recipe.
import PackageDescription

func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: products.map { .product(name: $0, package: "Doorbell") },
        path: "Sources/\(name)"
    )
}

let package = Package(
    name: "FuzzTesting",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "Doorbell", path: "..")],
    targets: [
        fuzzTarget("FuzzTranslation", ["Bus", "SMMUv3"]),
        fuzzTarget("FuzzSMMUCommands", ["Bus", "SMMUv3"]),
        fuzzTarget("FuzzSMMUv2", ["Bus", "SMMUv2"]),
        fuzzTarget("FuzzITS", ["Bus", "GIC"]),
        fuzzTarget("FuzzGICSPI", ["Bus", "GIC"]),
        fuzzTarget("FuzzMSIX", ["Bus", "PCI"]),
        fuzzTarget("FuzzDTB", ["Bus", "Firmware"]),
        fuzzTarget("FuzzACPI", ["Bus", "Firmware"]),
        fuzzTarget("FuzzScenarioFile", ["Scenario"]),
        fuzzTarget("FuzzScenarioRun", ["Bus", "LinuxKernel", "PCI", "Scenario", "VMM"]),
        fuzzTarget("FuzzSnapshot", ["Inspect", "Report"]),
    ]
)
