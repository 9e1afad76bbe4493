import Glibc
import Testing
import HTTP
@testable import Security

/// The shortcuts the filter takes for speed give the same answers as the long way.
struct FastPathTests {
    /// A header's clean-value key covers its name and value as a pair: moving bytes from the
    /// name to the value, or another name, or another place is another key.
    @Test func cleanValueKeysTellNameFromValue() {
        func key(_ name: String, _ value: String, _ place: UInt8 = 4) -> UInt64 {
            CleanValueCache.key(name: ArraySlice(name.utf8), value: ArraySlice(value.utf8), place: place)
        }
        let keys = [key("X-Ab", "c"), key("X-A", "bc"), key("X-Ab", "d"), key("X-Ac", "c"), key("X-Ab", "c", 3), key("", "X-Abc")]
        #expect(Set(keys).count == keys.count)
        #expect(key("X-Ab", "c") == key("X-Ab", "c"))
        #expect(keys.allSatisfy { $0 & 1 == 1 })  // never the empty slot
    }

    /// A thread's remembered clean values answer only for the same bytes, place, name and
    /// inspector; long values are not kept.
    @Test func recentCleanValuesHoldExactlyWhatWasRemembered() {
        let recent = RecentCleanValues.ofThisThread(inspector: -1)
        let ua = ArraySlice("wrk/4.1.0 (todo-api bench)".utf8), other = ArraySlice("wrk/4.1.0 (todo-api bencH)".utf8)
        #expect(!recent.holds(place: 1, name: nil, ua))
        recent.remember(place: 1, name: nil, ua)
        #expect(recent.holds(place: 1, name: nil, ua))
        #expect(!recent.holds(place: 1, name: nil, other))
        #expect(!recent.holds(place: 2, name: nil, ua))
        let json = ArraySlice("application/json".utf8)
        recent.remember(place: 4, name: ArraySlice("Content-Type".utf8), json)
        #expect(recent.holds(place: 4, name: ArraySlice("Content-Type".utf8), json))
        #expect(!recent.holds(place: 4, name: ArraySlice("Content-Typf".utf8), json))
        #expect(!recent.holds(place: 3, name: ArraySlice("Content-Type".utf8), json))
        let long = ArraySlice(repeating: UInt8(ascii: "a"), count: RecentCleanValues.maxBytes + 1)
        recent.remember(place: 2, name: nil, long)
        #expect(!recent.holds(place: 2, name: nil, long))
        // Another inspector's thread values start empty; the first one's are gone with them.
        #expect(!RecentCleanValues.ofThisThread(inspector: -2).holds(place: 1, name: nil, ua))
        #expect(!RecentCleanValues.ofThisThread(inspector: -1).holds(place: 1, name: nil, ua))
    }

    /// A clean value remembered at a place never lets another value through there: an attack of
    /// the same length, sent right after, is still inspected and refused, every time.
    @Test func aRememberedCleanHeaderLetsNoOtherValueThrough() {
        let inspector = RequestInspector(configuration: WAFConfiguration())
        let clean = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"
        let attack = "Mozilla/5.0 <script>alert(1)</script> x86_64)"
        #expect(clean.utf8.count == attack.utf8.count)
        for _ in 0..<3 {
            let ok = inspector.inspect(makeRequest(target: "/todos", headers: [("User-Agent", clean), ("X-Note", clean)]), client: remotePeer, peer: remotePeer)
            // Nothing matched at all (not even in count mode), so both values were remembered.
            #expect(ok.blocking == nil && ok.matches.isEmpty)
            let bad = inspector.inspect(makeRequest(target: "/todos", headers: [("User-Agent", attack)]), client: remotePeer, peer: remotePeer)
            #expect(bad.blocking?.rule == .crossSiteScripting)
            let badOther = inspector.inspect(makeRequest(target: "/todos", headers: [("User-Agent", clean), ("X-Note", attack)]), client: remotePeer, peer: remotePeer)
            #expect(badOther.blocking?.rule == .crossSiteScripting)
        }
        // An inspector with the rule off finds the attack clean; the first inspector, on the same
        // thread, still refuses it.
        var lenient = WAFConfiguration()
        lenient.actions[WAFRule.crossSiteScripting.rawValue] = .off
        let permissive = RequestInspector(configuration: lenient)
        #expect(permissive.inspect(makeRequest(target: "/todos", headers: [("User-Agent", attack)]), client: remotePeer, peer: remotePeer).matches.isEmpty)
        #expect(inspector.inspect(makeRequest(target: "/todos", headers: [("User-Agent", attack)]), client: remotePeer, peer: remotePeer).blocking?.rule == .crossSiteScripting)
        // A loopback Host is clean from an internal client and refused from an internet one,
        // right after, on the same thread: the client's side is part of the place.
        let insider = IPAddress("10.0.0.7")!
        let fromInside = inspector.inspect(makeRequest(target: "/todos", host: "localhost"), client: insider, peer: insider)
        #expect(fromInside.blocking == nil && fromInside.matches.isEmpty)
        #expect(inspector.inspect(makeRequest(target: "/todos", host: "localhost"), client: remotePeer, peer: remotePeer).blocking?.rule == .hostLocalhost)
    }

    /// The body scan's container stack agrees with an array of brackets, past 64 levels and with
    /// stray closers.
    @Test func containerBitsAgreeWithABracketArray() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var containers = JSONStrings.Containers()
            var model: [Bool] = []
            for _ in 0..<400 {
                switch generator.next() % 5 {
                case 0, 1: let object = generator.next() % 2 == 0; containers.push(object: object); model.append(object)
                case 2 where model.count < 100: containers.push(object: true); model.append(true)
                default: containers.pop(); _ = model.popLast()
                }
                #expect(containers.innermostIsObject == (model.last == true))
                #expect(containers.innermostIsArray == (model.last == false))
            }
        }
    }

    /// Every numeric spelling `inet_aton` accepts, and the near misses it refuses.
    @Test func ipv4FormsAgreeWithInetAton() {
        var random = RobustnessTests.SplitMix(state: 7)
        var samples = ["169.254.169.254", "2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518", "169.16689662",
                       "0xA9.0xFE.0xA9.0xFE", "1.2.3.4.", ".1.2.3", "1..2.3", "256.1.1.1", "1.2.3.4.5", "4294967296", "0x", "08", "0x1g",
                       "00000000000000000001", "1.16777215", "1.16777216", "1.2.65535", "1.2.65536", "0", "00", "127.1"]
        let alphabet = Array("0123456789.xXabcdefABCDEF".utf8)
        for _ in 0..<20_000 {
            samples.append(String(decoding: (0..<Int(random.next() % 20 + 1)).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }, as: UTF8.self))
        }
        for sample in samples {
            var address = in_addr()
            let expected: UInt32? = inet_aton(sample, &address) != 0 ? UInt32(bigEndian: address.s_addr) : nil
            // inet_aton reads at most 4 parts of any length; ours caps a part at 12 digits (no
            // address needs more, and a cap keeps the scan bounded), so only those may differ.
            let longPart = sample.split(separator: ".", omittingEmptySubsequences: false).contains { $0.count > 12 }
            if !longPart { #expect(IPv4Forms.parse(Array(sample.utf8)) == expected, "\(sample)") }
        }
    }

    /// The packed keyword lookup the tokenizer uses answers as the dictionary it is built from,
    /// for every keyword, every prefix and extension of one, and random words.
    @Test func packedKeywordLookupAgreesWithTheDictionary() {
        var words = Array(SQLWords.kinds.keys)
        for word in SQLWords.kinds.keys {
            words.append(String(word.dropLast()))
            words.append(word + "s")
            words.append("x" + word)
        }
        var random = RobustnessTests.SplitMix(state: 11)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz_0123456789$".utf8)
        for _ in 0..<20_000 {
            words.append(String(decoding: (0..<Int(random.next() % 18 + 1)).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }, as: UTF8.self))
        }
        for word in words where !word.isEmpty {
            let bytes = Array(("  " + word + " ").utf8)
            #expect(SQLWords.kind(bytes, 2, bytes.count - 1) == SQLWords.kinds[word], "\(word)")
        }
    }

    /// The gate before the bareword rules lets every name they look for through.
    @Test func systemObjectNamesPassTheBarewordGate() {
        let names = SQLInjectionDetector.storedProcedures + SQLInjectionDetector.systemCatalogs
            + [SQLInjectionDetector.registryProcedurePrefix, SQLInjectionDetector.schemaCatalogPrefix]
        for name in names {
            #expect(SQLInjectionDetector.mayNameSystemObject(name), "\(name)")
        }
        for prose in ["bench", "todo", "created", "benchmark", "the", "select"] {
            #expect(!SQLInjectionDetector.mayNameSystemObject(prose), "\(prose)")
        }
    }

    /// The gate before the metadata rule lets every marker it looks for through, alone and in
    /// prose, and the rule then finds it (a bare path in prose was once let past).
    @Test func metadataMarkersPassTheGateAndAreFound() {
        for marker in AttackPatterns.internalSchemeMarkers + AttackPatterns.metadataMarkers {
            for text in [marker, "see \(marker) now"] {
                let bytes = Array(text.utf8)
                #expect(RequestInspector.mayAddressMetadata(bytes), "\(text)")
                #expect(AttackPatterns.metadataSSRF(bytes) != nil, "\(text)")
            }
        }
        for word in ["title", "medium", "description", "bench todo"] {
            #expect(!RequestInspector.mayAddressMetadata(Array(word.utf8)), "\(word)")
        }
        // The two spellings of the gate (the plain-value scan and the byte set of other values)
        // let the same bytes through.
        for byte in UInt8.min...UInt8.max {
            let set = RequestInspector.ByteSet([byte])
            #expect(RequestInspector.mayAddressMetadata([byte]) == (set.hasAny(RequestInspector.Gate.metadata) || set.hasDigit), "\(byte)")
        }
    }

    /// Each gate set holds exactly the bytes of the literal the detectors' comments name, and
    /// `hasAll` wants every one of them.
    @Test func gateSetsHoldTheirLiteralsBytes() {
        typealias Gate = RequestInspector.Gate
        let gates: [(RequestInspector.ByteSet, String)] = [
            (Gate.log4j, "${"), (Gate.metadata, ".:-[/"), (Gate.markup, "<:=(`.["), (Gate.traversal, "/.\\:"),
            (Gate.shell, "/-.($`|&;<>%=^\\{\n\r"), (Gate.url, ":/"), (Gate.template, "{$<#*@_|([.%'"),
            (Gate.noSQL, "$.'\"|="), (Gate.lineBreak, "\n\r"),
        ]
        for (gate, literal) in gates {
            for byte in UInt8.min...UInt8.max {
                #expect(RequestInspector.ByteSet([byte]).hasAny(gate) == literal.utf8.contains(byte), "\(literal) \(byte)")
            }
            let bytes = Array(literal.utf8)
            #expect(RequestInspector.ByteSet(bytes).hasAll(gate))
            if bytes.count > 1 { #expect(!RequestInspector.ByteSet(Array(bytes.dropLast())).hasAll(gate), "\(literal)") }
        }
    }

    /// The one scan of a body string: its byte set is the set built byte by byte, "normal" values
    /// are the ones `TextTransform.normalize` returns unchanged (never one it would change), and
    /// "path-like" is the byte rule it replaced.
    @Test func bodyValueScanAgreesWithTheTransforms() {
        typealias ByteSet = RequestInspector.ByteSet
        for byte in UInt8.min...UInt8.max {
            let alone = ByteSet.Scan([byte])
            // The bytes `normalize` looks for before it copies (its own test of a clean value).
            #expect(alone.isNormal == !(byte == 0x26 || byte >= 0xC0 || (byte &- 65 < 26) || byte < 0x20 || byte == 0x7F), "\(byte)")
            if alone.isNormal { #expect(TextTransform.normalize([byte]) == [byte], "\(byte)") }
            let pathLike = RequestInspector.plain[Int(byte)] || byte == 0x2F || byte == 0x3A
            #expect(alone.bytes.hasAny(RequestInspector.Gate.notPathLike) == !pathLike, "\(byte)")
            #expect(alone.bytes.hasAny(RequestInspector.Gate.percent) == (byte == 0x25), "\(byte)")
            for other in [UInt8(0x20), 0x61, 0x41, 0xC3, 0xA9, 0x00] {
                let scanned = ByteSet.Scan([other, byte, other]).bytes
                let inserted = ByteSet { $0 == byte || $0 == other }  // bit by bit, not by the scan
                #expect(scanned.hasAll(inserted) && inserted.hasAll(scanned), "\(byte) \(other)")
            }
        }
        // Every two-byte value, alone and between spaces: a value taken as normal is one
        // `normalize` leaves as it is, whatever its neighbours.
        for first in UInt8.min...UInt8.max {
            for second in UInt8.min...UInt8.max {
                for value in [[first, second], [0x20, first, second, 0x20]] where ByteSet.Scan(value).isNormal {
                    if TextTransform.normalize(value) != value { Issue.record("\(value) taken as normal") }
                }
            }
        }
        var random = RobustnessTests.SplitMix(state: 29)
        let alphabet = Array("aZ &;#x3c/%20.:-_é\u{3000}Ａ\u{0}\t\n".utf8)
        for _ in 0..<20_000 {
            let value = (0..<Int.random(in: 0..<12, using: &random)).map { _ in alphabet.randomElement(using: &random)! }
            if ByteSet.Scan(value).isNormal { #expect(TextTransform.normalize(value) == value, "\(value)") }
        }
        #expect(ByteSet.Scan(Array("created by the benchmark".utf8)).isNormal)
        #expect(!ByteSet.Scan(Array("two  spaces".utf8)).isNormal)
    }

    /// Prose that skips the tokenizer is prose the full path clears too: names and clause keywords
    /// only, no match, in either mode. Words drawn from SQL's own and the system catalogs'.
    @Test func plainProseIsWhatTheFullPathClears() {
        // Every SQL word the tokenizer knows, the letter-only catalog names, and some prose.
        let vocabulary = SQLWords.kinds.keys.sorted() + ["sysobjects", "msysobjects", "syscolumns", "system", "sleep", "xp",
                          "cmdshell", "information", "pg", "shadow", "users", "if", "begin", "while", "to", "created",
                          "the", "benchmark", "bench", "todo", "a", "buy", "milk", "sysadmin"]
        // Every word alone and every ordered pair (the rules that two words can trigger: `into
        // outfile`, `from sysobjects`), then longer phrases from a fixed-seed generator
        // (SplitMix64), so that a failure repeats.
        var phrases = vocabulary.map { [$0] }
        for first in vocabulary { for second in vocabulary { phrases.append([first, second]) } }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
        for _ in 0..<30_000 { phrases.append((0..<(3 + next(4))).map { _ in vocabulary[next(vocabulary.count)] }) }
        var plain = 0
        for phrase in phrases {
            let text = phrase.joined(separator: " ")
            let bytes = Array(text.utf8)
            guard SQLInjectionDetector.isPlainProse(bytes) else { continue }
            plain += 1
            let tokens = SQLTokenizer.tokenize(bytes, openQuote: nil)
            #expect(tokens.allSatisfy { $0.kind == .bareword || $0.kind == .keyword }, "\(text)")
            #expect(SQLInjectionDetector.check(tokens, brokeOut: false, strict: true) == nil, "\(text)")
            #expect(SQLInjectionDetector.check(tokens, brokeOut: false, strict: false) == nil, "\(text)")
        }
        #expect(plain > 1_000)
        for text in ["created by the benchmark", "bench todo", "a", "", "buy milk from the shop", String(repeating: "x", count: 40) + " y"] {
            #expect(SQLInjectionDetector.isPlainProse(Array(text.utf8)), "\(text)")
        }
        for text in ["union select", "select", "Upper case", "1 or 1", "it's", "or", "sleep(5)", "a\tb", "a_b",
                     "select from sysobjects", "into outfile", "x like y"] {
            #expect(!SQLInjectionDetector.isPlainProse(Array(text.utf8)), "\(text)")
        }
    }

    @Test func operatorShapesHoldEveryWordOfAnOperatorKind() {
        var operators = 0
        for (word, kind) in SQLWords.kinds where kind != .keyword {
            let bytes = Array(word.utf8)
            #expect(SQLWords.operatorShapes.mayHold(bytes, 0, bytes.count), "\(word)")
            operators += 1
        }
        #expect(operators > 40)
        // Shapes of no such word: prose words skip the lookup.
        for word in ["created", "the", "benchmark", "todo", "milk", String(repeating: "x", count: 20)] {
            let bytes = Array(word.utf8)
            #expect(!SQLWords.operatorShapes.mayHold(bytes, 0, bytes.count), "\(word)")
        }
    }

    @Test func markerSetFindsEveryOccurrenceANaiveSearchFinds() {
        let markers = ["/etc/passwd", "/etc/", "ab", "abc", "b/", "zz", "/tmp/.x", "..", "../"]
        let set = MarkerSet(markers)
        var random = RobustnessTests.SplitMix(state: 11)
        let alphabet = Array("/etcpaswdbz.xm".utf8)
        for _ in 0..<5_000 {
            let text = (0..<Int(random.next() % 40)).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
            var found: [String] = []
            set.forEachMatch(in: text) { marker, at in
                found.append("\(at):\(markers[marker])")
                return true
            }
            var expected: [String] = []
            for at in text.indices {
                for marker in markers where text[at...].starts(with: marker.utf8) { expected.append("\(at):\(marker)") }
            }
            #expect(found == expected, "\(String(decoding: text, as: UTF8.self))")
            #expect(set.contains(in: text) == !expected.isEmpty)
        }
    }

    /// Every byte value at every position of a UUID, against the plain definition.
    @Test func uuidSyntaxAcceptsExactlyHexDigitsAndDashesInPlace() {
        func naive(_ b: [UInt8]) -> Bool {
            b.count == 36 && b.indices.allSatisfy { i in
                [8, 13, 18, 23].contains(i) ? b[i] == 0x2D : "0123456789abcdefABCDEF".utf8.contains(b[i])
            }
        }
        let valid = Array("8d2c6d41-0a3f-4b7e-9C1D-2e5f6a7b8c9d".utf8)
        for position in 0..<36 {
            for value in 0...255 {
                var bytes = valid
                bytes[position] = UInt8(value)
                #expect(bytes.withUnsafeBufferPointer { UUIDSyntax.isValid($0) } == naive(bytes))
            }
        }
        #expect(!Array("8d2c6d41-0a3f-4b7e-9c1d-2e5f6a7b8c9".utf8).withUnsafeBufferPointer { UUIDSyntax.isValid($0) })
        #expect(Array("/x/8d2c6d41-0a3f-4b7e-9c1d-2e5f6a7b8c9d".utf8).withUnsafeBufferPointer { UUIDSyntax.isValid($0, at: 3) })
    }

    @Test func pathShapesMatchOnlyTheirExactShape() {
        let shape = PathShape("/todos/{uuid}")!
        #expect(shape.matches("/todos/8d2c6d41-0a3f-4b7e-9c1d-2e5f6a7b8c9d"))
        #expect(shape.matches("/todos/8D2C6D41-0A3F-4B7E-9C1D-2E5F6A7B8C9D"))
        for path in ["/todos", "/todos/", "/todos/8d2c6d41-0a3f-4b7e-9c1d-2e5f6a7b8c9", "/todos/8d2c6d41-0a3f-4b7e-9c1d-2e5f6a7b8c9d/",
                     "/todos/8d2c6d41-0a3f-4b7e-9c1d-2e5f6a7b8c9d0", "/todos/8d2c6d41x0a3f-4b7e-9c1d-2e5f6a7b8c9d", "/todos/8d2c6d41-0a3f-4b7e-9c1d-2e5f6a7b8c9g",
                     "/Todos/8d2c6d41-0a3f-4b7e-9c1d-2e5f6a7b8c9d", "/todos/%38d2c6d41-0a3f-4b7e-9c1d-2e5f6a7b8c9d", "//todos/8d2c6d41-0a3f-4b7e-9c1d-2e5f6a7b8c9d",
                     "/todos/../etc/passwd"] {
            #expect(!shape.matches(Substring(path)), "\(path)")
        }
        #expect(PathShape("/todos")!.matches("/todos"))
        #expect(!PathShape("/todos")!.matches("/todos/"))
        // A literal segment that could carry syntax is refused when the shape is made.
        #expect(PathShape("/a.php") == nil)
        #expect(PathShape("/x/{id}") == nil)
        #expect(PathShape("todos") == nil)
    }

    /// What the shortcut skips finds nothing there: the full rules over 20,000 random UUID paths
    /// (and the application's other inert paths) match none. (An all-digit last group spelling an
    /// address in octal would; see `PathShape`.)
    @Test func inertPathsHoldNothingTheFullRulesMatch() {
        var random = RobustnessTests.SplitMix(state: 3)
        let hex = Array("0123456789abcdefABCDEF".utf8)
        var paths = ["/todos", "/health", "/health/ready"]
        for _ in 0..<20_000 {
            var id = (0..<32).map { _ in hex[Int(random.next() % UInt64(hex.count))] }
            for at in [8, 13, 18, 23] { id.insert(UInt8(ascii: "-"), at: at) }
            paths.append("/todos/" + String(decoding: id, as: UTF8.self))
        }
        let full = RequestInspector(configuration: WAFConfiguration())
        for path in paths {
            let request = makeRequest(target: path)
            #expect(full.inspect(request, client: remotePeer, peer: remotePeer).matches.isEmpty, "\(path)")
        }
    }

    /// The clean-value cache keys a Host value by whether the peer is loopback: `localhost` found
    /// clean from a local client must still be refused from a remote one, on the same inspector.
    @Test func aHostCachedCleanForALoopbackPeerIsStillCheckedForARemoteOne() {
        let inspector = RequestInspector(configuration: WAFConfiguration())
        let local = IPAddress("127.0.0.1")!
        let request = makeRequest(target: "/todos", host: "localhost:8000")
        for _ in 0..<2 {
            #expect(inspector.inspect(request, client: local, peer: local).blocking == nil)
            #expect(inspector.inspect(request, client: remotePeer, peer: remotePeer).blocking?.rule == .hostLocalhost)
        }
    }

    @Test func aPathOutsideTheShapesStillGetsEveryRule() {
        var configuration = WAFConfiguration()
        configuration.inertPaths = ["/todos", "/todos/{uuid}"].compactMap(PathShape.init)
        #expect(verdict(makeRequest(target: "/todos/../../etc/passwd"), configuration: configuration).blocking != nil)
        #expect(verdict(makeRequest(target: "/todos/%2e%2e%2f%2e%2e%2fetc%2fpasswd"), configuration: configuration).blocking != nil)
        #expect(verdict(makeRequest(target: "/todos/8d2c6d41-0a3f-4b7e-9c1d-2e5f6a7b8c9d?q=%3Cscript%3Ealert(1)%3C/script%3E"),
                        configuration: configuration).blocking?.rule == .crossSiteScripting)
        #expect(verdict(makeRequest(target: "/todos/8d2c6d41-0a3f-4b7e-9c1d-2e5f6a7b8c9d", headers: [("User-Agent", "sqlmap/1.7")]),
                        configuration: configuration).blocking?.rule == .badBots)
    }
}
