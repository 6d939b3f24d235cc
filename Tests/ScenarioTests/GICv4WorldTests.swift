import Bus
import GIC
import Testing
@testable import LinuxKernel
@testable import Report
@testable import Scenario

/// The seed on a GICv4.1 host (`seed-gicv4`): KVM forwards the passthrough vectors as vLPIs
/// through irqbypass, the device's MSI lands in the vCPU's virtual pending table, residency
/// events keep it pending (doorbell) and deliver it, and a route without a vITS address keeps
/// the MSI on the host's software path.
@Suite struct GICv4WorldTests {
    func world(_ strategy: Strategy = .vfioOverride) throws -> World {
        try World.build(BuiltInScenarios.seedGICv4, strategy: strategy)
    }

    @Test("every vector is forwarded (DISCARD then VMAPTI on the host ITS) and delivered by direct injection, without a host interrupt")
    func directInjectionDelivers() throws {
        let w = try world()
        let vm = w.vmm.vm
        #expect(vm.hasDirectMSIs && vm.itsVM?.vpes.count == 2)
        let forwarded = vm.forwardingLog.compactMap { event -> [String]? in
            if case .forwarded(_, _, _, _, _, let commands) = event { return commands } else { return nil }
        }
        #expect(forwarded.count == 4)
        for commands in forwarded {
            let discard = try #require(commands.firstIndex { $0.hasPrefix("DISCARD DeviceID 0x8") })
            let vmapti = try #require(commands.firstIndex { $0.hasPrefix("VMAPTI DeviceID 0x8") })
            #expect(discard < vmapti)
        }
        #expect(vm.forwardedVLPIs.count == 4)
        let hostLPIsBefore = w.host.irq.sortedDescriptors.map(\.count).reduce(0, +)
        for v in 0..<4 {
            let outcome = w.fire(device: 0, vector: v, step: v)
            #expect(outcome.verdict == .delivered, "vector \(v): \(outcome.verdict)")
            guard case .virtual(let vintid, _, _, .resident)? = outcome.its?.result else {
                Issue.record("vector \(v) was not a resident vLPI: \(String(describing: outcome.its?.result))")
                continue
            }
            #expect(outcome.vptWrite?.vintid == vintid && outcome.expected?.lpi == vintid)
        }
        // The host took none of them: no interrupt counted on any host descriptor.
        #expect(w.host.irq.sortedDescriptors.map(\.count).reduce(0, +) == hostLPIsBefore)
    }

    @Test("a blocked vCPU: the MSI waits in its VPT with the doorbell rung, and vcpu-resident delivers it")
    func nonResidentThenResident() throws {
        let w = try world()
        let first = w.fire(device: 0, vector: 0, step: 0)
        let vcpu = try #require(first.expected?.cpu)
        #expect(w.perform(.vcpuNonResident(vcpu: vcpu), step: 1).note?.contains("doorbell LPI") == true)
        guard case .fired(let held) = w.perform(.fire(device: 0, vector: 0), step: 2) else { Issue.record("not fired"); return }
        guard case .pendingInVPT(let vpe, let doorbell) = held.verdict else { Issue.record("\(held.verdict)"); return }
        let vpeObject = try #require(w.vmm.vm.vpe(ofVCPU: vcpu))
        #expect(vpe == vpeObject.id && doorbell == vpeObject.doorbellLPI && vpeObject.doorbellsTaken == 1)
        #expect(w.check(held, previousEvent: .vcpuNonResident(vcpu: vcpu), deliveredBefore: true).isEmpty)
        let back = w.perform(.vcpuResident(vcpu: vcpu), step: 3)
        #expect(back.note?.contains("1 pending interrupt(s) delivered") == true, "\(back)")
        #expect(w.adversarialViolation(.vcpuResident(vcpu: vcpu), step: 3) == nil)
        #expect(w.fire(device: 0, vector: 0, step: 4).verdict == .delivered)
    }

    @Test("vpe-migrate between redistributors sharing a vPE table sends no VMOVP; the vLPIs follow the vCPUs, and a preempted vCPU's wait in its VPT")
    func migrateWithinSharedTable() throws {
        let w = try world()
        let before = w.host.itsDrivers[0].commandLog.count
        let note = w.perform(.vpeMigrate(vcpu: 0, cpu: 1), step: 0).note ?? ""
        #expect(note.contains("CPU0 → CPU1") && note.contains("no VMOVP"), "\(note)")
        #expect(!w.host.itsDrivers[0].commandLog.dropFirst(before).contains { $0.hasPrefix("VMOVP") })
        // vCPU 1 was preempted on CPU 1 (no doorbell): its vectors wait in its VPT.
        for v in 0..<4 {
            let o = w.fire(device: 0, vector: v, step: 1 + v)
            if o.expected?.cpu == 0 {
                #expect(o.verdict == .delivered)
            } else {
                #expect(o.verdict == .pendingInVPT(vpe: try #require(w.vmm.vm.vpe(ofVCPU: 1)).id, doorbell: nil))
            }
        }
        // vCPU 1 moves to CPU 0: what waited is taken, and everything is delivered again.
        let swap = w.perform(.vpeMigrate(vcpu: 1, cpu: 0), step: 5).note ?? ""
        #expect(swap.contains("CPU1 → CPU0") && swap.contains("delivered"), "\(swap)")
        #expect(w.adversarialViolation(.vpeMigrate(vcpu: 1, cpu: 0), step: 5) == nil)
        for v in 0..<4 { #expect(w.fire(device: 0, vector: v, step: 6 + v).verdict == .delivered) }
    }

    @Test("the guest moves a forwarded LPI to another vCPU (MOVI): KVM follows (update_affinity → its_map_vlpi), a VMOVI on the host ITS")
    func guestMoviFollowsWithVMOVI() throws {
        let w = try world()
        #expect(w.fire(device: 0, vector: 0, step: 0).expected?.cpu == 0)
        let before = w.host.itsDrivers[0].commandLog.count
        _ = w.perform(.guestAffinity(device: 0, vector: 0, cpu: 1), step: 1)
        let vpe1 = try #require(w.vmm.vm.vpe(ofVCPU: 1)).id
        #expect(w.host.itsDrivers[0].commandLog.dropFirst(before).contains { $0.hasPrefix("VMOVI DeviceID 0x8 EventID 0x0 vPEID \(vpe1) ") })
        let o = w.fire(device: 0, vector: 0, step: 2)
        #expect(o.expected?.cpu == 1 && o.verdict == .delivered, "\(o.verdict)")
    }

    @Test("a route without the vITS address (the route-address bug) is not forwarded: noVITSAtAddress, and the MSI goes back to the host's path")
    func routeWithoutVITSAddressStaysOnHostPath() throws {
        let w = try world()
        let vm = w.vmm.vm
        let irq = try #require(w.hostIRQ(0, 0))
        let route = try #require(vm.gsiRoutes.first { $0.data == 0 })
        // Disconnect the producer (VFIO re-signalling the vector), change the route to the
        // guest's vSMMU IOVA as a buggy VMM would, and connect again.
        vm.irqBypassDelProducer(hostIRQ: irq)
        guard case .unforwarded(_, _, let commands)? = vm.forwardingLog.last else { Issue.record("not unforwarded"); return }
        #expect(commands.contains { $0.hasPrefix("MAPTI DeviceID 0x8 EventID 0x0") })
        var bad = route
        bad.addressLo = 0xFFFF_F040
        try vm.setGSIRouting(vm.gsiRoutes.map { $0.gsi == route.gsi ? bad : $0 })
        #expect(vm.irqBypassAddProducer(gsi: route.gsi, hostIRQ: irq) == 0)
        #expect(vm.forwardingLog.last == .notForwarded(gsi: route.gsi, hostIRQ: irq, .noVITSAtAddress))
        // The host takes the physical LPI and signals the irqfd; KVM's software injection of
        // this route fails the same way (vgic_msi_to_its: no vITS there).
        let outcome = w.fire(device: 0, vector: 0, step: 0)
        guard case .delivered? = outcome.its?.result else { Issue.record("\(String(describing: outcome.its?.result))"); return }
        #expect(outcome.vptWrite == nil && outcome.verdict.failurePoint == .host)
        var run = StrategyRun(scenario: "seed-gicv4", strategy: .vfioOverride, setupFailure: nil, outcomes: [outcome], eventLog: [])
        run.directInjectionAvailable = true
        run.forwarding = [vm.forwardingLog.last!]
        let sentence = ReportText.directInjectionSentence(run)
        #expect(sentence.contains("no direct injection") && sentence.contains("[noVITSAtAddress]") && sentence.contains("host's software path"))
    }
}
