import HTTP
@testable import Security

/// A request as the server would hand it to the filter: parsed by the real HTTP parser.
func makeRequest(method: String = "GET", target: String, host: String = "api.example.com",
                 headers: [(String, String)] = [("User-Agent", "Mozilla/5.0")], body: String? = nil) -> HTTPRequest {
    var text = "\(method) \(target) HTTP/1.1\r\nHost: \(host)\r\n"
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
    text += "\r\n" + (body ?? "")
    let bytes = Array(text.utf8)
    var limits = HTTPLimits()
    limits.maxBodyBytes = 1 << 20  // the filter's own size rule is under test, not the parser's
    var parser = HTTPParser(limits: limits)
    var head: HTTPRequestHead?
    var payload: [UInt8] = []
    var offset = 0
    while offset <= bytes.count {
        let (event, used) = bytes[offset...].withUnsafeBytes { parser.parse($0) }
        switch event {
        case .head(let h): head = h
        case .body(let range): payload += bytes[(offset + range.lowerBound)..<(offset + range.upperBound)]
        case .end: return HTTPRequest(head: head!, body: payload, requestID: "test-1")
        case .needMore, .error: fatalError("test request does not parse: \(text)")
        }
        offset += used
    }
    fatalError("unreachable")
}

let remotePeer = IPAddress("203.0.113.7")!

func verdict(_ request: HTTPRequest, configuration: WAFConfiguration = WAFConfiguration(), peer: IPAddress = remotePeer) -> RequestInspector.Verdict {
    RequestInspector(configuration: configuration).inspect(request, client: peer, peer: peer)
}

/// The rule that blocks `payload` as a query value, a JSON field, a header, or nil.
func blockingRule(query payload: String) -> WAFRule? {
    verdict(makeRequest(target: "/todos?q=" + percentEncode(payload))).blocking?.rule
}

func blockingRule(title payload: String) -> WAFRule? {
    var json = "{\"title\":\""
    for scalar in payload.unicodeScalars {
        switch scalar {
        case "\"": json += "\\\""
        case "\\": json += "\\\\"
        case "\n": json += "\\n"
        case _ where scalar.value < 0x20: json += "\\u00" + String(scalar.value, radix: 16).leftPadded(2)
        default: json.unicodeScalars.append(scalar)
        }
    }
    json += "\"}"
    return verdict(makeRequest(method: "POST", target: "/todos", headers: [("User-Agent", "Mozilla/5.0"), ("Content-Type", "application/json")], body: json)).blocking?.rule
}

func percentEncode(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        if (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A) || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x7E {
            out.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(2)
        }
    }
    return out
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
