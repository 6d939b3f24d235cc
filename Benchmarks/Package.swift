// swift-tools-version: 6.1
// Benchmarks for Doorbell's hot paths, kept in their own package so the main build stays light.
// Run from this directory: `swift package benchmark` (see README.md here).
import PackageDescription

let package = Package(
    name: "DoorbellBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Doorbell", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "BusBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Bus", package: "Doorbell"),
            ],
            path: "Benchmarks/BusBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
