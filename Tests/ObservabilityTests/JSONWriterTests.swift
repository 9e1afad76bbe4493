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

    /// A User-Agent given as the request's bytes is written as the same JSON string as the text.
    @Test func userAgentBytesAreEscapedLikeText() {
        for agent in [#"curl/8.0 "quoted" \back"#, "plain/1.0", "caf\u{e9}", "tab\there"] {
            var fromBytes = JSONWriter()
            if Array(agent.utf8).allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
                fromBytes.string(asciiBytes: Array(agent.utf8))
            } else {
                fromBytes.string(agent)
            }
            var fromText = JSONWriter()
            fromText.string(agent)
            #expect(fromBytes.bytes == fromText.bytes, "\(agent)")
        }
    }
}
