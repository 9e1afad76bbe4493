import Dispatch
import Glibc
import Net

/// Host-name lookups off the event loops. libpq resolves host names inside PQconnectPoll with a
/// blocking getaddrinfo; we resolve first, on this serial queue, and hand libpq `hostaddr` (keeping
/// `host` for TLS certificate checks). Not cached: Aurora endpoints are DNS names that move on
/// failover (5 s TTL), and lookups happen only when a connection is opened.
enum HostResolver {
    static let queue = DispatchQueue(label: "todo-api.postgres.dns")

    /// Host-list entries that need a lookup: not empty, not a Unix-socket directory, not an IP literal.
    static func needsLookup(_ host: String) -> Bool {
        guard !host.isEmpty, !host.hasPrefix("/"), !host.hasPrefix("@") else { return false }
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) != 1 && inet_pton(AF_INET6, host, &v6) != 1
    }

    /// Resolves `host` to one numeric address (the first the resolver prefers), or an error message.
    static func lookup(_ host: String) -> Result<String, PostgresError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &result)
        guard rc == 0, let info = result else {
            return .failure(PostgresError(.unavailable, message: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))"))
        }
        defer { freeaddrinfo(result) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let address = info.pointee.ai_addr!
        if info.pointee.ai_family == AF_INET6 {
            address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                var a = $0.pointee.sin6_addr
                _ = inet_ntop(AF_INET6, &a, &text, socklen_t(text.count))
            }
        } else {
            address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                var a = $0.pointee.sin_addr
                _ = inet_ntop(AF_INET, &a, &text, socklen_t(text.count))
            }
        }
        return .success(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}

/// Runs `body` with NUL-terminated C strings for `values` (nil stays a null pointer), all in one
/// temporary buffer (on the stack when small); libpq copies what it needs before returning.
func withCStrings<R>(_ values: [String?], _ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>) -> R) -> R {
    // One buffer for every value and its NUL, sized first and filled once, and the pointers on
    // the stack too (when small): the version that appended `utf8CString`s to an array made five
    // allocations for a one-parameter query, this one none.
    var total = 0
    for value in values { if let value { total += value.utf8.count + 1 } }
    return withUnsafeTemporaryAllocation(of: CChar.self, capacity: max(total, 1)) { storage in
        withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: max(values.count, 1)) { pointers in
            var offset = 0
            for (index, value) in values.enumerated() {
                guard let value else {
                    pointers.initializeElement(at: index, to: nil)
                    continue
                }
                let start = storage.baseAddress! + offset
                value.withBorrowedUTF8 { bytes in
                    if let base = bytes.baseAddress { UnsafeMutableRawPointer(start).copyMemory(from: base, byteCount: bytes.count) }
                    offset += bytes.count
                }
                storage[offset] = 0
                offset += 1
                pointers.initializeElement(at: index, to: UnsafePointer(start))
            }
            // Pointers are trivial: nothing to deinitialize.
            return body(UnsafeBufferPointer(rebasing: pointers.prefix(values.count)))
        }
    }
}
