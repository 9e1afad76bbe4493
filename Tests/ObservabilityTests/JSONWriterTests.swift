import Testing
@testable import Observability

/// The writer's word-at-a-time scan escapes exactly what a byte-by-byte escaper does.
struct JSONWriterTests {
    private func reference(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        for b in text.utf8 {
            switch b {
            case 0x22: out += Array(#"\""#.utf8)
            case 0x5C: out += Array(#"\\"#.utf8)
            case 0x0A: out += Array(#"\n"#.utf8)
            case 0x0D: out += Array(#"\r"#.utf8)
            case 0x09: out += Array(#"\t"#.utf8)
            case 0..<0x20: out += Array(#"\u00"#.utf8) + [JSONWriter.hex[Int(b >> 4)], JSONWriter.hex[Int(b & 0xF)]]
            default: out.append(b)
            }
        }
        return out
    }

    @Test func escapingMatchesAByteByByteReference() {
        // Every special byte at every offset of a 17-byte string (two words and a tail), then random text.
        let specials: [Character] = ["\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "😀", " ", "!", "#", "]", "|"]
        var samples: [String] = []
        for special in specials {
            for offset in 0..<17 {
                var characters = Array(repeating: Character("a"), count: 17)
                characters[offset] = special
                samples.append(String(characters))
            }
        }
        var state: UInt64 = 42
        for _ in 0..<5_000 {
            var text = ""
            state = state &* 6364136223846793005 &+ 1442695040888963407
            for _ in 0..<Int(state >> 59) * 2 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                text.append(state >> 60 < 3 ? specials[Int(state >> 32) % specials.count] : Character(Unicode.Scalar(UInt8(0x20 + (state >> 33) % 95))))
            }
            samples.append(text)
        }
        for sample in samples {
            var writer = JSONWriter()
            writer.escaped(sample)
            #expect(writer.bytes == reference(sample), "\(sample.debugDescription)")
        }
    }

    /// Text given as bytes (database values, a User-Agent from the request head) is the same
    /// JSON string as the `String` made of them: escaped when ASCII, repaired when not UTF-8.
    @Test func bytesAreWrittenLikeTheirText() {
        let samples: [[UInt8]] = [Array(#"curl/8.0 "quoted" \back"#.utf8), Array("plain/1.0".utf8), Array("caf\u{e9}".utf8),
                                  Array("tab\there\u{1}".utf8), [0x61, 0xFF, 0x62], [0xC3], [], Array(String(repeating: "x\"", count: 20).utf8)]
        for sample in samples {
            var fromBytes = JSONWriter()
            sample.withUnsafeBytes { fromBytes.string(utf8: $0) }
            var fromText = JSONWriter()
            fromText.string(String(decoding: sample, as: UTF8.self))
            #expect(fromBytes.bytes == fromText.bytes, "\(sample)")
        }
    }
}
