// Forking a world: the plan, and where the work stands.
//
// Why. `doorbell explore` visits every event sequence up to a depth; for each state it calls
// `World.build` (machine, host kernel boot, VMM realize, guest boot, driver bind) and replays the
// sequence's prefix, so three quarters of its time is spent rebuilding worlds it had a moment
// before. Forking the world at each node of the search and applying one event to the fork makes a
// state cost what the event changes, not what the whole world holds.
//
// How. One explicit protocol, `WorldCloneable` (Bus/CloneMap.swift): `clone(into map:)` copies an
// object and reaches every other object through `map.clone(_:)`, which memoises on
// `ObjectIdentifier` so an object reached twice is copied once and cycles stay cycles. No
// reflection, no `Codable` round trip: each class says how it is copied, next to its stored
// properties, so a property added later without a clone line is a review finding, and the
// equivalence tests below catch what review misses.
//
// Layers, bottom up (each committed with its own tests):
//  (a) `CloneMap` and `SparseRAM.fork()`: RAM frames are shared copy-on-write (leaves and frames
//      owned per copy, arenas frozen by a fork), so a fork costs the directory, not the memory.
//      DONE: Tests/BusTests/SparseRAMForkTests.swift, CloneMapTests.swift.
//  (b) Hardware: SystemBus (regions hold `any MMIODevice`: `map.cloneDynamic`, in `finish()`),
//      SMMUv3 with SMMURegisterFile, SMMUTranslator, TranslationLookasideBuffer,
//      ConfigurationTable; SMMUv2; GICv3 with Distributor, Redistributor, CPUInterface, ITS,
//      LPIConfigurationCache, PreITS, GICv2CPUInterface, GICv2mMSIFrame; PCI RootComplex, ECAM,
//      PCIMemoryWindow, PCIFunction, PCIToPCIBridge; Machine, TranslatedPort, DirectPort,
//      SMMUv2Port. Journal and TraceLog are not cloned (a fork starts with none attached, as
//      `World.fire` attaches its own). DONE: Tests/SMMUv3Tests/SMMUForkTests.swift,
//      GICTests/GICForkTests.swift, MachineTests/MachineForkTests.swift (a forked machine's MSI
//      journal equals a rebuilt machine's). An ITS whose entry storage is KVM's (`KVMITSLists`,
//      layer c) copies it through `map.cloneDynamic`; any other storage that is not
//      `WorldCloneable` stops the clone with a precondition naming it.
//  (c) LinuxKernel (host and guest are two instances of one model): LinuxKernel, KernelLog,
//      KernelRefusals, PhysicalPages, Device, DeviceIOMMU, PCISubsystem, PCIDevice, IRQSubsystem,
//      IRQDescriptor, IRQAction, MSIDescriptor, EventFD, GICSPIMSIDomain(+Range), GICv3ITSDriver
//      (+ITSDevice), GICv2CPUInterfaceRegisters, IOMMUSubsystem, IOMMUDeviceState, IOMMUGroup,
//      IOMMUDomain, IOVADomain, IOVARangeCache, DMAMapping, DMAFlushQueue, IOMMUDMACookie,
//      IOMMUDMAMSICookie, IOMMUDMAMSIPage, ArmSMMUv3Driver, ArmSMMUv3Domain, ArmSMMUv3Master,
//      ArmSMMUv3StreamTable, IOPageTableARM, ArmVSMMU, ArmSMMUv3NestedDomain, ArmSMMUDriver,
//      ArmSMMUDomain, ArmSMMUMaster, IOMMUFD and its objects (IOAS, HWPT, HWPTPaging, HWPTNested,
//      Group, Device, VIOMMU, VDevice, VEventQueue, IOPageTable), VFIOSubsystem, VFIOType1
//      (+Domain), VFIOContainer, VFIOGroupFile, VFIODeviceFile, VFIOPCIDevice, UserProcess, KVM
//      (KVMVirtualMachine, KVMVCPU, KVMVGIC, KVMVCPUInterface, KVMITSLists).
//      STARTED: KernelLog, KernelRefusals, PhysicalPages, IOVADomain (with IOVARangeCache),
//      IOMMUDMAMSIPage, IOMMUDMAMSICookie, GICSPIMSIDomain (+Range) are WorldCloneable
//      (Tests/LinuxKernelTests/KernelLeafForkTests.swift); the rest is not yet.
//      IOMMU side DONE: IOMMUSubsystem, IOMMUDeviceState, IOMMUGroup, IOMMUDomain, DeviceIOMMU,
//      DMAMapping, DMAFlushQueue, IOMMUDMACookie, ArmSMMUv3Driver (+StreamTable, Domain, Master,
//      ArmVSMMU, NestedDomain), IOPageTableARM, ArmSMMUDriver (+Domain, Master), IOMMUFD (every
//      object kind, IOMMUFDGroup, IOPageTable), VFIOSubsystem, VFIOPCIDevice, VFIOContainer,
//      VFIOGroupFile, VFIODeviceFile, VFIOType1 (+Domain), UserProcess
//      (Tests/LinuxKernelTests/IOMMUKernelForkTests.swift forks a booted host with its machine;
//      IOMMUForkTests.swift and IOMMUForkPathTests.swift cover VFIO type1, nesting and arm-smmu
//      by forking the IOMMU side alone onto an identically driven twin).
//      DONE (kernel core): LinuxKernel, Device, PCISubsystem, PCIDevice, IRQSubsystem,
//      IRQDescriptor, IRQAction, MSIDescriptor, EventFD, GICv3ITSDriver, ITSDevice, ITSVM, ITSVPE,
//      IRQBypassManager, GICv2CPUInterfaceRegisters (Tests/LinuxKernelTests/KernelIRQForkTests.swift,
//      KernelIRQLeafForkTests.swift, KernelGuestForkTests.swift: a forked booted host — GICv3 +
//      ITS with and without the SMMU, GICv2 + v2m — and a forked KVM guest allocate, move and
//      free MSIs as the original would, independently). The kernel copies its own leaves in
//      `init(copying:map:)`, records its copy, then clones devices, drivers and subsystems.
//      Handler closures come back through IRQSubsystem.reinstallHandler /
//      reinstallVPEDoorbellHandlers, irqbypass consumers through IRQBypassManager.reinstallConsumer.
//      DONE (KVM): KVMVirtualMachine, KVMVCPU, KVMVCPUInterface, KVMVGIC, KVMITSLists
//      (LinuxKernelTests/KVMForkTests.swift: a forked vGIC translates the same guest ITS
//      commands as the original, independently). The VM's clone re-installs its irqfd wakeups,
//      its irqbypass consumers, the KVM side of the vPE doorbells and the vITS lists' GICv4
//      follow-up in `afterCloning`.
//  (d) VMM, DONE: VirtualMachineMonitor, PassthroughDevice, PassthroughFunction, VirtualSMMU,
//      GuestHostBridge (+ECAM, +Window); the VMM's clone re-installs the functions' change
//      callbacks, the vSMMU's backend and SMMUEN callback, and its userspace eventfd handlers.
//      Tested through `World.fork` (layer e).
//  (e) DONE: `World.fork()` (World+Clone.swift: World, GuestVFIOUser; the guest driver's
//      handlers and the guest VFIO users' eventfd reads re-installed on the copy), with the
//      equivalence test below for every `EventKind` (ScenarioTests/WorldForkTests.swift).
//      `Explorer` forks the world of the state one event shorter at each node
//      (`Explorer.StatePath.fork`, Explorer+Fork.swift); the rebuilt path (`World.build` +
//      replay, `.rebuild`, `doorbell explore --state-path rebuild`) stays as the oracle
//      (ScenarioTests/ExplorerForkTests.swift: same result, findings and shard records).
//
// Back-references. `weak`/`unowned` pointers to an owner (devices → bus, SMMUTranslator →
// bus, ITS → GICv3, GICv2mMSIFrame → Distributor, PCIFunction → RootComplex and parent bridge,
// GuestHostBridge windows → bridge, VirtualSMMU → guest bus and backend) are taken from the map:
// the owner records its copy (`map.record`) before cloning its children, and the child reads
// `map.copy(of: owner)`. Where the back-reference is a `let` and the owner holds the child in a
// `let` too, one of the two becomes a `var` set once after cloning.
//
// Stored closures cannot be copied (they would still capture the original world). Each is
// re-installed on the copy, from copied objects, in `map.afterCloning` by the object that
// installed it in the first place:
//  - PassthroughFunction.onMSIXChange / onMSIChange, VirtualSMMU.onTranslationEnableChange:
//    installed by VirtualMachineMonitor (realize and migration); the VMM's clone re-installs them.
//  - EventFD.onSignal (the VMM's userspace MSI-X consumer), IOMMUSubsystem.iommufdSWMSI (iommufd),
//    ArmSMMUv3Driver.entryWriteObserver (tests and traces), IOPageTableARM.flushWalk (the
//    owning domain's TLB flush), DMAFlushQueue.flushIOTLBAll (the owning domain): each owner's
//    clone re-installs its own.
//  - RootComplex.intxSink: installed by Machine (Machine+INTx.swift) from its GIC.
//  - IRQAction.Kind.handler: the guest driver's handler World.requestGuestIRQ installs; the
//    copied action waits (`awaitsHandler`, runs as IRQ_NONE) until World's clone puts the closure
//    back with `IRQSubsystem.reinstallHandler` (not a second request_irq: the interrupt's state
//    is already copied); `irqsAwaitingHandler` lists any left. KVM's vPE doorbells come back the
//    same way through `reinstallVPEDoorbellHandlers`.
//
// Equivalence test (layer e): for each `ScenarioEvent` case, build a world, apply a prefix,
// fork, apply the event to the fork; build another world and replay prefix + event; the two
// journals, outcomes and `World.stateHash` must be equal byte for byte, and the original world's
// hash and journal must be what they were before the fork.
