import Synchronization

/// Tokens already verified, so a client reusing its token pays the signature check once: keyed by
/// the token itself (the dictionary hashes it; a hit compares it whole, so a tampered copy never
/// matches), kept until the token's `exp` (plus leeway), bounded.
///
/// Bounded at 2,048 entries (a token is ~1 KB: ~2 MB at most). When full, expired entries go
/// first; if none has, the whole cache is dropped (tokens are re-verified once each: a burst of
/// distinct tokens costs signature checks, never memory).
final class VerifiedTokenCache: Sendable {
    static let capacity = 2048
    private let entries = Mutex<[String: Caller]>([:])

    func caller(for token: String, now: Int64) -> Caller? {
        entries.withLock { entries in
            guard let caller = entries[token] else { return nil }
            if now < caller.expiresAt { return caller }
            entries[token] = nil
            return nil
        }
    }

    func store(_ token: String, _ caller: Caller, now: Int64) {
        entries.withLock { entries in
            if entries.count >= Self.capacity {
                entries = entries.filter { now < $0.value.expiresAt }
                if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[token] = caller
        }
    }

    var count: Int { entries.withLock { $0.count } }
}
