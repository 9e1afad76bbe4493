import HTTP

/// `a=1&b=two+words&c=%E3%81%82` → [("a","1"), ("b","two words"), ("c","あ")]
/// (application/x-www-form-urlencoded: `+` is a space). Nil when an escape is malformed or the
/// result is not UTF-8.
enum QueryString {
    static func parse(_ query: Substring?) -> [(name: String, value: String)]? {
        guard let query, !query.isEmpty else { return [] }
        var pairs: [(name: String, value: String)] = []
        for part in query.split(separator: "&", omittingEmptySubsequences: true) {
            let equals = part.firstIndex(of: "=")
            let rawName = equals.map { part[..<$0] } ?? part
            let rawValue = equals.map { part[part.index(after: $0)...] } ?? ""
            guard let name = PercentDecoding.decode(Substring(rawName.replacingPlus)),
                  let value = PercentDecoding.decode(Substring(rawValue.replacingPlus)) else { return nil }
            pairs.append((name, value))
        }
        return pairs
    }
}

extension Substring {
    var replacingPlus: String { String(map { $0 == "+" ? " " : $0 }) }
}
