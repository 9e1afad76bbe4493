/// Why a request's credentials were refused: the `reason` of the security event and of the
/// `auth_failures_total` metric, and what the 401 tells the client (RFC 6750 §3).
public struct AuthFailure: Error, Sendable, Equatable {
    public enum Reason: String, Sendable, CaseIterable {
        case missing, malformed, expired
        case notYetValid = "not_yet_valid"
        case badSignature = "bad_signature"
        case unknownKey = "unknown_key"
        case wrongIssuer = "wrong_issuer"
        case wrongAudience = "wrong_audience"
        case wrongTokenUse = "wrong_token_use"
        case algorithmNotAllowed = "algorithm_not_allowed"
        case missingClaim = "missing_claim"
        case untrustedProxy = "untrusted_proxy"
        case wrongSigner = "wrong_signer"
    }

    public let reason: Reason
    /// For the client and the log: what was wrong, never the token or a claim's value.
    public let description: String
    /// `unknown_key`: the kid the token named (the keys may be read again for it).
    public let kid: String?

    public init(_ reason: Reason, _ description: String, kid: String? = nil) {
        self.reason = reason
        self.description = description
        self.kid = kid
    }

    static func unknownKey(_ kid: String) -> AuthFailure {
        AuthFailure(.unknownKey, "no key with the token's kid", kid: kid)
    }

    /// The challenge: no error code when no credentials came (RFC 6750 §3.1), else invalid_token.
    /// The description keeps only what RFC 6750 §3 allows in it (%x20-21 / %x23-5B / %x5D-7E):
    /// descriptions are fixed texts, and this makes sure none can ever end a header line.
    public var wwwAuthenticate: String {
        guard reason != .missing else { return "Bearer" }
        let safe = String(decoding: description.utf8.filter { ($0 >= 0x20 && $0 <= 0x7E) && $0 != 0x22 && $0 != 0x5C }, as: UTF8.self)
        return "Bearer error=\"invalid_token\", error_description=\"\(safe)\""
    }
}

/// Who made an accepted request: the owner of the todos it may see.
public struct Caller: Sendable, Equatable {
    public let owner: String
    /// Unix seconds after which the credentials that proved it are no longer accepted.
    public let expiresAt: Int64

    public init(owner: String, expiresAt: Int64) {
        self.owner = owner
        self.expiresAt = expiresAt
    }
}
