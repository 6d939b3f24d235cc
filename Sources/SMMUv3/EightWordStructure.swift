/// A 64-byte SMMU structure held as eight little-endian 64-bit words: the STE (SMMUv3 §5.2) and
/// the CD (§5.4). Their fields are computed over `dw0…dw7`; reading and writing the words is
/// shared here.
public protocol EightWordStructure {
    var dw0: UInt64 { get set }
    var dw1: UInt64 { get set }
    var dw2: UInt64 { get set }
    var dw3: UInt64 { get set }
    var dw4: UInt64 { get set }
    var dw5: UInt64 { get set }
    var dw6: UInt64 { get set }
    var dw7: UInt64 { get set }
    init()
}

extension EightWordStructure {
    /// From words as read from memory (missing words are zero, extra words ignored).
    public init(words: [UInt64]) {
        self.init()
        func word(_ i: Int) -> UInt64 { i < words.count ? words[i] : 0 }
        dw0 = word(0); dw1 = word(1); dw2 = word(2); dw3 = word(3)
        dw4 = word(4); dw5 = word(5); dw6 = word(6); dw7 = word(7)
    }

    /// The eight words to write to memory.
    public var words: [UInt64] { [dw0, dw1, dw2, dw3, dw4, dw5, dw6, dw7] }
}
