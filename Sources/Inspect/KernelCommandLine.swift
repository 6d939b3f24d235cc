import LinuxKernel

/// The IOMMU parameters of `/proc/cmdline` that change what Linux gives a device:
/// - `iommu.passthrough=` (`iommu_set_def_domain_type`, drivers/iommu/iommu.c): a boolean as
///   `kstrtobool` reads it (1/y/Y/on and 0/n/N/off); true makes the default domain identity;
/// - `iommu.strict=` (`iommu_dma_setup`): false makes DMA domains lazy (DMA-FQ), true strict.
/// The last occurrence wins, as `parse_args` applies them in order.
public struct KernelCommandLine: Hashable, Sendable {
    public var text: String
    public var passthrough: Bool?
    public var strict: Bool?
    /// `acpi=` (arch/arm64/kernel/acpi.c `parse_acpi`): "off", "on" or "force"; nil when absent.
    public var acpi: String?

    public init(_ text: String) {
        self.text = text
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }) {
            guard let eq = word.firstIndex(of: "=") else { continue }
            let key = word[..<eq]
            let value = String(word[word.index(after: eq)...])
            switch key {
            case "iommu.passthrough": passthrough = Self.kstrtobool(value) ?? passthrough
            case "iommu.strict": strict = Self.kstrtobool(value) ?? strict
            case "acpi" where ["off", "on", "force"].contains(value): acpi = value
            default: break
            }
        }
    }

    /// `kstrtobool` (lib/kstrtox.c): the first character decides, "on"/"of(f)" by the second.
    static func kstrtobool(_ value: String) -> Bool? {
        let bytes = Array(value.utf8)
        guard let first = bytes.first else { return nil }
        switch first {
        case UInt8(ascii: "y"), UInt8(ascii: "Y"), UInt8(ascii: "t"), UInt8(ascii: "T"), UInt8(ascii: "1"): return true
        case UInt8(ascii: "n"), UInt8(ascii: "N"), UInt8(ascii: "f"), UInt8(ascii: "F"), UInt8(ascii: "0"): return false
        case UInt8(ascii: "o"), UInt8(ascii: "O"):
            guard bytes.count > 1 else { return nil }
            switch bytes[1] {
            case UInt8(ascii: "n"), UInt8(ascii: "N"): return true
            case UInt8(ascii: "f"), UInt8(ascii: "F"): return false
            default: return nil
            }
        default: return nil
        }
    }

    /// The default domain type: the command line where it says, else `buildDefault` (the
    /// kernel's CONFIG_IOMMU_DEFAULT_* choice).
    public func defaultDomain(buildDefault: KernelConfiguration.DefaultDomain) -> KernelConfiguration.DefaultDomain {
        if passthrough == true { return .identity }
        if passthrough == false, buildDefault == .identity { return strict == false ? .dmaLazy : .dmaStrict }
        guard buildDefault != .identity else { return .identity }
        switch strict {
        case true?: return .dmaStrict
        case false?: return .dmaLazy
        case nil: return buildDefault
        }
    }
}

/// The kernel's build configuration as `/boot/config-RELEASE` records it: the default domain
/// choice (drivers/iommu/Kconfig "IOMMU default domain type": IOMMU_DEFAULT_DMA_STRICT,
/// IOMMU_DEFAULT_DMA_LAZY or IOMMU_DEFAULT_PASSTHROUGH; arm64's Kconfig default is strict).
public enum KernelBuildConfig {
    public static func defaultDomain(_ bytes: [UInt8]) -> KernelConfiguration.DefaultDomain? {
        for line in SysfsText.lines(bytes) {
            switch line {
            case "CONFIG_IOMMU_DEFAULT_DMA_STRICT=y": return .dmaStrict
            case "CONFIG_IOMMU_DEFAULT_DMA_LAZY=y": return .dmaLazy
            case "CONFIG_IOMMU_DEFAULT_PASSTHROUGH=y": return .identity
            default: continue
            }
        }
        return nil
    }
}

/// A running kernel's release (`/proc/sys/kernel/osrelease`, e.g. "6.1.0-28-arm64") as the
/// model's named releases: the newest named release not after it. Releases before v6.15 get
/// v6.14's behaviours (none of the listed changes); anything after the newest named release
/// gets the newest. The mapping is by version number only: a distribution's backports (a
/// 6.12 kernel carrying a later fix) are not visible in the release string.
public enum KernelReleaseMapping {
    public static func version(of release: String) -> (major: Int, minor: Int)? {
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2)
        guard parts.count == 2, let major = Int(parts[parts.startIndex]), let minor = Int(parts[parts.startIndex + 1]) else { return nil }
        return (major, minor)
    }

    public static func modelled(_ release: String) -> KernelConfiguration.Version? {
        guard let (major, minor) = version(of: release) else { return nil }
        let ordered: [(KernelConfiguration.Version, Int, Int)] = [(.v7_0, 7, 0), (.v6_19, 6, 19), (.v6_15, 6, 15)]
        for (version, ma, mi) in ordered where (major, minor) >= (ma, mi) { return version }
        return .v6_14
    }
}
