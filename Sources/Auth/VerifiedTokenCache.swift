import Synchronization

/// Tokens already verified, so a client reusing its token pays the signature check once: keyed by
/// the header value itself (the dictionary hashes it; a hit compares it whole, so a tampered copy
/// never matches), kept until the token's `exp` (plus leeway), bounded.
///
/// Bounded at 2,048 entries and 2 MiB of token text (a Cognito access token is ~1 KB; tokens may
/// be up to 8 KiB). When either is reached, expired entries go first; if that is not enough, the
/// whole cache is dropped (tokens are then verified once more each: a burst of distinct tokens
/// costs signature checks, never memory).
final class VerifiedTokenCache: Sendable {
    static let capacity = 2048
    static let byteBudget = 2 << 20

    private struct Entries {
        var callers: [String: Caller] = [:]
        var bytes = 0

        mutating func removeAll() {
            callers.removeAll(keepingCapacity: true)
            bytes = 0
        }
    }

    private let entries = Mutex(Entries())

    func caller(for token: String, now: Int64) -> Caller? {
        entries.withLock { entries in
            guard let caller = entries.callers[token] else { return nil }
            if now < caller.expiresAt { return caller }
            entries.callers[token] = nil
            entries.bytes -= token.utf8.count
            return nil
        }
    }

    func store(_ token: String, _ caller: Caller, now: Int64) {
        let size = token.utf8.count
        entries.withLock { entries in
            if entries.callers.count >= Self.capacity || entries.bytes + size > Self.byteBudget {
                entries.callers = entries.callers.filter { now < $0.value.expiresAt }
                entries.bytes = entries.callers.keys.reduce(0) { $0 + $1.utf8.count }
                if entries.callers.count >= Self.capacity || entries.bytes + size > Self.byteBudget { entries.removeAll() }
            }
            if entries.callers.updateValue(caller, forKey: token) == nil { entries.bytes += size }
        }
    }

    var count: Int { entries.withLock { $0.callers.count } }
    var bytes: Int { entries.withLock { $0.bytes } }
}
