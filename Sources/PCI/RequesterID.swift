import Bus

/// A PCIe Requester ID (PCIe r6.0 §2.2.6.2): Bus[15:8] : Device[7:3] : Function[2:0].
///
/// It is what a function stamps on every request it issues, and what the root complex turns into
/// a StreamID (`iommu-map`) and a DeviceID (`msi-map`); DT bindings `pci-iommu.txt` and
/// `pci-msi.txt` use exactly this packing ("Bits [15:8] are the Bus number, [7:3] the Device
/// number, [2:0] the Function number"), as does Linux `PCI_DEVID(bus, devfn)`.
public struct RequesterID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16

    @inlinable public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    /// Device numbers above 31 and function numbers above 7 are truncated to their field width,
    /// as the wire format has no room for them.
    @inlinable
    public init(bus: UInt8, device: UInt8, function: UInt8) {
        rawValue = UInt16(bus) << 8 | UInt16(device & 0x1F) << 3 | UInt16(function & 0x7)
    }

    /// Linux `PCI_DEVID(bus, devfn)`.
    @inlinable
    public init(bus: UInt8, devfn: UInt8) { rawValue = UInt16(bus) << 8 | UInt16(devfn) }

    @inlinable public var bus: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 8) }
    @inlinable public var device: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 3) & 0x1F }
    @inlinable public var function: UInt8 { UInt8(truncatingIfNeeded: rawValue) & 0x7 }
    /// Device and function together (Linux `devfn`).
    @inlinable public var devfn: UInt8 { UInt8(truncatingIfNeeded: rawValue) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// `bb:dd.f` in hex, as `lspci` prints it.
    public var description: String {
        func hex2(_ v: UInt8) -> String {
            let s = String(v, radix: 16)
            return s.count < 2 ? "0" + s : s
        }
        return "\(hex2(bus)):\(hex2(device)).\(String(function, radix: 16))"
    }

    /// `0x0008`: the form used in traces next to StreamIDs and DeviceIDs.
    public var hex: String { Hex.format(UInt64(rawValue), minDigits: 4) }
}
