/// AWS Signature Version 4 (docs.aws.amazon.com, "Create a signed AWS API request"): the
/// canonical request, the string to sign, the derived key, and the two ways the service uses
/// them: an `Authorization` header (Secrets Manager) and a presigned query (RDS IAM tokens).
/// Checked against botocore's output for the same inputs (Tests/AWSTests/Fixtures, generated and
/// re-checked by scripts/aws_reference.py in the test command).
public struct SigV4Signer: Sendable {
    public let credentials: AWSCredentials
    public let region: String
    public let service: String

    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    static let algorithm = "AWS4-HMAC-SHA256"

    /// The `Authorization` header and the fields it signs for a request with these fields
    /// (`host` among them) and body, at `epochSeconds`. Adds `x-amz-date` and, for temporary
    /// credentials, `x-amz-security-token`; returns every field to send besides the given ones.
    public func sign(method: String, path: String, query: [(String, String)] = [], headers: [(name: String, value: String)],
                     body: [UInt8], epochSeconds: Int64) -> [(name: String, value: String)] {
        let amzDate = AWSTime.amzDate(epochSeconds: epochSeconds)
        var added: [(name: String, value: String)] = [("X-Amz-Date", amzDate)]
        if let token = credentials.sessionToken { added.append(("X-Amz-Security-Token", token)) }
        let signed = (headers + added).map { (name: $0.name.lowercased(), value: Self.canonicalValue($0.value)) }
            .sorted { $0.name < $1.name }
        let signedNames = signed.map(\.name).joined(separator: ";")
        let canonical = [
            method,
            Self.canonicalPath(path),
            Self.canonicalQuery(query),
            signed.map { "\($0.name):\($0.value)\n" }.joined(),
            signedNames,
            Digest.hex(Digest.sha256(body)),
        ].joined(separator: "\n")
        let scope = scope(amzDate)
        let signature = signature(canonicalRequest: canonical, amzDate: amzDate, scope: scope)
        added.append(("Authorization", "\(Self.algorithm) Credential=\(credentials.accessKeyId)/\(scope), SignedHeaders=\(signedNames), Signature=\(signature)"))
        return added
    }

    /// A presigned GET for `host` (with its port when not the default) and `path`: the query
    /// with the `X-Amz-*` parameters and the signature, in the order botocore writes them
    /// (the given parameters, the signing ones, the signature last).
    public func presign(host: String, path: String, query: [(String, String)], expiresSeconds: Int, epochSeconds: Int64) -> String {
        let amzDate = AWSTime.amzDate(epochSeconds: epochSeconds)
        let scope = scope(amzDate)
        var parameters = query
        parameters.append(("X-Amz-Algorithm", Self.algorithm))
        parameters.append(("X-Amz-Credential", "\(credentials.accessKeyId)/\(scope)"))
        parameters.append(("X-Amz-Date", amzDate))
        parameters.append(("X-Amz-Expires", String(expiresSeconds)))
        parameters.append(("X-Amz-SignedHeaders", "host"))
        if let token = credentials.sessionToken { parameters.append(("X-Amz-Security-Token", token)) }
        let canonical = [
            "GET",
            Self.canonicalPath(path),
            Self.canonicalQuery(parameters),
            "host:\(host)\n",
            "host",
            // The empty payload's hash, as botocore signs an RDS token (S3 alone presigns
            // with UNSIGNED-PAYLOAD).
            Digest.hex(Digest.sha256([UInt8]())),
        ].joined(separator: "\n")
        let signature = signature(canonicalRequest: canonical, amzDate: amzDate, scope: scope)
        let written = parameters.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        return "\(path)?\(written)&X-Amz-Signature=\(signature)"
    }

    private func scope(_ amzDate: String) -> String {
        "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
    }

    private func signature(canonicalRequest: String, amzDate: String, scope: String) -> String {
        let stringToSign = "\(Self.algorithm)\n\(amzDate)\n\(scope)\n\(Digest.hex(Digest.sha256(canonicalRequest.utf8)))"
        var key = Digest.hmacSHA256(key: Array("AWS4\(credentials.secretAccessKey)".utf8), amzDate.prefix(8).utf8)
        key = Digest.hmacSHA256(key: key, region.utf8)
        key = Digest.hmacSHA256(key: key, service.utf8)
        key = Digest.hmacSHA256(key: key, "aws4_request".utf8)
        return Digest.hex(Digest.hmacSHA256(key: key, stringToSign.utf8))
    }

    /// Header values: trimmed, inner runs of spaces as one.
    static func canonicalValue(_ value: String) -> String {
        var out = ""
        var pendingSpace = false
        for character in value {
            if character == " " || character == "\t" {
                pendingSpace = !out.isEmpty
                continue
            }
            if pendingSpace { out.append(" ") }
            pendingSpace = false
            out.append(character)
        }
        return out
    }

    /// Each path segment URI-encoded, slashes kept.
    static func canonicalPath(_ path: String) -> String {
        guard !path.isEmpty else { return "/" }
        return path.split(separator: "/", omittingEmptySubsequences: false).map { encode(String($0)) }.joined(separator: "/")
    }

    /// Encoded names and values, sorted by name then value.
    static func canonicalQuery(_ parameters: [(String, String)]) -> String {
        parameters.map { (encode($0.0), encode($0.1)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters, uppercase hex.
    public static func encode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The RDS IAM authentication token: a SigV4-presigned `Action=connect&DBUser=<user>` for
/// `<host>:<port>`, service `rds-db`, valid 15 minutes, without its scheme (what
/// `aws rds generate-db-auth-token` prints and PostgreSQL receives as the password).
public enum RDSAuthToken {
    public static let validitySeconds = 900

    public static func generate(host: String, port: Int, user: String, region: String,
                                credentials: AWSCredentials, epochSeconds: Int64) -> String {
        let signer = SigV4Signer(credentials: credentials, region: region, service: "rds-db")
        let endpoint = "\(host):\(port)"
        // The signed host drops the scheme's default port, as botocore does; the token keeps it.
        let signedHost = port == 443 ? host.lowercased() : "\(host.lowercased()):\(port)"
        return endpoint + signer.presign(host: signedHost, path: "/", query: [("Action", "connect"), ("DBUser", user)],
                                         expiresSeconds: validitySeconds, epochSeconds: epochSeconds)
    }
}
