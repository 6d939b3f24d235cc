import Bus
import LinuxKernel
import PCI

extension World {
    /// An independent copy of this world as it is now (the plan and its rules:
    /// `World+Fork.swift`): the machine with its RAM (shared copy-on-write), the host and guest
    /// kernels, the VMM and KVM, the guest's drivers or VFIO users, and the world's own
    /// bookkeeping. An event applied to the copy leaves this world as it was, and the copy goes
    /// on exactly as a world rebuilt and replayed to this point would.
    public func fork() -> World {
        var map = CloneMap()
        let copy = map.clone(self)
        map.finish()
        return copy
    }
}

/// The world's own state is values (the scenario, the strategy, which devices are unplugged,
/// driverless or corrupted, the deliveries not yet taken, the last adversarial write, the VPT
/// bookkeeping); the machine, kernels, VMM, guest devices and guest VFIO users are copied through
/// the map. What the world installed as closures is installed again on the copies once the rest
/// has been copied (`map.afterCloning`): the guest driver's interrupt handlers
/// (`requestGuestIRQ`; the copied actions wait for them, `IRQSubsystem.reinstallHandler`) and the
/// guest VFIO users' eventfd reads.
extension World: WorldCloneable {
    public func clone(into map: inout CloneMap) -> World {
        let copy = World(scenario: scenario, strategy: strategy, machine: map.clone(machine), functions: map.clone(functions),
                         host: map.clone(host), vmm: map.clone(vmm), guest: map.clone(guest),
                         guestDevices: map.clone(guestDevices))
        map.record(self, as: copy)
        copy.unplugged = unplugged
        copy.driverless = driverless
        copy.corrupted = corrupted
        copy.deliveries = deliveries
        copy.lastAdversarialWrite = lastAdversarialWrite
        copy.vptPending = vptPending
        copy.residencyLosses = residencyLosses
        var users: [Int: GuestVFIOUser] = [:]
        for index in guestVFIOUsers.keys.sorted() {
            guard let user = guestVFIOUsers[index] else { continue }
            let twin: GuestVFIOUser = map.clone(user)
            users[index] = twin
        }
        copy.guestVFIOUsers = users
        map.afterCloning { _ in
            let irq = copy.guest.irq
            for number in irq.irqsAwaitingHandler {
                guard let name = irq.descriptor(number)?.action?.name, let device = World.guestIRQDevice(name: name) else { continue }
                do { try irq.reinstallHandler(irq: number, handler: copy.guestHandler(device)) } catch {
                    preconditionFailure("World fork: guest irq \(number) (\(name)) has no handler to install again (\(error))")
                }
            }
            for index in copy.guestVFIOUsers.keys.sorted() {
                for eventfd in copy.guestVFIOUsers[index]?.eventfds ?? [] { copy.installGuestVFIOHandler(on: eventfd, index) }
            }
        }
        return copy
    }
}

/// A guest VFIO user's process, container or iommufd, files and vector eventfds, copied; its
/// eventfd reads are the world's, installed again by the world's clone.
extension GuestVFIOUser: WorldCloneable {
    func clone(into map: inout CloneMap) -> GuestVFIOUser {
        let copy = GuestVFIOUser(process: map.clone(process), file: map.clone(file), eventfds: map.clone(eventfds))
        copy.container = map.clone(container)
        copy.group = map.clone(group)
        copy.iommufd = map.clone(iommufd)
        copy.ioasID = ioasID
        return copy
    }
}
