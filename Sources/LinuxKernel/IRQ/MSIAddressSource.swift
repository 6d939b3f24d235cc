import Bus

/// Which host function chose the address of the MSI message last composed for a vector, and
/// from what: when a device's MSI faults in a translation stage, the report names the function
/// that put that address in the device's MSI-X entry (`its_irq_compose_msi_msg` and its IOMMU
/// hook, or VFIO's override), so the engineer knows which code to read.
public struct MSIAddressSource: Hashable, Sendable, CustomStringConvertible {
    /// The Linux function that set the address.
    public var function: String
    /// Where the address came from, with the address.
    public var detail: String

    public init(function: String, detail: String) {
        self.function = function
        self.detail = detail
    }

    public var description: String { "\(function) \(detail)" }
}
