import Net

/// Decides on a token fingerprint whether text is a SQL injection. The patterns are the shapes an
/// injection must have to do anything (libinjection's insight): break out of a literal and join
/// a condition (`s&1o1`), comment the rest away (`sc`), stack a statement (`;E…`), append a UNION
/// SELECT, call a delay or file function, or open a subquery after an operator. English prose
/// tokenizes into barewords with the odd string and operator and matches none of them:
/// "Select the venue; drop off the kids -- or not" is `Enn;Ennnc&o` — `;E` needs a statement's
/// shape after it (`drop table`, `select *`, `select 1`), and "drop off" is not one.
enum SQLInjectionDetector {
    /// The reason a fingerprint matched, for the security log.
    /// `strict`: false for free text, where a whole `SELECT … FROM … WHERE` is more likely a
    /// developer's note than an attack (injections still need a break, a UNION or a `;`).
    static func detect(_ normalized: [UInt8], strict: Bool = true) -> String? {
        // Fast exit: no SQL-significant punctuation and no space means no injection shape.
        var interesting = false
        for b in normalized where b == 0x20 || b == 0x27 || b == 0x22 || b == 0x3B || b == 0x28 || b == 0x23 || b == 0x2D || b == 0x2F || b == 0x40 || b == 0x3D || b == 0x7C || b == 0x26 {
            interesting = true
            break
        }
        guard interesting else { return nil }
        if isPlainProse(normalized) { return nil }
        // A closed comment is white space to SQL (`1/**/or/**/sleep(5)`); MySQL also joins the
        // words around an empty one (`UN/**/ION`): both readings are tried.
        if let reason = detectIn(normalized, strict: strict) { return reason }
        if normalized.containsBytes("/*") {
            let joined = SQLTokenizer.joinSplitWords(normalized)
            if joined != normalized, let reason = detectIn(joined, strict: strict) { return reason }
        }
        return nil
    }

    private static func detectIn(_ text: [UInt8], strict: Bool) -> String? {
        if let reason = check(SQLTokenizer.tokenize(text, openQuote: nil), brokeOut: false, strict: strict) { return reason }
        for quote: UInt8 in [0x27, 0x22] where text.contains(quote) {
            let tokens = SQLTokenizer.tokenize(text, openQuote: quote)
            // The assumed literal must end inside the input, or nothing was broken out of.
            guard tokens.first?.closed == true else { continue }
            if let reason = check(tokens, brokeOut: true, strict: strict) { return reason }
        }
        return nil
    }

    static func check(_ t: [SQLToken], brokeOut: Bool, strict: Bool = true) -> String? {
        let n = t.count
        func kind(_ i: Int) -> SQLToken.Kind? { i < n && i >= 0 ? t[i].kind : nil }
        func word(_ i: Int) -> String { i < n && i >= 0 ? t[i].word : "" }
        func isOperand(_ i: Int) -> Bool {
            guard let k = kind(i) else { return false }
            return k == .number || k == .string || k == .bareword || k == .variable || k == .function
        }

        if kind(0) == .statement, ["declare", "exec", "execute", "waitfor", "shutdown"].contains(word(0)), let reason = stackedStatement(t, at: 0) {
            // (`EXEC sp_rename …` in a DBA's todo is T-SQL, not an attack; `exec xp_cmdshell` is.)
            if word(0) != "exec" && word(0) != "execute" || kind(1) == .open || kind(1) == .variable || word(1).hasPrefix("xp_") { return reason }
        }
        for i in 0..<n {
            switch t[i].kind {
            case .union:
                // UNION [ALL|DISTINCT] [(] SELECT
                var j = i + 1
                if kind(j) == .keyword && (word(j) == "all" || word(j) == "distinct") { j += 1 }
                if kind(j) == .open { j += 1 }
                if kind(j) == .statement && word(j) == "select" { return "union select" }
            case .semicolon:
                if let reason = stackedStatement(t, at: i + 1) { return reason }
            case .function:
                if SQLWords.dangerousFunctions.contains(t[i].word) { return "call of \(word(i))" }
                // char(65,66), concat(0x7e, …): building strings out of codes
                if ["char", "chr", "nchar", "concat", "concat_ws"].contains(word(i)), kind(i + 1) == .open,
                   kind(i + 2) == .number, kind(i + 3) == .comma || kind(i + 3) == .close && kind(i + 4) != nil {
                    return "string built from codes"
                }
            case .bareword:
                let w = word(i)
                // Every procedure and catalog name below has 6+ bytes and a `_` or `.`, or starts
                // with `sys`/`msys`: other words (prose: every word of a todo's title) skip the two
                // dozen string comparisons (String's slow compare path was 1 % of a `POST`, perf).
                guard Self.mayNameSystemObject(w) else { continue }
                if Self.storedProcedures.contains(w) || w.hasPrefix(Self.registryProcedurePrefix) { return "stored procedure \(w)" }
                if Self.systemCatalogs.contains(w) || w.hasPrefix(Self.schemaCatalogPrefix) {
                    if kind(i - 1) == .keyword && word(i - 1) == "from" { return "system catalog \(w)" }
                    if kind(i - 1) == .op || kind(i - 1) == .logic || kind(i - 1) == .open { return "system catalog \(w)" }
                }
            case .variable:
                if t[i].word.hasPrefix("@@") { return "server variable" }
            case .open:
                // An operator, a condition or a literal, then a subquery: `=(select`, `and (select`
                if kind(i + 1) == .statement && word(i + 1) == "select" && i > 0,
                   let before = kind(i - 1), [.op, .logic, .string, .number, .open, .function, .comma].contains(before) {
                    if before == .comma || before == .open {
                        // `(select` inside a call or a list: only when the call is SQL's
                        if i >= 2 && (kind(i - 2) == .function || kind(i - 2) == .op || kind(i - 2) == .logic) || before == .open && kind(i - 2) == .function { return "subquery" }
                    } else {
                        return "subquery"
                    }
                }
            case .statement:
                let w = word(i)
                if w == "waitfor", kind(i + 1) == .keyword, word(i + 1) == "delay" || word(i + 1) == "time" { return "waitfor delay" }
                if w == "select", strict, let reason = fullSelect(t, at: i) { return reason }
                // `select version();`, `select current_user--`: a whole statement probing the server
                if w == "select", i == 0, kind(1) == .function, let close = (2..<n).first(where: { kind($0) == .close }),
                   close + 1 == n || kind(close + 1) == .semicolon || kind(close + 1) == .comment { return "select probe" }
            case .keyword:
                let w = word(i)
                if w == "into", kind(i + 1) == .keyword, word(i + 1) == "outfile" || word(i + 1) == "dumpfile" { return "into outfile" }
                // `1 order by 5--`, `' order by 3#`, ` ORDER BY 13-- `: column probing
                if (w == "order" || w == "group"), kind(i + 1) == .keyword, word(i + 1) == "by", kind(i + 2) == .number,
                   i == 0 && kind(i + 3) == .comment || i > 0 && (kind(i - 1) == .string || kind(i - 1) == .number || kind(i - 1) == .close)
                   && (kind(i + 3) == nil || kind(i + 3) == .comment || kind(i + 3) == .comma) {
                    return "order by probe"
                }
                // ` WHERE 1=1 AND 1=0--`: a clause appended where a value was expected
                if w == "where", i == 0, kind(1) == .number || kind(1) == .string, kind(2) == .op, kind(3) == .number || kind(3) == .string,
                   kind(4) == .logic || kind(4) == .comment { return "where clause" }
                if w == "having", isOperand(i + 1), kind(i + 2) == .op, isOperand(i + 3) { return "having probe" }
                // `exists(select …)`, `in (select …)`
                if (w == "exists" || w == "in") && kind(i + 1) == .open && kind(i + 2) == .statement && word(i + 2) == "select" { return "subquery" }
            default:
                break
            }
        }

        // A condition appended after breaking out of a literal (`x' or 1=1`, `') or ('a'='a`), or
        // after a number (`1 or 1=1`, `1 and sleep(5)`), or on its own (`or 1=1`).
        var start = 0
        let leadIsBreak = brokeOut && kind(0) == .string
        // `-1 or 1=1`: a signed number
        let signed = kind(0) == .op && (word(0) == "-" || word(0) == "+") && kind(1) == .number
        let leadIsNumber = kind(0) == .number || signed
        if leadIsBreak || leadIsNumber {
            start = signed ? 2 : 1
            while kind(start) == .close { start += 1 }
            // `' insert into …`, `'exec sp_addlogin …`, `1 waitfor delay …`: a statement right
            // after the break, without a semicolon
            // (Not SELECT: `("SELECT 1")` in a code snippet breaks out of nothing; UNION and the
            // conditions below catch the injections that use it.)
            if leadIsBreak, kind(start) == .statement, word(start) != "select", let reason = stackedStatement(t, at: start) { return reason }
            if leadIsBreak {
                // `admin'--`, `admin')#`, `x';--`: the rest of the statement commented away. An
                // injected value is short and so is what trails the comment; prose is neither
                // (`see <a href="#top"> back to top`, `"-- legacy, remove in v3"`).
                var j = start
                if kind(j) == .semicolon { j += 1 }
                if kind(j) == .comment, strict || t[0].length <= 32 && t[j].length <= 12 { return "literal closed and commented out" }
                // `'='`, `' = 1--`, `'||'`: a comparison or concatenation straight after the break
                if kind(start) == .op, ["=", "<>", "!=", "<", ">", "<=", ">=", "||", "-", "=="].contains(word(start)), isOperand(start + 1),
                   kind(start + 2) == nil || kind(start + 2) == .comment || kind(start + 2) == .logic || kind(start + 2) == .op {
                    if word(start) != "-" || kind(start + 1) != .bareword { return "literal closed and compared" }
                }
            }
        } else if kind(0) == .logic {
            start = 0
        } else {
            return nil
        }
        guard kind(start) == .logic else { return nil }
        var j = start + 1
        if kind(j) == .op && word(j) == "not" { j += 1 }
        while kind(j) == .open { j += 1 }
        guard let operandKind = kind(j) else { return nil }
        if operandKind == .function { return "condition with a call" }
        if operandKind == .statement && word(j) == "select" { return "condition with a subquery" }
        // After a break, SQL words count as operands too: `' or user like '%`, `' or (exists) --`
        guard isOperand(j) || leadIsBreak && operandKind == .keyword else { return nil }
        let after = kind(j + 1)
        if leadIsBreak && after == .open { return "condition with a call" }  // `' or isnull(1/0)`
        if after == .op {
            // `1=1`, `'a'='a`, `x like '%`; on its own (`or 1=1`) only between literals, since
            // "|| ping -c 10" is `&nono` too
            let literal: (SQLToken.Kind?) -> Bool = { $0 == .number || $0 == .string }
            if leadIsBreak || leadIsNumber {
                if isOperand(j + 2) || kind(j + 2) == .open { return "tautology" }
            } else if literal(operandKind) && literal(kind(j + 2)) {
                return "tautology"
            } else if isOperand(j + 2) && (kind(j + 3) == .comment || kind(j + 3) == nil && n > 0 && t[n - 1].kind == .comment) {
                return "condition commented off"  // `or x=y#`
            }
        }
        if leadIsBreak {
            if after == nil || after == .comment || after == .semicolon || after == .close { return "condition after a closed literal" }
            if after == .logic || after == .keyword && (word(j + 1) == "limit" || word(j + 1) == "order" || word(j + 1) == "group") { return "condition after a closed literal" }
        } else if leadIsNumber {
            if after == .comment { return "condition after a number" }
        }
        return nil
    }

    /// Lower-case letters and spaces whose words are plain names or clause keywords (`by`, `as`,
    /// `from`: `SQLWords.kind` nil or `.keyword`), none a system object's (`sys…`, `msys…`) and
    /// neither `outfile` nor `dumpfile`: every token would be a bareword or a keyword, and `check`
    /// flags no such list. Its keyword rules need a number, a literal, an operator or a bracket
    /// (`order by 3`, `where 1=1`, `exists (`) except `into outfile`; its bareword rules need a
    /// `_`, a `.` or a `sys` name; its conditions need a number, a literal or a logic word first.
    /// Prose such as "created by the benchmark" then skips the tokenizer, which made a `String`
    /// per word: ~3,300 instructions a value, two per `POST` (callgrind). `FastPathTests` holds
    /// the full path to the same answer on every SQL word.
    static func isPlainProse(_ text: [UInt8]) -> Bool {
        var start = -1
        for i in 0...text.count {
            let b = i < text.count ? text[i] : 0x20
            if b &- 0x61 < 26 {
                if start < 0 { start = i }
                continue
            }
            guard b == 0x20 else { return false }
            guard start >= 0 else { continue }
            defer { start = -1 }
            let length = i - start
            guard length <= 32 else { continue }  // a plain name to the tokenizer too
            // Only a word of an operator's shape is looked up (~120 instructions a word, most
            // words of prose are none: callgrind on `POST /todos`).
            if SQLWords.operatorShapes.mayHold(text, start, i) {
                switch SQLWords.kind(text, start, i) {
                case nil, .keyword?: break
                default: return false
                }
            }
            // Letters only here: of `mayNameSystemObject`, only the `sys`/`msys` start can hold.
            if length >= 6 {
                let s = text[start] == UInt8(ascii: "m") ? start + 1 : start
                if text[s] == UInt8(ascii: "s") && text[s + 1] == UInt8(ascii: "y") && text[s + 2] == UInt8(ascii: "s") { return false }
            }
            // Compared only at their lengths: two generic comparisons with every word were ~200
            // instructions a word (callgrind).
            if length == 7 && text[start..<i].elementsEqual("outfile".utf8) || length == 8 && text[start..<i].elementsEqual("dumpfile".utf8) { return false }
        }
        return true
    }

    /// Whether `word` could be one of the stored procedures or system catalogs `check` names:
    /// 6+ bytes, and a `_` or `.` in it or a `sys`/`msys` start (`FastPathTests` holds every name
    /// to this).
    static func mayNameSystemObject(_ word: String) -> Bool {
        word.withBorrowedUTF8 { mayNameSystemObject(bytes: $0[...]) }
    }

    /// `mayNameSystemObject` over a word's bytes. One pass (two `contains` and two `hasPrefix`
    /// cost ~350 instructions a word, callgrind).
    static func mayNameSystemObject<Bytes: RandomAccessCollection<UInt8>>(bytes: Bytes) -> Bool where Bytes.Index == Int {
        guard bytes.count >= 6 else { return false }
        for b in bytes where b == UInt8(ascii: "_") || b == UInt8(ascii: ".") { return true }
        let start = bytes.startIndex + (bytes.first == UInt8(ascii: "m") ? 1 : 0)
        return bytes[start] == UInt8(ascii: "s") && bytes[start + 1] == UInt8(ascii: "y") && bytes[start + 2] == UInt8(ascii: "s")
    }

    /// The names `check` looks for among barewords; each must pass `mayNameSystemObject`, and so
    /// must anything starting with the two prefixes (`FastPathTests`).
    static let storedProcedures = ["xp_cmdshell", "sp_oacreate", "sp_executesql"]
    static let registryProcedurePrefix = "xp_reg"
    static let systemCatalogs = ["information_schema", "information_schema.tables", "information_schema.columns", "sysobjects",
                                 "syscolumns", "sqlite_master", "pg_shadow", "mysql.user", "all_tables", "sys.tables",
                                 "pg_catalog.pg_tables", "msysobjects"]
    static let schemaCatalogPrefix = "information_schema."

    /// What may follow `;` to make it a second statement rather than a sentence.
    static func stackedStatement(_ t: [SQLToken], at i: Int) -> String? {
        // `; if 1=1 drop table …`, `; while 1=1 shutdown`, `; begin shutdown end`: T-SQL control flow
        if i + 1 < t.count, t[i].kind == .bareword || t[i].kind == .function, ["if", "while", "begin"].contains(t[i].word) {
            for j in (i + 1)..<min(t.count, i + 8) where t[j].kind == .statement {
                if let reason = stackedStatement(t, at: j) { return reason }
            }
        }
        guard i < t.count, t[i].kind == .statement else { return nil }
        let w = t[i].word
        let next = i + 1 < t.count ? t[i + 1] : nil
        let nextWord = next?.word ?? ""
        switch w {
        case "select":
            guard let next else { return nil }
            if [.op, .function, .number, .variable, .open].contains(next.kind) { return "stacked select" }
            if next.kind == .bareword, i + 2 < t.count, t[i + 2].kind == .comma || t[i + 2].kind == .keyword && t[i + 2].word == "from" { return "stacked select" }
        case "drop", "create", "alter", "truncate", "rename":
            if ["table", "database", "schema", "user", "view", "index", "procedure", "function", "trigger", "login", "column"].contains(nextWord) { return "stacked \(w)" }
        case "insert", "replace":
            if nextWord == "into" { return "stacked insert" }
        case "update":
            if i + 2 < t.count, next?.kind == .bareword, t[i + 2].kind == .keyword, t[i + 2].word == "set" { return "stacked update" }
        case "delete":
            if nextWord == "from" { return "stacked delete" }
        case "exec", "execute":
            if let next, next.kind == .bareword || next.kind == .open || next.kind == .variable || next.kind == .function { return "stacked exec" }
        case "call":
            // `; call proc(…)`; "…; call Bob" is a sentence
            if next?.kind == .bareword || next?.kind == .function, i + 2 < t.count, t[i + 2].kind == .open { return "stacked call" }
        case "shutdown":
            if next == nil || next?.kind == .comment || next?.kind == .semicolon || nextWord == "with" || nextWord == "immediate" { return "stacked shutdown" }
        case "copy":
            if next?.kind == .open || next?.kind == .bareword && i + 2 < t.count && (t[i + 2].kind == .keyword || t[i + 2].kind == .bareword && t[i + 2].word == "to") { return "stacked copy" }
        case "declare":
            if next?.kind == .variable { return "stacked declare" }
        case "waitfor":
            if nextWord == "delay" || nextWord == "time" { return "stacked waitfor" }
        case "grant", "revoke":
            if next?.kind == .keyword || next?.kind == .bareword && i + 2 < t.count { return "stacked \(w)" }
        default:
            break
        }
        return nil
    }

    /// `select <columns> from <table> where|limit|order|union|;|--`: a whole statement with a clause.
    static func fullSelect(_ t: [SQLToken], at i: Int) -> String? {
        var j = i + 1
        var columns = 0
        while j < t.count, [.bareword, .op, .function, .number, .comma, .open, .close, .variable, .string].contains(t[j].kind), columns < 16 {
            j += 1
            columns += 1
        }
        guard columns > 0, j < t.count, t[j].kind == .keyword, t[j].word == "from" else { return nil }
        j += 1
        guard j < t.count, t[j].kind == .bareword || t[j].kind == .open else { return nil }
        j += 1
        guard j < t.count else { return nil }
        let k = t[j]
        if k.kind == .keyword && ["where", "limit", "order", "group", "having"].contains(k.word) { return "select statement" }
        if k.kind == .comment || k.kind == .semicolon || k.kind == .union { return "select statement" }
        return nil
    }
}
