/// One glossary term: what the Arm specifications, Linux and QEMU mean by it, and where
/// Doorbell models it. `Glossary.entries` is the single source: docs/glossary.md holds
/// `Glossary.markdownTable` between its markers (`GlossaryTests` checks it), and
/// `doorbell explain TERM` prints an entry.
public struct GlossaryEntry: Hashable, Sendable {
    /// The term as the table's first column writes it; several names may share a row ("VMID, ASID").
    public var term: String
    public var meaning: String
    /// Where Doorbell models it ("—" for nowhere in particular).
    public var modelled: String

    /// The names the row stands for: "VMID, ASID" → ["VMID", "ASID"]; "C_BAD_STE, F_TRANSLATION …"
    /// → ["C_BAD_STE", "F_TRANSLATION"]. Lookups ignore case.
    public var names: [String] {
        term.split(separator: ",").map { $0.replacingOccurrences(of: "…", with: "").trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }
}

public enum Glossary {
    public static let entries: [GlossaryEntry] = [
        GlossaryEntry(term: "AIDR, IDR0–IDR5, IIDR",
                      meaning: "SMMUv3 identification registers: which features, sizes and granules the SMMU has (SMMUv3 §6.3)",
                      modelled: "`SMMUv3/RegisterMap.swift`, presets in `Machine/Presets`"),
        GlossaryEntry(term: "ATS",
                      meaning: "PCIe Address Translation Services; STE.EATS lets a device ask the SMMU for translations",
                      modelled: "not modelled beyond EATS in STEs"),
        GlossaryEntry(term: "CD",
                      meaning: "Context Descriptor: stage-1 translation context (TTB0, T0SZ, ASID, IPS …), 64 bytes (SMMUv3 §5.4)",
                      modelled: "`SMMUv3/ContextDescriptor.swift`"),
        GlossaryEntry(term: "CLASS",
                      meaning: "the fault record's class: CD (fetching a CD), TT (a stage-1 table walk), IN (the input address) (SMMUv3 §7.3)",
                      modelled: "`SMMUv3/EventRecord.swift`"),
        GlossaryEntry(term: "CMD_SYNC, CFGI_STE, TLBI_*",
                      meaning: "SMMU commands: complete earlier ones, invalidate a cached STE, invalidate TLB entries (SMMUv3 §4)",
                      modelled: "`SMMUv3/Command*.swift`"),
        GlossaryEntry(term: "C_BAD_STE, F_TRANSLATION …",
                      meaning: "SMMU event types: a malformed STE, a missing translation (SMMUv3 §7.3)",
                      modelled: "`SMMUv3/Fault.swift`"),
        GlossaryEntry(term: "DeviceID",
                      meaning: "the ITS's name for a requester, from the RID through `msi-map` or the IORT (GICv3 §5.1)",
                      modelled: "`Firmware/IDMap.swift`, `GIC/ITS.swift`"),
        GlossaryEntry(term: "DTE, ITE, CTE",
                      meaning: "ITS Device Table, Interrupt Translation Table and Collection Table entries",
                      modelled: "`GIC/DeviceTableEntry.swift`, `GIC/InterruptTranslationTable.swift`, `GIC/CollectionTable.swift`"),
        GlossaryEntry(term: "GITS_TRANSLATER",
                      meaning: "the ITS register a device writes its EventID to: the MSI doorbell, at ITS base + 0x1_0040",
                      modelled: "`GIC/ITS.swift`"),
        GlossaryEntry(term: "ICID",
                      meaning: "Interrupt Collection ID: which redistributor (CPU) an LPI goes to",
                      modelled: "`GIC/CollectionTable.swift`"),
        GlossaryEntry(term: "IORT",
                      meaning: "ACPI I/O Remapping Table: SMMUs, ITS groups, root complexes and their ID mappings (Arm DEN 0049)",
                      modelled: "`Firmware/ACPI`"),
        GlossaryEntry(term: "IPA",
                      meaning: "intermediate physical address: a guest's physical address, the output of stage 1",
                      modelled: "—"),
        GlossaryEntry(term: "ITS",
                      meaning: "GICv3 Interrupt Translation Service: (DeviceID, EventID) → LPI on a collection",
                      modelled: "`GIC/ITS.swift`"),
        GlossaryEntry(term: "ITT",
                      meaning: "Interrupt Translation Table: one per DeviceID, indexed by EventID",
                      modelled: "`GIC/InterruptTranslationTable.swift`"),
        GlossaryEntry(term: "LPI",
                      meaning: "Locality-specific Peripheral Interrupt: message-based, INTID ≥ 8192",
                      modelled: "`GIC/Redistributor.swift`"),
        GlossaryEntry(term: "MEV",
                      meaning: "STE \"merge events\" bit: the SMMU may coalesce identical fault records",
                      modelled: "`SMMUv3/StreamTableEntry.swift`"),
        GlossaryEntry(term: "RID",
                      meaning: "PCIe Requester ID: bus/device/function",
                      modelled: "`PCI/RequesterID.swift`"),
        GlossaryEntry(term: "RMR",
                      meaning: "IORT Reserved Memory Range node: memory a device must reach 1:1",
                      modelled: "`Firmware/ACPI`, `LinuxKernel/ACPI/IORTRMRRegions.swift`"),
        GlossaryEntry(term: "S1DSS",
                      meaning: "STE stage-1 default substream: what happens to traffic without a PASID (translate, bypass, abort)",
                      modelled: "`SMMUv3/StreamTableEntry.swift`"),
        GlossaryEntry(term: "S2FWB",
                      meaning: "SMMU stage-2 forced write-back: lets the host override the guest's memory attributes",
                      modelled: "`SMMUv3/RegisterMap.swift`"),
        GlossaryEntry(term: "STE",
                      meaning: "Stream Table Entry: per-StreamID configuration (bypass, abort, stage 1, stage 2, nested), 64 bytes (SMMUv3 §5.2)",
                      modelled: "`SMMUv3/StreamTableEntry.swift`"),
        GlossaryEntry(term: "StreamID",
                      meaning: "the SMMU's name for a requester, from the RID through `iommu-map` or the IORT",
                      modelled: "`Firmware/IDMap.swift`"),
        GlossaryEntry(term: "SW_MSI",
                      meaning: "the IOVA window (0x0800_0000 + 1 MiB on arm-smmu-v3) where Linux maps MSI doorbells for a translated device (`IOMMU_RESV_SW_MSI`)",
                      modelled: "`LinuxKernel/IOMMU/IOMMUReservedRegions.swift`"),
        GlossaryEntry(term: "vITS, vSMMU",
                      meaning: "the virtual ITS and SMMU a VMM gives its guest",
                      modelled: "`LinuxKernel/KVM/KVMVGIC.swift`, `VMM/VirtualSMMU.swift`"),
        GlossaryEntry(term: "VMID, ASID",
                      meaning: "the tags of stage-2 and stage-1 TLB entries",
                      modelled: "`SMMUv3/TranslationLookasideBuffer.swift`"),
    ]

    /// The entry naming `word` (any of a row's names, any case; "TLBI_*" matches "TLBI_NH_VA").
    public static func entry(_ word: String) -> GlossaryEntry? {
        let wanted = word.uppercased()
        return entries.first { entry in
            entry.names.contains { name in
                let upper = name.uppercased()
                if upper.hasSuffix("*") { return wanted.hasPrefix(upper.dropLast()) }
                return upper == wanted || upper.split(separator: "–").first.map { String($0) == wanted } == true
            }
        }
    }

    /// Every name a lookup accepts, in table order: the candidates of a did-you-mean.
    public static var allNames: [String] { entries.flatMap(\.names) }

    /// The table docs/glossary.md holds between `<!-- glossary:begin -->` and `<!-- glossary:end -->`.
    public static var markdownTable: String {
        var text = "| term | meaning | in Doorbell |\n|---|---|---|\n"
        for entry in entries { text += "| \(entry.term) | \(entry.meaning) | \(entry.modelled) |\n" }
        return text
    }
}
