@testable import HTTP

/// Feeds a parser the way a connection does (keeping unconsumed bytes and appending new ones)
/// and records what came out, so the same request can be fed whole or split anywhere.
struct ParsedRequest: Equatable {
    var method: String
    var target: String
    var version: HTTPVersion
    var fields: [String]
    var body: [UInt8]
    var keepAlive: Bool
    var expectsContinue: Bool
}

struct ParseOutcome: Equatable {
    var requests: [ParsedRequest] = []
    var error: HTTPParseError?
    /// Bytes left unconsumed when input ended (a partial request).
    var leftover = 0
}

func parse(_ chunks: [[UInt8]], limits: HTTPLimits = HTTPLimits()) -> ParseOutcome {
    var parser = HTTPParser(limits: limits)
    var pending: [UInt8] = []
    var outcome = ParseOutcome()
    var current: ParsedRequest?
    for chunk in chunks {
        pending += chunk
        var stop = false
        while !stop {
            let (event, consumed) = pending.withUnsafeBytes { parser.parse($0) }
            switch event {
            case .needMore:
                stop = true
            case .head(let head):
                current = ParsedRequest(
                    method: head.method.description, target: head.target, version: head.version,
                    fields: head.fields.map { "\($0.name): \($0.value)" }, body: [],
                    keepAlive: head.keepAlive, expectsContinue: head.expectsContinue)
            case .body(let range):
                current!.body += pending[range]
            case .end:
                outcome.requests.append(current!)
                current = nil
            case .error(let error):
                outcome.error = error
                return outcome
            }
            pending.removeFirst(consumed)
        }
    }
    outcome.leftover = pending.count
    return outcome
}

func parse(_ text: String, limits: HTTPLimits = HTTPLimits()) -> ParseOutcome {
    parse([Array(text.utf8)], limits: limits)
}

/// Every way of cutting `bytes` in two, plus byte-at-a-time.
func splits(_ bytes: [UInt8]) -> [[[UInt8]]] {
    var result: [[[UInt8]]] = [bytes.map { [$0] }]
    for cut in 0...bytes.count {
        result.append([Array(bytes[..<cut]), Array(bytes[cut...])])
    }
    return result
}
