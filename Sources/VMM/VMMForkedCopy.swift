import Bus

/// The copy of a kernel the VMM holds (the host's and the guest's), through `map.cloneDynamic`:
/// `LinuxKernel` is made copyable last, by the kernel model's core, and until it is a fork
/// stops here with its name instead of sharing a kernel between two worlds.
func forkedCopy<T: AnyObject>(_ object: T, _ map: inout CloneMap) -> T {
    guard let copy = map.cloneDynamic(object) as? T else {
        preconditionFailure("VMM: a \(T.self) cannot be copied into a forked world yet")
    }
    return copy
}
