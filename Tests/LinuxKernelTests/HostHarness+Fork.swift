import Bus
import Machine
import PCI
import Testing
@testable import LinuxKernel

/// A booted host forked with its machine: `CloneMap.clone` of the machine, then of the kernel,
/// then `finish` (where stored closures are installed again on the copies), with the copies of
/// the harness's PCI functions. Shared by the kernel fork suites.
struct HostFork {
    var map: CloneMap
    let machine: Machine
    let kernel: LinuxKernel
    let functions: [PCIFunction]
}

extension HostHarness {
    func forked() throws -> HostFork {
        var map = CloneMap()
        let machine = map.clone(self.machine)
        let kernel = map.clone(self.kernel)
        map.finish()
        let functions = try self.functions.map { try #require(map.copy(of: $0)) }
        return HostFork(map: map, machine: machine, kernel: kernel, functions: functions)
    }
}
