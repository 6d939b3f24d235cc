import GIC
import LinuxKernel
import Machine

/// A machine the Linux host kernel model can boot on: one with a GICv3 (the kernel's CPU
/// interface). Reports and scenario worlds plug their functions into the machine first, then
/// boot the host here, so "a machine plus a booted host" is built one way.
public struct HostMachine {
    /// Why there is no booted host: the machine has no GICv3, or the kernel model's boot failed
    /// (the error it threw).
    public enum Failure: Error, CustomStringConvertible {
        case noGIC(machine: String)
        case boot(machine: String, error: any Error)

        public var description: String {
            switch self {
            case .noGIC(let machine): "\(machine): no GIC"
            case .boot(let machine, let error): "\(machine): the kernel model failed to boot: \(error)"
            }
        }
    }

    public let machine: Machine
    public let gic: GICv3

    public init(_ machine: Machine) throws(Failure) {
        guard let gic = machine.gic else { throw .noGIC(machine: machine.name) }
        self.machine = machine
        self.gic = gic
    }

    /// The host kernel model with `configuration` on the machine, not yet booted (for tests
    /// that drive the boot steps themselves).
    public func makeHost(_ configuration: KernelConfiguration = KernelConfiguration()) -> LinuxKernel {
        LinuxKernel(topology: machine.topology, bus: machine.bus, cpuInterface: cpuInterface, configuration: configuration)
    }

    /// The CPU interface the host kernel drives: ICC_* system registers on a GICv3, the
    /// memory-mapped GICC on a GICv2 (`GICv2CPUInterfaceRegisters`).
    public var cpuInterface: any CPUInterfaceRegisters {
        if gic.configuration.version == 2, let gicc = machine.topology.gic?.cpuInterfaceRegions.first?.base {
            return GICv2CPUInterfaceRegisters(bus: machine.bus, base: gicc, cpuCount: gic.cpuInterfaces.count)
        }
        return gic
    }

    /// Boots the host kernel model with `configuration` on the machine as it is now (the
    /// functions plugged so far are the ones it enumerates).
    public func bootHost(_ configuration: KernelConfiguration = KernelConfiguration()) throws(Failure) -> LinuxKernel {
        let kernel = makeHost(configuration)
        do { try kernel.boot() } catch { throw .boot(machine: machine.name, error: error) }
        return kernel
    }
}
