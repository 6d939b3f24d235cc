import Bus

extension CloneMap {
    /// The copy of a kernel object whose class is made `WorldCloneable` in another part of the
    /// kernel model (the `LinuxKernel` itself, `Device`, `PCIDevice`, `EventFD`): reached
    /// through `cloneDynamic`, so the IOMMU, iommufd and VFIO clones name the object without
    /// depending on where its conformance is declared. A class that is not cloneable stops the
    /// clone here, naming it.
    mutating func cloneKernelObject<T: AnyObject>(_ object: T) -> T {
        guard let made = cloneDynamic(object) else {
            preconditionFailure("CloneMap: a \(type(of: object)) is not WorldCloneable, so a kernel holding one cannot be forked")
        }
        guard let typed = made as? T else {
            preconditionFailure("CloneMap: the copy of a \(T.self) is a \(type(of: made))")
        }
        return typed
    }

    /// The same for an object held as an existential or `AnyObject` (a domain's driver, its
    /// `driverData`, an iommufd cookie's HWPT).
    mutating func cloneKernelObject(any object: AnyObject) -> AnyObject {
        guard let made = cloneDynamic(object) else {
            preconditionFailure("CloneMap: a \(type(of: object)) is not WorldCloneable, so a kernel holding one cannot be forked")
        }
        return made
    }
}
