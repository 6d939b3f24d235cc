/// Bit-field access for architected register and descriptor words.
///
/// Every structure Doorbell models (STE, CD, page-table descriptors, ITS commands, MSI-X
/// entries) is specified as "bits hi:lo of little-endian word N". These helpers keep that
/// notation in the code so a field reads like its row in the spec table. They use masking
/// shifts (`&<<`, `&>>`), so no field position, however wrong, can trap.
extension UInt64 {
    /// A mask of the low `width` bits (`width` ≥ 64 gives all ones).
    @inlinable @inline(__always)
    public static func lowMask(_ width: Int) -> UInt64 {
        width >= 64 ? .max : (width <= 0 ? 0 : (1 &<< UInt64(width)) &- 1)
    }

    /// Bits `hi:lo` (inclusive) shifted down to bit 0.
    @inlinable @inline(__always)
    public func bits(_ hi: Int, _ lo: Int) -> UInt64 {
        guard lo >= 0, lo < 64 else { return 0 }
        return (self &>> UInt64(lo)) & .lowMask(Swift.min(hi, 63) - lo + 1)
    }

    /// Bit `n` as a Boolean.
    @inlinable @inline(__always)
    public func bit(_ n: Int) -> Bool {
        n >= 0 && n < 64 && (self &>> UInt64(n)) & 1 == 1
    }

    /// This word with bits `hi:lo` replaced by the low bits of `value` (excess bits dropped).
    @inlinable @inline(__always)
    public func settingBits(_ hi: Int, _ lo: Int, to value: UInt64) -> UInt64 {
        guard lo >= 0, lo < 64 else { return self }
        let mask = UInt64.lowMask(hi - lo + 1) &<< UInt64(lo)
        return (self & ~mask) | ((value &<< UInt64(lo)) & mask)
    }

    /// This word with bit `n` set or cleared.
    @inlinable @inline(__always)
    public func settingBit(_ n: Int, to value: Bool) -> UInt64 {
        settingBits(n, n, to: value ? 1 : 0)
    }

    /// The bits `hi:lo` kept in place, all others cleared (for address fields such as ADDR[51:6]).
    @inlinable @inline(__always)
    public func keepingBits(_ hi: Int, _ lo: Int) -> UInt64 {
        guard lo >= 0, lo < 64 else { return 0 }
        return self & (UInt64.lowMask(hi - lo + 1) &<< UInt64(lo))
    }
}

extension UInt32 {
    /// Bits `hi:lo` (inclusive) shifted down to bit 0.
    @inlinable @inline(__always)
    public func bits(_ hi: Int, _ lo: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: UInt64(self).bits(hi, lo))
    }

    /// Bit `n` as a Boolean.
    @inlinable @inline(__always)
    public func bit(_ n: Int) -> Bool { UInt64(self).bit(n) }

    /// This word with bits `hi:lo` replaced by the low bits of `value`.
    @inlinable @inline(__always)
    public func settingBits(_ hi: Int, _ lo: Int, to value: UInt32) -> UInt32 {
        UInt32(truncatingIfNeeded: UInt64(self).settingBits(hi, lo, to: UInt64(value)))
    }

    /// This word with bit `n` set or cleared.
    @inlinable @inline(__always)
    public func settingBit(_ n: Int, to value: Bool) -> UInt32 {
        settingBits(n, n, to: value ? 1 : 0)
    }
}

/// Hexadecimal rendering used by every report: `0x0809_0040`, digits grouped by four so that
/// page offsets and frame numbers can be read at a glance.
public enum Hex {
    /// `value` in hex with at least `minDigits` digits, grouped by 4 with `_`.
    public static func format(_ value: UInt64, minDigits: Int = 8) -> String {
        var digits = String(value, radix: 16)
        if digits.count < minDigits {
            digits = String(repeating: "0", count: minDigits - digits.count) + digits
        }
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 4 == 0 { out.append("_") }
            out.append(c)
        }
        return "0x" + out
    }

    /// Parses `0x…` (with optional `_` separators) or decimal. Nil for anything else or overflow.
    public static func parse(_ text: String) -> UInt64? {
        let cleaned = String(text.filter { $0 != "_" })
        guard !cleaned.isEmpty else { return nil }
        if cleaned.hasPrefix("0x") || cleaned.hasPrefix("0X") {
            let body = cleaned.dropFirst(2)
            guard !body.isEmpty else { return nil }
            return UInt64(body, radix: 16)
        }
        return UInt64(cleaned, radix: 10)
    }
}
