/// Cross-site scripting: markup or script that a browser would run, on normalized text. Looks for
/// what executes — a script element with content, an event-handler attribute, a `javascript:`
/// URL with code after it, active tags carrying attributes, script sinks called with arguments —
/// so that prose about markup passes: "a < b && c > d", "use <b> sparingly", "the <script> tag
/// goes last".
enum XSSDetector {
    static let scriptSinkMarkers = MarkerSet(["document.write", "location.href=",
                                     ".innerhtml=", "fromcharcode(", "constructor.constructor(", "constructor(\"", "constructor('", "window[", "top[", "self[", "this[\"", "xss.rocks", "xss.report", "\\x3cscript", "\\u003cscript"])
    static let scriptDataURLs = MarkerSet(["data:text/html", "data:image/svg", "data:application/javascript", "data:text/javascript",
                                   "data:application/x-javascript", "data:text/xml", "data:application/xhtml", "data:text/vbscript", "data:application/ecmascript"])

    static func detect(_ s: [UInt8]) -> String? {
        let hasAngle = s.contains(0x3C)
        if hasAngle, let reason = markup(s) { return reason }
        if let reason = schemes(s) { return reason }
        if let reason = attributeInjection(s) { return reason }
        if let reason = scriptSinks(s) { return reason }
        return nil
    }

    /// Tags that load or run something by their attributes alone. Not here, because prose names
    /// them with harmless attributes ("add <meta name="viewport">", "<form action="/search">",
    /// "<svg> icons are blurry"): meta, form, link, svg, math, style — their dangerous forms
    /// (refresh to a script URL, `rel=import`, event handlers, `expression(`) are matched below.
    static let activeTags: [StaticString] = [
        "iframe", "frame", "frameset", "object", "embed", "applet", "base", "isindex", "xss", "xml", "import", "portal", "bgsound", "layer", "ilayer",
    ]

    /// Every search inside the loop is bounded (a tag's attributes: 512 bytes) or done once per
    /// value: "<a " repeated 10,000 times was a quadratic scan, 0.4 s of a loop's time.
    static func markup(_ s: [UInt8]) -> String? {
        let hasScriptTag = Lazy { s.containsBytes("<script") }
        let hasDeclaration = Lazy { s.containsBytes("<!") }
        var i = 0
        while let lt = s[i...].firstIndex(of: 0x3C) {
            i = lt + 1
            var j = i
            if j < s.count && s[j] == 0x2F { j += 1 }  // </script>
            let nameStart = j
            while j < s.count && ((s[j] >= 0x61 && s[j] <= 0x7A) || (s[j] >= 0x30 && s[j] <= 0x39) || s[j] == 0x3A || s[j] == 0x2D) { j += 1 }
            guard j > nameStart else {
                if s.hasPrefixBytes("!--", at: i), hasScriptTag.value { return "script in a comment" }
                // XXE: entity declarations, external DTDs, XInclude, processing instructions
                if s.hasPrefixBytes("!entity", at: i) || s.hasPrefixBytes("!element", at: i) || s.hasPrefixBytes("!attlist", at: i) { return "xml entity" }
                if s.hasPrefixBytes("!doctype", at: i) {
                    let rest = Array(s[i..<min(i + 200, s.count)])
                    if rest.containsBytes(" system") || rest.containsBytes(" public") || rest.containsBytes("[") { return "xml doctype" }
                }
                if s.hasPrefixBytes("?import", at: i) || s.hasPrefixBytes("?xml-stylesheet", at: i) || s.hasPrefixBytes("?php", at: i) { return "processing instruction" }
                if s.hasPrefixBytes("?xml", at: i) && hasDeclaration.value { return "xml doctype" }
                continue
            }
            let name = Array(s[nameStart..<j])
            let closing = nameStart > i
            // The tag's attribute text: up to '>' or the end.
            let window = min(s.count, j + 512)
            // A tag ends at '>' (or where the next one starts).
            let tagEnd = s[j..<window].firstIndex { $0 == 0x3E || $0 == 0x3C } ?? window
            let attributes = Array(s[j..<tagEnd])
            if name == Array("script".utf8) {
                if closing { return "script end tag" }
                if j == s.count || [0x20, 0x2F, 0x3E, 0x09].contains(s[j]) {
                    if attributes.containsBytes("src") || attributes.containsBytes("=") { return "script element" }
                    // Content that is code, not prose: a call, an assignment, a statement end.
                    let content = s[min(tagEnd + 1, s.count)..<min(tagEnd + 41, s.count)]
                    if content.contains(where: { [0x28, 0x3D, 0x3B, 0x27, 0x22, 0x5B].contains($0) }) || tagEnd == s.count && attributes.isEmpty == false {
                        return "script element"
                    }
                }
                continue
            }
            if name.starts(with: Array("xsl:".utf8)) || name.starts(with: Array("xi:".utf8)) || name == Array("xss".utf8) || name.starts(with: Array("xss:".utf8)) { return "xml/xss element <\(String(decoding: name, as: UTF8.self))>" }
            if !closing, j == s.count || [0x20, 0x2F, 0x09, 0x0A].contains(s[j]) || s[j] == 0x3E {
                if let handler = eventHandler(in: attributes) { return "event handler \(handler)" }
                if attributes.containsBytes("javascript:") || attributes.containsBytes("vbscript:") { return "script url in a tag" }
                for tag in activeTags where name.elementsEqual(tag.utf8Bytes) {
                    if attributes.contains(0x3D) { return "active tag <\(String(decoding: name, as: UTF8.self))>" }
                }
                if name == Array("meta".utf8) && (attributes.containsBytes("refresh") || attributes.containsBytes("url=")) { return "meta refresh" }
                if name == Array("link".utf8) && attributes.containsBytes("import") { return "link import" }
                if name == Array("style".utf8) || attributes.containsBytes("style") {
                    let rest = Array(s[j..<min(s.count, j + 1024)])
                    if rest.containsBytes("expression(") || rest.containsBytes("@import") || rest.containsBytes("-moz-binding") || rest.containsBytes("behavior:") { return "style script" }
                }
            }
        }
        return nil
    }

    /// ` onerror=`, `/onload=`, `"onmouseover=` inside a tag's attributes.
    static func eventHandler(in attributes: [UInt8]) -> String? {
        var i = 0
        while i + 3 < attributes.count {
            if attributes[i] == 0x6F && attributes[i + 1] == 0x6E,  // "on"
               i == 0 || [0x20, 0x2F, 0x22, 0x27, 0x60, 0x09, 0x3B].contains(attributes[i - 1]) {
                var j = i + 2
                while j < attributes.count && attributes[j] >= 0x61 && attributes[j] <= 0x7A { j += 1 }
                let letters = j - i - 2
                var k = j
                while k < attributes.count && attributes[k] == 0x20 { k += 1 }
                if letters >= 3 && k < attributes.count && attributes[k] == 0x3D {
                    return String(decoding: attributes[i..<j], as: UTF8.self)
                }
            }
            i += 1
        }
        return nil
    }

    static let eventNames: Set<[UInt8]> = {
        let names = """
        onerror onload onclick onmouseover onmouseout onmouseenter onmouseleave onmousedown onmouseup onmousemove \
        onfocus onblur onfocusin onfocusout onkeydown onkeyup onkeypress onchange oninput onsubmit onreset onselect \
        onanimationstart onanimationend onanimationiteration ontransitionend ontransitionstart ontransitionrun ontoggle \
        onpointerover onpointerdown onpointerup onpointerenter onpointerleave onpointermove onbegin onstart onfinish onend \
        onscroll onwheel onresize onhashchange onpageshow onpagehide onpopstate onmessage onbeforeunload onunload \
        onafterprint onbeforeprint oncopy oncut onpaste ondrag ondragstart ondragend ondragenter ondragleave ondragover \
        ondrop onplay onplaying onpause oncanplay oncanplaythrough onloadstart onloadeddata onloadedmetadata onprogress \
        ondblclick oncontextmenu onsearch oninvalid onauxclick onshow onafterscriptexecute onbeforescriptexecute \
        onreadystatechange onrepeat onactivate onbeforeactivate onfilterchange onbounce onmousewheel ontouchstart \
        ontouchend ontouchmove onvolumechange onwaiting onseeked onseeking onstalled onsuspend ontimeupdate \
        onratechange ondurationchange onemptied onended onformdata onbeforeinput onbeforetoggle onsecuritypolicyviolation \
        onselectstart onselectionchange onslotchange onpointercancel onlostpointercapture ongotpointercapture onfullscreenchange
        """
        return Set(names.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { Array($0.utf8) })
    }()

    /// `" onmouseover="alert(1)`, `' autofocus onfocus=alert(1) x='`: a known event attribute
    /// written after a quote or slash, outside any tag of the input.
    static func attributeInjection(_ s: [UInt8]) -> String? {
        var i = 0
        while let o = s.firstIndex(of: "on", from: i) {
            i = o + 2
            guard o == 0 || [0x20, 0x2F, 0x22, 0x27, 0x60, 0x3B, 0x09].contains(s[o - 1]) else { continue }
            var j = o + 2
            while j < s.count && s[j] >= 0x61 && s[j] <= 0x7A { j += 1 }
            var k = j
            while k < s.count && s[k] == 0x20 { k += 1 }
            guard k < s.count, s[k] == 0x3D, eventNames.contains(Array(s[o..<j])) else { continue }
            return "event handler \(String(decoding: s[o..<j], as: UTF8.self))"
        }
        return nil
    }

    /// `javascript:alert(1)`, `java script:` (spaces and tabs are ignored by browsers in schemes),
    /// `vbscript:`, `data:text/html,…`; "JavaScript: read chapter 3" is prose.
    static let scriptSchemes: [StaticString] = ["javascript:", "vbscript:", "livescript:"]
    static let scriptURLCode: [StaticString] = ["alert", "prompt", "confirm", "eval", "document", "window", "location", "top", "self", "parent", "this", "fetch",
                                                "import", "settimeout", "setinterval", "atob", "string.", "with(", "new", "function", "throw", "history",
                                                "navigator", "console"]

    static func schemes(_ s: [UInt8]) -> String? {
        guard s.contains(0x3A) else { return nil }
        let compact = s.contains(0x20) ? s.filter { $0 != 0x20 } : s
        for scheme in Self.scriptSchemes {
            var from = 0
            while let at = compact.firstIndex(of: scheme, from: from) {
                from = at + 1
                let after = at + scheme.utf8CodeUnitCount
                // In the original spacing, is the scheme followed by a word and a space (prose)?
                guard after < compact.count else { continue }
                let c = compact[after]
                let isLetter = c >= 0x61 && c <= 0x7A
                if !isLetter || scheme.utf8CodeUnitCount != 11 { return "script url" }  // vbscript:, livescript: are never prose
                let rest = Array(compact[after..<min(after + 24, compact.count)])
                for code in Self.scriptURLCode where rest.hasPrefixBytes(code) { return "script url" }
            }
        }
        if Self.scriptDataURLs.contains(in: compact) { return "data url with script" }
        return nil
    }

    /// Script sinks called with arguments: `alert(1)`, `prompt(document.cookie)`, ``alert`1` ``,
    /// `eval(atob(…))`, `String.fromCharCode(…)`, `document.cookie`.
    static func scriptSinks(_ s: [UInt8]) -> String? {
        guard s.contains(0x28) || s.contains(0x60) || s.contains(0x2E) || s.contains(0x5B) else { return nil }
        for sink: StaticString in ["alert", "prompt", "confirm", "eval", "settimeout", "setinterval"] {
            var from = 0
            while let at = s.firstIndex(of: sink, from: from) {
                from = at + 1
                if at > 0 && isWordByte(s[at - 1]) { continue }
                var j = at + sink.utf8CodeUnitCount
                while j < s.count && s[j] == 0x20 { j += 1 }
                guard j < s.count else { continue }
                if s[j] == 0x60 { return "call of \(sink)" }  // alert`1`
                if s[j] == 0x28 {
                    var k = j + 1
                    while k < s.count && s[k] == 0x20 { k += 1 }
                    guard k < s.count else { continue }
                    let c = s[k]
                    if (c >= 0x30 && c <= 0x39) || c == 0x27 || c == 0x22 || c == 0x60 || c == 0x2F { return "call of \(sink)" }
                    let rest = Array(s[k..<min(k + 16, s.count)])
                    for arg: StaticString in ["document", "window", "this", "self", "top", "location", "string.", "atob", "unescape", "decodeuri", "/", "name", "origin", "cookie", "xss"]
                    where rest.hasPrefixBytes(arg) { return "call of \(sink)" }
                }
            }
        }
        if Self.scriptSinkMarkers.contains(in: s) { return "script sink" }
        return nil
    }
}

extension StaticString {
    var utf8Bytes: [UInt8] { withUTF8Buffer { Array($0) } }
}
