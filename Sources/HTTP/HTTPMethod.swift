/// Request methods (RFC 9110 §9). Known ones are enum cases so that routing compares integers;
/// any other syntactically valid token is kept as `.other`.
public enum HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    case get, head, post, put, delete, patch, options, trace, connect
    case other(String)

    init(bytes: UnsafeRawBufferPointer) {
        // The name packed into an integer (first byte lowest) and compared with the names packed
        // the same way (the generic `elementsEqual` over each literal's UTF-8 view cost ~250
        // instructions a request; `ByteClassTests` checks every method and near misses).
        var packed: UInt64 = 0
        if bytes.count <= 7 {
            for (i, b) in bytes.enumerated() { packed |= UInt64(b) << (8 * UInt64(i)) }
        }
        switch (bytes.count, packed) {
        case (3, 0x544547): self = .get  // GET
        case (3, 0x545550): self = .put  // PUT
        case (4, 0x54534F50): self = .post  // POST
        case (4, 0x44414548): self = .head  // HEAD
        case (5, 0x4843544150): self = .patch  // PATCH
        case (5, 0x4543415254): self = .trace  // TRACE
        case (6, 0x4554454C4544): self = .delete  // DELETE
        case (7, 0x534E4F4954504F): self = .options  // OPTIONS
        case (7, 0x5443454E4E4F43): self = .connect  // CONNECT
        default: self = .other(String(decoding: bytes, as: UTF8.self))
        }
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
