import JSON
import Net

/// A token in JWS compact serialization (RFC 7515 §7.1): three base64url segments, the first two
/// JSON objects. Nothing here is trusted until the signature is verified over `signingInput`.
struct CompactJWS {
    /// Tokens are at most this long (a Cognito access token is ~1 KB; an ID token with many
    /// groups a few KB). Bounds the work an unauthenticated request can cause.
    static let maxLength = 8 << 10

    let header: [(key: String, value: JSONValue)]
    let payloadSegment: Substring
    /// `header.payload` exactly as received: what the signature covers.
    let signingInput: Substring
    let signature: [UInt8]

    /// `allowPadding`: the ALB writes its segments with `=` padding.
    static func parse(_ token: String, allowPadding: Bool = false) -> Result<CompactJWS, AuthFailure> {
        guard token.utf8.count <= maxLength else { return .failure(AuthFailure(.malformed, "the token is longer than 8 KiB")) }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            return .failure(AuthFailure(.malformed, "the token is not a JWS in compact form"))
        }
        guard let headerBytes = Base64URL.decode(String(parts[0]), allowPadding: allowPadding),
              case .object(let header) = object(headerBytes) else {
            return .failure(AuthFailure(.malformed, "the token header is not base64url JSON"))
        }
        guard let signature = Base64URL.decode(String(parts[2]), allowPadding: allowPadding) else {
            return .failure(AuthFailure(.malformed, "the token signature is not base64url"))
        }
        let signingInput = token[token.startIndex..<parts[1].endIndex]
        return .success(CompactJWS(header: header, payloadSegment: parts[1], signingInput: signingInput, signature: signature))
    }

    /// The payload's claims, after the signature was verified.
    func claims(allowPadding: Bool = false) -> Result<[(key: String, value: JSONValue)], AuthFailure> {
        guard let bytes = Base64URL.decode(String(payloadSegment), allowPadding: allowPadding), case .object(let claims) = Self.object(bytes) else {
            return .failure(AuthFailure(.malformed, "the token payload is not base64url JSON"))
        }
        return .success(claims)
    }

    /// A JSON object whose member names are unique (RFC 7515 §4: duplicates must be rejected or
    /// resolved; rejected here, since two parsers could each pick a different one).
    static func object(_ bytes: [UInt8]) -> JSONValue? {
        guard case .object(let members)? = try? JSONParser.parse(bytes) else { return nil }
        var names = Set<String>()
        for member in members where !names.insert(member.key).inserted { return nil }
        return .object(members)
    }
}

extension Array where Element == (key: String, value: JSONValue) {
    func string(_ name: String) -> String? {
        if case .string(let text)? = first(where: { $0.key == name })?.value { return text }
        return nil
    }

    /// A NumericDate (RFC 7519 §2): seconds, fractions dropped; nil when absent; `.some(nil)` when
    /// present but not a number.
    func numericDate(_ name: String) -> Int64?? {
        guard let value = first(where: { $0.key == name })?.value else { return nil }
        guard case .number(let digits) = value, let seconds = Double(digits), seconds.isFinite,
              seconds > -1e15, seconds < 1e15 else { return .some(nil) }
        return .some(Int64(seconds.rounded(.down)))
    }

    func has(_ name: String) -> Bool { contains { $0.key == name } }
}
