/// Request methods (RFC 9110 §9). Known ones are enum cases so that routing compares integers;
/// any other syntactically valid token is kept as `.other`.
public enum HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    case get, head, post, put, delete, patch, options, trace, connect
    case other(String)

    init(bytes: UnsafeRawBufferPointer) {
        switch bytes.count {
        case 3:
            if bytes.elementsEqual("GET".utf8) { self = .get; return }
            if bytes.elementsEqual("PUT".utf8) { self = .put; return }
        case 4:
            if bytes.elementsEqual("POST".utf8) { self = .post; return }
            if bytes.elementsEqual("HEAD".utf8) { self = .head; return }
        case 5:
            if bytes.elementsEqual("PATCH".utf8) { self = .patch; return }
            if bytes.elementsEqual("TRACE".utf8) { self = .trace; return }
        case 6:
            if bytes.elementsEqual("DELETE".utf8) { self = .delete; return }
        case 7:
            if bytes.elementsEqual("OPTIONS".utf8) { self = .options; return }
            if bytes.elementsEqual("CONNECT".utf8) { self = .connect; return }
        default: break
        }
        self = .other(String(decoding: bytes, as: UTF8.self))
    }

    public var description: String {
        switch self {
        case .get: "GET"
        case .head: "HEAD"
        case .post: "POST"
        case .put: "PUT"
        case .delete: "DELETE"
        case .patch: "PATCH"
        case .options: "OPTIONS"
        case .trace: "TRACE"
        case .connect: "CONNECT"
        case .other(let name): name
        }
    }
}

public enum HTTPVersion: Sendable, Equatable {
    case http1_0, http1_1
}
