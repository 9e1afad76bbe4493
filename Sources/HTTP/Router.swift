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
        var handlers: [HTTPMethod: RouteHandler]
        /// `segments.count`, read without touching (and retaining) the arrays of routes that
        /// cannot match: most routes are ruled out by their number of segments alone.
        let segmentCount: Int

        var isLiteral: Bool { !segments.contains { if case .parameter = $0 { true } else { false } } }
    }

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    public enum Match: Sendable {
        case handler(RouteHandler, route: String, parameters: RouteParameters)
        case methodNotAllowed(allow: String, route: String)
        case options(allow: String, route: String)
        case notFound
    }

    private var routes: [Route] = []

    public init() {}

    public mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: RouteHandler) {
        precondition(pattern.hasPrefix("/"), "route patterns start with /")
        if let index = routes.firstIndex(where: { $0.pattern == pattern }) {
            routes[index].handlers[method] = handler
            return
        }
        let segments: [Segment] = pattern.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
            $0.hasPrefix(":") ? .parameter(String($0.dropFirst())) : .literal(String($0))
        }
        let route = Route(pattern: pattern, segments: segments, handlers: [method: handler], segmentCount: segments.count)
        // Literal patterns before parameterised ones, so `/todos/count` wins over `/todos/:id`.
        if route.isLiteral {
            routes.insert(route, at: routes.firstIndex { !$0.isLiteral } ?? routes.endIndex)
        } else {
            routes.append(route)
        }
    }

    /// A service has a dozen routes: comparing them in order beats hashing the path (which
    /// allocated a `String` for every path longer than 15 bytes).
    public func match(_ method: HTTPMethod, path: Substring) -> Match {
        // Segment by segment on the UTF-8 view: no array of parts, no Character processing.
        var slashes = 0
        for byte in path.utf8 where byte == UInt8(ascii: "/") { slashes += 1 }
        for index in routes.indices where routes[index].segmentCount == slashes {
            let route = routes[index]
            var rest = path.utf8.dropFirst()  // after the leading "/"
            var parameters = RouteParameters()
            var matched = true
            for (i, segment) in route.segments.enumerated() {
                let end = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
                let part = Substring(rest[rest.startIndex..<end])
                switch segment {
                case .literal(let text):
                    matched = part == text
                case .parameter(let name):
                    if !part.isEmpty, let decoded = PercentDecoding.decode(part) { parameters.append(name, decoded) } else { matched = false }
                }
                let isLast = i == route.segments.count - 1
                if !matched || isLast != (end == rest.endIndex) { matched = false; break }
                if !isLast { rest = rest[rest.index(after: end)...] }
            }
            if matched { return resolve(route, method: method, parameters: parameters) }
        }
        return .notFound
    }

    private func resolve(_ route: Route, method: HTTPMethod, parameters: RouteParameters) -> Match {
        if let handler = route.handlers[method] {
            return .handler(handler, route: route.pattern, parameters: parameters)
        }
        if method == .head, let handler = route.handlers[.get] {
            return .handler(handler, route: route.pattern, parameters: parameters)
        }
        let allow = Self.allowHeader(route)
        if method == .options { return .options(allow: allow, route: route.pattern) }
        return .methodNotAllowed(allow: allow, route: route.pattern)
    }

    static func allowHeader(_ route: Route) -> String {
        var methods = Set(route.handlers.keys.map(\.description))
        if methods.contains("GET") { methods.insert("HEAD") }
        methods.insert("OPTIONS")
        let order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return (order.filter(methods.contains) + methods.subtracting(order).sorted()).joined(separator: ", ")
    }

    /// Every method any route serves, for `OPTIONS *`.
    public var allMethods: String {
        var all = Route(pattern: "*", segments: [], handlers: [:], segmentCount: 0)
        for route in routes { for (method, handler) in route.handlers { all.handlers[method] = handler } }
        return Self.allowHeader(all)
    }
}

/// The `:name` segments of the matched route, decoded, in pattern order. Routes have one or two,
/// so a list searched by name (no dictionary to allocate and hash per request).
public struct RouteParameters: Sendable {
    private var entries: [(name: String, value: String)] = []

    public init() {}

    mutating func append(_ name: String, _ value: String) { entries.append((name, value)) }

    public subscript(name: String) -> String? { entries.first { $0.name == name }?.value }

    public var isEmpty: Bool { entries.isEmpty }
}

/// Percent-decoding of a path segment (RFC 3986 §2.1). Nil for a malformed escape or bytes that
/// are not UTF-8, so "%zz" or "%ff" can never reach a handler as text.
public enum PercentDecoding {
    public static func decode(_ text: Substring) -> String? {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(HTTPParser.hexValue),
                      let low = iterator.next().flatMap(HTTPParser.hexValue) else { return nil }
                bytes.append(UInt8(high << 4 | low))
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
