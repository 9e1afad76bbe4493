import Testing
@testable import HTTP

/// The bitmaps and word-at-a-time checks of the parser agree with the grammar written out.
struct ByteClassTests {
    /// RFC 9110 §5.6.2 tchar, as listed there.
    @Test func tokenBytesAreTheGrammarsList() {
        let tchar = Set(Array("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8))
        for value in 0...255 {
            #expect(ASCII.isToken(UInt8(value)) == tchar.contains(UInt8(value)), "byte \(value)")
        }
    }

    /// RFC 3986 §3.2.2 reg-name bytes (unreserved / sub-delims; pct-encoded is handled apart), as
    /// listed there.
    @Test func regNameBytesAreTheGrammarsList() {
        let listed = Set(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=".utf8))
        for value in 0...255 {
            let byte = UInt8(value)
            #expect(HostSyntax.isRegNameByte(byte) == listed.contains(byte), "byte \(value)")
        }
    }

    /// Every byte at every position of a 19-byte value (two words and a tail).
    @Test func fieldValueCheckMatchesTheByteRule() {
        for value in 0...255 {
            for position in 0..<19 {
                var bytes = Array(repeating: UInt8(ascii: "v"), count: 19)
                bytes[position] = UInt8(value)
                let expected = ASCII.isFieldValueByte(UInt8(value))
                #expect(bytes.withUnsafeBytes { ASCII.areFieldValueBytes($0) } == expected, "byte \(value) at \(position)")
            }
        }
    }

    @Test func methodsAreRecognisedExactly() {
        let known: [(String, HTTPMethod)] = [("GET", .get), ("PUT", .put), ("POST", .post), ("HEAD", .head), ("PATCH", .patch),
                                             ("TRACE", .trace), ("DELETE", .delete), ("OPTIONS", .options), ("CONNECT", .connect)]
        for (name, method) in known {
            #expect(Array(name.utf8).withUnsafeBytes { HTTPMethod(bytes: $0) } == method)
            for other in [name.lowercased(), name + "X", String(name.dropLast()), "X" + name.dropFirst()] {
                #expect(Array(other.utf8).withUnsafeBytes { HTTPMethod(bytes: $0) } == .other(other), "\(other)")
            }
        }
        #expect(Array("PROPFIND".utf8).withUnsafeBytes { HTTPMethod(bytes: $0) } == .other("PROPFIND"))
    }
}
