import Foundation
import Testing
@testable import LinuxKernel

/// The named releases and their switches (`KernelBehaviour`), and the document that lists them.
@Suite struct KernelReleaseTests {
    /// Releases are ordered, and each release has exactly the behaviours that arrived at or
    /// before it: v6.14 none of the listed ones, v7.0 all of them.
    @Test func releasesHaveTheirBehaviours() {
        #expect(KernelConfiguration.Version.allCases.map(\.rawValue) == ["v6.14", "v6.15", "v6.19", "v7.0"])
        #expect(KernelConfiguration.Version.v6_14.behaviours.isEmpty)
        #expect(KernelConfiguration.Version.v6_15.behaviours == [.nativeSWMSI, .nestedSTEMergeEvents, .nestedVMaster, .iommuProbeAtDeviceAdd,
                                                              .vlpiResolveFallsBackSilently])
        #expect(!KernelConfiguration.Version.v6_19.behaviours.contains(.steUpdateSafe))
        #expect(KernelConfiguration.Version.v7_0.behaviours == KernelBehaviour.allCases)
        for behaviour in KernelBehaviour.allCases {
            #expect(!KernelConfiguration(version: .v6_14).has(behaviour), "v6.14 is the oldest named release: \(behaviour) arrived later")
            #expect(KernelConfiguration(version: behaviour.since).has(behaviour))
            #expect(!behaviour.commit.isEmpty)
        }
    }

    /// docs/kernel-releases.md holds the table rendered from the code, between its markers.
    @Test func documentListsEverySwitch() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/kernel-releases.md"), encoding: .utf8)
        let begin = try #require(text.range(of: "<!-- kernel-behaviours:begin -->\n"))
        let end = try #require(text.range(of: "<!-- kernel-behaviours:end -->"))
        #expect(String(text[begin.upperBound..<end.lowerBound]) == KernelBehaviour.markdownTable)
    }
}
