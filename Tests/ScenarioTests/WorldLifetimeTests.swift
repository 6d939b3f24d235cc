import Bus
@testable import LinuxKernel
import Machine
import PCI
import SMMUv3
import Testing
import VMM
@testable import Scenario

/// A built world must go away when its last user drops it: the explorer and the comparisons
/// build thousands, and a retain cycle anywhere (a handler stored on the object that owns it, a
/// strong back-reference to an owner) keeps the whole machine, both kernels and the VMM alive.
@Suite("world lifetime") struct WorldLifetimeTests {
    /// Weak references to the objects a world owns, taken while it is alive.
    struct Watched {
        weak var world: World?
        weak var machine: Machine?
        weak var bus: SystemBus?
        weak var smmu: SMMUv3?
        weak var function: PCIFunction?
        weak var host: LinuxKernel?
        weak var guest: LinuxKernel?
        weak var vmm: VirtualMachineMonitor?
        weak var vm: KVMVirtualMachine?
        weak var iommufd: IOMMUFD?
        weak var guestBus: SystemBus?
        weak var deviceFile: VFIODeviceFile?
        weak var vfioDevice: VFIOPCIDevice?
        weak var process: UserProcess?
        /// Every iommufd object (devices, IOAS, HWPTs, vIOMMU objects) and every host IOMMU domain.
        var parts: [Weak] = []

        /// The names of the objects still alive.
        var alive: [String] {
            var out: [String] = []
            if world != nil { out.append("world") }
            if machine != nil { out.append("machine") }
            if bus != nil { out.append("host bus") }
            if smmu != nil { out.append("SMMU") }
            if function != nil { out.append("PCI function") }
            if host != nil { out.append("host kernel") }
            if guest != nil { out.append("guest kernel") }
            if vmm != nil { out.append("VMM") }
            if vm != nil { out.append("KVM VM") }
            if iommufd != nil { out.append("iommufd") }
            if guestBus != nil { out.append("guest bus") }
            if deviceFile != nil { out.append("VFIO device file") }
            if vfioDevice != nil { out.append("vfio-pci device") }
            if process != nil { out.append("VMM process") }
            out += parts.filter { $0.object != nil }.map(\.name)
            return out
        }
    }

    /// A weak reference with a name for the report.
    struct Weak {
        weak var object: AnyObject?
        var name: String
        init(_ object: AnyObject, _ name: String) {
            self.object = object
            self.name = name
        }
    }

    /// Builds a world, fires every vector once, and returns weak references to its parts.
    static func buildAndDrop(_ scenario: ScenarioDescription, _ strategy: Strategy) throws -> Watched {
        let world = try World.build(scenario, strategy: strategy)
        var watched = Watched()
        watched.world = world
        watched.machine = world.machine
        watched.bus = world.machine.bus
        watched.smmu = world.machine.smmus.first
        watched.function = world.functions.first
        watched.host = world.host
        watched.guest = world.guest
        watched.vmm = world.vmm
        watched.vm = world.vmm.vm
        watched.iommufd = world.vmm.iommufd
        watched.guestBus = world.guest.bus
        watched.deviceFile = world.vmm.deviceFile
        watched.vfioDevice = world.vmm.deviceFile.vdev
        watched.process = world.vmm.process
        for object in world.vmm.iommufd.objects.objects.values.sorted(by: { $0.id < $1.id }) {
            watched.parts.append(Weak(object, "iommufd \(object.type.rawValue) \(object.id)"))
        }
        for group in world.vmm.iommufd.groups.keys.sorted() {
            if let g = world.vmm.iommufd.groups[group] { watched.parts.append(Weak(g, "iommufd group \(group)")) }
        }
        for (index, group) in world.host.iommu.groups.enumerated() {
            for domain in [group.domain, group.defaultDomain, group.blockingDomain] {
                if let domain { watched.parts.append(Weak(domain, "host group \(index) domain")) }
            }
        }
        let hostDevice = world.vmm.deviceFile.vdev.device
        watched.parts.append(Weak(hostDevice, "host device"))
        if let master = hostDevice.iommu?.driverData { watched.parts.append(Weak(master, "host SMMU master")) }
        if let vsmmu = world.vmm.vsmmu { watched.parts.append(Weak(vsmmu, "virtual SMMU")) }
        #expect(watched.alive.count == 14 + watched.parts.count)
        return watched
    }

    @Test("the seed's world and everything in it is freed when dropped, under every strategy",
          arguments: Strategy.allCases)
    func seedWorldIsFreed(_ strategy: Strategy) throws {
        let watched: Watched
        do { watched = try Self.buildAndDrop(BuiltInScenarios.seed, strategy) } catch { return }
        #expect(watched.alive == [], "\(strategy.rawValue): still alive after the world was dropped")
    }

    @Test("worlds are freed on every kernel release, with a nested or an emulated vIOMMU and a guest VFIO user",
          arguments: KernelConfiguration.Version.allCases)
    func everyReleaseIsFreed(_ version: KernelConfiguration.Version) throws {
        var scenario = BuiltInScenarios.seed
        scenario.host.kernel = version
        for strategy in [Strategy.vfioOverride, .vitsDirect, .swMSIWindow] {
            let watched: Watched
            do { watched = try Self.buildAndDrop(scenario, strategy) } catch { continue }
            #expect(watched.alive == [], "\(version) \(strategy.rawValue): still alive after the world was dropped")
        }
    }

    @Test("a GICv4.1 host's world (irqbypass, vPEs, forwarded vLPIs) and a GICv2m guest's world are freed when dropped",
          arguments: [BuiltInScenarios.seedGICv4, BuiltInScenarios.seedGICv2m])
    func newInterruptHardwareIsFreed(_ scenario: ScenarioDescription) throws {
        for strategy in [Strategy.vitsDirect, .rmrIdentity] {
            let watched = try Self.buildAndDrop(scenario, strategy)
            #expect(watched.alive == [], "\(scenario.name) \(strategy.rawValue): still alive after the world was dropped")
        }
    }

    @Test("a world that ran events is freed too")
    func worldAfterRunIsFreed() throws {
        weak var world: World?
        do {
            var scenario = BuiltInScenarios.seed
            scenario.events = [.fire(device: 0, vector: 0)]
            let built = try World.build(scenario, strategy: .rmrIdentity)
            world = built
            _ = ScenarioRunner.run(scenario, strategy: .rmrIdentity)
        }
        #expect(world == nil)
    }
}
