extension AttackPatterns {
    static let noSQLScriptMarkers = MarkerSet(["db.injection", "db.getcollectionnames", "this.constructor", "';it="])
    static let noSQLOperatorMarkers = MarkerSet(["[$ne]", "[$gt]", "[$lt]", "[$gte]", "[$lte]", "[$regex]", "[$where]", "[$exists]", "[$nin]", "[$in]", "[$or]", "[$and]", "[$expr]", "[$elemmatch]",
                                 "{\"$ne\"", "{\"$gt\"", "{\"$lt\"", "{\"$gte\"", "{\"$regex\"", "{\"$where\"", "{\"$exists\"", "{\"$nin\"", "{\"$or\"", "{\"$expr\"",
                                 "{$ne:", "{$gt:", "{$where:", "{$regex:", "\"$where\"", "$where:", "db.getcollection", "db.users.find", "this.password", "';return", "'; return", "\";return", "\"; return", "||'1'=='1", "|| '1'=='1", "== '1", "=='1"])

    // MARK: NoSQL operator injection, CRLF injection

    static let mongoOperators: Set<String> = ["ne", "eq", "gt", "gte", "lt", "lte", "in", "nin", "or", "and", "not", "nor", "regex", "where",
                                              "exists", "expr", "elemmatch", "comment", "size", "type", "mod", "all", "jsonschema", "text", "function", "accumulator"]

    static func noSQLInjection(_ s: [UInt8]) -> String? {
        // `$op` followed by `:` (optionally after a quote) or `]`: a query operator where a value belongs
        var from = 0
        while let dollar = s[from...].firstIndex(of: 0x24) {
            from = dollar + 1
            var j = dollar + 1
            while j < s.count && s[j] >= 0x61 && s[j] <= 0x7A { j += 1 }
            guard j > dollar + 1, j - dollar <= 13, mongoOperators.contains(String(decoding: s[(dollar + 1)..<j], as: UTF8.self)) else { continue }
            var k = j
            if k < s.count && (s[k] == 0x22 || s[k] == 0x27) { k += 1 }
            while k < s.count && s[k] == 0x20 { k += 1 }
            if k < s.count && (s[k] == 0x3A || s[k] == 0x5D) && (dollar == 0 || [0x7B, 0x5B, 0x22, 0x27, 0x20, 0x2C].contains(s[dollar - 1])) { return "nosql operator" }
        }
        if Self.noSQLScriptMarkers.contains(in: s) { return "nosql javascript" }
        if Self.noSQLOperatorMarkers.contains(in: s) { return "nosql operator" }
        return nil
    }

    static func crlfInjection(_ s: [UInt8], strict: Bool = false) -> String? {
        guard s.contains(0x0A) || s.contains(0x0D) else { return nil }
        if strict {
            // In a parameter any line break followed by `Name:` is a header being written.
            var i = 0
            while let nl = s[i...].firstIndex(where: { $0 == 0x0A || $0 == 0x0D }) {
                var j = nl + 1
                while j < s.count && (s[j] == 0x0A || s[j] == 0x0D || s[j] == 0x20) { j += 1 }
                let start = j
                while j < s.count && ((s[j] >= 0x61 && s[j] <= 0x7A) || (s[j] >= 0x30 && s[j] <= 0x39) || s[j] == 0x2D) { j += 1 }
                if j - start >= 2 && j < s.count && s[j] == 0x3A { return "header injection" }
                i = nl + 1
            }
        }
        for header: StaticString in ["set-cookie:", "location:", "content-type:", "content-length:", "x-xss-protection:", "refresh:", "http/1.", "access-control-allow-origin:", "host:", "x-forwarded-for:", "<script", "<html"] {
            var from = 0
            while let at = s.firstIndex(of: header, from: from) {
                from = at + 1
                var k = at
                while k > 0 && (s[k - 1] == 0x20 || s[k - 1] == 0x09) { k -= 1 }
                if k > 0 && (s[k - 1] == 0x0A || s[k - 1] == 0x0D) { return "header injection" }
            }
        }
        return nil
    }
}
