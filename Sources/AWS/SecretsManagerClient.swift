import HTTPClient
import JSON

/// `GetSecretValue` (Secrets Manager's JSON 1.1 protocol over HTTPS, SigV4-signed), without an SDK.
public struct SecretsManagerClient: Sendable {
    public let endpoint: HTTPClientURL
    public let region: String
    public let client: HTTPClient

    public init(endpoint: HTTPClientURL, region: String, client: HTTPClient = HTTPClient()) {
        self.endpoint = endpoint
        self.region = region
        self.client = client
    }

    /// The region (`AWS_REGION`, `AWS_DEFAULT_REGION`, else the one in the secret's ARN) and the
    /// endpoint (`AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL`, else the regional one),
    /// as the AWS SDKs choose them.
    public static func resolve(secretId: String, environment: [String: String]) throws(AWSConfigurationError) -> SecretsManagerClient {
        let arnRegion: String? = secretId.hasPrefix("arn:") ? secretId.split(separator: ":", omittingEmptySubsequences: false).dropFirst(3).first.map(String.init) : nil
        guard let region = [environment["AWS_REGION"], environment["AWS_DEFAULT_REGION"], arnRegion].compactMap({ $0 }).first(where: { !$0.isEmpty }) else {
            throw AWSConfigurationError(setting: "AWS_REGION", message: "needed for DB_SECRET_ID (or give the secret's ARN)")
        }
        guard region.utf8.allSatisfy({ ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-") }) else {
            throw AWSConfigurationError(setting: "AWS_REGION", message: "is not a region name")
        }
        for variable in ["AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"] {
            guard let text = environment[variable], !text.isEmpty else { continue }
            guard let url = HTTPClientURL(text) else { throw AWSConfigurationError(setting: variable, message: "must be an http:// or https:// URL") }
            return SecretsManagerClient(endpoint: url, region: region)
        }
        let suffix = region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com"
        return SecretsManagerClient(endpoint: HTTPClientURL(isTLS: true, host: "secretsmanager.\(region).\(suffix)"), region: region)
    }

    /// The signed request for `secretId` at `epochSeconds` (what `getSecretValue` sends; the tests
    /// compare it with botocore's).
    public func request(secretId: String, credentials: AWSCredentials, epochSeconds: Int64) -> HTTPClientRequest {
        // Formatted as botocore formats it (Python's json.dumps), so the same request signs the same.
        let body = Array("{\"SecretId\": \(Self.pythonJSONString(secretId))}".utf8)
        let fields: [(name: String, value: String)] = [
            ("Host", endpoint.hostField),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "secretsmanager.GetSecretValue"),
        ]
        let signer = SigV4Signer(credentials: credentials, region: region, service: "secretsmanager")
        let added = signer.sign(method: "POST", path: endpoint.target, headers: fields, body: body, epochSeconds: epochSeconds)
        // Host is written by the client from the URL: the same value as signed.
        return HTTPClientRequest(method: "POST", url: endpoint, headers: Array(fields.dropFirst()) + added + [("User-Agent", "todo-api")], body: body)
    }

    public struct SecretValue: Sendable {
        public let secretString: String
        public let versionId: String?
    }

    /// Calls GetSecretValue. Blocking: call off the loops. Errors carry AWS's error code and
    /// message (which name the secret, never its value).
    public func getSecretValue(secretId: String, credentials: AWSCredentials) throws(AWSError) -> SecretValue {
        let response: HTTPClientResponse
        do {
            response = try client.perform(request(secretId: secretId, credentials: credentials, epochSeconds: AWSTime.now()))
        } catch {
            throw AWSError(code: "SecretsManagerUnreachable", message: "\(endpoint.hostField): \(error.message)")
        }
        let members: [(key: String, value: JSONValue)]
        if case .object(let object)? = try? JSONParser.parse(response.body) { members = object } else { members = [] }
        func string(_ key: String) -> String? {
            if case .string(let value)? = members.first(where: { $0.key == key })?.value { return value }
            return nil
        }
        guard response.status == 200 else {
            // {"__type": "com.amazonaws...#ResourceNotFoundException", "Message": "..."}
            let type = string("__type") ?? response.header("x-amzn-ErrorType") ?? "HTTP\(response.status)"
            let code = String(type.split(separator: "#").last ?? Substring(type)).split(separator: ":").first.map(String.init) ?? type
            let message = string("Message") ?? string("message") ?? "Secrets Manager answered \(response.status)"
            let retryable = response.status >= 500 || response.status == 429 || code.contains("Throttl") || code == "RequestTimeout"
            throw AWSError(code: code, message: String(message.prefix(300)), isPermanent: !retryable)
        }
        guard let secret = string("SecretString") else {
            throw AWSError(code: "NoSecretString", message: "the secret has no SecretString (binary secrets are not supported)", isPermanent: true)
        }
        return SecretValue(secretString: secret, versionId: string("VersionId"))
    }

    /// A JSON string as Python's json.dumps writes it (ensure_ascii: non-ASCII as \uXXXX).
    static func pythonJSONString(_ text: String) -> String {
        var out = "\""
        for unit in text.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(UInt8(unit)))
            default:
                let hex = String(unit, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        return out + "\""
    }
}
