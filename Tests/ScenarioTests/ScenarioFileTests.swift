import Bus
import Foundation
import LinuxKernel
import Machine
import PCI
import Testing
@testable import Scenario

/// Scenario files (`ScenarioFile`): what the documented format means, where each kind of
/// mistake is reported, that `render` and `parse` are inverse, and that no input crashes.
@Suite struct ScenarioFileTests {
    // MARK: The documented format

    /// The example of the format's doc comment and README, field by field.
    static let fullExample = """
        name: seed                       # required
        summary: one line                # optional
        platform: qemu-virt
        host:
          page-size: 4K
        vm:
          viommu: smmuv3-accel
          guest-domain: dma-strict
          guest-page-size: 4K
          layout: virt
          vcpus: 2
        devices:
          - bdf: "00:01.0"
            interrupts: msi-x
            vectors: 4
        strategy: all
        events:
          - fire: {device: 0, vector: 0}
          - host-affinity: {device: 0, vector: 1, cpu: 1}
          - save-restore: {}
        expect:
          - strategy: legacy
            delivered: none
            first-failure: stage-1
            invariants: hold
        """

    @Test("the documented example reads as the value each line says")
    func fullExampleParses() throws {
        let parsed = try ScenarioFile.parse(Self.fullExample)
        let expected = ScenarioDescription(
            name: "seed", summary: "one line", platform: .preset(.qemuVirt),
            host: HostOptions(pageSize: .size4K),
            vm: VMOptions(viommu: .acceleratedSMMUv3, guestDomain: .dmaStrict, guestPageSize: .size4K, layout: .virt, vcpus: 2),
            devices: [DeviceDescription(requesterID: RequesterID(bus: 0, device: 1, function: 0), interrupts: .msix, vectors: 4)],
            strategies: [],
            events: [.fire(device: 0, vector: 0), .hostAffinity(device: 0, vector: 1, cpu: 1), .saveRestore],
            expectations: [Expectation(strategy: .legacy, delivered: Expectation.Delivered.nothing, firstFailure: .stage1, invariantsHold: true)])
        #expect(parsed == expected)
    }

    /// Only `name` is required; everything else is the Swift initialisers' default, and empty
    /// sections mean the same as absent ones.
    @Test("left-out and empty keys take the initialisers' defaults")
    func defaults() throws {
        #expect(try ScenarioFile.parse("name: x") == ScenarioDescription(name: "x"))
        #expect(try ScenarioFile.parse("name: x\nhost:\nvm:\nevents:\nexpect:\n") == ScenarioDescription(name: "x"))
        #expect(try ScenarioFile.parse("name: x\ndevices:\n  - {}\n") == ScenarioDescription(name: "x"))
        // One device: `device` may be left out and means 0; a bare kind is an event without fields.
        let script = try ScenarioFile.parse("name: x\nevents:\n  - fire: {vector: 3}\n  - save-restore\n  - flr:\n")
        #expect(script.events == [.fire(device: 0, vector: 3), .saveRestore, .functionLevelReset(device: 0)])
    }

    @Test("value forms: hex numbers with separators, one strategy, a strategy list, every event kind")
    func valueForms() throws {
        let text = """
            name: forms
            platform: boards/some-board.dtb
            vm: {vcpus: 0x4, guest-domain: identity, viommu: none, layout: ram-at-msi-window, guest-page-size: 64K}
            host: {page-size: 64K}
            devices:
              - {bdf: "1f:1f.7", interrupts: msi, vectors: 32}
              - {bdf: "01:00.0", vectors: 0x800}
            strategy: [sw-msi-window, legacy]
            events:
              - fire: {device: 1, vector: 2047}
              - guest-mask: {device: 0, vector: 31}
              - guest-unmask: {device: 0, vector: 0}
              - guest-rewrite: {device: 1, vector: 1_000}
              - guest-affinity: {device: 0, vector: 1, cpu: 3}
              - host-affinity: {device: 1, vector: 1, cpu: 7}
              - msix-reenable: {device: 1}
              - add-vector: {device: 1}
              - flr: {device: 0}
              - suspend-resume: {device: 0}
              - host-reactivate: {device: 1, vector: 5}
              - guest-domain: {device: 0, domain: detach}
              - hot-unplug: {device: 1}
              - hot-plug: {device: 1}
              - save-restore: {}
              - forged-event-id: {device: 0, event-id: 0xFFFF_FFFF}
              - guest-map-outside-ram: {device: 1, ipa: 0x0800_0000}
              - guest-corrupt-ste: {device: 0}
              - vpe-migrate: {vcpu: 3, cpu: 7}
              - vcpu-non-resident: {vcpu: 2}
              - vcpu-resident: {vcpu: 2}
            expect:
              - delivered: 12
                invariants: violated
              - strategy: sw-msi-window
                first-failure: smmu-configuration
            """
        let s = try ScenarioFile.parse(text)
        #expect(s.platform == .deviceTree(path: "boards/some-board.dtb"))
        #expect(s.vm == VMOptions(viommu: .none, guestDomain: .identity, guestPageSize: .size64K, layout: .ramAtMSIWindow, vcpus: 4))
        #expect(s.host.pageSize == .size64K)
        #expect(s.devices == [DeviceDescription(requesterID: RequesterID(bus: 0x1F, device: 0x1F, function: 7), interrupts: .msi, vectors: 32),
                              DeviceDescription(requesterID: RequesterID(bus: 1, device: 0, function: 0), interrupts: .msix, vectors: 2048)])
        // Kept in the order written; `strategiesToRun` sorts.
        #expect(s.strategies == [.swMSIWindow, .legacy])
        #expect(s.events == [
            .fire(device: 1, vector: 2047), .guestMask(device: 0, vector: 31), .guestUnmask(device: 0, vector: 0),
            .guestRewrite(device: 1, vector: 1000), .guestAffinity(device: 0, vector: 1, cpu: 3), .hostAffinity(device: 1, vector: 1, cpu: 7),
            .msixReenable(device: 1), .addVector(device: 1), .functionLevelReset(device: 0), .suspendResume(device: 0),
            .hostReactivate(device: 1, vector: 5), .guestDomain(device: 0, domain: .detach), .hotUnplug(device: 1), .hotPlug(device: 1),
            .saveRestore, .forgedEventID(device: 0, eventID: 0xFFFF_FFFF), .guestMapOutsideRAM(device: 1, ipa: 0x0800_0000),
            .guestCorruptSTE(device: 0), .vpeMigrate(vcpu: 3, cpu: 7), .vcpuNonResident(vcpu: 2), .vcpuResident(vcpu: 2),
        ])
        // Every kind appears once, so the script covers the whole vocabulary.
        #expect(Set(s.events.map(\.kind)) == Set(EventKind.allCases))
        #expect(s.expectations == [Expectation(delivered: .count(12), invariantsHold: false),
                                   Expectation(strategy: .swMSIWindow, firstFailure: .smmuConfiguration)])
        #expect(try ScenarioFile.parse("name: x\nstrategy: vits-direct").strategies == [.vitsDirect])
    }

    // MARK: Located mistakes

    /// One wrong file and the error it must give. Lines and columns are 1-based and point at
    /// the offending key (unknown or repeated keys) or value (everything else); a missing key is
    /// reported at the mapping that lacks it.
    struct Case: Sendable, CustomTestStringConvertible {
        let yaml: String
        let line: Int
        let column: Int
        let key: String?
        let message: String
        var testDescription: String { "\(key ?? "syntax"): \(message)" }
    }

    static let strategyList = "legacy, irqchip-relay, vfio-override, rmr-identity, sw-msi-window, vits-direct"
    static let kindList = EventKind.allCases.map(\.rawValue).joined(separator: ", ")

    static let cases: [Case] = [
        // Unknown keys at each level, with the allowed list and the close match.
        Case(yaml: "name: x\nstrategies: all\n", line: 2, column: 1, key: "strategies",
             message: "unknown key 'strategies' (did you mean 'strategy'? allowed: name, summary, platform, bridge, host, vm, devices, strategy, events, expect)"),
        Case(yaml: "name: x\nvm:\n  viomu: none\n", line: 3, column: 3, key: "vm.viomu",
             message: "unknown key 'viomu' (did you mean 'viommu'? allowed: viommu, guest-domain, guest-page-size, layout, vcpus, slot, firmware, guest-owner, guest-gic)"),
        Case(yaml: "name: x\nhost:\n  pagesize: 4K\n", line: 3, column: 3, key: "host.pagesize",
             message: "unknown key 'pagesize' (did you mean 'page-size'? allowed: page-size, kernel, gic)"),
        Case(yaml: "name: x\ndevices:\n  - bdf: \"00:01.0\"\n    msix: true\n", line: 4, column: 5, key: "devices[0].msix",
             message: "unknown key 'msix' (allowed: bdf, host-behind, guest-rid, behind, interrupts, vectors, enabled, affinity, pre-vectors, post-vectors)"),
        Case(yaml: "name: x\nexpect:\n  - delivered: all\n    invariant: hold\n", line: 4, column: 5, key: "expect[0].invariant",
             message: "unknown key 'invariant' (did you mean 'invariants'? allowed: strategy, delivered, first-failure, invariants)"),
        // Unknown values, with and without a close match.
        Case(yaml: "name: x\nvm:\n  viommu: smmu\n", line: 3, column: 11, key: "vm.viommu",
             message: "unknown value 'smmu' (did you mean 'smmuv3-accel'? expected none, smmuv3-accel)"),
        Case(yaml: "name: x\nvm:\n  viommu: intel\n", line: 3, column: 11, key: "vm.viommu",
             message: "unknown value 'intel' (expected none, smmuv3-accel)"),
        Case(yaml: "name: x\nvm:\n  guest-domain: dma\n", line: 3, column: 17, key: "vm.guest-domain",
             message: "unknown value 'dma' (did you mean 'dma-strict'? expected dma-strict, dma-lazy, identity)"),
        // 16K pages are not offered (see ScenarioFileValues.pageSizes), and 16K is not a typo of either.
        Case(yaml: "name: x\nhost:\n  page-size: 16K\n", line: 3, column: 14, key: "host.page-size",
             message: "unknown value '16K' (expected 4K, 64K)"),
        Case(yaml: "name: x\nstrategy: legasy\n", line: 2, column: 11, key: "strategy",
             message: "unknown strategy 'legasy' (did you mean 'legacy'? expected all, \(strategyList))"),
        Case(yaml: "name: x\nplatform: qemu-vert\n", line: 2, column: 11, key: "platform",
             message: "unknown platform 'qemu-vert' (did you mean 'qemu-virt'? expected qemu-virt, qemu-virt-untranslated-its, qemu-virt-two-its, qemu-virt-gicv4, a path ending in .dtb or containing a /)"),
        // Wrong types.
        Case(yaml: "name: x\nvm: [none]\n", line: 2, column: 5, key: "vm", message: "expected a mapping, found a list"),
        Case(yaml: "name:\n  first: x\n", line: 2, column: 3, key: "name", message: "expected a string, found a mapping"),
        Case(yaml: "name: x\nvm:\n  vcpus: two\n", line: 3, column: 10, key: "vm.vcpus",
             message: "expected a number (decimal or 0x-hex), found 'two'"),
        Case(yaml: "name: x\nvm:\n  vcpus: -1\n", line: 3, column: 10, key: "vm.vcpus", message: "expected a non-negative number, found '-1'"),
        Case(yaml: "name: x\ndevices: 00:01.0\n", line: 2, column: 10, key: "devices", message: "expected a list of devices, found '00:01.0'"),
        Case(yaml: "name: x\nstrategy: {legacy: 1}\n", line: 2, column: 11, key: "strategy",
             message: "expected all, a strategy id or a list of ids, found a mapping"),
        Case(yaml: "- name: x\n", line: 1, column: 1, key: nil, message: "expected a mapping at the top level, found a list"),
        // Out-of-range and malformed values.
        Case(yaml: "name: x\nvm:\n  vcpus: 9\n", line: 3, column: 10, key: "vm.vcpus", message: "vcpus 9 is out of range (1…8)"),
        Case(yaml: "name: x\ndevices:\n  - bdf: \"00:20.0\"\n", line: 3, column: 10, key: "devices[0].bdf",
             message: "bad BDF '00:20.0': device 0x20 does not fit in 5 bits (0…1f)"),
        Case(yaml: "name: x\ndevices:\n  - bdf: 00:01.8\n", line: 3, column: 10, key: "devices[0].bdf",
             message: "bad BDF '00:01.8': function 8 does not fit in 3 bits (0…7)"),
        Case(yaml: "name: x\ndevices:\n  - bdf: 100:00.0\n", line: 3, column: 10, key: "devices[0].bdf",
             message: "bad BDF '100:00.0' (expected bus:device.function in hex, e.g. 00:01.0)"),
        Case(yaml: "name: x\ndevices:\n  - bdf: \"00:01.0\"\n    vectors: 2049\n", line: 4, column: 14, key: "devices[0].vectors",
             message: "2049 MSI-X vectors is out of range (1…2048: Table Size is 11 bits of N−1)"),
        Case(yaml: "name: x\ndevices:\n  - vectors: 0\n", line: 3, column: 14, key: "devices[0].vectors",
             message: "0 MSI-X vectors is out of range (1…2048: Table Size is 11 bits of N−1)"),
        // `interrupts` after `vectors`: the check waits for both.
        Case(yaml: "name: x\ndevices:\n  - vectors: 3\n    interrupts: msi\n", line: 3, column: 14, key: "devices[0].vectors",
             message: "3 MSI vectors is not a power of two from 1 to 32 (Multiple Message Enable)"),
        Case(yaml: "name: x\ndevices:\n  - bdf: \"00:01.0\"\n  - bdf: \"0:1.0\"\n", line: 4, column: 10, key: "devices[1].bdf",
             message: "device 00:01.0 is already devices[0]"),
        Case(yaml: "name: x\ndevices: []\n", line: 2, column: 10, key: "devices",
             message: "the list is empty (leave 'devices' out for the default 00:01.0 with 4 MSI-X vectors)"),
        Case(yaml: "name: x\nstrategy: [legacy, legacy]\n", line: 2, column: 20, key: "strategy[1]", message: "'legacy' is already strategy[0]"),
        Case(yaml: "name: x\nstrategy: []\n", line: 2, column: 11, key: "strategy", message: "the list is empty (write 'all' for every strategy)"),
        Case(yaml: "name: \"\"\n", line: 1, column: 7, key: "name", message: "the name must not be empty"),
        Case(yaml: "summary: x\n", line: 1, column: 1, key: "name", message: "missing required key 'name'"),
        Case(yaml: "", line: 1, column: 1, key: nil, message: "empty scenario file (a scenario needs at least 'name')"),
        // Events.
        Case(yaml: "name: x\nevents:\n  - fire: {device: 1, vector: 0}\n", line: 3, column: 20, key: "events[0].fire.device",
             message: "device 1 is out of range (the scenario has 1 device: only 0)"),
        Case(yaml: "name: x\nevents:\n  - fire: {vector: 4}\n", line: 3, column: 20, key: "events[0].fire.vector",
             message: "vector 4 is out of range (device 0 has 4 vectors: 0…3)"),
        Case(yaml: "name: x\ndevices:\n  - vectors: 1\nevents:\n  - guest-mask: {vector: 1}\n", line: 5, column: 26,
             key: "events[0].guest-mask.vector", message: "vector 1 is out of range (device 0 has 1 vector: only 0)"),
        Case(yaml: "name: x\nevents:\n  - guest-affinity: {vector: 1}\n", line: 3, column: 21, key: "events[0].guest-affinity.cpu",
             message: "missing field 'cpu' for guest-affinity"),
        Case(yaml: "name: x\nevents:\n  - guest-affinity: {vector: 1, cpu: 2}\n", line: 3, column: 38, key: "events[0].guest-affinity.cpu",
             message: "cpu 2 is out of range (the VM has 2 vCPUs: 0…1)"),
        Case(yaml: "name: x\nevents:\n  - host-affinity: {vector: 0, cpu: 4096}\n", line: 3, column: 37, key: "events[0].host-affinity.cpu",
             message: "cpu 4096 is out of range (arm64 NR_CPUS is at most 4096: 0…4095)"),
        // No fields at all: the missing one is reported at the event's kind.
        Case(yaml: "name: x\nevents:\n  - fire:\n", line: 3, column: 5, key: "events[0].fire.vector", message: "missing field 'vector' for fire"),
        Case(yaml: "name: x\ndevices:\n  - bdf: \"00:01.0\"\n  - bdf: \"00:02.0\"\nevents:\n  - msix-reenable: {}\n", line: 6, column: 20,
             key: "events[0].msix-reenable.device", message: "missing field 'device' for msix-reenable (the scenario has 2 devices)"),
        Case(yaml: "name: x\nevents:\n  - fir: {vector: 0}\n", line: 3, column: 5, key: "events[0].fir",
             message: "unknown event 'fir' (did you mean 'fire'? expected \(kindList))"),
        Case(yaml: "name: x\nevents:\n  - fire: {vectr: 0}\n", line: 3, column: 12, key: "events[0].fire.vectr",
             message: "unknown field 'vectr' (did you mean 'vector'? allowed: device, vector)"),
        Case(yaml: "name: x\nevents:\n  - save-restore: {device: 0}\n", line: 3, column: 20, key: "events[0].save-restore.device",
             message: "field 'device' not allowed here (this takes no fields)"),
        // The classic indentation slip: the fields land beside the kind instead of under it.
        Case(yaml: "name: x\nevents:\n  - fire:\n    vector: 0\n", line: 3, column: 5, key: "events[0]",
             message: "an event is a mapping with one key, its kind; found 2 keys (fire, vector); indent the fields under 'fire' or write fire: {device: …, vector: …}"),
        Case(yaml: "name: x\nevents:\n  - [fire, 0]\n", line: 3, column: 5, key: "events[0]",
             message: "expected an event (kind: {fields}), found a list"),
        Case(yaml: "name: x\nevents:\n  - guest-domain: {domain: blocked}\n", line: 3, column: 28, key: "events[0].guest-domain.domain",
             message: "unknown value 'blocked' (expected identity, dma, detach)"),
        Case(yaml: "name: x\nevents:\n  - forged-event-id: {event-id: 0x1_0000_0000}\n", line: 3, column: 33,
             key: "events[0].forged-event-id.event-id",
             message: "event-id 4294967296 is out of range (GITS_TRANSLATER takes 32 bits: 0…4294967295)"),
        Case(yaml: "name: x\nevents:\n  - guest-map-outside-ram: {ipa: 0x1_0000_0000_0000_0000}\n", line: 3, column: 34,
             key: "events[0].guest-map-outside-ram.ipa", message: "number '0x1_0000_0000_0000_0000' does not fit in 64 bits"),
        Case(yaml: "name: x\nhost:\n  gic: v4\n", line: 3, column: 8, key: "host.gic",
             message: "unknown value 'v4' (did you mean 'v3'? expected v3, v4.1)"),
        Case(yaml: "name: x\nevents:\n  - vpe-migrate: {vcpu: 2, cpu: 1}\n", line: 3, column: 25,
             key: "events[0].vpe-migrate.vcpu", message: "vcpu 2 is out of range (the VM has 2 vCPUs: 0…1)"),
        // Expectations.
        Case(yaml: "name: x\nstrategy: legacy\nexpect:\n  - strategy: rmr-identity\n    delivered: all\n", line: 4, column: 15,
             key: "expect[0].strategy", message: "strategy 'rmr-identity' is not run by this scenario (it runs legacy)"),
        Case(yaml: "name: x\nexpect:\n  - strategy: legacy\n", line: 3, column: 5, key: "expect[0]",
             message: "an expectation must check something: delivered, first-failure or invariants"),
        Case(yaml: "name: x\nexpect:\n  - delivered: some\n", line: 3, column: 16, key: "expect[0].delivered",
             message: "expected all, none or a number, found 'some'"),
        Case(yaml: "name: x\nexpect:\n  - first-failure: stage1\n", line: 3, column: 20, key: "expect[0].first-failure",
             message: "unknown value 'stage1' (did you mean 'stage-1'? expected device, setup, stage-1, stage-2, smmu-configuration, its, host, misrouted)"),
        Case(yaml: "name: x\nexpect:\n  - invariants: yes\n", line: 3, column: 17, key: "expect[0].invariants",
             message: "unknown value 'yes' (expected hold, violated)"),
        // Repeated keys. Yams rejects them itself, reporting the first occurrence; the reader
        // finds and reports the second, the one to delete.
        Case(yaml: "name: x\nvm:\n  vcpus: 2\nvm:\n  vcpus: 4\n", line: 4, column: 1, key: "vm",
             message: "duplicate key 'vm' (first at line 2, column 1)"),
        Case(yaml: "name: x\nvm:\n  vcpus: 2\n  layout: virt\n  vcpus: 4\n", line: 5, column: 3, key: "vcpus",
             message: "duplicate key 'vcpus' (first at line 3, column 3)"),
        Case(yaml: "name: x\nevents:\n  - fire: {vector: 1, vector: 2}\n", line: 3, column: 23, key: "vector",
             message: "duplicate key 'vector' (first at line 3, column 12)"),
    ]

    @Test("each mistake is reported at its line and column with its key", arguments: cases)
    func locatedMistake(_ c: Case) {
        do {
            let parsed = try ScenarioFile.parse(c.yaml, path: "bad.yaml")
            Issue.record("parsed without error: \(parsed)")
        } catch {
            #expect(error.path == "bad.yaml")
            #expect(error.line == c.line)
            #expect(error.column == c.column)
            #expect(error.key == c.key)
            #expect(error.message == c.message)
        }
    }

    /// The one-line form editors and terminals understand.
    @Test("description is path:line:column: key: message")
    func errorDescription() {
        #expect(throws: ScenarioFileError.self) { try ScenarioFile.parse("name: x\nvm:\n  viommu: smmu\n", path: "examples/bad.yaml") }
        do {
            _ = try ScenarioFile.parse("name: x\nvm:\n  viommu: smmu\n", path: "examples/bad.yaml")
        } catch {
            #expect(error.description == "examples/bad.yaml:3:11: vm.viommu: unknown value 'smmu' (did you mean 'smmuv3-accel'? expected none, smmuv3-accel)")
        }
        let syntax = ScenarioFileError(path: "a.yaml", line: 2, column: 1, message: "YAML syntax error: x")
        #expect(syntax.description == "a.yaml:2:1: YAML syntax error: x")
        #expect(ScenarioFileError(path: "gone.yaml", line: 0, column: 0, message: "cannot read").description == "gone.yaml: cannot read")
    }

    /// YAML syntax errors keep libyaml's position: the tab is at the start of line 3, the
    /// unclosed flow sequence is found missing at the end of the text, the control character
    /// is the 8th character of line 1.
    @Test("YAML syntax errors are located where libyaml stopped")
    func syntaxErrors() {
        func failure(_ text: String) -> ScenarioFileError? {
            do { _ = try ScenarioFile.parse(text, path: "s.yaml"); return nil } catch { return error }
        }
        let tab = failure("name: x\nvm:\n\tvcpus: 2\n")
        #expect(tab?.line == 3 && tab?.column == 1)
        #expect(tab?.key == nil)
        #expect(tab?.message.hasPrefix("YAML syntax error: found character that cannot start any token") == true)

        let unclosed = failure("name: x\nstrategy: [legacy, rmr-identity\n")
        #expect(unclosed?.line == 3 && unclosed?.column == 1)
        #expect(unclosed?.message.hasPrefix("YAML syntax error: did not find expected ',' or ']'") == true)
        #expect(unclosed?.message.hasSuffix("(while parsing a flow sequence at line 2, column 11)") == true)

        let control = failure("name: a\u{1}b\n")
        #expect(control?.line == 1 && control?.column == 8)
        #expect(control?.message == "YAML syntax error: control characters are not allowed (character U+1)")

        let twoDocuments = failure("name: a\n---\nname: b\n")
        #expect(twoDocuments?.line == 2 && twoDocuments?.column == 1)
    }

    /// libyaml stops at 1000 levels of nesting, before Yams' recursive composer could run out of
    /// stack; just below the limit must work too (and is a type error for `name`).
    @Test("deep nesting is an error, not a stack overflow")
    func deepNesting() {
        for depth in [999, 1000, 5000] {
            let text = "name: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            #expect(throws: ScenarioFileError.self) { try ScenarioFile.parse(text) }
        }
    }

    // MARK: Files

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func temporaryDirectory(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("doorbell-scenario-tests-\(getpid())-\(name)")
        try? FileManager.default.removeItem(at: url)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("load resolves a relative .dtb against the scenario's directory and keeps an absolute one")
    func loadResolvesDeviceTree() throws {
        let directory = try Self.temporaryDirectory("dtb")
        defer { try? FileManager.default.removeItem(at: directory) }
        let relative = directory.appendingPathComponent("relative.yaml")
        try "name: r\nplatform: boards/x.dtb\n".write(to: relative, atomically: true, encoding: .utf8)
        #expect(try ScenarioFile.load(path: relative.path).platform == .deviceTree(path: directory.path + "/boards/x.dtb"))
        let absolute = directory.appendingPathComponent("absolute.yaml")
        try "name: a\nplatform: /srv/x.dtb\n".write(to: absolute, atomically: true, encoding: .utf8)
        #expect(try ScenarioFile.load(path: absolute.path).platform == .deviceTree(path: "/srv/x.dtb"))
        // A scenario named without a directory: relative to the current one, unchanged.
        #expect(ScenarioFile.resolve("x.dtb", relativeTo: "s.yaml") == "x.dtb")
        #expect(ScenarioFile.resolve("x.dtb", relativeTo: "examples/s.yaml") == "examples/x.dtb")
    }

    @Test("load rejects unreadable files and invalid UTF-8 at its position")
    func loadErrors() throws {
        let directory = try Self.temporaryDirectory("utf8")
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("missing.yaml").path
        #expect(throws: ScenarioFileError.self) { try ScenarioFile.load(path: missing) }
        let bad = directory.appendingPathComponent("bad.yaml")
        try Data(Array("name: x\nsummary: ab".utf8) + [0xFF] + Array("\n".utf8)).write(to: bad)
        do {
            _ = try ScenarioFile.load(path: bad.path)
            Issue.record("invalid UTF-8 accepted")
        } catch {
            // 'summary: ab' is 11 characters, so the bad byte is the 12th of line 2.
            #expect(error.line == 2 && error.column == 12)
            #expect(error.message == "the file is not valid UTF-8")
        }
    }

    /// Every file in Examples/ must parse, and the seed must say what the README says of it.
    @Test("every example parses; the seed states its expectations")
    func examples() throws {
        let directory = Self.packageRoot.appendingPathComponent("Examples")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(names == ["events.yaml", "ram-at-msi-window.yaml", "seed.yaml", "two-its.yaml", "untranslated-its.yaml"])
        var parsed: [String: ScenarioDescription] = [:]
        for name in names {
            let scenario = try ScenarioFile.load(path: directory.appendingPathComponent(name).path)
            #expect(scenario.name + ".yaml" == name)
            #expect(try ScenarioFile.parse(ScenarioFile.render(scenario)) == scenario)
            parsed[name] = scenario
        }
        let seed = try #require(parsed["seed.yaml"])
        #expect(seed.platform == .preset(.qemuVirt) && seed.vm.viommu == .acceleratedSMMUv3 && seed.vm.guestDomain == .dmaStrict)
        #expect(seed.devices == [DeviceDescription(requesterID: RequesterID(bus: 0, device: 1, function: 0), interrupts: .msix, vectors: 4)])
        #expect(seed.strategiesToRun == Strategy.allCases)
        #expect(seed.expectations == [Expectation(strategy: .legacy, delivered: Expectation.Delivered.nothing, firstFailure: .stage1),
                                      Expectation(strategy: .rmrIdentity, delivered: .all)])
        #expect(parsed["ram-at-msi-window.yaml"]?.vm.layout == .ramAtMSIWindow)
        #expect(parsed["ram-at-msi-window.yaml"]?.strategies == [.rmrIdentity, .swMSIWindow])
        #expect(parsed["ram-at-msi-window.yaml"]?.expectations == [])
        #expect(parsed["untranslated-its.yaml"]?.platform == .preset(.qemuVirtUntranslatedITS))
        #expect(parsed["two-its.yaml"]?.platform == .preset(.qemuVirtTwoITS))
        #expect(parsed["two-its.yaml"]?.devices.map(\.requesterID.description) == ["00:01.0", "01:00.0"])
        let events = try #require(parsed["events.yaml"])
        #expect(events.strategies == [.vfioOverride])
        #expect(Set(events.events.map(\.kind)).count >= 8)
    }

    // MARK: Round trip

    @Test("render then parse gives back the same description (3000 generated, seed 0x5CE7A210)")
    func roundTrip() throws {
        var generator = SeededGenerator(seed: 0x5CE7_A210)
        for _ in 0..<3000 {
            let scenario = ScenarioGenerator.scenario(&generator)
            let text = ScenarioFile.render(scenario)
            let parsed: ScenarioDescription
            do {
                parsed = try ScenarioFile.parse(text)
            } catch {
                Issue.record("\(error)\n\(text)")
                return
            }
            #expect(parsed == scenario, "\(text)")
            if parsed != scenario { return }
        }
    }

    // MARK: Robustness

    /// Mutations of valid files (byte-level edits kept valid UTF-8, truncations, line
    /// shuffles, YAML indicators dropped in) must only ever parse or throw; every thrown error
    /// must point inside the text (a line that exists, or the one after the last), lines
    /// counted at YAML's breaks as libyaml counts them.
    @Test("3000 mutated inputs never crash and every error points into the text")
    func mutatedInputs() throws {
        var generator = SeededGenerator(seed: 0xF022_5CE7)
        let directory = Self.packageRoot.appendingPathComponent("Examples")
        var bases = [Self.fullExample]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()) ?? [] {
            if let text = try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8) { bases.append(text) }
        }
        for _ in 0..<20 { bases.append(ScenarioFile.render(ScenarioGenerator.scenario(&generator))) }
        var parsedCount = 0
        for _ in 0..<3000 {
            let base = bases[Int(generator.next() % UInt64(bases.count))]
            let text = Mutator.mutate(base, &generator)
            let lines = ScenarioFileSyntax.lines(of: text).count
            do {
                _ = try ScenarioFile.parse(text, path: "m.yaml")
                parsedCount += 1
            } catch {
                #expect(error.path == "m.yaml")
                #expect(error.line >= 1 && error.line <= lines + 1, "\(error)")
                #expect(error.column >= 1, "\(error)")
            }
        }
        // Some mutations are harmless (a comment, a trailing truncation of whitespace): the
        // sweep is not only exercising the error paths.
        #expect(parsedCount > 0)
    }
}

/// Random valid scenario descriptions for the round trip: every field over its whole range,
/// and strings full of characters YAML treats specially.
enum ScenarioGenerator {
    static func pick<T>(_ values: [T], _ g: inout SeededGenerator) -> T { values[Int(g.next() % UInt64(values.count))] }
    static func int(_ range: ClosedRange<Int>, _ g: inout SeededGenerator) -> Int { Int.random(in: range, using: &g) }

    static let awkward: [String] = [
        "a", "Z", "0", "-", " ", ":", "#", "'", "\"", "\\", "{", "}", "[", "]", ",", "&", "*", "!", "|", ">", "%", "@", "`", "?",
        "\n", "\r", "\t", "\r\n", "\u{1}", "\u{7F}", "\u{85}", "\u{A0}", "\u{2028}", "\u{FEFF}", "\u{FFFE}", "é", "中", "🦀", "null", "~",
        "yes", "0x10", "- ", ": ", " #", "...", "---",
    ]

    /// `leadingBOM: false` keeps U+FEFF off the front: Yams drops it there (see
    /// `ScenarioFileWriter.quoted`), the one known string that cannot round-trip.
    static func string(_ g: inout SeededGenerator, nonEmpty: Bool, leadingBOM: Bool) -> String {
        let plain = ["seed", "two-its", "a b", "x.y/z", "v6.15"]
        if g.next() % 3 == 0 { return pick(plain, &g) }
        var s = ""
        for _ in 0..<int(nonEmpty ? 1...12 : 0...12, &g) { s += pick(awkward, &g) }
        if !leadingBOM && s.unicodeScalars.first == "\u{FEFF}" { s = "x" + s }
        return s
    }

    static func scenario(_ g: inout SeededGenerator) -> ScenarioDescription {
        var s = ScenarioDescription(name: string(&g, nonEmpty: true, leadingBOM: false))
        s.summary = g.next() % 2 == 0 ? "" : string(&g, nonEmpty: false, leadingBOM: false)
        s.platform = g.next() % 4 == 0 ? .deviceTree(path: string(&g, nonEmpty: false, leadingBOM: false) + ".dtb") : .preset(pick(MachinePreset.allCases, &g))
        if case .deviceTree(let path) = s.platform, path == ".dtb" { s.platform = .deviceTree(path: "b.dtb") }
        s.host = HostOptions(pageSize: pick([.size4K, .size64K], &g))
        s.host.gic = pick([HostOptions.GIC?.none, .v3, .v41], &g)
        s.vm = VMOptions(viommu: pick(VMOptions.VIOMMU.allCases, &g), guestDomain: pick(KernelConfiguration.DefaultDomain.allCases, &g),
                         guestPageSize: pick([.size4K, .size64K], &g), layout: pick(VMOptions.Layout.allCases, &g), vcpus: int(1...8, &g))
        var devices: [DeviceDescription] = []
        for _ in 0..<int(1...4, &g) {
            let rid = RequesterID(UInt16(truncatingIfNeeded: g.next()))
            guard !devices.contains(where: { $0.requesterID == rid }) else { continue }
            let interrupts = pick(DeviceDescription.Interrupts.allCases, &g)
            let vectors = interrupts == .msi ? pick([1, 2, 4, 8, 16, 32], &g) : (g.next() % 4 == 0 ? int(1...2048, &g) : int(1...8, &g))
            devices.append(DeviceDescription(requesterID: rid, interrupts: interrupts, vectors: vectors))
        }
        s.devices = devices
        s.strategies = Strategy.allCases.shuffled(using: &g).filter { _ in g.next() % 3 == 0 }
        let hostCPUs = ScenarioFileEventReader.hostCPULimit
        s.events = (0..<int(0...12, &g)).map { _ in event(s, hostCPUs: hostCPUs, &g) }
        s.expectations = (0..<int(0...3, &g)).map { _ in
            var e = Expectation()
            if g.next() % 2 == 0 { e.strategy = pick(s.strategiesToRun, &g) }
            switch g.next() % 4 {
            case 0: e.delivered = .all
            case 1: e.delivered = Expectation.Delivered.nothing
            case 2: e.delivered = .count(int(0...100, &g))
            default: break
            }
            if g.next() % 2 == 0 { e.firstFailure = pick(FailurePoint.allCases, &g) }
            if e.delivered == nil && e.firstFailure == nil || g.next() % 2 == 0 { e.invariantsHold = g.next() % 2 == 0 }
            return e
        }
        if g.next() % 3 == 0 { s.bridge = g.next() % 2 == 0 ? String(int(0...7, &g)) : string(&g, nonEmpty: true, leadingBOM: false) }
        return s
    }

    static func event(_ s: ScenarioDescription, hostCPUs: Int, _ g: inout SeededGenerator) -> ScenarioEvent {
        let d = int(0...(s.devices.count - 1), &g)
        let v = int(0...(s.devices[d].vectors - 1), &g)
        switch pick(EventKind.allCases, &g) {
        case .fire: return .fire(device: d, vector: v)
        case .guestMask: return .guestMask(device: d, vector: v)
        case .guestUnmask: return .guestUnmask(device: d, vector: v)
        case .guestRewrite: return .guestRewrite(device: d, vector: v)
        case .guestAffinity: return .guestAffinity(device: d, vector: v, cpu: int(0...(s.vm.vcpus - 1), &g))
        case .hostAffinity: return .hostAffinity(device: d, vector: v, cpu: int(0...(hostCPUs - 1), &g))
        case .msixReenable: return .msixReenable(device: d)
        case .addVector: return .addVector(device: d)
        case .functionLevelReset: return .functionLevelReset(device: d)
        case .suspendResume: return .suspendResume(device: d)
        case .hostReactivate: return .hostReactivate(device: d, vector: v)
        case .guestDomain: return .guestDomain(device: d, domain: pick(GuestDomainChange.allCases, &g))
        case .hotUnplug: return .hotUnplug(device: d)
        case .hotPlug: return .hotPlug(device: d)
        case .saveRestore: return .saveRestore
        case .forgedEventID: return .forgedEventID(device: d, eventID: UInt32(truncatingIfNeeded: g.next()))
        case .guestMapOutsideRAM: return .guestMapOutsideRAM(device: d, ipa: g.next())
        case .guestCorruptSTE: return .guestCorruptSTE(device: d)
        case .vpeMigrate: return .vpeMigrate(vcpu: int(0...(s.vm.vcpus - 1), &g), cpu: int(0...(hostCPUs - 1), &g))
        case .vcpuNonResident: return .vcpuNonResident(vcpu: int(0...(s.vm.vcpus - 1), &g))
        case .vcpuResident: return .vcpuResident(vcpu: int(0...(s.vm.vcpus - 1), &g))
        }
    }
}

/// Edits that turn a valid scenario file into a nearly valid one.
enum Mutator {
    static let inserts = [":", " ", "\n", "- ", "{", "}", "[", "]", ",", "#", "'", "\"", "&a ", "*a", "!!str ", "? ", "|", ">", "\t",
                          "0x", "-1", "99999999999999999999", "\u{0}", "\u{85}", "é", "---\n", "...\n", "%YAML 1.2\n"]

    static func mutate(_ text: String, _ g: inout SeededGenerator) -> String {
        var scalars = Array(text.unicodeScalars)
        for _ in 0..<Int(1 + g.next() % 4) {
            let position = scalars.isEmpty ? 0 : Int(g.next() % UInt64(scalars.count + 1))
            switch g.next() % 6 {
            case 0: scalars = Array(scalars.prefix(position))                         // truncate
            case 1: if position < scalars.count { scalars.remove(at: position) }      // delete a character
            case 2: scalars.insert(contentsOf: ScenarioGenerator.pick(inserts, &g).unicodeScalars, at: position)
            case 3:                                                                   // replace with a random ASCII character
                if position < scalars.count, let s = Unicode.Scalar(UInt32(g.next() % 0x80)) { scalars[position] = s }
            case 4:                                                                   // duplicate a line
                var lines = String(String.UnicodeScalarView(scalars)).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                if !lines.isEmpty { lines.insert(lines[Int(g.next() % UInt64(lines.count))], at: Int(g.next() % UInt64(lines.count))) }
                scalars = Array(lines.joined(separator: "\n").unicodeScalars)
            default:                                                                  // drop a line
                var lines = String(String.UnicodeScalarView(scalars)).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                if !lines.isEmpty { lines.remove(at: Int(g.next() % UInt64(lines.count))) }
                scalars = Array(lines.joined(separator: "\n").unicodeScalars)
            }
        }
        return String(String.UnicodeScalarView(scalars))
    }
}
