import Foundation
import Testing

/// Every board device tree in the fixtures gets a verdict from the binary, as a user running
/// `doorbell msi --platform board.dtb` would see it: boards whose PCIe MSIs go to a GICv3 ITS,
/// a GICv2m frame or GICv3 MBIs through an SMMUv3, an Arm SMMUv2 (MMU-500), an Arm SMMUv1
/// (MMU-401) or no IOMMU deliver;
/// the rest exit 1 with one line naming what is outside
/// the model; none exits 64 (usage) or with an internal message.
@Suite("board verdicts")
struct BoardVerdictTests {
    /// What each board's description implies, read from the blobs (`doorbell topology`):
    /// `nil` = delivers; otherwise a phrase the one-line reason must contain.
    static let expected: [(board: String, reason: String?)] = [
        ("amd_amd-overdrive-rev-b1", nil),                // GICv2m behind an MMU-401 (SMMUv1, stage 2)
        ("apm_apm-merlin", "no enabled PCIe host bridge"),
        ("arm_foundation-v8-gicv3", "no PCIe host bridge"),
        ("arm_fvp-base-revc", nil),                       // ITS + SMMUv3, RAM at 0x8000_0000
        ("arm_juno-r2", nil),                             // GICv2m behind an MMU-401 (SMMUv1, stage 2)
        ("arm_juno", "/pcie@40000000 is status = \"disabled\""),
        ("cavium_thunder-88xx", "no PCIe host bridge"),
        ("cavium_thunder2-99xx", nil),                    // ITS, no IOMMU
        // The ECAM RCiEP bus behind the MMU-500 (SMMUv2): a stage-1 context bank maps the MSI IOVA.
        ("freescale_fsl-ls1028a-kontron-sl28-var4", nil),
        ("freescale_fsl-ls1028a-rdb", nil),
        ("freescale_fsl-ls1046a-rdb", "no enabled PCIe host bridge"),
        ("freescale_fsl-ls1088a-rdb", "no enabled PCIe host bridge"),
        ("freescale_fsl-ls1088a-ten64", "no enabled PCIe host bridge"),
        ("freescale_fsl-ls2088a-rdb", "no enabled PCIe host bridge"),
        ("freescale_fsl-lx2160a-honeycomb", "no enabled PCIe host bridge"),
        ("freescale_fsl-lx2160a-rdb", "no enabled PCIe host bridge"),
        ("hisilicon_hip05-d02", "no PCIe host bridge"),
        ("hisilicon_hip06-d03", "/soc/pcie@a0090000 is status = \"disabled\""),
        ("hisilicon_hip07-d05", nil),                     // buses 248-255, ITS 2 via msi-map, ITS above 4 TiB
        ("marvell_armada-8040-mcbin", nil),               // GICv2m SPI 160+ (arm,msi-base-spi), MMU-500 disabled
        ("marvell_armada-8080-db", "no PCIe host bridge"),
        ("marvell_cn9130-crb-A", nil),                    // GICv2m SPI 160+ (arm,msi-base-spi)
        ("qcom_qrb5165-rb5", "neither msi-map nor msi-parent"),
        ("qcom_sc7280-idp", "neither msi-map nor msi-parent"),
        ("qcom_sc8280xp-lenovo-thinkpad-x13s", "no PCIe host bridge"),
        ("qcom_sdm845-db845c", "neither msi-map nor msi-parent"),
        ("qcom_sm8450-hdk", "neither msi-map nor msi-parent"),
        // No ECAM: root port in apb-base, 01:00.0 through axi-base; ITS, no IOMMU, msi-map.
        ("rockchip_rk3399-gru-kevin", nil),
        ("rockchip_rk3399-rockpro64", nil),
        ("rockchip_rk3566-quartz64-a", nil),              // GICv3 MBIs, mbi-ranges 296…319
        ("rockchip_rk3568-rock-3a", nil),                 // GICv3 MBIs, mbi-ranges 296…319
        ("ti_k3-am625-sk", "no PCIe host bridge"),
        // The TI K3 boards that deliver do so through the pre-ITS window (socionext,synquacer-pre-its):
        // the function writes 0x100_0000 + (DeviceID << 2). Host MSIs work; MSI isolation is lost.
        ("ti_k3-am642-evm", nil),                         // 4 KiB config window: endpoint at 00:00.0
        ("ti_k3-am654-base-board", "no enabled PCIe host bridge"),
        ("ti_k3-am6548-iot2050-advanced-pg2", nil),       // DeviceIDs from 0x1_0000: 17-bit Devbits
        ("ti_k3-j7200-common-proc-board", nil),
        ("ti_k3-j721e-common-proc-board", nil),           // window 0x1001_1000: BAR aligned up
        ("ti_k3-j721e-sk", nil),
        ("ti_k3-j721s2-common-proc-board", "no PCIe host bridge"),
        ("xilinx_zynqmp-zcu102-rev1.0", "has no enabled GICv2m frame"),
    ]

    /// Boards whose MSIs are SPIs: the INTID vector 2 arrives as (GICv2m frame 0's
    /// `arm,msi-base-spi` 160 + 2 on the Marvell boards, its MSI_TYPER base 80 + 2 on Juno r2 and
    /// the AMD Overdrive; `mbi-ranges`' first SPI 296 + 2 on RK356x).
    static let deliveredSPI: [String: Int] = [
        "amd_amd-overdrive-rev-b1": 82, "arm_juno-r2": 82,
        "marvell_armada-8040-mcbin": 162, "marvell_cn9130-crb-A": 162,
        "rockchip_rk3566-quartz64-a": 298, "rockchip_rk3568-rock-3a": 298,
    ]

    static var boards: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/boards")
    }

    @Test("the table covers every board fixture")
    func everyBoardListed() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.boards.path)
            .filter { $0.hasSuffix(".dtb") }.map { String($0.dropLast(4)) }.sorted()
        #expect(files == Self.expected.map(\.board).sorted())
    }

    @Test("msi on every board: delivered, or exit 1 with one line", arguments: expected.map(\.board))
    func msiVerdict(board: String) throws {
        let reason = Self.expected.first { $0.board == board }?.reason
        let path = Self.boards.appendingPathComponent("\(board).dtb").path
        let run = try BinaryTests.run(["msi", "--platform", path])
        if let reason {
            #expect(run.status == 1, "\(board): \(run.stdout)\(run.stderr)")
            let lines = run.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(board): \(run.stderr)")
            #expect(run.stderr.contains(reason), "\(board): \(run.stderr)")
            #expect(run.stdout.isEmpty)
        } else {
            #expect(run.status == 0, "\(board): \(run.stderr)")
            // Vector 2: LPI 8192 + 2 through an ITS; the frame's or MBI range's first SPI + 2.
            let taken = Self.deliveredSPI[board].map { "SPI \($0)" } ?? "LPI 8194"
            #expect(run.stdout.contains("result: delivered: CPU 0 took \(taken)"), "\(board): \(run.stdout)")
        }
    }

    /// The boards with an SMMUv2 (MMU-500) in front of a GICv3 ITS.
    static let smmuV2Boards = ["freescale_fsl-ls1028a-kontron-sl28-var4", "freescale_fsl-ls1028a-rdb"]

    @Test("msi and host on the SMMUv2 boards: a stage-1 context bank translates the MSI IOVA to GITS_TRANSLATER", arguments: smmuV2Boards)
    func smmuV2Delivery(board: String) throws {
        let path = Self.boards.appendingPathComponent("\(board).dtb").path
        let msi = try BinaryTests.run(["msi", "--platform", path])
        #expect(msi.status == 0, "\(board): \(msi.stderr)")
        #expect(msi.stdout.contains("CB0 translated"), "\(board): \(msi.stdout)")
        #expect(msi.stdout.contains("0xffff_f040 → 0x0603_0040 (stage 1)"), "\(board): \(msi.stdout)")
        // A kernel driver's DMA domain maps the doorbell at the top of the IOVA space; VFIO's
        // domains at the SW_MSI window arm_smmu_get_resv_regions reports (MSI_IOVA_BASE).
        for (owner, iova) in [("driver", "0xffff_f040"), ("vfio-type1", "0x0800_0040"), ("vfio-iommufd", "0x0800_0040")] {
            let host = try BinaryTests.run(["host", "--platform", path, "--owner", owner])
            #expect(host.status == 0, "\(board) \(owner): \(host.stderr)")
            #expect(host.stdout.contains("iommu arm-smmu.0"), "\(board) \(owner): \(host.stdout)")
            #expect(host.stdout.contains("\(iova) → 0x0603_0040 (stage 1)"), "\(board) \(owner): \(host.stdout)")
            #expect(host.stdout.contains("result: delivered"), "\(board) \(owner): \(host.stdout)")
        }
        let nested = try BinaryTests.run(["msi", "--platform", path, "--translation", "nested"])
        #expect(nested.status == 1)
        #expect(nested.stderr.contains("nested translation is not available on an SMMUv2"))
    }

    /// The boards with an MMU-401 (SMMUv1, stage 2 only) in front of a GICv2m frame.
    static let smmuV1Boards = ["amd_amd-overdrive-rev-b1", "arm_juno-r2"]

    @Test("msi and host on the MMU-401 boards: a stage-2 context bank maps the MSI IOVA onto the GICv2m frame, SPI 82 arrives",
          arguments: smmuV1Boards)
    func smmuV1Delivery(board: String) throws {
        let path = Self.boards.appendingPathComponent("\(board).dtb").path
        let msi = try BinaryTests.run(["msi", "--platform", path])
        #expect(msi.status == 0, "\(board): \(msi.stderr)")
        #expect(msi.stdout.contains("(arm,mmu-401): SMR0 = StreamID"), "\(board): \(msi.stdout)")
        #expect(msi.stdout.contains("context bank 0 (stage 2, VMID 1: the SMMU has no stage 1)"), "\(board): \(msi.stdout)")
        #expect(msi.stdout.contains("S2 L1 descriptor"), "\(board): the stage-2 walk is traced")
        #expect(msi.stdout.contains("CB0 translated"), "\(board): \(msi.stdout)")
        let frameWrite = msi.stdout.split(separator: "\n").first { $0.contains(" v2m ") && $0.contains("SETSPI") }
        #expect(frameWrite?.contains("SPI 82 pending") == true, "\(board): the v2m frame's step: \(msi.stdout)")
        #expect(msi.stdout.contains("MSI-X vector 2: address 0xffff_f040, data 0x52 (SPI 82)"), "\(board): \(msi.stdout)")
        #expect(msi.stdout.contains("result: delivered: CPU 0 took SPI 82"), "\(board): \(msi.stdout)")
        // The host kernel's arm-smmu probes the MMU-401 as Linux does and gives the function a
        // stage-2 DMA domain; gicv2m's iommu_dma_prepare_msi maps the frame at the MSI IOVA.
        let host = try BinaryTests.run(["host", "--platform", path, "--owner", "driver"])
        #expect(host.status == 0, "\(board): \(host.stderr)")
        // Juno r2's PCIe SMMU is the first arm-smmu to probe; the Overdrive's the third.
        #expect(host.stdout.contains("iommu arm-smmu.\(board == "arm_juno-r2" ? 0 : 2)"), "\(board): \(host.stdout)")
        #expect(host.stdout.contains("gicv2m_irq_domain_alloc → iommu_dma_prepare_msi"), "\(board): \(host.stdout)")
        #expect(host.stdout.contains("0xffff_f040 → "), "\(board): \(host.stdout)")
        #expect(host.stdout.contains("(stage 2)"), "\(board): \(host.stdout)")
        #expect(host.stdout.contains("result: delivered"), "\(board): \(host.stdout)")
    }

    @Test("Juno r2: the MMU-401 in front of the PCIe is named with its path, the frame's doorbell at 0x2c1c_0040")
    func junoR2() throws {
        let path = Self.boards.appendingPathComponent("arm_juno-r2.dtb").path
        let msi = try BinaryTests.run(["msi", "--platform", path])
        #expect(msi.stdout.contains("SMMUv1 /iommu@2b500000 (arm,mmu-401)"), "\(msi.stdout)")
        #expect(msi.stdout.contains("GICv2m frame 0 at 0x2c1c_0000"), "\(msi.stdout)")
        #expect(msi.stdout.contains("0xffff_f040 → 0x2c1c_0040 (stage 2)"), "\(msi.stdout)")
        // iommu-map-mask = <0>: every requester is StreamID 0.
        #expect(msi.stdout.contains("→ StreamID 0x0"), "\(msi.stdout)")
        // The same walk in QEMU's SMMU trace-event format (QEMU has no SMMUv1 device; the
        // events are its shared smmu-common ones): the stage-2 leaf and the frame page.
        let trace = try BinaryTests.run(["msi", "--platform", path, "--format", "qemu-trace"])
        #expect(trace.status == 0, "\(trace.stderr)")
        #expect(trace.stdout.contains("smmu_ptw_page_pte stage=2 level=3 iova=0xfffff000"), "\(trace.stdout)")
        #expect(trace.stdout.contains("page address = 0x2c1c0000"), "\(trace.stdout)")
    }

    @Test("topology ends with the same verdict msi gives", arguments: ["arm_juno", "arm_juno-r2", "hisilicon_hip07-d05", "freescale_fsl-ls1028a-rdb", "ti_k3-j721e-sk"])
    func topologyVerdict(board: String) throws {
        let path = Self.boards.appendingPathComponent("\(board).dtb").path
        let topology = try BinaryTests.run(["topology", "--platform", path])
        #expect(topology.status == 0)
        let last = topology.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("verdict: "))
        let msi = try BinaryTests.run(["msi", "--platform", path])
        if msi.status == 0 {
            #expect(last.hasPrefix("verdict: supported"))
        } else {
            #expect(msi.stderr.contains(String(last.dropFirst("verdict: ".count))), "\(msi.stderr) vs \(last)")
        }
    }

    /// `walk` needs an SMMU, not a PCIe bridge: on Juno r1 (PCIe disabled) it walks the first
    /// enabled MMU-401, and on Juno r2 the PCIe's, each through a stage-2 bank.
    @Test("walk on the Juno boards: the first enabled MMU-401's stage-2 bank, three descriptor reads, then a TLB hit",
          arguments: [("arm_juno", "/iommu@2b600000"), ("arm_juno-r2", "/iommu@2b500000")])
    func walkOnJuno(board: String, smmu: String) throws {
        let path = Self.boards.appendingPathComponent("\(board).dtb").path
        let run = try BinaryTests.run(["walk", "--platform", path])
        #expect(run.status == 0, "\(board): \(run.stderr)")
        #expect(run.stdout.contains("SMMUv1 \(smmu) (arm,mmu-401): SMR0 = StreamID 0x8 → S2CR0 → context bank 0"), "\(board): \(run.stdout)")
        #expect(run.stdout.contains("stage 2 only: 4K granule, 40-bit IPA"), "\(board): \(run.stdout)")
        #expect(run.stdout.contains("cost (miss): 0 stage-1 and 3 stage-2 descriptor reads"), "\(board): \(run.stdout)")
        #expect(run.stdout.contains("again (hit):  1 TLB hit, 0 reads"), "\(board): \(run.stdout)")
        let s1 = try BinaryTests.run(["walk", "--platform", path, "--stage", "s1"])
        #expect(s1.status == 1)
        #expect(s1.stderr.contains("has no stage 1 (SMMU_IDR0.S1TS is clear)"), "\(s1.stderr)")
        let nested = try BinaryTests.run(["walk", "--platform", path, "--stage", "nested"])
        #expect(nested.status == 1)
        #expect(nested.stderr.contains("nested translation is not available on an SMMUv1"), "\(nested.stderr)")
    }

    @Test("walk on the LS1028A's MMU-500: a stage-1 AArch64 bank, four descriptor reads")
    func walkOnMMU500() throws {
        let path = Self.boards.appendingPathComponent("freescale_fsl-ls1028a-rdb.dtb").path
        let run = try BinaryTests.run(["walk", "--platform", path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("SMMUv2 /soc/iommu@5000000 (arm,mmu-500)"), "\(run.stdout)")
        #expect(run.stdout.contains("cost (miss): 4 stage-1 and 0 stage-2 descriptor reads"), "\(run.stdout)")
    }

    @Test("host and compare on an unsupported board exit 1 with one line, never 64", arguments: [["host"], ["compare"]])
    func otherCommands(command: [String]) throws {
        let path = Self.boards.appendingPathComponent("arm_juno.dtb").path
        let run = try BinaryTests.run(command + ["--platform", path])
        #expect(run.status == 1, "\(run.stderr)")
        #expect(run.stderr.split(separator: "\n").count == 1, "\(run.stderr)")
    }

    @Test("--bridge picks a host bridge; a disabled one is reported as such")
    func bridgeChoice() throws {
        let path = Self.boards.appendingPathComponent("ti_k3-j721e-sk.dtb").path
        let second = try BinaryTests.run(["msi", "--platform", path, "--bridge", "1"])
        #expect(second.status == 0, "\(second.stderr)")
        // The second bridge's msi-map starts at DeviceID 0x1_0000.
        #expect(second.stdout.contains("DeviceID 0x1_0000"), "\(second.stdout)")
        let disabled = try BinaryTests.run(["msi", "--platform", path, "--bridge", "2"])
        #expect(disabled.status == 1)
        #expect(disabled.stderr.contains("/bus@100000/pcie@2920000 is status = \"disabled\""), "\(disabled.stderr)")
        let missing = try BinaryTests.run(["msi", "--platform", path, "--bridge", "9"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no host bridge 9"))
    }
}

/// The RK3399 boards (`rockchip,rk3399-pcie`, no ECAM window): `msi` puts the function at
/// 01:00.0 below the root port (Linux's `rockchip_pcie_valid_device` lets only device 0 exist
/// there), its RID goes through `msi-map = <0 &its 0 0x1000>` to DeviceID 0x100, and with no
/// IOMMU the physical GITS_TRANSLATER is the message address.
@Suite("RK3399 board verdicts")
struct RockchipBoardVerdictTests {
    static let boards = ["rockchip_rk3399-rockpro64", "rockchip_rk3399-gru-kevin"]

    @Test("msi: RID 0x0100 → DeviceID 0x100 from msi-map, LPI 8194 on CPU 0", arguments: boards)
    func msi(board: String) throws {
        let path = BoardVerdictTests.boards.appendingPathComponent("\(board).dtb").path
        let run = try BinaryTests.run(["msi", "--platform", path])
        #expect(run.status == 0, "\(board): \(run.stderr)")
        #expect(run.stdout.contains("function 0x0100 (RID) → StreamID none (not behind the SMMU), DeviceID 0x100; ITS at 0xfee2_0000"),
                "\(board): \(run.stdout)")
        #expect(run.stdout.contains("no SMMU translates RID 0x0100: the message address is the physical doorbell"), "\(board): \(run.stdout)")
        #expect(run.stdout.contains("MSI-X vector 2: address 0xfee3_0040, data 0x2"), "\(board): \(run.stdout)")
        #expect(run.stdout.contains("result: delivered: CPU 0 took LPI 8194 (DeviceID 0x100, EventID 2)"), "\(board): \(run.stdout)")
    }

    @Test("topology: the verdict is supported for the endpoint below the root port", arguments: boards)
    func topology(board: String) throws {
        let path = BoardVerdictTests.boards.appendingPathComponent("\(board).dtb").path
        let run = try BinaryTests.run(["topology", "--platform", path])
        #expect(run.status == 0, "\(board): \(run.stderr)")
        let last = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("verdict: supported"), "\(board): \(last)")
    }
}

/// The TI K3 boards whose MSIs go through the SoC's pre-ITS window: `msi` delivers through it,
/// and `topology`'s verdict says the platform uses the window and that MSI isolation is lost.
@Suite("pre-ITS board verdicts")
struct PreITSBoardVerdictTests {
    static let delivering = ["ti_k3-am642-evm", "ti_k3-am6548-iot2050-advanced-pg2", "ti_k3-j7200-common-proc-board",
                             "ti_k3-j721e-common-proc-board", "ti_k3-j721e-sk"]

    @Test("msi: the function writes its pre-ITS slot and CPU 0 takes the LPI", arguments: delivering)
    func msiThroughWindow(board: String) throws {
        let path = BoardVerdictTests.boards.appendingPathComponent("\(board).dtb").path
        let run = try BinaryTests.run(["msi", "--platform", path])
        #expect(run.status == 0, "\(board): \(run.stderr)")
        #expect(run.stdout.contains("pre-ITS window 0x0100_0000 size 0x40_0000"), "\(board): \(run.stdout)")
        #expect(run.stdout.contains("MSI isolation is lost"), "\(board): \(run.stdout)")
        #expect(run.stdout.contains("MMIO write pre-its0"), "\(board): the write reaches the window, not GITS_TRANSLATER")
        #expect(run.stdout.contains("result: delivered: CPU 0 took LPI 8194"), "\(board): \(run.stdout)")
    }

    @Test("topology: the ITS line names the window; the verdict says MSIs use it and passthrough needs allow_unsafe_interrupts", arguments: delivering)
    func topologyVerdict(board: String) throws {
        let path = BoardVerdictTests.boards.appendingPathComponent("\(board).dtb").path
        let run = try BinaryTests.run(["topology", "--platform", path])
        #expect(run.status == 0)
        #expect(run.stdout.contains("pre-ITS window 0x100_0000 size 0x40_0000 (socionext,synquacer-pre-its)"), "\(board): \(run.stdout)")
        let last = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("verdict: supported (an endpoint at "), "\(board): \(last)")
        #expect(last.contains("through the pre-ITS window at 0x0100_0000 (socionext,synquacer-pre-its)"), "\(board): \(last)")
        #expect(last.contains("MSI isolation is lost, so VFIO and iommufd refuse passthrough unless allow_unsafe_interrupts is set"), "\(board): \(last)")
        #expect(last.contains("no IOMMU translates"), "\(board): no SMMU sits on these boards' PCIe")
    }

    @Test("IOT2050 (msi-map from DeviceID 0x1_0000): the MSI-X address is 0x100_0000 + (0x1_0000 << 2)")
    func slotAddress() throws {
        let path = BoardVerdictTests.boards.appendingPathComponent("ti_k3-am6548-iot2050-advanced-pg2.dtb").path
        let run = try BinaryTests.run(["msi", "--platform", path])
        #expect(run.stdout.contains("MSI-X vector 2: address 0x0104_0000, data 0x2"), "\(run.stdout)")
        #expect(run.stdout.contains("slot 0x4_0000 → DeviceID 0x1_0000, to GITS_TRANSLATER"), "\(run.stdout)")
    }

    @Test("a board without a pre-ITS says nothing of one")
    func plainBoard() throws {
        let path = BoardVerdictTests.boards.appendingPathComponent("arm_fvp-base-revc.dtb").path
        let run = try BinaryTests.run(["topology", "--platform", path])
        #expect(!run.stdout.contains("pre-ITS"))
        let msi = try BinaryTests.run(["msi", "--platform", path])
        #expect(!msi.stdout.contains("pre-ITS"))
    }
}

@Suite("scenario key bridge")
struct ScenarioBridgeTests {
    func run(bridge: String) throws -> BinaryTests.Run {
        let board = BoardVerdictTests.boards.appendingPathComponent("ti_k3-j721e-sk.dtb").path
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-bridge-\(getpid())-\(bridge.count).yaml")
        try """
        name: second-bridge
        platform: \(board)
        bridge: "\(bridge)"
        devices:
          - bdf: "00:00.0"
            vectors: 2
        strategy: rmr-identity
        """.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        return try BinaryTests.run(["run", file.path])
    }

    @Test("bridge: picks the host bridge the scenario's devices go under")
    func bridgeKey() throws {
        // Bridge 2 is disabled in the board's tree: the platform step says so.
        let disabled = try run(bridge: "2")
        #expect(disabled.stdout.contains("the setup failed at platform: /bus@100000/pcie@2920000 is status = \"disabled\""), "\(disabled.stdout)")
        // Bridge 1 is enabled: the host enumerates the function there, and VFIO then refuses it
        // because nothing translates this board's PCIe (no IOMMU group: vfio-pci's probe fails
        // with vfio_group_find_or_alloc's -EINVAL).
        let second = try run(bridge: "1")
        #expect(second.stdout.contains("the setup failed at VMM: vfio-pci bind: EINVAL"), "\(second.stdout)")
        let path = try run(bridge: "/bus@100000/pcie@2910000")
        #expect(path.stdout.contains("the setup failed at VMM: vfio-pci bind: EINVAL"), "\(path.stdout)")
    }
}
