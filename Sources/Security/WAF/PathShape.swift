import Glibc
/// A path the application serves whose every possible value is inert: literal segments of
/// lower-case letters, digits and `-`, and `{uuid}` segments (8-4-4-4-12 hex digits). A request
/// path that matches a shape exactly (as sent: no `%`, no `.`, no `:`, nothing a decoding could
/// turn into syntax) skips the path content rules: such bytes carry no attack syntax — AWS WAF's
/// scope-down statements serve the same purpose. Everything else in the request is still
/// inspected; a path that deviates by one byte gets every rule.
///
/// Why: on `GET /todos/{id}` the path rules were the filter's largest cost (about 2 µs of 25,
/// measured with perf), spent proving that a UUID is not a traversal, a command or a metadata
/// address. `FastPathTests` runs the full rules over 20,000 random paths of each shape and they
/// match nothing. (One change is visible: an id whose last group is all digits spelling
/// 169.254.169.254 in octal, `…-025177524776`, was refused as a metadata address before; such an
/// id names a todo at most, never an address, so it now passes.)
public struct PathShape: Sendable, CustomStringConvertible {
    /// A literal (`length` bytes of `literals` from `start`) or a UUID. Plain values, so matching
    /// copies nothing reference-counted (an enum with an array payload retained one per segment).
    struct Segment: Sendable, Equatable {
        let start: Int
        let length: Int
        let isUUID: Bool
    }

    let segments: [Segment]
    let literals: [UInt8]
    public let description: String

    /// `"/todos/{uuid}"`; nil when a literal segment holds anything but `a-z`, `0-9` and `-`.
    public init?(_ pattern: String) {
        guard pattern.hasPrefix("/") else { return nil }
        var segments: [Segment] = []
        var literals: [UInt8] = []
        for part in pattern.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if part.elementsEqual("{uuid}".utf8) {
                segments.append(Segment(start: 0, length: 36, isUUID: true))
            } else {
                guard !part.isEmpty, part.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }) else { return nil }
                segments.append(Segment(start: literals.count, length: part.count, isUUID: false))
                literals += part
            }
        }
        self.segments = segments
        self.literals = literals
        description = pattern
    }

    func matches(_ path: Substring) -> Bool {
        var path = path
        return path.withUTF8 { matches($0) }
    }

    /// On the path's bytes: a request checks every shape, and reading the substring's bytes once
    /// for all of them saves a copy of it per shape; literals compare with `memcmp`, not byte by
    /// byte (together ~100 instructions a `GET /health`, the third shape, perf).
    func matches(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        segments.withUnsafeBufferPointer { segments in
            literals.withUnsafeBufferPointer { literals in
                guard bytes.first == 0x2F else { return false }
                var i = 1
                for n in 0..<segments.count {
                    let segment = segments[n]
                    if n > 0 {
                        guard i < bytes.count, bytes[i] == 0x2F else { return false }
                        i += 1
                    }
                    guard i + segment.length <= bytes.count else { return false }
                    if segment.isUUID {
                        guard UUIDSyntax.isValid(bytes, at: i) else { return false }
                    } else if segment.length > 0 {
                        guard memcmp(bytes.baseAddress! + i, literals.baseAddress! + segment.start, segment.length) == 0 else { return false }
                    }
                    i += segment.length
                }
                return i == bytes.count
            }
        }
    }
}
