import Bus
import LinuxKernel
import Testing
import Report
@testable import Scenario

/// A guest whose passthrough function a guest user process owns through the guest's own VFIO
/// (`vm: guest-owner: vfio-type1 | vfio-iommufd`): DPDK, or a VMM nested in the guest. The
/// expectations are derived in the comments from Linux's and QEMU's rules, not read from the
/// model.
///
/// Common to every strategy on the seed shape (QEMU virt, accelerated vSMMU, one function at
/// 00:01.0 with 4 MSI-X vectors):
/// - The guest's arm-smmu-v3 reports the software MSI window (`arm_smmu_get_resv_regions` →
///   IOMMU_RESV_SW_MSI at MSI_IOVA_BASE 0x0800_0000, MSI_IOVA_LENGTH 1 MiB), and there is no
///   hardware MSI region, so `vfio_iommu_type1_attach_group` (`vfio_iommu_has_sw_msi`) gives
///   the new unmanaged domain `iommu_get_msi_cookie(domain, 0x0800_0000)`. The cookie hands out
///   IOVAs from its base, so the first doorbell page, the vITS's GITS_TRANSLATER page
///   (0x0808_0000 + 0x1_0000), is mapped at 0x0800_0000 by the guest ITS driver's
///   `iommu_dma_prepare_msi`, and the guest composes 0x0800_0000 + 0x40 = 0x0800_0040.
///   iommufd's auto domain does the same at the device's sw_msi_start, the same region.
/// - The data is the guest's EventID: its ITS driver numbers the device's events from 0.
@Suite struct GuestVFIOScenarioTests {
    static func seed(_ owner: VMOptions.GuestOwner, strategies: [Strategy] = []) -> ScenarioDescription {
        var s = BuiltInScenarios.seed
        s.name = "seed-guest-\(owner.rawValue)"
        s.vm.guestOwner = owner
        s.strategies = strategies
        return s
    }

    @Test("vm: guest-owner reads, renders only when not the default, and a bad value names its line")
    func scenarioKey() throws {
        let text = "name: nested\nvm:\n  guest-owner: vfio-type1\n"
        let s = try ScenarioFile.parse(text)
        #expect(s.vm.guestOwner == .vfioType1)
        let rendered = ScenarioFile.render(s)
        #expect(rendered.contains("  guest-owner: vfio-type1\n"))
        #expect(try ScenarioFile.parse(rendered) == s)
        #expect(try ScenarioFile.parse("name: n\nvm:\n  guest-owner: vfio-iommufd\n").vm.guestOwner == .vfioIOMMUFD)
        // The default is a kernel driver and is not written, so existing files render unchanged.
        #expect(!ScenarioFile.render(BuiltInScenarios.seed).contains("guest-owner"))
        #expect(try ScenarioFile.parse("name: n\nvm:\n  guest-owner: driver\n") == ScenarioFile.parse("name: n\n"))
        let bad = Result { try ScenarioFile.parse("name: n\nvm:\n  guest-owner: dpdk\n") }
        guard case .failure(let failure) = bad, let error = failure as? ScenarioFileError else {
            Issue.record("an unknown guest-owner was accepted")
            return
        }
        #expect(error.line == 3 && error.key == "vm.guest-owner", "\(error)")
        #expect(error.message.contains("vfio-type1"), "\(error)")
    }

    /// The guest kernel's side under a strategy that builds (irqchip-relay: the host side does
    /// not change what the guest does).
    @Test("the guest binds vfio-pci, type1 gives an unmanaged domain with an MSI cookie at 0x0800_0000, and the guest composes 0x0800_0040")
    func guestKernelState() throws {
        let world = try World.build(Self.seed(.vfioType1), strategy: .irqchipRelay)
        let g = world.guestDevices[0]
        #expect(g.device.driverName == "vfio-pci")
        let group = try #require(g.device.iommu?.group)
        let domain = try #require(group.domain)
        // VFIO_SET_IOMMU's domain, not the group's default DMA domain.
        #expect(domain !== group.defaultDomain)
        #expect(domain.type == .unmanaged)
        guard case .dmaMSI(let cookie) = domain.cookie else { Issue.record("cookie: \(domain.cookie)"); return }
        #expect(cookie.base == 0x0800_0000)
        // The MSI page: IOVA 0x0800_0000 → the vITS's GITS_TRANSLATER page (IPA 0x0809_0000).
        #expect(world.guest.iommu.iovaToPhys(domain, 0x0800_0040) == 0x0809_0040)
        // The user's VFIO_DEVICE_SET_IRQS enabled MSI-X and one trigger per vector.
        let user = try #require(world.guestVFIOUsers[0])
        #expect(user.file.vdev.irqType == VFIOIRQSet.msixIndex)
        #expect(user.file.vdev.contexts.keys.sorted() == [0, 1, 2, 3])
        for v in 0..<4 {
            let message = try #require(world.guestMessage(device: 0, vector: v))
            #expect(message.address == 0x0800_0040, "vector \(v)")
            #expect(message.data == UInt32(v), "vector \(v)")
        }
        // The VMM forwarded the guest's vSTE (S1 translate, the unmanaged domain's CD) to the
        // host as a nested HWPT, as it does for the guest's DMA domain.
        #expect(world.host.iommu.domain(for: world.vmm.devices[0].hostDevice)?.type == .nested)
    }

    /// Each vector's guest eventfd is signalled by that vector's guest interrupt only.
    @Test("a fired vector signals the guest user's eventfd for that vector, from the vector's guest irq")
    func eventfdDelivery() throws {
        let world = try World.build(Self.seed(.vfioType1), strategy: .vitsDirect)
        let user = try #require(world.guestVFIOUsers[0])
        for v in 0..<4 {
            let outcome = world.fire(device: 0, vector: v, step: v)
            #expect(outcome.delivered, "vector \(v): \(outcome.verdict)")
            let irq = try world.guest.pci.irqVector(world.guestDevices[0], v)
            #expect(user.eventfds[v].signals.map(\.irq) == [irq], "vector \(v)")
            for other in 0..<4 where other > v { #expect(user.eventfds[other].signals.isEmpty, "vector \(other) after \(v)") }
        }
    }

    /// What the host programs and which strategies deliver, per strategy, for both uAPIs:
    /// - legacy (host v6.14): the host's nested domain has no dma-iommu cookie, so
    ///   `iommu_dma_compose_msi_msg` leaves the physical GITS_TRANSLATER, 0x0809_0040. The
    ///   device's write is an IOVA for the guest's stage 1, whose unmanaged domain maps only the
    ///   cookie page 0x0800_0000 (the user mapped no DMA): stage-1 F_TRANSLATION, nothing arrives.
    /// - irqchip-relay, vfio-override, vits-direct: the VMM passes the guest's vMSI-X address
    ///   down (ACTION_PREPARE / the override), so the host programs 0x0800_0040; stage 1 takes
    ///   it to the vITS page IPA 0x0809_0040 and the strategy's stage-2 mapping of the vITS
    ///   page to the physical ITS page (the same address on QEMU virt) finishes it: delivered.
    /// - rmr-identity, sw-msi-window: QEMU 11's IORT gives the device an RMR with flags 0
    ///   (remapping not permitted), which `iort_iommu_get_resv_regions` reports as
    ///   IOMMU_RESV_DIRECT; `iommu_create_device_direct_mappings` then sets `require_direct`,
    ///   and `__iommu_device_set_domain` refuses the blocking domain that
    ///   `iommu_group_claim_dma_owner` (VFIO_GROUP_SET_CONTAINER) and
    ///   `iommu_device_claim_dma_owner` (VFIO_DEVICE_BIND_IOMMUFD) attach: EINVAL ("This test
    ///   effectively excludes the device being used with iommu_group_claim_dma_owner() which
    ///   will block vfio and iommufd as well"). The guest user never gets the device.
    @Test("per strategy: what the guest and the host program, and which deliver", arguments: [VMOptions.GuestOwner.vfioType1, .vfioIOMMUFD])
    func perStrategy(_ owner: VMOptions.GuestOwner) throws {
        let refusing = owner == .vfioType1 ? "VFIO_GROUP_SET_CONTAINER: EINVAL" : "VFIO_DEVICE_BIND_IOMMUFD: EINVAL"
        for run in ScenarioRunner.runAll(Self.seed(owner)) {
            let s = run.strategy
            switch s {
            case .rmrIdentity, .swMSIWindow:
                let failure = try #require(run.setupFailure, "\(s)")
                #expect(failure.step.hasPrefix("guest VFIO user"), "\(s): \(failure)")
                #expect(failure.error.hasPrefix(refusing), "\(s): \(failure)")
                #expect(run.outcomes.isEmpty)
            case .legacy:
                #expect(run.setupFailure == nil)
                #expect(run.outcomes.count == 4 && run.deliveredCount == 0)
                for o in run.outcomes {
                    #expect(o.guestAddress == 0x0800_0040)
                    #expect(o.programmedAddress == 0x0809_0040)
                    guard case .fault(let fault) = o.stage1 else { Issue.record("legacy stage 1: \(o.stage1)"); continue }
                    #expect(fault.type == .fTranslation && !fault.stage2 && fault.inputAddress == 0x0809_0040)
                }
            case .irqchipRelay, .vfioOverride, .vitsDirect:
                #expect(run.setupFailure == nil, "\(s)")
                #expect(run.outcomes.count == 4 && run.allDelivered, "\(s): \(run.explanation ?? "")")
                for o in run.outcomes {
                    #expect(o.guestAddress == 0x0800_0040, "\(s)")
                    #expect(o.programmedAddress == 0x0800_0040, "\(s)")
                    #expect(o.stage1 == .translated(from: 0x0800_0040, to: 0x0809_0040), "\(s)")
                    #expect(o.stage2 == .translated(from: 0x0809_0040, to: 0x0809_0040), "\(s)")
                }
            }
        }
    }

    /// Without a vIOMMU the guest device has no IOMMU group, so vfio-pci's probe fails
    /// (`vfio_group_find_or_alloc`: -EINVAL unless `enable_unsafe_noiommu_mode`).
    @Test("without a vIOMMU the guest's vfio-pci bind fails with EINVAL")
    func noVIOMMU() throws {
        var s = Self.seed(.vfioType1, strategies: [.legacy])
        s.vm.viommu = .none
        let run = ScenarioRunner.run(s, strategy: .legacy)
        let failure = try #require(run.setupFailure)
        #expect(failure.error.hasPrefix("vfio-pci bind: EINVAL"), "\(failure)")
    }

    /// Events that work through the guest kernel driver are refused for a VFIO owner, naming
    /// the event; so is managed affinity, which only a kernel driver asks for.
    @Test("driver-only events and managed affinity are refused with a guest VFIO owner")
    func refusedShapes() throws {
        var s = Self.seed(.vfioType1)
        s.events = [.fire(device: 0, vector: 0), .guestDomain(device: 0, domain: .identity)]
        let run = ScenarioRunner.run(s, strategy: .vitsDirect)
        #expect(run.setupFailure?.step == "guest-owner")
        #expect(run.setupFailure?.error.contains("guest-domain") == true, "\(String(describing: run.setupFailure))")
        var managed = Self.seed(.vfioIOMMUFD)
        managed.devices[0].affinity = .managed
        managed.devices[0].preVectors = 1
        #expect(ScenarioRunner.run(managed, strategy: .vitsDirect).setupFailure?.error.contains("affinity: managed") == true)
    }
}
