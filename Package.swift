// swift-tools-version: 6.1
// Doorbell: a bit-exact model of a PCIe MSI travelling through an Arm SMMUv3 to a GICv3 ITS
// doorbell, with the Linux host, a VMM and a guest on top. See README.md and docs/architecture.md.
import PackageDescription

let package = Package(
    name: "Doorbell",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "doorbell", targets: ["doorbell"]),
        .library(name: "Bus", targets: ["Bus"]),
        .library(name: "SMMUv3", targets: ["SMMUv3"]),
        .library(name: "SMMUv2", targets: ["SMMUv2"]),
        .library(name: "GIC", targets: ["GIC"]),
        .library(name: "PCI", targets: ["PCI"]),
        .library(name: "Firmware", targets: ["Firmware"]),
        .library(name: "Machine", targets: ["Machine"]),
        .library(name: "Testbed", targets: ["Testbed"]),
        .library(name: "LinuxKernel", targets: ["LinuxKernel"]),
        .library(name: "VMM", targets: ["VMM"]),
        .library(name: "Scenario", targets: ["Scenario"]),
        .library(name: "Inspect", targets: ["Inspect"]),
        .library(name: "Report", targets: ["Report"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // Hardware, bottom up. A hardware module never imports a software module.
        .target(name: "Bus"),
        .target(name: "SMMUv3", dependencies: ["Bus"]),
        // Arm SMMUv2 (MMU-500/MMU-401); shares the SMMUv3 module's VMSAv8-64 walk geometry.
        .target(name: "SMMUv2", dependencies: ["Bus", "SMMUv3"]),
        .target(name: "GIC", dependencies: ["Bus"]),
        .target(name: "PCI", dependencies: ["Bus"]),
        .target(name: "Firmware", dependencies: ["Bus"]),
        .target(name: "Machine", dependencies: ["Bus", "SMMUv3", "SMMUv2", "GIC", "PCI", "Firmware"]),
        // Bring-up and test code that programs the hardware directly, without a running kernel:
        // bare-metal firmware-style bring-up and a page-table builder. Software, so it lives
        // outside the hardware modules; its STEs, CDs and descriptors are the Linux model's
        // recipes (LinuxKernel never depends on Testbed).
        .target(name: "Testbed", dependencies: ["Bus", "SMMUv3", "SMMUv2", "GIC", "PCI", "Firmware", "Machine", "LinuxKernel"]),
        // Software: one Linux model, run as the host now and as the guest later. It reaches the
        // hardware only through MMIO, memory and the CPU's GIC system registers.
        .target(name: "LinuxKernel", dependencies: ["Bus", "SMMUv3", "SMMUv2", "GIC", "PCI", "Firmware"]),
        // The VMM (QEMU-like): drives the host kernel only through its uAPI (VFIO, iommufd, KVM),
        // and emulates the guest's devices (accelerated vSMMU, vfio-pci, guest firmware).
        .target(name: "VMM", dependencies: ["Bus", "SMMUv3", "GIC", "PCI", "Firmware", "LinuxKernel"]),
        // Strategies × scenarios: builds a world per run, runs its events, observes every MSI.
        .target(
            name: "Scenario",
            dependencies: [
                "Bus", "SMMUv3", "GIC", "PCI", "Firmware", "Machine", "Testbed", "LinuxKernel", "VMM",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // A real machine read from its sysfs and procfs (live, a directory or a snapshot archive),
        // and the model's prediction for it built from the same firmware, release and devices.
        .target(
            name: "Inspect",
            dependencies: ["Bus", "SMMUv3", "GIC", "PCI", "Firmware", "Machine", "Testbed", "LinuxKernel", "VMM", "Scenario"]
        ),
        // Every rendering: the tables, JSON, traces, diagrams and the reports the commands print,
        // built from the models below, so the command line only parses arguments and calls it.
        .target(
            name: "Report",
            dependencies: ["Bus", "SMMUv3", "GIC", "PCI", "Firmware", "Machine", "Testbed", "LinuxKernel", "VMM", "Scenario", "Inspect"]
        ),
        // The command line: subcommands live in a library so tests can drive them.
        .target(
            name: "DoorbellCommands",
            dependencies: [
                "Bus", "SMMUv3", "GIC", "PCI", "Firmware", "Machine", "Testbed", "LinuxKernel", "VMM", "Scenario", "Inspect", "Report",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "doorbell", dependencies: ["DoorbellCommands"]),

        .testTarget(name: "BusTests", dependencies: ["Bus"]),
        .testTarget(name: "SMMUv3Tests", dependencies: ["Bus", "SMMUv3", "Testbed"]),
        .testTarget(name: "SMMUv2Tests", dependencies: ["Bus", "SMMUv2", "SMMUv3"]),
        .testTarget(name: "GICTests", dependencies: ["Bus", "GIC"]),
        .testTarget(name: "PCITests", dependencies: ["Bus", "PCI"]),
        .testTarget(name: "FirmwareTests", dependencies: ["Bus", "Firmware", "Testbed"]),
        .testTarget(name: "MachineTests", dependencies: ["Bus", "SMMUv3", "SMMUv2", "GIC", "PCI", "Firmware", "Machine", "Testbed"]),
        .testTarget(name: "LinuxKernelTests", dependencies: ["Bus", "SMMUv3", "SMMUv2", "GIC", "PCI", "Firmware", "Machine", "LinuxKernel", "Testbed"]),
        .testTarget(name: "VMMTests", dependencies: ["Bus", "SMMUv3", "GIC", "PCI", "Firmware", "Machine", "LinuxKernel", "VMM", "Testbed"]),
        .testTarget(name: "ScenarioTests", dependencies: ["Bus", "SMMUv3", "GIC", "PCI", "Firmware", "Machine", "LinuxKernel", "VMM", "Scenario", "Report"]),
        .testTarget(name: "InspectTests", dependencies: ["Inspect", "Report", "Scenario", "LinuxKernel", "Firmware", "PCI", "Bus"]),
        .testTarget(name: "DoorbellCommandsTests", dependencies: ["DoorbellCommands", "Report", "Testbed", "doorbell"]),
    ],
    swiftLanguageModes: [.v6]
)
