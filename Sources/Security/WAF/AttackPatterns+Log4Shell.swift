extension AttackPatterns {
    static let log4jLookups = MarkerSet(["${jndi", "${env:", "${sys:", "${java:", "${ctx:", "${main:", "${base64:", "${lower:", "${upper:", "${date:", "${k8s:",
                                     "${docker:", "${spring:", "${bundle:", "${marker:", "${log4j:", "${web:", "${sd:", "${event:", "${map:", "${jvmrunargs:", "${::-", "${hostname"])

    // MARK: Log4Shell

    /// `${jndi:ldap://…}` and its obfuscations: `${${lower:j}ndi:…}`, `${${::-j}${::-n}di:…}`,
    /// `${${env:X:-j}ndi…}`. The lookups are resolved the way Log4j resolves them (to their
    /// default or their argument) before looking for `jndi:`; any other lookup is suspicious on
    /// its own in input that reaches a logger.
    static func log4j(_ s: [UInt8]) -> String? {
        guard s.containsBytes("${") else { return nil }
        if Self.log4jLookups.contains(in: s) { return "log4j lookup" }
        // Resolve innermost lookups first, as Log4j does: `${x:-d}` → d, `${lower:x}` → x,
        // anything else → its text; then look for what is left.
        var text = Array(s.prefix(2048))
        for _ in 0..<64 {
            guard let open = innermostLookup(text) else { break }
            guard let close = text[(open + 2)...].firstIndex(of: 0x7D) else { break }
            let inner = Array(text[(open + 2)..<close])
            if inner.hasPrefixBytes("jndi:") { return "jndi lookup" }
            var value: [UInt8]
            if let dash = inner.firstIndex(of: ":-", from: 0) {
                value = Array(inner[(dash + 2)...])
            } else if let colon = inner.firstIndex(of: 0x3A) {
                value = Array(inner[(colon + 1)...])
            } else {
                value = inner
            }
            text.replaceSubrange(open...close, with: value)
        }
        let flat = text.filter { $0 != 0x20 }
        if flat.containsBytes("jndi:") && (flat.containsBytes("ldap") || flat.containsBytes("rmi") || flat.containsBytes("dns") || flat.containsBytes("iiop") || flat.containsBytes("corba") || flat.containsBytes("nis") || flat.containsBytes("nds") || flat.containsBytes("http")) {
            return "obfuscated jndi lookup"
        }
        return nil
    }

    /// The last `${` whose lookup contains no other `${`.
    static func innermostLookup(_ text: [UInt8]) -> Int? {
        var last: Int?
        var i = 0
        while i + 1 < text.count {
            if text[i] == 0x24 && text[i + 1] == 0x7B { last = i }
            if text[i] == 0x7D, last != nil { return last }
            i += 1
        }
        return nil
    }
}
