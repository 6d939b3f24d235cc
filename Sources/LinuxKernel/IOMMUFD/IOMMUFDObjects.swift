/// `enum iommufd_object_type` (drivers/iommu/iommufd/iommufd_private.h). It includes the
/// nested HWPT, vIOMMU and vDEVICE objects, so that an id of the wrong type answers "wrong
/// type" as Linux does.
public enum IOMMUFDObjectType: String, Hashable, Sendable {
    case device = "DEVICE"
    case hwptPaging = "HWPT_PAGING"
    case hwptNested = "HWPT_NESTED"
    case ioas = "IOAS"
    case viommu = "VIOMMU"
    case vdevice = "VDEVICE"
    case veventq = "VEVENTQ"
}

/// `struct iommufd_object`: what every id in an iommufd file names.
///
/// `holders` models `obj->users` above the table's own reference: another object (a HWPT holds
/// its IOAS, an attached device holds its HWPT, the VFIO driver holds its bound device) keeps the
/// object alive, and `IOMMU_DESTROY` answers EBUSY while any holder remains
/// (`iommufd_object_remove`: `refcount_dec_if_one` fails).
public class IOMMUFDObject {
    public let type: IOMMUFDObjectType
    /// The id `xa_alloc` gave the object; 0 until inserted.
    public internal(set) var id: UInt32 = 0
    public internal(set) var holders = 0

    init(type: IOMMUFDObjectType) { self.type = type }

    /// Called when `IOMMU_DESTROY` or the last holder removes the object.
    func destroy() {}
}

/// `ictx->objects`: the xarray of objects, `XA_FLAGS_ALLOC1` (drivers/iommu/iommufd/main.c
/// `iommufd_fops_open`), so ids start at 1 and `xa_alloc` takes the lowest free id within
/// `xa_limit_31b`.
public struct IOMMUFDObjectTable {
    var objects: [UInt32: IOMMUFDObject] = [:]

    public init() {}

    /// `iommufd_object_finalize` after `_iommufd_object_alloc`: the lowest free id ≥ 1. ENOSPC
    /// past 2^31 − 1 (`xa_limit_31b`).
    mutating func insert(_ object: IOMMUFDObject) throws(Errno) -> UInt32 {
        var id: UInt32 = 1
        while objects[id] != nil {
            guard id < 0x7FFF_FFFF else { throw .ENOSPC }
            id += 1
        }
        object.id = id
        objects[id] = object
        return id
    }

    /// `iommufd_get_object(ictx, id, type)`: ENOENT when nothing has that id, and ENOENT as
    /// well when the object has another type (the kernel does not distinguish).
    func get(_ id: UInt32, type: IOMMUFDObjectType? = nil) throws(Errno) -> IOMMUFDObject {
        guard let object = objects[id] else { throw .ENOENT }
        if let type, object.type != type { throw .ENOENT }
        return object
    }

    /// `iommufd_object_remove`: ENOENT for an unknown id, EBUSY while another object holds it.
    mutating func remove(_ id: UInt32) throws(Errno) -> IOMMUFDObject {
        guard let object = objects[id] else { throw .ENOENT }
        guard object.holders == 0 else { throw .EBUSY }
        objects[id] = nil
        return object
    }

    /// Removes an object the kernel itself tears down (an auto domain losing its last device,
    /// a device unbound by its driver).
    mutating func forget(_ object: IOMMUFDObject) {
        if objects[object.id] === object { objects[object.id] = nil }
    }

    /// Every id, ascending (deterministic reports).
    public var ids: [UInt32] { objects.keys.sorted() }

    public var count: Int { objects.count }
}
