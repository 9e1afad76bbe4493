import Net
import Synchronization
import HTTP

/// Runs the rules over one request: method, path (decoded twice), query names and values, every
/// header (User-Agent, Referer, Cookie, Host, any other), and every string of a JSON or form body.
/// Stops at the first blocking match; count-mode matches are collected and the inspection goes on.
/// A class: the body's string visitor captures it, and as a struct of the configuration's arrays
/// and the cache that capture was five retains and releases a request (callgrind).
public final class RequestInspector: Sendable {
    public let configuration: WAFConfiguration
    let cleanValues = CleanValueCache()
    /// Unique per inspector for the process's life (not an address, which a later inspector may
    /// reuse): whose findings a thread's `RecentCleanValues` hold.
    let identity = RequestInspector.identities.add(1, ordering: .relaxed).newValue
    private static let identities = Atomic<Int>(0)

    public init(configuration: WAFConfiguration) {
        self.configuration = configuration
    }

    public struct Verdict {
        /// The match that refuses the request, if any.
        public var blocking: WAFMatch?
        /// Every match, blocking and counted.
        public var matches: [WAFMatch] = []
    }

    /// Where a value came from decides which rules apply (RFI only in parameters, the strict
    /// command forms not in free text).
    enum Place {
        case path, query, header, userAgent, referer, cookie, body
        var strict: Bool { self != .body }
    }

    public func inspect(_ request: HTTPRequest, client: IPAddress, peer: IPAddress) -> Verdict {
        var verdict = Verdict()
        guard configuration.enabled else { return verdict }
        // `isEmpty` first: the lists are empty unless configured, and the searches copied each
        // array (a retain and a release) and called a closure on every request.
        if !configuration.allowList.isEmpty, configuration.allowList.contains(where: { $0.contains(client) }) { return verdict }
        if !configuration.denyList.isEmpty, configuration.denyList.contains(where: { $0.contains(client) }),
           record(.ipDenyList, "client", "deny list", [], into: &verdict) { return verdict }

        switch request.head.method {
        case .trace, .connect:
            if record(.restrictedMethods, "method", "method \(request.head.method)", Array(request.head.method.description.utf8), into: &verdict) { return verdict }
        case .other(let name):
            if ["TRACK", "DEBUG", "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH"].contains(name),
               record(.restrictedMethods, "method", "method \(name)", Array(name.utf8), into: &verdict) { return verdict }
        default:
            break
        }

        // Path
        let path = request.head.path
        if path.utf8.count > configuration.maxURIPathBytes,
           record(.sizeURIPath, "path", "\(path.utf8.count) bytes", [], into: &verdict) { return verdict }
        var pathForShapes = path
        if !pathForShapes.withUTF8({ bytes in configuration.inertPaths.contains { $0.matches(bytes) } }) {
            let decodedPath = TextTransform.urlDecodeRepeatedly(ArraySlice(path.utf8), plusIsSpace: false)
            let normalizedPath = TextTransform.normalize(decodedPath)
            if let reason = ExploitablePaths.match(normalizedPath),
               record(.exploitablePaths, "path", reason, normalizedPath, into: &verdict) { return verdict }
            if check(normalizedPath, raw: decodedPath, place: .path, location: "path", into: &verdict) { return verdict }
        }

        // Query string
        if let query = request.head.query {
            if query.utf8.count > configuration.maxQueryStringBytes,
               record(.sizeQueryString, "query", "\(query.utf8.count) bytes", [], into: &verdict) { return verdict }
            for pair in query.utf8.split(separator: UInt8(ascii: "&")) {
                let equals = pair.firstIndex(of: UInt8(ascii: "="))
                let rawName = pair[pair.startIndex..<(equals ?? pair.endIndex)]
                let name = TextTransform.urlDecodeRepeatedly(ArraySlice(rawName), plusIsSpace: true)
                if check(TextTransform.normalize(name), raw: name, place: .query, location: Self.label("query:", name), into: &verdict) { return verdict }
                if let equals {
                    let value = TextTransform.urlDecodeRepeatedly(ArraySlice(pair[pair.index(after: equals)...]), plusIsSpace: true)
                    if check(TextTransform.normalize(value), raw: value, place: .query, location: Self.label("query:", name), into: &verdict) { return verdict }
                }
            }
        }

        // Headers
        var userAgentSeen = false
        // Once a request, not once a header (the thread-specific lookup).
        let recent = RecentCleanValues.ofThisThread(inspector: identity)
        var stop = false
        request.head.fields.forEachRaw { rawName, value in
            guard !stop else { return }
            let header = HeaderName(rawName)
            // Cookies have their own limit; credentials are the authenticator's to refuse (its
            // 8 KiB token limit answers 401 with a reason, not a 403 for the header's size).
            if value.count > configuration.maxHeaderBytes && header != .cookie && header != .credentials,
               record(.sizeHeader, Self.label("header:", rawName), "\(value.count) bytes", [], into: &verdict) { stop = true; return }
            switch header {
            case .userAgent:
                userAgentSeen = !value.allSatisfy { $0 == 0x20 || $0 == 0x09 }
                if !userAgentSeen { return }
                if unlessKnownClean(recent, place: 1, value, &verdict, { verdict in
                    let decoded = TextTransform.urlDecodeRepeatedly(value, plusIsSpace: false)
                    let normalized = TextTransform.normalize(decoded)
                    if let scanner = BadBots.match(normalized),
                       record(.badBots, "header:user-agent", scanner, normalized, into: &verdict) { return true }
                    return check(normalized, raw: decoded, place: .userAgent, location: "header:user-agent", into: &verdict)
                }) { stop = true }
            case .host:
                // A service sees the same one or two Host values on every request, so they are
                // remembered like the other headers. The loopback-name rule depends on the client
                // too, so the key says whether the client is public (places 6 and 7).
                let fromInternet = !client.isInternal
                if unlessKnownClean(recent, place: fromInternet ? 7 : 6, value, &verdict, { verdict in
                    let host = Array(value)
                    if fromInternet, HostProbe.isLoopbackName(host),
                       record(.hostLocalhost, "header:host", "loopback host from an internet client", host, into: &verdict) { return true }
                    // A host name is letters, digits, dots, a port: the cheap tier unless something else is in it.
                    return check(TextTransform.normalize(host), raw: host, place: .header, location: "header:host", into: &verdict)
                }) { stop = true }
            case .cookie:
                if unlessKnownClean(nil, place: 2, value, &verdict, { verdict in
                    if value.count > configuration.maxCookieBytes,
                       record(.sizeCookie, "header:cookie", "\(value.count) bytes", [], into: &verdict) { return true }
                    for crumb in value.split(separator: UInt8(ascii: ";")) {
                        let equals = crumb.firstIndex(of: UInt8(ascii: "="))
                        let cookieName = crumb[crumb.startIndex..<(equals ?? crumb.endIndex)]
                        let cookieValue = equals.map { crumb[crumb.index(after: $0)...] } ?? crumb[...]
                        let decoded = TextTransform.urlDecodeRepeatedly(ArraySlice(cookieValue), plusIsSpace: false)
                        if check(TextTransform.normalize(decoded), raw: decoded, place: .cookie,
                                 location: Self.label("cookie:", Array(cookieName.drop { $0 == 0x20 })), into: &verdict) { return true }
                    }
                    return false
                }) { stop = true }
            case .framing:
                return  // framing the parser has already validated
            case .referer, .other, .credentials:
                // The name is part of the key: where a value stands decides which rules apply.
                if unlessKnownClean(header == .credentials ? nil : recent, place: header == .referer ? 3 : 4, name: rawName, value, &verdict, { verdict in
                    let decoded = TextTransform.urlDecodeRepeatedly(value, plusIsSpace: false)
                    return check(TextTransform.normalize(decoded), raw: decoded, place: header == .referer ? .referer : .header,
                                 location: Self.label("header:", Array(rawName).map { $0 &- 65 < 26 ? $0 | 0x20 : $0 }), into: &verdict)
                }) { stop = true }
            }
        }
        if stop { return verdict }
        // Liveness probes (`/health`, `/health/ready`) come from simple tools; nothing else may
        // come without a User-Agent (AWS NoUserAgent_HEADER).
        if !userAgentSeen, !path.utf8.starts(with: "/health".utf8), record(.noUserAgent, "header:user-agent", "missing or empty", [], into: &verdict) { return verdict }

        // Body
        let body = request.body
        guard !body.isEmpty else { return verdict }
        if body.count > configuration.maxBodyBytes,
           record(.sizeBody, "body", "\(body.count) bytes", [], into: &verdict) { return verdict }
        // Byte comparisons: `String.contains(String)` (the generic substring searcher) on the
        // lowercased copy cost 6 % of a POST's CPU (perf).
        // The head's bytes: a string of "application/json" (longer than a small string) was an
        // allocation on every request with a body.
        let contentType = request.head.fields.rawValue(.contentType) ?? []
        if TextTransform.containsCaseInsensitive(contentType, "json")
            || body.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) == 0x7B {
            var blocked = false
            JSONStrings.forEach(body, skippingWords: true) { location, value, isKey in
                if isKey && value.first == 0x24,  // {"$gt": …}: a query operator where a field name belongs
                   record(.noSQLInjection, "body:\(location())", "operator key", value, into: &verdict) { blocked = true; return false }
                // One pass over the value finds what the rest needs (ASCII prose: no `%` to decode,
                // nothing to normalize, its byte set at hand): three more passes over each string
                // were ~1,000 instructions of a `POST` (callgrind).
                let scan = ByteSet.Scan(value)
                let s: [UInt8], set: ByteSet
                if !scan.bytes.hasAny(Gate.percent) && scan.isNormal {
                    (s, set) = (value, scan.bytes)
                } else {
                    // AWS WAF URL-decodes bodies too: `%3Cscript%3E` in a field is still markup.
                    let decoded = scan.bytes.hasAny(Gate.percent) ? TextTransform.urlDecodeRepeatedly(value[...], plusIsSpace: false) : value
                    s = TextTransform.normalize(decoded)
                    set = ByteSet(s)
                }
                if check(s, set: set, raw: value, place: .body, location: "body:\(location())", into: &verdict) { blocked = true; return false }
                return true
            }
            if blocked { return verdict }
        } else if TextTransform.containsCaseInsensitive(contentType, "x-www-form-urlencoded") {
            for pair in body.split(separator: UInt8(ascii: "&")) {
                let value = TextTransform.urlDecodeRepeatedly(pair, plusIsSpace: true)
                if check(TextTransform.normalize(value), raw: value, place: .query, location: "body:form", into: &verdict) { return verdict }
            }
        } else {
            if check(TextTransform.normalize(body), raw: body, place: .body, location: "body", into: &verdict) { return verdict }
        }
        return verdict
    }

    /// Which bytes a value holds: 256 bits, built in one pass.
    struct ByteSet {
        private var bits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

        init() {}

        init(_ s: [UInt8]) {
            self = Scan(s).bytes
        }

        init(_ predicate: (UInt8) -> Bool) {
            for b in 0...255 where predicate(UInt8(b)) { insert(UInt8(b)) }
        }

        /// A value's bytes, and whether `TextTransform.normalize` would leave it as it is (its
        /// bytes outside `Gate.normalized`, no two spaces in a row), in one pass.
        struct Scan {
            private(set) var bytes = ByteSet()
            private var doubleSpace = false

            init(_ s: [UInt8]) {
                // The four words indexed by the byte's top two bits: a store per byte, where a
                // switch on them was a branch per byte; no overshift checks (`&<<`); two spaces
                // found without a branch (~19 instructions a byte before, callgrind).
                var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
                var pairs: UInt8 = 0
                s.withUnsafeBufferPointer { buffer in
                    withUnsafeMutableBytes(of: &words) { raw in
                        let word = raw.baseAddress!.assumingMemoryBound(to: UInt64.self)
                        var previous: UInt8 = 0
                        for b in buffer {
                            word[Int(b &>> 6)] |= 1 &<< UInt64(b & 63)
                            pairs |= ((b ^ 0x20) | (previous ^ 0x20)) == 0 ? 1 : 0
                            previous = b
                        }
                    }
                }
                bytes.bits = words
                doubleSpace = pairs != 0
            }

            /// Whether `TextTransform.normalize` returns the value unchanged.
            var isNormal: Bool { !doubleSpace && !bytes.hasAny(Gate.normalized) }
        }

        init(_ chars: StaticString) {
            chars.withUTF8Buffer { for b in $0 { insert(b) } }
        }

        private mutating func insert(_ b: UInt8) {
            let bit = UInt64(1) << UInt64(b & 63)
            switch b >> 6 {
            case 0: bits.0 |= bit
            case 1: bits.1 |= bit
            case 2: bits.2 |= bit
            default: bits.3 |= bit
            }
        }

        /// Whether the value holds any byte of `gate`.
        func hasAny(_ gate: ByteSet) -> Bool {
            (bits.0 & gate.bits.0) | (bits.1 & gate.bits.1) | (bits.2 & gate.bits.2) | (bits.3 & gate.bits.3) != 0
        }

        /// Whether the value holds every byte of `gate`.
        func hasAll(_ gate: ByteSet) -> Bool {
            bits.0 & gate.bits.0 == gate.bits.0 && bits.1 & gate.bits.1 == gate.bits.1
                && bits.2 & gate.bits.2 == gate.bits.2 && bits.3 & gate.bits.3 == gate.bits.3
        }

        var hasDigit: Bool { bits.0 & 0x03FF_0000_0000_0000 != 0 }
    }

    /// The bytes each detector needs one of (or, for `hasAll`, all of), as sets built once:
    /// testing a value against one is four ANDs, where walking the literal tested its bytes one
    /// by one (~1.1k instructions for the two prose strings of a `POST`'s body, callgrind).
    enum Gate {
        static let log4j = ByteSet("${")
        static let metadata = ByteSet(RequestInspector.metadataGate)
        static let markup = ByteSet("<:=(`.[")
        static let traversal = ByteSet("/.\\:")
        static let shell = ByteSet("/-.($`|&;<>%=^\\{\n\r")
        static let url = ByteSet(":/")
        static let template = ByteSet("{$<#*@_|([.%'")
        static let noSQL = ByteSet("$.'\"|=")
        static let lineBreak = ByteSet("\n\r")
        static let percent = ByteSet("%")
        /// Bytes `TextTransform.normalize` changes or looks at (`FastPathTests` compares): `&`,
        /// lead bytes of overlong and wide forms, ASCII capitals, controls.
        static let normalized = ByteSet { $0 == 0x26 || $0 >= 0xC0 || ($0 &- 65 < 26) || $0 < 0x20 || $0 == 0x7F }
        /// Bytes outside `plain`, `/` and `:`: a value without one is path-like.
        static let notPathLike = ByteSet { !RequestInspector.plain[Int($0)] && $0 != 0x2F && $0 != 0x3A }
    }

    static func label(_ prefix: String, _ name: some Collection<UInt8>) -> String {
        prefix + String(decoding: name.prefix(40), as: UTF8.self)
    }

    /// The headers the inspector treats specially, recognised from the raw bytes (no string per header).
    enum HeaderName: Equatable {
        case userAgent, host, cookie, referer, framing, credentials, other

        init(_ raw: ArraySlice<UInt8>) {
            self = raw.withUnsafeBytes { Self.named($0) }
        }

        /// A switch on the length, then one comparison of bytes in hand (a nested helper was not
        /// inlined: 160 instructions a header, callgrind).
        private static func named(_ raw: UnsafeRawBufferPointer) -> HeaderName {
            switch raw.count {
            case 2: return raw.equalsIgnoringASCIICase("te") ? .framing : .other
            case 4: return raw.equalsIgnoringASCIICase("host") ? .host : .other
            case 6:
                if raw.equalsIgnoringASCIICase("cookie") { return .cookie }
                if raw.equalsIgnoringASCIICase("origin") { return .referer }
                return raw.equalsIgnoringASCIICase("expect") ? .framing : .other
            case 7: return raw.equalsIgnoringASCIICase("referer") ? .referer : .other
            case 10:
                if raw.equalsIgnoringASCIICase("user-agent") { return .userAgent }
                return raw.equalsIgnoringASCIICase("connection") ? .framing : .other
            case 13: return raw.equalsIgnoringASCIICase("authorization") ? .credentials : .other
            case 14: return raw.equalsIgnoringASCIICase("content-length") ? .framing : .other
            case 16: return raw.equalsIgnoringASCIICase("x-amzn-oidc-data") ? .credentials : .other
            case 17: return raw.equalsIgnoringASCIICase("transfer-encoding") ? .framing : .other
            default: return .other
            }
        }
    }

    /// Bytes that cannot start any attack this filter knows when a value has nothing else:
    /// letters, digits, `-`, `_`, `.` (ids, tokens, host names, numbers).
    static let plain: [Bool] = (0..<256).map { v in
        (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) || v == 0x2D || v == 0x5F || v == 0x2E || v >= 0x80
    }

    /// Every metadata address, name and path `AttackPatterns.metadataSSRF` looks for holds a digit
    /// or one of these bytes (`FastPathTests` checks its lists): `/` for the bare paths such as
    /// `/latest/api/token`, which a value with a space ("see /latest/api/token") used to pass.
    static let metadataGate: StaticString = ".:-[/"

    /// Whether `s` holds a digit or a `metadataGate` byte: without one, no metadata address.
    static func mayAddressMetadata(_ s: [UInt8]) -> Bool {
        metadataGate.withUTF8Buffer { gate in s.contains { ($0 &- 0x30) < 10 || gate.contains($0) } }
    }

    /// The content rules on one value; true when a blocking match ends the inspection.
    /// `set`: the bytes of `s`, when the caller has them.
    private func check(_ s: [UInt8], set: ByteSet? = nil, raw: [UInt8], place: Place, location: @autoclosure () -> String, into verdict: inout Verdict) -> Bool {
        guard !s.isEmpty else { return false }
        let bytes = set ?? ByteSet(s)
        if !bytes.hasAny(Gate.notPathLike) {
            // Letters, digits, `-_.`, `/` and `:` only (ids, paths, host names, plain URLs): no
            // quote, space, bracket or operator, so no SQL, markup, template or shell syntax.
            // What is left: traversal and files, metadata addresses, remote inclusion, schemes.
            // A word of letters alone ("title", "medium": most JSON names and many values) is none.
            if bytes.hasDigit || bytes.hasAny(Gate.metadata), let reason = AttackPatterns.metadataSSRF(s),
               record(.metadataSSRF, location(), reason, s, into: &verdict) { return true }
            guard bytes.hasAny(Gate.url) else { return false }
            if let reason = AttackPatterns.traversal(s, strict: place.strict), record(.localFileInclusion, location(), reason, s, into: &verdict) { return true }
            if s.contains(0x3A), let reason = XSSDetector.schemes(s), record(.crossSiteScripting, location(), reason, s, into: &verdict) { return true }
            if place.strict, let reason = AttackPatterns.commandInjection(s, strict: true), record(.commandInjection, location(), reason, s, into: &verdict) { return true }
            if place != .referer, s.contains(0x3A),
               let reason = AttackPatterns.remoteInclusion(s, freeText: place == .body || place == .cookie),
               record(.remoteFileInclusion, location(), reason, s, into: &verdict) { return true }
            return false
        }
        // Most specific first, so the log names the attack the way a person would. Each detector
        // runs only when the value holds a byte its every pattern needs (the gates mirror the
        // detectors; `CorpusTests` shows they lose nothing): prose such as "created by the
        // benchmark" reaches the SQL tokenizer and nothing else.
        if bytes.hasAll(Gate.log4j), let reason = AttackPatterns.log4j(s), record(.log4j, location(), reason, s, into: &verdict) { return true }
        if bytes.hasAny(Gate.metadata) || bytes.hasDigit, let reason = AttackPatterns.metadataSSRF(s), record(.metadataSSRF, location(), reason, s, into: &verdict) { return true }
        if bytes.hasAny(Gate.markup), let reason = XSSDetector.detect(s), record(.crossSiteScripting, location(), reason, s, into: &verdict) { return true }
        if let reason = SQLInjectionDetector.detect(s, strict: place.strict), record(.sqlInjection, location(), reason, s, into: &verdict) { return true }
        if bytes.hasAny(Gate.traversal), let reason = AttackPatterns.traversal(s, strict: place.strict), record(.localFileInclusion, location(), reason, s, into: &verdict) { return true }
        // In parameters every command form is looked for; free text needs shell punctuation.
        if place.strict || bytes.hasAny(Gate.shell),
           let reason = AttackPatterns.commandInjection(s, strict: place.strict && place != .userAgent && place != .referer),
           record(.commandInjection, location(), reason, s, into: &verdict) { return true }
        // A Referer is a URL by nature; cookies carry callback URLs (`next-auth.callback-url=
        // http://localhost:3000/…`); free text links anywhere. Those get only the one shape nobody
        // writes: a script file on an IP-literal host.
        if bytes.hasAll(Gate.url), place != .referer {
            let freeText = place == .body || place == .cookie
            if let reason = AttackPatterns.remoteInclusion(s, freeText: freeText), record(.remoteFileInclusion, location(), reason, s, into: &verdict) { return true }
        }
        if place.strict || bytes.hasAny(Gate.template),
           let reason = AttackPatterns.templateInjection(s), record(.templateInjection, location(), reason, s, into: &verdict) { return true }
        if bytes.hasAny(Gate.noSQL), let reason = AttackPatterns.noSQLInjection(s), record(.noSQLInjection, location(), reason, s, into: &verdict) { return true }
        // Line breaks in free text are normal; percent-encoded ones in a field are not.
        if bytes.hasAny(Gate.lineBreak), place != .body || raw.contains(0x25),
           let reason = AttackPatterns.crlfInjection(s, strict: place.strict && place != .referer), record(.crlfInjection, location(), reason, s, into: &verdict) { return true }
        return false
    }

    /// Runs `inspect` (true: a blocking match) unless the value is known clean, and remembers the
    /// value as clean when nothing at all matched (not even in count mode).
    /// `recent`: the thread's `RecentCleanValues`, tried first (exact bytes), or nil for values
    /// that must not be kept verbatim (credentials, cookies: per-client secrets, which would also
    /// only churn the slot). `place` is the value's `CleanValueCache` place; `name`, the header's,
    /// for places whose key includes it. A value the shared cache knows is remembered too: the
    /// cache's keyed 63-bit hash already accepted it, and the other loop threads fill the cache.
    private func unlessKnownClean(_ recent: RecentCleanValues?, place: UInt8, name: ArraySlice<UInt8>? = nil, _ value: ArraySlice<UInt8>,
                                  _ verdict: inout Verdict, _ inspect: (inout Verdict) -> Bool) -> Bool {
        if let recent, recent.holds(place: place, name: name, value) { return false }
        let key = CleanValueCache.key(name: name ?? [], value: value, place: place)
        if cleanValues.contains(key) {
            recent?.remember(place: place, name: name, value)
            return false
        }
        let matchesBefore = verdict.matches.count
        let blocked = inspect(&verdict)
        if verdict.matches.count == matchesBefore {
            cleanValues.insert(key)
            recent?.remember(place: place, name: name, value)
        }
        return blocked
    }

    /// Records a match unless the rule is off; true when it blocks.
    /// `location` is only rendered for a match: building label strings for every value cost more than the rules.
    private func record(_ rule: WAFRule, _ location: @autoclosure () -> String, _ reason: @autoclosure () -> String, _ value: [UInt8], into verdict: inout Verdict) -> Bool {
        let action = configuration.action(rule)
        guard action != .off else { return false }
        let match = WAFMatch(rule: rule, action: action, location: location(), reason: reason(), excerpt: WAFMatch.excerpt(value))
        verdict.matches.append(match)
        if action == .block {
            verdict.blocking = match
            return true
        }
        return false
    }
}
