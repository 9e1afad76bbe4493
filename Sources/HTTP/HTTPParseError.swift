/// Why a request could not be framed. Every case ends the connection after one error response:
/// once framing is in doubt, the next request's first byte is unknown (request smuggling).
public enum HTTPParseError: Error, Equatable, Sendable {
    case invalidRequestLine
    case invalidMethod
    case invalidTarget
    case invalidVersion
    case unsupportedVersion
    case requestLineTooLong
    case headerSectionTooLarge
    case headerFieldTooLarge
    case tooManyHeaderFields
    case bareLineFeed
    case obsoleteLineFolding
    case whitespaceBeforeColon
    case invalidFieldName
    case invalidFieldValue
    case missingHost
    case repeatedHost
    case invalidHost
    case invalidContentLength
    case conflictingContentLength
    case contentLengthWithTransferEncoding
    case unsupportedTransferEncoding
    case invalidChunkSize
    case invalidChunkExtension
    case invalidChunkTerminator
    case invalidTrailer
    /// `limit`: the configured maximum, named in the answer.
    case bodyTooLarge(limit: Int)
    case unsupportedExpectation

    /// The status the connection answers with (RFC 9110 §15, RFC 9112).
    public var status: HTTPStatus {
        switch self {
        case .requestLineTooLong: .uriTooLong
        case .headerSectionTooLarge, .headerFieldTooLarge, .tooManyHeaderFields: .requestHeaderFieldsTooLarge
        case .bodyTooLarge: .contentTooLarge
        case .unsupportedVersion: .httpVersionNotSupported
        case .unsupportedExpectation: .expectationFailed
        default: .badRequest
        }
    }

    /// A sentence for the JSON error body; says what is wrong, not how the parser works.
    public var detail: String {
        switch self {
        case .invalidRequestLine: "The request line is malformed."
        case .invalidMethod: "The request method is not a valid token."
        case .invalidTarget: "The request target is malformed."
        case .invalidVersion: "The HTTP version is malformed."
        case .unsupportedVersion: "Only HTTP/1.0 and HTTP/1.1 are supported."
        case .requestLineTooLong: "The request line is too long."
        case .headerSectionTooLarge: "The header section is too large."
        case .headerFieldTooLarge: "A header field is larger than 16 KiB."
        case .tooManyHeaderFields: "There are too many header fields."
        case .bareLineFeed: "Lines must end with CRLF."
        case .obsoleteLineFolding: "Obsolete line folding is not accepted."
        case .whitespaceBeforeColon: "Whitespace between a header field name and the colon is not allowed."
        case .invalidFieldName: "A header field name contains an invalid character."
        case .invalidFieldValue: "A header field value contains an invalid character."
        case .missingHost: "HTTP/1.1 requests must carry a Host header."
        case .repeatedHost: "The Host header must appear once."
        case .invalidHost: "The Host header is not a valid host[:port]."
        case .invalidContentLength: "Content-Length is not a valid number."
        case .conflictingContentLength: "Content-Length values differ."
        case .contentLengthWithTransferEncoding: "Content-Length and Transfer-Encoding must not both be present."
        case .unsupportedTransferEncoding: "Only the chunked transfer coding is supported."
        case .invalidChunkSize: "A chunk size is malformed."
        case .invalidChunkExtension: "A chunk extension is malformed or too long."
        case .invalidChunkTerminator: "Chunk data must be followed by CRLF."
        case .invalidTrailer: "The trailer section is malformed."
        case .bodyTooLarge(let limit): "The request body is larger than the limit of \(limit) bytes (MAX_BODY_SIZE)."
        case .unsupportedExpectation: "Only the 100-continue expectation is supported."
        }
    }
}
