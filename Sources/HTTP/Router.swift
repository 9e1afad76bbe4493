import Glibc
import Net
/// What runs for a route. Synchronous handlers answer on the loop at once (no task, no allocation
/// beyond the response); asynchronous ones run as a task on the connection's loop (its
/// `TaskExecutor`), for work that waits on I/O such as the database. Callback handlers wait on I/O
/// too, without a task: they start the work on the loop and answer through the `HTTPResponder`
/// when it completes (for one-query handlers on the hot path: a task, its allocations and its
/// executor hops cost a quarter of a `GET /todos/{id}`, measured with perf).
public enum RouteHandler: Sendable {
    case sync(@Sendable (HTTPRequest) -> HTTPResponse)
    case async(@Sendable (HTTPRequest) async -> HTTPResponse)
    case callback(@Sendable (HTTPRequest, HTTPResponder) -> Void)
}

/// Method + path-pattern routing. Patterns are literal segments and `:name` parameters
/// (`/todos/:id`). Unknown path → 404; known path with another method → 405 with `Allow`;
/// OPTIONS → 204 with `Allow`; HEAD is served by the GET handler (RFC 9110 §9.3.2).
public struct Router: Sendable {
    struct Route: Sendable {
        let pattern: String
        let segments: [Segment]
        /// A route has a handful of methods: scanning them compares enum cases, where a
        /// dictionary hashed the method (SipHash) on every request.
        var handlers: [(method: HTTPMethod, handler: RouteHandler)]

        func handler(for method: HTTPMethod) -> RouteHandler? {
            for entry in handlers where entry.method == method { return entry.handler }
            return nil
        }

        mutating func set(_ method: HTTPMethod, _ handler: RouteHandler) {
            if let index = handlers.firstIndex(where: { $0.method == method }) {
                handlers[index].handler = handler
            } else {
                handlers.append((method, handler))
            }
        }

        var isLiteral: Bool { !segments.contains { if case .parameter = $0 { true } else { false } } }
    }

    enum Segment: Sendable, Equatable {
        case literal([UInt8])
        case parameter(String)
    }

    public enum Match: Sendable {
        case handler(RouteHandler, route: String, parameters: RouteParameters)
        case methodNotAllowed(allow: String, route: String)
        case options(allow: String, route: String)
        case notFound
    }

    private var routes: [Route] = []
    /// The literal patterns as whole paths: their bytes end to end in `literalBytes`, and where
    /// each lies in `literalTable`, the nth for `routes[n]` (the literal routes stand first). Plain
    /// values, so matching retains nothing; one `memcmp` a candidate where the segment walk copied
    /// each route (its pattern, segments and handlers retained and released: ~300 instructions a
    /// `GET /health`, callgrind).
    private var literalBytes: [UInt8] = []
    private var literalTable: [(start: Int, length: Int)] = []

    public init() {}

    public mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: RouteHandler) {
        precondition(pattern.hasPrefix("/"), "route patterns start with /")
        if let index = routes.firstIndex(where: { $0.pattern == pattern }) {
            routes[index].set(method, handler)
            return
        }
        let segments: [Segment] = pattern.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
            $0.hasPrefix(":") ? .parameter(String($0.dropFirst())) : .literal(Array($0.utf8))
        }
        let route = Route(pattern: pattern, segments: segments, handlers: [(method, handler)])
        // Literal patterns before parameterised ones, so `/todos/count` wins over `/todos/:id`.
        if route.isLiteral {
            routes.insert(route, at: routes.firstIndex { !$0.isLiteral } ?? routes.endIndex)
        } else {
            routes.append(route)
        }
        // Inserting shifted the indices: the table is made again (routes are added at start-up only).
        // `match` relies on the literal routes standing first.
        assert(routes.drop { $0.isLiteral }.allSatisfy { !$0.isLiteral }, "literal routes precede parameterised ones")
        literalBytes = []
        literalTable = []
        for route in routes where route.isLiteral {
            let bytes = Array(route.pattern.utf8)
            literalTable.append((literalBytes.count, bytes.count))
            literalBytes += bytes
        }
    }

    /// A service has a dozen routes: comparing them in order beats hashing the path (which
    /// allocated a `String` for every path longer than 15 bytes). The path is walked as one
    /// contiguous buffer with offsets (searching `Substring.UTF8View` element by element showed
    /// at 1.5 % of a request in perf).
    public func match(_ method: HTTPMethod, path: Substring) -> Match {
        var path = path
        return path.withUTF8 { bytes in
            // Literal patterns first (they win over parameterised ones, as in `add`): a literal
            // route matches exactly the path that is its pattern, segment for segment.
            let literal = literalBytes.withUnsafeBufferPointer { literals in
                literalTable.withUnsafeBufferPointer { table -> Int? in
                    for (route, entry) in table.enumerated() where entry.length == bytes.count
                        && memcmp(literals.baseAddress! + entry.start, bytes.baseAddress!, bytes.count) == 0 {
                        return route
                    }
                    return nil
                }
            }
            if let literal { return resolve(routes[literal], method: method, parameters: RouteParameters()) }
            var slashes = 0
            for byte in bytes where byte == UInt8(ascii: "/") { slashes += 1 }
            // Most routes are ruled out by their number of segments alone.
            // The literal routes stand first in `routes` (see `add`): only the parameterised ones are left.
            for index in literalTable.count..<routes.count where routes[index].segments.count == slashes {
                let route = routes[index]
                var parameters = RouteParameters()
                var start = 1  // after the leading "/"
                var matched = true
                for (i, segment) in route.segments.enumerated() {
                    var end = start
                    while end < bytes.count && bytes[end] != UInt8(ascii: "/") { end += 1 }
                    let part = UnsafeBufferPointer(rebasing: bytes[start..<end])
                    switch segment {
                    case .literal(let text):
                        matched = part.elementsEqual(text)
                    case .parameter(let name):
                        if !part.isEmpty, let decoded = PercentDecoding.decode(part) { parameters.append(name, decoded) } else { matched = false }
                    }
                    let isLast = i == route.segments.count - 1
                    if !matched || isLast != (end == bytes.count) { matched = false; break }
                    start = end + 1
                }
                if matched { return resolve(route, method: method, parameters: parameters) }
            }
            return .notFound
        }
    }

    private func resolve(_ route: Route, method: HTTPMethod, parameters: RouteParameters) -> Match {
        if let handler = route.handler(for: method) {
            return .handler(handler, route: route.pattern, parameters: parameters)
        }
        if method == .head, let handler = route.handler(for: .get) {
            return .handler(handler, route: route.pattern, parameters: parameters)
        }
        let allow = Self.allowHeader(route)
        if method == .options { return .options(allow: allow, route: route.pattern) }
        return .methodNotAllowed(allow: allow, route: route.pattern)
    }

    static func allowHeader(_ route: Route) -> String {
        var methods = Set(route.handlers.map(\.method.description))
        if methods.contains("GET") { methods.insert("HEAD") }
        methods.insert("OPTIONS")
        let order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return (order.filter(methods.contains) + methods.subtracting(order).sorted()).joined(separator: ", ")
    }

    /// Every method any route serves, for `OPTIONS *`.
    public var allMethods: String {
        var all = Route(pattern: "*", segments: [], handlers: [])
        for route in routes { for (method, handler) in route.handlers { all.set(method, handler) } }
        return Self.allowHeader(all)
    }
}

/// The `:name` segments of the matched route, decoded, in pattern order. Routes have one or two,
/// so a list searched by name (no dictionary to allocate and hash per request).
public struct RouteParameters: Sendable {
    /// The first parameter inline: every route of the API has at most one (`/todos/:id`), and an
    /// array for it was one allocation per request. Further ones go to `more`.
    private var first: (name: String, value: String)?
    private var more: [(name: String, value: String)] = []

    public init() {}

    mutating func append(_ name: String, _ value: String) {
        if first == nil { first = (name, value) } else { more.append((name, value)) }
    }

    public subscript(name: String) -> String? {
        if let first, first.name == name { return first.value }
        return more.first { $0.name == name }?.value
    }
}

/// Percent-decoding of a path segment (RFC 3986 §2.1). Nil for a malformed escape or bytes that
/// are not UTF-8, so "%zz" or "%ff" can never reach a handler as text.
public enum PercentDecoding {
    public static func decode(_ text: Substring) -> String? {
        var text = text
        return text.withUTF8 { decode($0) }
    }

    public static func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard bytes.contains(UInt8(ascii: "%")) else {
            // A request target is ASCII (the parser refuses other bytes): no validation needed,
            // where `String(validating:)` ran generic code costing ~1,000 instructions (callgrind).
            if !bytes.contains(where: { $0 >= 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
            return String(validating: bytes, as: UTF8.self)
        }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let high = ASCIIDigits.hexValue(bytes[i + 1]), let low = ASCIIDigits.hexValue(bytes[i + 2]) else { return nil }
                decoded.append(UInt8(high << 4 | low))
                i += 3
            } else {
                decoded.append(bytes[i])
                i += 1
            }
        }
        return String(validating: decoded, as: UTF8.self)
    }
}
