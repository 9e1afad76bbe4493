import HTTP
import Testing
@testable import Security

/// The detectors index into attacker-controlled bytes: an off-by-one is a crash, and a crash is a
/// denial of service. Every detector gets every prefix of a sample of corpus payloads (600) (the cut
/// points are where bounds checks fail) and random mutations full of the bytes the parsers branch
/// on. A trap fails the run. Seeded, so a failure reproduces.
@Suite struct RobustnessTests {
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let interesting: [[UInt8]] = [
        "%", "%2", "%u00", "%c0", "&#", "&#x", "&lt", "\\", "'", "\"", "`", "$(", "${", "{{", "<", "</", "<!", "<?", "/*", "*/", "/*!",
        "--", "#", ";", "|", "&&", "\n", "\r", "[", "]", "(", ")", "@@", "0x", "://", "..", "../", "::", "on", "=", "\u{FF1C}", "①",
    ].map { Array($0.utf8) } + [[0xC0], [0xC1], [0xE2], [0xEF, 0xBC], [0xFF], [0x00], [0x80]]

    func runAll(_ bytes: [UInt8]) {
        let normalized = TextTransform.normalize(TextTransform.urlDecodeRepeatedly(bytes[...], plusIsSpace: true))
        _ = SQLInjectionDetector.detect(normalized)
        _ = SQLInjectionDetector.detect(normalized, strict: false)
        _ = XSSDetector.detect(normalized)
        _ = AttackPatterns.traversal(normalized, strict: true)
        _ = AttackPatterns.remoteInclusion(normalized)
        _ = AttackPatterns.remoteInclusion(normalized, freeText: true)
        _ = AttackPatterns.commandInjection(normalized, strict: true)
        _ = AttackPatterns.commandInjection(normalized, strict: false)
        _ = AttackPatterns.log4j(normalized)
        _ = AttackPatterns.templateInjection(normalized)
        _ = AttackPatterns.metadataSSRF(normalized)
        _ = AttackPatterns.noSQLInjection(normalized)
        _ = AttackPatterns.crlfInjection(normalized, strict: true)
        _ = ExploitablePaths.match(normalized)
        _ = HostProbe.isLoopbackName(bytes)
        _ = TextTransform.htmlEntityDecode(bytes)
        JSONStrings.forEach(bytes) { _, _, _ in true }
    }

    @Test func everyPrefixOfCorpusPayloads() {
        var random = SplitMix(state: 42)
        let samples = CorpusTests.load("attacks.tsv") + CorpusTests.load("holdout-attacks.tsv")
        #expect(samples.count > 1000)
        for _ in 0..<600 {
            let bytes = Array(samples[Int(random.next() % UInt64(samples.count))].text.utf8)
            for cut in 0...bytes.count { runAll(Array(bytes[0..<cut])) }
        }
    }

    @Test func randomMutations() {
        var random = SplitMix(state: 7)
        let samples = CorpusTests.load("attacks.tsv").map { Array($0.text.utf8) }
        for _ in 0..<25_000 {
            var bytes = samples.isEmpty ? [] : samples[Int(random.next() % UInt64(samples.count))]
            for _ in 0..<Int(random.next() % 6) {
                let piece = Self.interesting[Int(random.next() % UInt64(Self.interesting.count))]
                let at = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count + 1))
                bytes.insert(contentsOf: piece, at: at)
            }
            if !bytes.isEmpty && random.next() % 3 == 0 { bytes.removeLast(Int(random.next() % UInt64(bytes.count))) }
            runAll(bytes)
        }
    }

    @Test func wholeRequestsWithHostileValues() {
        var random = SplitMix(state: 99)
        let inspector = RequestInspector(configuration: WAFConfiguration())
        for _ in 0..<2_000 {
            var value = ""
            for _ in 0..<Int(random.next() % 8 + 1) {
                value += String(decoding: Self.interesting[Int(random.next() % UInt64(Self.interesting.count))], as: UTF8.self)
            }
            let safe = String(value.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F })
            let request = makeRequest(method: "POST", target: "/todos?q=" + percentEncode(value),
                                      headers: [("User-Agent", safe.isEmpty ? "x" : safe), ("Cookie", "a=" + percentEncode(value)), ("Content-Type", "application/json")],
                                      body: "{\"title\":\"" + value.replacingBackslashesAndQuotes + "\",\"x\":[\"" + percentEncode(value) + "\"]}")
            _ = inspector.inspect(request, client: remotePeer, peer: remotePeer)
        }
    }
}

extension String {
    var replacingBackslashesAndQuotes: String {
        var out = ""
        for c in unicodeScalars {
            if c == "\\" || c == "\"" { out += "\\" }
            if c.value < 0x20 { out += "\\u00" + String(c.value, radix: 16).leftPadded(2); continue }
            out.unicodeScalars.append(c)
        }
        return out
    }
}

/// The paths the filter names in its log (`body:$.title`) are made only on demand; they must still
/// be the key each string belongs to.
@Suite struct JSONStringPathTests {
    @Test func pathsNameTheKeyOfEachString() {
        var seen: [String] = []
        JSONStrings.forEach(Array(#"{"title":"a","tags":["b","c"],"n":{"x":"d"}, "e":1}"#.utf8)) { path, value, isKey in
            seen.append((isKey ? "key " : "") + path() + "=" + String(decoding: value, as: UTF8.self))
            return true
        }
        #expect(seen == ["key $=title", "$.title=a", "key $=tags", "$.tags[]=b", "$.tags[]=c", "key $=n", "key $=x", "$.x=d", "key $=e"])
        var top: [String] = []
        JSONStrings.forEach(Array(#"["z"]"#.utf8)) { path, _, _ in top.append(path()); return true }
        #expect(top == ["$[]"])
    }

    /// Skipping words: only the strings with something besides letters and `_` are visited, and
    /// their paths still name their keys (a word key is read from the body when a match names it).
    @Test func wordsAreSkippedAndPathsStillNameTheirKeys() {
        var seen: [String] = []
        let body = #"{"title":"a b","Priority":"HIGH","due_at":"2026-01-01","x1":"y","tags":["w","x.y"],"":"e","q":"\u0041"}"#
        JSONStrings.forEach(Array(body.utf8), skippingWords: true) { path, value, isKey in
            seen.append((isKey ? "key " : "") + path() + "=" + String(decoding: value, as: UTF8.self))
            return true
        }
        #expect(seen == ["$.title=a b", "$.due_at=2026-01-01", "key $=x1", "$.tags[]=x.y", "key $=", "$.q=A"])
        // A word is what the inspector finds nothing in: the same verdicts with and without the shortcut.
        for word in ["select", "UNION", "script", "alert", "javascript", "etc_passwd", "ORDER_BY", "sleep", "passwd"] {
            #expect(JSONStrings.wordString(Array("\(word)\"".utf8), from: 0) != nil)
            // Where no shortcut applies (a query parameter), the rules find nothing in it either.
            #expect(verdict(makeRequest(target: "/todos?q=\(word)&\(word)=1")).matches.isEmpty, "\(word)")
        }
        for byte in UInt8.min...UInt8.max where byte != 0x22 {
            let isWord = (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F
            #expect((JSONStrings.wordString([0x61, byte, 0x22], from: 0) != nil) == isWord, "\(byte)")
        }
        #expect(JSONStrings.wordString(Array("a-b\"".utf8), from: 0) == nil)
        #expect(JSONStrings.wordString(Array("ab".utf8), from: 0) == nil, "unterminated")
        #expect(JSONStrings.wordString(Array("\"".utf8), from: 0) == nil, "empty")
    }

    /// Strings without an escape take a shortcut (one copy); with one, the decoding loop. Both
    /// end after the closing quote, or at the end of an unterminated string.
    @Test func stringsDecodeTheSameWithAndWithoutEscapes() {
        let cases: [(String, String, Int)] = [
            (#""plain text" rest"#, "plain text", 12), (#""a\nb" x"#, "a\nb", 6), (#""\u0041bc""#, "Abc", 10),
            (#""ends early"#, "ends early", 11), (#""""#, "", 2), (#""x\"#, "x\\", 3), (#""tab\t""#, "tab\t", 7),
        ]
        for (json, expected, end) in cases {
            let (value, next) = JSONStrings.decodeString(Array(json.utf8), from: 1)
            #expect(String(decoding: value, as: UTF8.self) == expected, "\(json)")
            #expect(next == end, "\(json)")
        }
        // The scan goes eight bytes at a time: a quote or an escape at any position of the first
        // words ends the copy there.
        for length in 1..<20 {
            for position in 0..<length {
                var text = Array(repeating: UInt8(ascii: "a"), count: length)
                text[position] = 0x22
                let (value, next) = JSONStrings.decodeString([0x22] + text + Array(" tail".utf8), from: 1)
                #expect(value == Array(repeating: UInt8(ascii: "a"), count: position) && next == position + 2, "\(length) \(position)")
                text[position] = 0x5C
                let (escaped, _) = JSONStrings.decodeString([0x22] + text + [0x6E, 0x22], from: 1)
                #expect(escaped.count == length && escaped[position] == (position == length - 1 ? 0x0A : text[position + 1]), "\(length) \(position)")
                #expect(JSONStrings.wordString(Array(text[..<position]) + [0x22], from: 0) == (position == 0 ? nil : 0..<position))
            }
        }
    }
}
