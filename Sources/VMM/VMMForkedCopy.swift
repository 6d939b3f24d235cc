import Bus

/// The copy of an object of the kernel model held by the VMM (the host and guest kernels, the
/// VMM process, its iommufd and VFIO files), through `map.cloneDynamic`: those classes belong
/// to the kernel model's own clone code, and a class that is not copyable yet stops the fork
/// with its name instead of sharing an object between two worlds.
func forkedCopy<T: AnyObject>(_ object: T, _ map: inout CloneMap) -> T {
    guard let copy = map.cloneDynamic(object) as? T else {
        preconditionFailure("VMM: a \(T.self) cannot be copied into a forked world yet")
    }
    return copy
}
