import Bus

extension CloneMap {
    /// The copy of a kernel object held as an existential or `AnyObject` (a domain's driver and
    /// operations, its `driverData`, an iommufd cookie's HWPT, an IOAS reservation's owner):
    /// reached through `cloneDynamic`. A class that is not cloneable stops the clone here,
    /// naming it.
    mutating func cloneKernelObject(any object: AnyObject) -> AnyObject {
        guard let made = cloneDynamic(object) else {
            preconditionFailure("CloneMap: a \(type(of: object)) is not WorldCloneable, so a kernel holding one cannot be forked")
        }
        return made
    }
}
