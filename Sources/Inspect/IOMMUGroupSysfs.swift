/// One `/sys/kernel/iommu_groups/N`: its default domain type (`type`), its reserved regions
/// (`reserved_regions`) and its members (`devices/`).
public struct IOMMUGroupSysfs: Hashable, Sendable {
    /// One line of `reserved_regions`, as `iommu_group_show_resv_regions` prints it:
    /// `"0x%016llx 0x%016llx %s\n"`, start, end (inclusive) and the type name from
    /// `iommu_group_resv_type_string` ("direct", "direct-relaxable", "reserved", "msi"; both
    /// IOMMU_RESV_MSI and IOMMU_RESV_SW_MSI print as "msi").
    public struct ReservedRegion: Hashable, Sendable, CustomStringConvertible {
        public var start: UInt64
        public var end: UInt64
        public var type: String

        public init(start: UInt64, end: UInt64, type: String) {
            self.start = start
            self.end = end
            self.type = type
        }

        /// The line as the kernel prints it.
        public var description: String {
            "0x" + hex16(start) + " 0x" + hex16(end) + " " + type
        }

        func hex16(_ v: UInt64) -> String {
            let digits = String(v, radix: 16)
            return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
        }
    }

    public var number: Int
    /// `iommu_group_show_type`: "blocked", "identity", "unmanaged", "DMA", "DMA-FQ" or
    /// "unknown"; nil when the file was not there.
    public var type: String?
    public var reservedRegions: [ReservedRegion]
    /// The members' names (`0000:00:01.0`), bytewise sorted.
    public var devices: [String]

    public init(number: Int, type: String?, reservedRegions: [ReservedRegion], devices: [String]) {
        self.number = number
        self.type = type
        self.reservedRegions = reservedRegions
        self.devices = devices
    }

    /// Parses `reserved_regions`.
    static func parseReservedRegions(_ bytes: [UInt8], path: String) throws(SysfsParseError) -> [ReservedRegion] {
        var regions: [ReservedRegion] = []
        for (i, line) in SysfsText.lines(bytes).enumerated() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 3, let start = SysfsText.hex(String(fields[0])), let end = SysfsText.hex(String(fields[1])) else {
                throw SysfsParseError(path: path, line: i + 1, problem: "expected \"0xSTART 0xEND TYPE\", found \"\(line)\"")
            }
            guard start <= end else { throw SysfsParseError(path: path, line: i + 1, problem: "region ends before it starts") }
            regions.append(ReservedRegion(start: start, end: end, type: String(fields[2])))
        }
        return regions
    }
}
