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
        // The interposer the harness counts mallocs with (the version it resolves to), used
        // directly by the steady MSI rigs' setup to check one lap allocates nothing.
        .package(url: "https://github.com/ordo-one/malloc-interposer.git", exact: "1.6.1"),
    ],
    targets: [
        benchmarkTarget("BusBenchmarks", ["Bus"]),
        // SMMU.translate.*: SMMUTranslator alone (TLB hit, S1/S2/nested misses).
        // SMMU.compare.*: the same shapes walked by WalkReference (plain C) and by SMMUTranslator.
        benchmarkTarget("SMMUBenchmarks", ["Bus", "SMMUv3", "Testbed"], extra: ["WalkReference"]),
        // The C yardstick: a plain SMMU-style walk over sparse frames (include/WalkReference.h).
        .target(name: "WalkReference", path: "Sources/WalkReference",
                cSettings: [.unsafeFlags(["-O2"])]),
        // MSI.*: one MSI from PCIFunction.raise (or a GITS_TRANSLATER write) to a pending LPI.
        benchmarkTarget("MSIBenchmarks", ["Bus", "SMMUv3", "GIC", "PCI", "Machine", "Testbed"]),
        // ITS.commands.*: command-queue batches consumed on a CWRITER write.
        benchmarkTarget("ITSBenchmarks", ["Bus", "GIC", "Machine", "Testbed"]),
        // Doorbell.msi.*: the `doorbell msi` steps as a whole run.
        benchmarkTarget("DoorbellBenchmarks", ["Bus", "SMMUv3", "GIC", "PCI", "Machine", "Testbed"]),
        // Platform.acpi.*: a server's IORT/MADT/MCFG read and its machine built.
        benchmarkTarget("PlatformBenchmarks", ["Bus", "Firmware", "Machine"]),
        // Scenario.*: strategies × built-in scenarios, whole worlds, and device → guest MSIs.
        benchmarkTarget("ScenarioBenchmarks", ["Scenario"],
                        extra: [.product(name: "MallocInterposerSwift", package: "malloc-interposer")]),
        // Scale.*: bring-ups whose cost must be linear in devices × vectors and in IOAS_MAP pages.
        benchmarkTarget("ScaleBenchmarks", ["Bus", "GIC", "PCI", "Machine", "Testbed", "LinuxKernel"]),
    ]
)

func benchmarkTarget(_ name: String, _ products: [String], extra: [Target.Dependency] = []) -> Target {
    .executableTarget(
        name: name,
        dependencies: [.product(name: "Benchmark", package: "benchmark")] + products.map { .product(name: $0, package: "Doorbell") } + extra,
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}
