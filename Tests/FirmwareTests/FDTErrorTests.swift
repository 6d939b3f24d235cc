import Testing
import Bus
@testable import Firmware

/// Malformed blobs: each gives the typed error the Devicetree Specification v0.4 §5 check
/// names, at the byte offset of the field or token that is wrong.
@Suite("FDT errors are typed and located")
struct FDTErrorTests {
    /// virt-smmu.dtb's header, read with xxd: totalsize 0x1ea7, off_dt_struct 0x38,
    /// off_dt_strings 0x1c98, off_mem_rsvmap 0x28, version 17, last_comp_version 16,
    /// size_dt_strings 0x20f, size_dt_struct 0x1c60.
    static let totalSize = 0x1EA7, structOffset = 0x38, structSize = 0x1C60, stringsOffset = 0x1C98, stringsSize = 0x20F

    static func error(_ bytes: [UInt8]) -> FDTError? {
        do {
            _ = try FlattenedDeviceTree(bytes: bytes)
            return nil
        } catch {
            return error
        }
    }

    static func patched(_ bytes: [UInt8], word offset: Int, _ value: UInt32) -> [UInt8] {
        var copy = bytes
        for i in 0..<4 { copy[offset + i] = UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32(i))) }
        return copy
    }

    @Test("the header values the other tests rely on are the fixture's")
    func headerFacts() throws {
        let header = try FlattenedDeviceTree(bytes: try Fixtures.qemu("virt-smmu")).header
        #expect(Int(header.totalSize) == Self.totalSize && Int(header.structureOffset) == Self.structOffset)
        #expect(header.structureSize.map(Int.init) == Self.structSize && Int(header.stringsOffset) == Self.stringsOffset)
        #expect(Int(header.stringsSize) == Self.stringsSize && header.memoryReservationMapOffset == 0x28)
    }

    @Test("every prefix of a fixture is rejected: a short header where it ends, else totalsize at offset 4")
    func everyPrefix() throws {
        let bytes = try Fixtures.qemu("virt-smmu")
        for length in 0..<bytes.count {
            let error = Self.error(Array(bytes.prefix(length)))
            if length < 40 {
                // A version-17 header is 40 bytes; the error points at where the blob stopped.
                #expect(error == FDTError(offset: length, .truncatedHeader(length: length)), "length \(length)")
            } else {
                #expect(error == FDTError(offset: 4, .totalSizeBeyondBlob(totalSize: UInt32(bytes.count), available: length)), "length \(length)")
            }
        }
    }

    @Test("a blob whose totalsize is cut short names the first block that no longer fits")
    func shrunkTotalSize() throws {
        let bytes = try Fixtures.qemu("virt-smmu")
        for total in stride(from: 0, to: Self.totalSize, by: 7) {
            let error = Self.error(Self.patched(bytes, word: 4, UInt32(total)))
            let expected: FDTError
            if total < 40 {
                expected = FDTError(offset: 4, .totalSizeTooSmall(UInt32(total)))
            } else if total < Self.structOffset {
                // off_dt_struct itself lies beyond totalsize.
                expected = FDTError(offset: 8, .blockOutOfBounds(.structure, start: UInt32(Self.structOffset), size: 0))
            } else if total < Self.structOffset + Self.structSize {
                // off_dt_struct + size_dt_struct passes totalsize: reported at size_dt_struct.
                expected = FDTError(offset: 36, .blockOutOfBounds(.structure, start: UInt32(Self.structOffset), size: UInt32(Self.structSize)))
            } else {
                // The strings block comes last and no longer fits: blamed on size_dt_strings.
                expected = FDTError(offset: 32, .blockOutOfBounds(.strings, start: UInt32(Self.stringsOffset), size: UInt32(Self.stringsSize)))
            }
            #expect(error == expected, "totalsize \(total)")
        }
    }

    @Test("corrupted header fields give the error for that field, at that field's offset")
    func corruptedHeader() throws {
        let bytes = try Fixtures.qemu("virt-smmu")
        #expect(Self.error(Self.patched(bytes, word: 0, 0xEDFE_0DD0)) == FDTError(offset: 0, .badMagic(0xEDFE_0DD0)))
        #expect(Self.error(Self.patched(bytes, word: 20, 15)) == FDTError(offset: 20, .unsupportedVersion(version: 15, lastCompatibleVersion: 16)))
        #expect(Self.error(Self.patched(bytes, word: 24, 18)) == FDTError(offset: 20, .unsupportedVersion(version: 17, lastCompatibleVersion: 18)))
        #expect(Self.error(Self.patched(bytes, word: 4, 0xFFFF_FFFF)) == FDTError(offset: 4, .totalSizeBeyondBlob(totalSize: 0xFFFF_FFFF, available: bytes.count)))
        // off_dt_struct far out, and a size_dt_struct whose sum with the offset wraps 32 bits.
        #expect(Self.error(Self.patched(bytes, word: 8, 0xFFFF_FFF0)) == FDTError(offset: 8, .blockOutOfBounds(.structure, start: 0xFFFF_FFF0, size: 0)))
        #expect(Self.error(Self.patched(bytes, word: 36, 0xFFFF_FFFF)) == FDTError(offset: 36, .blockOutOfBounds(.structure, start: 0x38, size: 0xFFFF_FFFF)))
        #expect(Self.error(Self.patched(bytes, word: 32, 0xFFFF_FFFF)) == FDTError(offset: 32, .blockOutOfBounds(.strings, start: 0x1C98, size: 0xFFFF_FFFF)))
        // A reservation map at 44 is in bounds but not 8-aligned (§5.1).
        #expect(Self.error(Self.patched(bytes, word: 16, 44)) == FDTError(offset: 16, .misalignedBlock(.memoryReservationMap, start: 44)))
        // A structure block at 0x3a (size cut so it still fits) is not 4-aligned.
        let misaligned = Self.patched(Self.patched(bytes, word: 8, 0x3A), word: 36, UInt32(Self.structSize - 4))
        #expect(Self.error(misaligned) == FDTError(offset: 8, .misalignedBlock(.structure, start: 0x3A)))
        // A block that starts inside the header.
        #expect(Self.error(Self.patched(bytes, word: 12, 8)) == FDTError(offset: 12, .blockOutOfBounds(.strings, start: 8, size: 0)))
    }

    @Test("a version-16 header (no size_dt_struct) reads the same tree")
    func version16() throws {
        let bytes = try Fixtures.qemu("virt-smmu")
        let v16 = Self.patched(Self.patched(bytes, word: 20, 16), word: 36, 0xDEAD_BEEF)
        let fdt = try FlattenedDeviceTree(bytes: v16)
        #expect(fdt.header.structureSize == nil)
        #expect(fdt.tree == (try DeviceTree(dtb: bytes)))
    }

    @Test("a property name offset outside the strings block is reported at that nameoff field")
    func badStringOffset() throws {
        let bytes = try Fixtures.qemu("virt-smmu")
        // Root FDT_BEGIN_NODE at 0x38 with name "" (4 bytes), then the first FDT_PROP at 0x40:
        // len at 0x44, nameoff at 0x48.
        let nameoff = Self.structOffset + 16
        #expect(Self.error(Self.patched(bytes, word: nameoff, UInt32(Self.stringsSize))) ==
                FDTError(offset: nameoff, .badStringOffset(UInt32(Self.stringsSize))))
        #expect(Self.error(Self.patched(bytes, word: nameoff, 0xFFFF_FFFF)) == FDTError(offset: nameoff, .badStringOffset(0xFFFF_FFFF)))
        // The same property with a len that runs past the structure block.
        #expect(Self.error(Self.patched(bytes, word: nameoff - 4, 0xFFFF_FFF0)) ==
                FDTError(offset: nameoff - 4, .propertyValueOutOfBounds(length: 0xFFFF_FFF0)))
        // A strings block cut to end inside the last name: its terminator is gone.
        let cut = Self.patched(bytes, word: 32, UInt32(Self.stringsSize - 1))
        guard case .unterminatedString? = Self.error(cut)?.kind else {
            Issue.record("expected an unterminated string, got \(String(describing: Self.error(cut)))")
            return
        }
    }

    @Test("structure block errors, on hand-built blobs")
    func structureErrors() throws {
        let begin: UInt32 = 1, end: UInt32 = 2, prop: UInt32 = 3, nop: UInt32 = 4, fdtEnd: UInt32 = 9
        // The structure block starts at 56 in RawBlob (40-byte header + 16-byte empty reservation map).
        let s = RawBlob.structureStart
        #expect(RawBlob.error([begin, 0, end, fdtEnd]) == nil)
        #expect(RawBlob.error([nop, begin, 0, nop, end, nop, fdtEnd]) == nil)
        #expect(RawBlob.error([begin, 0, end, 0x7]) == FDTError(offset: s + 12, .unknownToken(7)))
        #expect(RawBlob.error([prop, 0, 0]) == FDTError(offset: s, .propertyOutsideNode))
        #expect(RawBlob.error([end]) == FDTError(offset: s, .unbalancedEndNode))
        #expect(RawBlob.error([begin, 0, end, begin, 0, end, fdtEnd]) == FDTError(offset: s + 12, .nodeAfterRoot))
        #expect(RawBlob.error([begin, 0, end]) == FDTError(offset: s + 12, .missingEnd))
        #expect(RawBlob.error([begin, 0, begin, 0, fdtEnd]) == FDTError(offset: s + 16, .endInsideNode(openNodes: 2)))
        #expect(RawBlob.error([fdtEnd]) == FDTError(offset: s, .missingRoot))
        // Name bytes with no NUL before the block ends.
        #expect(RawBlob.error([begin, 0x6162_6364]) == FDTError(offset: s + 4, .unterminatedNodeName))
        // A property header cut short by the end of the block.
        #expect(RawBlob.error([begin, 0, prop, 4]) == FDTError(offset: s + 8, .truncatedStructure))
        // 65 nested nodes: one more than the limit.
        let deep: [UInt32] = Array(repeating: [begin, UInt32(0)], count: 65).flatMap { $0 }
        #expect(RawBlob.error(deep) == FDTError(offset: s + 64 * 8, .tooDeep(limit: 64)))
        // 64 deep is fine.
        let ok: [UInt32] = Array(repeating: [begin, UInt32(0)], count: 64).flatMap { $0 } + Array(repeating: end, count: 64) + [fdtEnd]
        #expect(RawBlob.error(ok) == nil)
        // The root and 100 000 children: one node more than InputLimits.maximumDeviceTreeNodes,
        // refused at the last child's FDT_BEGIN_NODE; one child fewer is read.
        let child: [UInt32] = [begin, 0x6100_0000, end]
        let limit = InputLimits.maximumDeviceTreeNodes
        let wide: [UInt32] = [begin, 0] + Array(repeating: child, count: limit).flatMap { $0 } + [end, fdtEnd]
        #expect(RawBlob.error(wide) == FDTError(offset: s + 8 + (limit - 1) * 12, .tooManyNodes(limit: limit)))
        let fits: [UInt32] = [begin, 0] + Array(repeating: child, count: limit - 1).flatMap { $0 } + [end, fdtEnd]
        #expect(RawBlob.error(fits) == nil)
        #expect(FDTError(offset: 0, .tooManyNodes(limit: limit)).description.contains("the device tree node limit (100000 nodes)"))
    }

    @Test("an unterminated memory reservation map is reported where it runs out")
    func reservationMap() {
        // Header says the map starts at 40 but the blob ends (totalsize 48) after 8 bytes.
        var blob = RawBlob.header(total: 48, structOffset: 48, structSize: 0, stringsOffset: 48, stringsSize: 0)
        blob += [UInt8](repeating: 0xFF, count: 8)
        #expect(RawBlob.error(bytes: blob) == FDTError(offset: 40, .unterminatedReservationMap))
    }

    @Test("errors print the offset in hex")
    func description() {
        #expect(FDTError(offset: 0x48, .badStringOffset(0x20F)).description.contains("offset 0x0048"))
    }
}

/// Hand-built blobs: 40-byte header, an empty reservation map at 40, the given structure
/// tokens at 56, and an empty strings block (plus "a\0" for property names).
enum RawBlob {
    static let structureStart = 56

    static func header(total: Int, structOffset: Int, structSize: Int, stringsOffset: Int, stringsSize: Int) -> [UInt8] {
        let fields: [UInt32] = [0xD00D_FEED, UInt32(total), UInt32(structOffset), UInt32(stringsOffset), 40, 17, 16, 0,
                                UInt32(stringsSize), UInt32(structSize)]
        return fields.flatMap { BigEndian.bytes($0) }
    }

    static func build(_ words: [UInt32]) -> [UInt8] {
        let structure = words.flatMap { BigEndian.bytes($0) }
        let strings: [UInt8] = [0x61, 0]
        let stringsOffset = structureStart + structure.count
        return header(total: stringsOffset + strings.count, structOffset: structureStart, structSize: structure.count,
                      stringsOffset: stringsOffset, stringsSize: strings.count)
            + [UInt8](repeating: 0, count: 16) + structure + strings
    }

    static func error(_ words: [UInt32]) -> FDTError? { error(bytes: build(words)) }

    static func error(bytes: [UInt8]) -> FDTError? {
        do {
            _ = try FlattenedDeviceTree(bytes: bytes)
            return nil
        } catch {
            return error
        }
    }
}
