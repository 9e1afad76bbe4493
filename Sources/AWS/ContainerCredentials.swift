import Glibc
import HTTPClient
import JSON
import Net

/// The ECS container credentials endpoint (the task role's credentials): the agent serves them at
/// `http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`; other hosts (EKS Pod Identity,
/// local tools) give `AWS_CONTAINER_CREDENTIALS_FULL_URI` and an authorization token, inline or
/// in a file re-read at every call (EKS rotates it). As in the AWS SDKs, a full URI over plain
/// HTTP must point at loopback or the ECS/EKS link-local addresses; HTTPS may point anywhere.
public struct ContainerCredentialsEndpoint: Sendable, CustomStringConvertible {
    public enum Authorization: Sendable {
        case token(String)
        case file(String)
    }

    public let url: HTTPClientURL
    public let authorization: Authorization?

    public static let ecsHost = "169.254.170.2"
    /// Hosts a plain-HTTP full URI may name (botocore's and the Java SDK's allow-list).
    static let allowedPlainHosts: Set<String> = ["127.0.0.1", "localhost", "::1", "169.254.170.2", "169.254.170.23", "fd00:ec2::23"]

    /// From the environment; nil when neither variable is set.
    public static func resolve(environment: [String: String]) throws(AWSConfigurationError) -> ContainerCredentialsEndpoint? {
        let url: HTTPClientURL
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], !relative.isEmpty {
            guard relative.hasPrefix("/"), let parsed = HTTPClientURL("http://\(ecsHost)\(relative)") else {
                throw AWSConfigurationError(setting: "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", message: "must be a path starting with /")
            }
            url = parsed
        } else if let full = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"], !full.isEmpty {
            guard let parsed = HTTPClientURL(full) else {
                throw AWSConfigurationError(setting: "AWS_CONTAINER_CREDENTIALS_FULL_URI", message: "must be an http:// or https:// URL")
            }
            guard parsed.isTLS || allowedPlainHosts.contains(parsed.host) || isLoopbackIPv4(parsed.host) else {
                throw AWSConfigurationError(setting: "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                            message: "plain http is allowed only for loopback and the ECS/EKS link-local addresses; use https")
            }
            url = parsed
        } else {
            return nil
        }
        var authorization: Authorization?
        if let file = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"], !file.isEmpty {
            authorization = .file(file)
        } else if let token = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"], !token.isEmpty {
            guard HTTPClient.isFieldSafe(token, allowSpace: true) else {
                throw AWSConfigurationError(setting: "AWS_CONTAINER_AUTHORIZATION_TOKEN", message: "contains a line break or control character")
            }
            authorization = .token(token)
        }
        return ContainerCredentialsEndpoint(url: url, authorization: authorization)
    }

    /// 127.0.0.0/8 as an address literal (a name such as `127.0.0.1.example.com` is not loopback).
    static func isLoopbackIPv4(_ host: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, host, &address) == 1 && host.hasPrefix("127.")
    }

    /// Fetches the credentials. Blocking: call off the loops.
    public func fetch(client: HTTPClient) throws(AWSError) -> AWSCredentials {
        var headers: [(name: String, value: String)] = [("Accept", "application/json"), ("User-Agent", "todo-api")]
        switch authorization {
        case .token(let token):
            headers.append(("Authorization", token))
        case .file(let path):
            guard let text = FileBytes.text(path)?.trimmingWhitespace, !text.isEmpty, HTTPClient.isFieldSafe(text, allowSpace: true) else {
                throw AWSError(code: "AuthorizationTokenFile", message: "cannot read a usable token from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (\(path))")
            }
            headers.append(("Authorization", text))
        case nil:
            break
        }
        let response: HTTPClientResponse
        do {
            response = try client.perform(HTTPClientRequest(method: "GET", url: url, headers: headers))
        } catch {
            throw AWSError(code: "CredentialsEndpointUnreachable", message: "container credentials endpoint \(url.hostField): \(error.message)")
        }
        guard response.status == 200 else {
            throw AWSError(code: "CredentialsEndpointError", message: "container credentials endpoint \(url.hostField) answered \(response.status)",
                           isPermanent: (400..<500).contains(response.status) && response.status != 429)
        }
        return try Self.parse(response.body)
    }

    /// `{"AccessKeyId","SecretAccessKey","Token","Expiration"}`; the error never quotes the body.
    static func parse(_ body: [UInt8]) throws(AWSError) -> AWSCredentials {
        let malformed = AWSError(code: "MalformedCredentials", message: "the container credentials endpoint's answer lacks AccessKeyId, SecretAccessKey or a valid Expiration")
        guard case .object(let members)? = try? JSONParser.parse(body) else { throw malformed }
        func string(_ key: String) -> String? {
            if case .string(let value)? = members.first(where: { $0.key == key })?.value, !value.isEmpty { return value }
            return nil
        }
        guard let keyId = string("AccessKeyId"), let secret = string("SecretAccessKey") else { throw malformed }
        var expiration: Int64?
        if let text = string("Expiration") {
            guard let seconds = AWSTime.parse(text) else { throw malformed }
            expiration = seconds
        }
        return AWSCredentials(accessKeyId: keyId, secretAccessKey: secret, sessionToken: string("Token"), expiration: expiration)
    }

    public var description: String { url.description }
}
