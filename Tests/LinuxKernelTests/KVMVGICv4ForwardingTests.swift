import Bus
import GIC
import Testing
@testable import LinuxKernel

/// `kvm_vgic_v4_set_forwarding` (arch/arm64/kvm/vgic/vgic-v4.c): which routes KVM hands to the
/// host ITS driver as vLPIs, and the route-address bug that keeps a passthrough MSI on the
/// software path.
@Suite struct KVMVGICv4ForwardingTests {
    func guest(_ version: KernelConfiguration.Version = .v7_0) throws -> KVMFixture {
        let host = try HostHarness.make(configuration: KernelConfiguration(version: version))
        let fixture = try KVMFixture.make(host: host, process: UserProcess(kernel: host.kernel, name: "qemu"))
        let guest = GuestGICBringUp(vm: fixture.vm)
        try guest.enableLPIs()
        try guest.enableITS()
        try guest.mapDevice(0x10, events: 4, firstINTID: 8192, collection: 1)
        return fixture
    }

    @Test("a route to the vITS doorbell is forwarded: vINTID = the guest LPI, on the vPE of the vCPU its collection targets")
    func routeToTranslaterIsForwarded() throws {
        let f = try guest()
        defer { withExtendedLifetime(f) {} }
        let vm = f.vm
        let route = KVMMSIRoute(gsi: 5, addressLo: KVMFixture.translater, data: 2, devid: 0x10)
        #expect(vm.vgicV4SetForwarding(route: route, hostHasGICv4: true)
                == .map(KVMVLPIMapRequest(vcpu: 1, vintid: 8194, properties: 0xA3, doorbellEnabled: true)))
        // Once irq->hw is set, a second producer for the same LPI is left alone.
        vm.recordForwarded(vintid: 8194, hostIRQ: 40)
        #expect(vm.vgicV4SetForwarding(route: route, hostHasGICv4: true) == .notForwarded(.alreadyForwarded))
    }

    @Test("the route-address bug: a route whose MSI address is not in the vITS frame is never forwarded")
    func wrongRouteAddressIsNotForwarded() throws {
        let f = try guest()
        defer { withExtendedLifetime(f) {} }
        let vm = f.vm
        // The host's physical doorbell page, or a vSMMU IOVA, written into the KVM route.
        for address: UInt32 in [0x0905_0000, KVMFixture.translater + 0x2_0000, 0x0800_0040] {
            let route = KVMMSIRoute(gsi: 5, addressLo: address, data: 2, devid: 0x10)
            #expect(vm.vgicV4SetForwarding(route: route, hostHasGICv4: true) == .notForwarded(.noVITSAtAddress))
        }
        // KVM decodes by MMIO region (kvm_io_bus_get_dev over the 128 KiB frame), so the ITS
        // control frame's base resolves too.
        let frameBase = KVMMSIRoute(gsi: 5, addressLo: UInt32(KVMFixture.itsBase.rawValue), data: 2, devid: 0x10)
        #expect(vm.vgicV4SetForwarding(route: frameBase, hostHasGICv4: true) != .notForwarded(.noVITSAtAddress))
        // No KVM_MSI_VALID_DEVID: vgic_msi_to_its fails.
        let noDevID = KVMMSIRoute(gsi: 5, addressLo: KVMFixture.translater, data: 2, devid: 0x10, flags: 0)
        #expect(vm.vgicV4SetForwarding(route: noDevID, hostHasGICv4: true) == .notForwarded(.noVITSAtAddress))
    }

    @Test("without host GICv4 nothing is forwarded")
    func noGICv4() throws {
        let f = try guest()
        defer { withExtendedLifetime(f) {} }
        let vm = f.vm
        let route = KVMMSIRoute(gsi: 5, addressLo: KVMFixture.translater, data: 2, devid: 0x10)
        #expect(vm.vgicV4SetForwarding(route: route, hostHasGICv4: false) == .notForwarded(.noDirectMSIs))
    }

    @Test("an unresolvable LPI: v6.14 returns E_ITS_INT_UNMAPPED_INTERRUPT, v6.15 on returns 0 (5c57533eb8c1)",
          arguments: KernelConfiguration.Version.allCases)
    func unresolvedLPI(version: KernelConfiguration.Version) throws {
        let f = try guest(version)
        defer { withExtendedLifetime(f) {} }
        let vm = f.vm
        let route = KVMMSIRoute(gsi: 5, addressLo: KVMFixture.translater, data: 2, devid: 0x99)
        let result = vm.vgicV4SetForwarding(route: route, hostHasGICv4: true)
        if KernelConfiguration(version: version).has(.vlpiResolveFallsBackSilently) {
            #expect(result == .notForwarded(.lpiNotResolved))
        } else {
            #expect(result == .failed(code: 0x01_0307, .lpiNotResolved))
        }
    }
}
