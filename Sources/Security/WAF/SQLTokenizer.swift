import Net
/// A SQL lexer in the manner of libinjection: input is read as SQL would read it, every token
/// reduced to a one-letter type, and the resulting fingerprint (not keywords on their own) decides.
/// It runs on normalized (lower-cased) text, three times: as is, and as if the input began inside
/// a '…' or "…" literal that the application opened (the typical injection point).
struct SQLToken: Equatable {
    enum Kind: UInt8 {
        case string = 0x73      // s
        case number = 0x31      // 1 (also true, false, null)
        case bareword = 0x6E    // n
        case keyword = 0x6B     // k
        case statement = 0x45   // E  select, insert, drop, …
        case union = 0x55       // U  union, intersect, except
        case logic = 0x26       // &  and, or, xor, &&, ||
        case op = 0x6F          // o  = < > + - * / like in …
        case function = 0x66    // f  a known function followed by (
        case variable = 0x76    // v  @x, @@version
        case comment = 0x63     // c
        case open = 0x28        // (
        case close = 0x29       // )
        case comma = 0x2C       // ,
        case semicolon = 0x3B   // ;
        case other = 0x3F       // ?
    }

    var kind: Kind
    /// The word for barewords, keywords, statements, functions and variables (lower case); empty
    /// otherwise. Words up to 15 bytes are small strings (stored inline: no allocation per token).
    var word: String
    /// For strings: whether the closing quote was found.
    var closed = true
    /// For strings: the bytes inside; for comments: the bytes after the marker to the line end.
    var length = 0
}

enum SQLTokenizer {
    static let maxTokens = 64

    /// `openQuote`: the quote the input is assumed to start inside, or nil.
    static func tokenize(_ text: [UInt8], openQuote: UInt8?) -> [SQLToken] {
        var tokens: [SQLToken] = []
        var i = 0
        let n = text.count
        // At most one token per two bytes in prose ("created by the benchmark": 4), reserved at
        // once: growing 1, 2, 4, 8 was three allocations per tokenized value.
        tokens.reserveCapacity(min(maxTokens, n / 2 + 2))
        if let quote = openQuote {
            let (end, closed) = scanString(text, from: 0, quote: quote)
            tokens.append(SQLToken(kind: .string, word: "", closed: closed, length: end))
            i = end
        }
        while i < n && tokens.count < maxTokens {
            let b = text[i]
            switch b {
            case 0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C, 0xA0:
                i += 1
            case 0x27, 0x22:  // ' "
                let (end, closed) = scanString(text, from: i + 1, quote: b)
                tokens.append(SQLToken(kind: .string, word: "", closed: closed, length: end - i))
                i = end
            case 0x60:  // `identifier`
                var j = i + 1
                while j < n && text[j] != 0x60 { j += 1 }
                tokens.append(SQLToken(kind: .bareword, word: String(decoding: text[min(i + 1, n)..<j].prefix(15), as: UTF8.self)))
                i = min(j + 1, n)
            case 0x30...0x39:
                i = scanNumber(text, from: i)
                tokens.append(SQLToken(kind: .number, word: ""))
            case 0x2E where i + 1 < n && text[i + 1] >= 0x30 && text[i + 1] <= 0x39:
                i = scanNumber(text, from: i + 1)
                tokens.append(SQLToken(kind: .number, word: ""))
            case 0x2D where i + 1 < n && text[i + 1] == 0x2D, 0x23:  // -- and MySQL's #: to the end of the line
                let lineEnd = text[i...].firstIndex(of: 0x0A) ?? n
                tokens.append(SQLToken(kind: .comment, word: "", length: lineEnd - i - (b == 0x23 ? 1 : 2)))
                i = min(lineEnd + 1, n)
            case 0x2F where i + 1 < n && text[i + 1] == 0x2A:  // /*
                if i + 2 < n && text[i + 2] == 0x21 {  // /*! … */ is code to MySQL: read on inside
                    i += 3
                    while i < n && text[i] >= 0x30 && text[i] <= 0x39 { i += 1 }
                    continue
                }
                var j = i + 2
                while j + 1 < n && !(text[j] == 0x2A && text[j + 1] == 0x2F) { j += 1 }
                if j + 1 >= n {
                    tokens.append(SQLToken(kind: .comment, word: ""))  // unterminated: eats the rest
                    i = n
                } else {
                    // A closed comment is white space to SQL; between two word characters it
                    // splits a keyword (UN/**/ION), which `joinSplitWords` handles before this.
                    i = j + 2
                }
            case 0x2A where i + 1 < n && text[i + 1] == 0x2F:  // stray */ from /*! … */
                i += 2
            case 0x40:  // @var, @@var
                var j = i + 1
                while j < n && (isWordByte(text[j]) || text[j] == 0x40 || text[j] == 0x2E) { j += 1 }
                tokens.append(SQLToken(kind: .variable, word: String(decoding: text[i..<min(j, i + 15)], as: UTF8.self)))
                i = j
            case 0x28: tokens.append(SQLToken(kind: .open, word: "")); i += 1
            case 0x29: tokens.append(SQLToken(kind: .close, word: "")); i += 1
            case 0x2C: tokens.append(SQLToken(kind: .comma, word: "")); i += 1
            case 0x3B: tokens.append(SQLToken(kind: .semicolon, word: "")); i += 1
            case 0x7C where i + 1 < n && text[i + 1] == 0x7C,
                 0x26 where i + 1 < n && text[i + 1] == 0x26:
                tokens.append(SQLToken(kind: .logic, word: String(decoding: text[i..<(i + 2)], as: UTF8.self)))
                i += 2
            case 0x3D, 0x3C, 0x3E, 0x21, 0x7C, 0x26, 0x5E, 0x7E, 0x2B, 0x2D, 0x2A, 0x2F, 0x25:
                var j = i + 1
                while j < n && [0x3D, 0x3C, 0x3E, 0x21].contains(text[j]) && j - i < 3 { j += 1 }
                tokens.append(SQLToken(kind: .op, word: String(decoding: text[i..<j], as: UTF8.self)))
                i = j
            case 0x3A where i + 1 < n && text[i + 1] == 0x3D:  // :=
                tokens.append(SQLToken(kind: .op, word: String(decoding: text[i..<(i + 2)], as: UTF8.self)))
                i += 2
            default:
                if isWordByte(b) || b == 0x24 {
                    var j = i + 1
                    while j < n && (isWordByte(text[j]) || text[j] == 0x24 || (text[j] == 0x2E && j + 1 < n && isWordByte(text[j + 1]))) { j += 1 }
                    tokens.append(classify(text, i, j))
                    i = j
                } else {
                    tokens.append(SQLToken(kind: .other, word: ""))
                    i += 1
                }
            }
        }
        return tokens
    }

    /// After the closing quote (or the end). SQL's doubled quote and a backslash escape stay inside.
    static func scanString(_ text: [UInt8], from start: Int, quote: UInt8) -> (end: Int, closed: Bool) {
        var j = start
        while j < text.count {
            if text[j] == 0x5C { j += 2; continue }
            if text[j] == quote {
                if j + 1 < text.count && text[j + 1] == quote { j += 2; continue }
                return (j + 1, true)
            }
            j += 1
        }
        return (text.count, false)
    }

    static func scanNumber(_ text: [UInt8], from start: Int) -> Int {
        var j = start
        if j + 1 < text.count && text[j] == 0x30 && text[j + 1] | 0x20 == 0x78 {  // 0x…
            j += 2
            while j < text.count && ASCIIDigits.hexValue(text[j]) != nil { j += 1 }
            return j
        }
        while j < text.count && ((text[j] >= 0x30 && text[j] <= 0x39) || text[j] == 0x2E) { j += 1 }
        if j < text.count && text[j] | 0x20 == 0x65 {  // exponent
            var k = j + 1
            if k < text.count && (text[k] == 0x2B || text[k] == 0x2D) { k += 1 }
            if k < text.count && text[k] >= 0x30 && text[k] <= 0x39 {
                j = k
                while j < text.count && text[j] >= 0x30 && text[j] <= 0x39 { j += 1 }
            }
        }
        return j
    }

    static func classify(_ text: [UInt8], _ start: Int, _ end: Int) -> SQLToken {
        // Keywords and functions are at most 32 bytes; longer words are plain names.
        guard end - start <= 32 else { return SQLToken(kind: .bareword, word: String(decoding: text[start..<(start + 15)], as: UTF8.self)) }
        let word = String(decoding: text[start..<end], as: UTF8.self)
        // A function only when called: `sleep(` yes, "get some sleep" no.
        var k = end
        while k < text.count && text[k] == 0x20 { k += 1 }
        let called = k < text.count && text[k] == 0x28
        if called, SQLWords.functions.contains(word) { return SQLToken(kind: .function, word: word) }
        if let kind = SQLWords.kind(text, start, end) { return SQLToken(kind: kind, word: word) }
        return SQLToken(kind: .bareword, word: word)
    }

    /// `UN/**/ION SEL/**/ECT` → `UNION SELECT`: a closed comment between two word characters is
    /// removed; elsewhere it becomes a space.
    static func joinSplitWords(_ text: [UInt8]) -> [UInt8] {
        guard text.containsBytes("/*") else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == 0x2F && i + 1 < text.count && text[i + 1] == 0x2A && !(i + 2 < text.count && text[i + 2] == 0x21) {
                var j = i + 2
                while j + 1 < text.count && !(text[j] == 0x2A && text[j + 1] == 0x2F) { j += 1 }
                if j + 1 < text.count {
                    let before = out.last.map(isWordByte) ?? false
                    let after = j + 2 < text.count && isWordByte(text[j + 2])
                    if !(before && after) { out.append(0x20) }
                    i = j + 2
                    continue
                }
            }
            out.append(text[i])
            i += 1
        }
        return out
    }
}

enum SQLWords {
    /// A word of up to 16 bytes packed into two integers (little-endian, zero-filled).
    struct Packed: Equatable {
        var low: UInt64 = 0
        var high: UInt64 = 0

        init(_ bytes: some Collection<UInt8>) {
            for (i, b) in bytes.enumerated() {
                if i < 8 { low |= UInt64(b) << (8 * UInt64(i)) } else { high |= UInt64(b) << (8 * UInt64(i - 8)) }
            }
        }
    }

    /// `kinds` by word length, packed: looking a word up compares a few integers, where the
    /// dictionary hashed a `String` (SipHash) for every word of every value the filter
    /// tokenizes (prose in todo titles: several words each).
    static let packedKinds: [[(word: Packed, kind: SQLToken.Kind)]] = {
        var table = [[(word: Packed, kind: SQLToken.Kind)]](repeating: [], count: 17)
        for (word, kind) in kinds where word.utf8.count <= 16 {
            table[word.utf8.count].append((Packed(word.utf8), kind))
        }
        return table
    }()

    /// The kind of the (lower-case) word `text[start..<end]`, or nil for a plain name.
    static func kind(_ text: [UInt8], _ start: Int, _ end: Int) -> SQLToken.Kind? {
        let length = end - start
        guard length > 0, length < packedKinds.count else { return nil }
        let word = Packed(text[start..<end])
        for entry in packedKinds[length] where entry.word == word { return entry.kind }
        return nil
    }

    /// The (length, first letter, last letter) of every lower-case word whose kind is not nil
    /// nor `.keyword`: a word of another shape needs no `kind` lookup to be found a plain name or
    /// a keyword (`SQLInjectionDetector.isPlainProse`; `FastPathTests` checks every word).
    static let operatorShapes = WordShapes(kinds.compactMap { $0.value == .keyword ? nil : $0.key })

    /// A set of word shapes: for each length up to 16 and first letter, a bit per last letter.
    struct WordShapes {
        private var bits = [UInt32](repeating: 0, count: 17 * 26)

        init(_ words: [String]) {
            for word in words {
                let bytes = Array(word.utf8)
                guard let first = bytes.first, let last = bytes.last, bytes.count <= 16,
                      first &- 0x61 < 26, last &- 0x61 < 26 else { continue }
                bits[bytes.count * 26 + Int(first &- 0x61)] |= 1 << UInt32(last &- 0x61)
            }
        }

        /// Whether `text[start..<end]`, lower-case letters, may be one of the words: false is sure.
        func mayHold(_ text: [UInt8], _ start: Int, _ end: Int) -> Bool {
            let length = end - start
            guard length <= 16 else { return false }
            return bits[length * 26 + Int(text[start] &- 0x61)] >> UInt32(text[end - 1] &- 0x61) & 1 != 0
        }
    }

    static let kinds: [String: SQLToken.Kind] = {
        var table: [String: SQLToken.Kind] = [:]
        func add(_ words: String, _ kind: SQLToken.Kind) {
            for w in words.split(separator: " ") { table[String(w)] = kind }
        }
        add("select insert update delete drop create alter truncate exec execute declare shutdown grant revoke merge replace call handler waitfor load rename copy", .statement)
        add("union intersect except minus", .union)
        add("and or xor", .logic)
        add("like rlike regexp ilike similar is in between div mod not sounds escape collate", .op)
        add("true false null unknown", .number)
        add("from where table into values set order group by having limit offset as join inner outer left right on distinct all top case when then else end database schema user view index procedure function trigger delay time exists asc desc cross natural outfile dumpfile procedure column columns tables login", .keyword)
        return table
    }()

    static let functions: Set<String> = {
        let words = """
        sleep pg_sleep benchmark load_file extractvalue updatexml xp_cmdshell sys_eval sys_exec randomblob \
        char chr nchar concat concat_ws group_concat substring substr mid ascii ord hex unhex version user \
        current_user session_user system_user database schema count if ifnull nullif coalesce cast convert \
        md5 sha1 sha2 length len rand floor exp name_const make_set elt json_keys geometrycollection polygon \
        multipoint linestring utl_inaddr.get_host_name utl_http.request dbms_pipe.receive_message \
        dbms_lock.sleep ctxsys.drithsx.sn lower upper left right reverse replace instr locate position \
        pg_read_file pg_ls_dir lo_import current_database iif char_length row_count found_rows uuid \
        db_name host_name suser_name is_srvrolemember openrowset opendatasource
        """
        return Set(words.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }()

    /// Calls that only an attacker makes of a web form: delays, file reads, OS access.
    static let dangerousFunctions: Set<String> = {
        let words = "sleep pg_sleep benchmark load_file extractvalue updatexml xp_cmdshell sys_eval sys_exec randomblob utl_inaddr.get_host_name utl_http.request dbms_pipe.receive_message dbms_lock.sleep ctxsys.drithsx.sn name_const pg_read_file pg_ls_dir lo_import openrowset opendatasource is_srvrolemember"
        return Set(words.split(separator: " ").map(String.init))
    }()
}
