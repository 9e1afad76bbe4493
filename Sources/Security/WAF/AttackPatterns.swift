import Glibc

/// Detectors for the attack classes other than SQL injection and XSS, on normalized text (see
/// `TextTransform.normalize`). Each returns the reason it matched, or nil. `strict` is false for
/// free text a person wrote (JSON string fields), where only unambiguous forms count: a todo may
/// well say "cd ../app" or "curl -fsSL https://get.docker.com | sh".
enum AttackPatterns {
    // MARK: Path traversal and local file inclusion

    static func traversal(_ s: [UInt8], strict: Bool) -> String? {
        let slashed = s.contains(0x5C) ? s.map { $0 == 0x5C ? 0x2F : $0 } : s
        let dotdot = slashed.containsBytes("../") || slashed.containsBytes("..;/") || slashed.hasSuffixBytes("/..")
        if dotdot && (strict || slashed.containsBytes("../../../")) { return "dot-dot-slash" }
        for file: StaticString in ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/master.passwd", "/etc/sudoers", "/proc/self/", "/proc/version",
                                   "/proc/cmdline", "boot.ini", "win.ini", "system.ini", "/.htpasswd", ".htpasswd", "/id_rsa", "/.ssh/",
                                   "/.bash_history", "/etc/issue", "/etc/crontab", "/etc/security/", "windows/system32", "winnt/system32",
                                   "/inetpub/wwwroot", "/etc/ssh/sshd_config", "/etc/mysql/my.cnf", "/etc/apache2/", "/etc/httpd/",
                                   "/etc/nginx/nginx.conf", "/etc/hostname", "/.aws/credentials", "/var/run/secrets/", "wp-config.php",
                                   "/etc/resolv.conf", "/etc/os-release", "/etc/profile", "/usr/local/etc/", "/etc/motd", "/etc/fstab"]
        where slashed.containsBytes(file) { return "sensitive file" }
        if strict {
            for file: StaticString in ["/etc/hosts", "/var/log/", "/windows/", "c:/windows", "/system32", "web.config", ".htaccess", "/web-inf/", "/meta-inf/", "/etc/"]
            where slashed.containsBytes(file) && (dotdot || slashed.first == 0x2F || slashed.hasPrefixBytes("c:")) { return "sensitive file" }
        }
        for wrapper: StaticString in ["php://", "file://", "expect://", "phar://", "zip://", "glob://", "data://", "compress.zlib://", "jar:file:", "netdoc://"]
        where slashed.containsBytes(wrapper) { return "stream wrapper" }
        return nil
    }

    // MARK: Remote file inclusion (parameters only)

    static func remoteInclusion(_ s: [UInt8]) -> String? {
        var from = 0
        while let at = s.firstIndex(of: "://", from: from) {
            from = at + 3
            // scheme before it
            var b = at
            while b > 0 && ((s[b - 1] >= 0x61 && s[b - 1] <= 0x7A) || s[b - 1] == 0x2E) { b -= 1 }
            let scheme = String(decoding: s[b..<at], as: UTF8.self)
            guard ["http", "https", "ftp", "ftps", "sftp", "tftp", "smb", "ldap", "gopher", "dict"].contains(scheme) else { continue }
            let hostEnd = s[from...].firstIndex { $0 == 0x2F || $0 == 0x3F || $0 == 0x23 || $0 == 0x20 } ?? s.count
            var host = Array(s[from..<hostEnd])
            if let atSign = host.lastIndex(of: 0x40) { host = Array(host[(atSign + 1)...]) }
            if let colon = host.lastIndex(of: 0x3A), !host.contains(0x5D) || colon > host.lastIndex(of: 0x5D)! { host = Array(host[..<colon]) }
            if scheme == "gopher" || scheme == "dict" || scheme == "ldap" || scheme == "tftp" || scheme == "smb" { return "\(scheme) url" }
            if isIPLiteral(host) { return "url to an ip address" }
            let urlEnd = s[hostEnd...].firstIndex(of: 0x20) ?? s.count
            let url = Array(s[hostEnd..<urlEnd])
            let path = url.split(separator: 0x3F, maxSplits: 1, omittingEmptySubsequences: false).first.map(Array.init) ?? []
            for ext: StaticString in [".php", ".txt", ".sh", ".pl", ".py", ".jsp", ".asp", ".aspx", ".cgi", ".exe", ".inc", ".jar", ".war", ".ps1", ".bat", ".dll", ".so"]
            where path.hasSuffixBytes(ext) { return "url to a script file" }
            if url.last == 0x3F || url.hasSuffixBytes("?%00") { return "url ending in ?" }
        }
        return nil
    }

    static func isIPLiteral(_ host: [UInt8]) -> Bool {
        guard !host.isEmpty else { return false }
        if host.first == 0x5B { return true }
        if host.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E }) && host.contains(where: { $0 >= 0x30 && $0 <= 0x39 }) { return true }
        return IPv4Forms.parse(host) != nil && host.first.map { $0 >= 0x30 && $0 <= 0x39 } == true
    }

    // MARK: OS command injection

    /// Commands an injection runs to prove or use its foothold.
    static let probeCommands: Set<String> = [
        "id", "whoami", "uname", "ifconfig", "ipconfig", "hostname", "netstat", "systeminfo", "ping", "nslookup", "dig",
        "sleep", "nc", "ncat", "netcat", "wget", "curl", "bash", "sh", "zsh", "ksh", "csh", "dash", "python", "python3",
        "perl", "php", "ruby", "lua", "cat", "ls", "dir", "type", "echo", "env", "printenv", "busybox", "telnet", "tftp",
        "powershell", "pwsh", "cmd", "cmd.exe", "certutil", "bitsadmin", "net", "whoami.exe", "uname.exe", "pwd", "more",
        "head", "tail", "chmod", "rm", "touch", "xterm", "nohup", "crontab", "socat", "base64", "timeout", "sysinfo", "ver",
        "getent", "groups", "last", "w", "who", "ps", "kill", "killall", "reboot", "shutdown", "mkfifo", "awk", "sed",
        "find", "xxd", "od", "strings", "tasklist", "taskkill", "reg", "wmic", "ssh", "scp", "ftp", "passwd", "set",
    ]
    /// The subset that is rare in a person's text even after `;` or `|`.
    static let strongCommands: Set<String> = [
        "id", "whoami", "uname", "ifconfig", "ipconfig", "netstat", "systeminfo", "nslookup", "nc", "ncat", "netcat",
        "busybox", "telnet", "tftp", "powershell", "pwsh", "cmd", "cmd.exe", "certutil", "bitsadmin", "whoami.exe",
        "socat", "mkfifo", "printenv", "tasklist", "wmic", "xterm", "getent", "sysinfo", "uname.exe",
    ]

    static func commandInjection(_ s: [UInt8], strict: Bool) -> String? {
        // Reverse shells and shell tricks: unambiguous anywhere.
        for marker: StaticString in ["/dev/tcp/", "/dev/udp/", "bash -i", "sh -i", "nc -e", "ncat -e", "nc -c", "-e /bin/", "/bin/sh", "/bin/bash",
                                     "/bin/zsh", "/bin/busybox", "/usr/bin/id", "/usr/bin/whoami", "0<&196", "exec 5<>", "${ifs}", "$ifs$9", "$ifs",
                                     "{cat,", "{ls,", "{id,", "cmd /c", "cmd.exe /c", "powershell -e", "powershell -nop", "powershell -c",
                                     "powershell.exe", "iex(", "iex (", "invoke-expression", "invoke-webrequest", "downloadstring(", "| iex",
                                     "cmd.exe", "%comspec%", "certutil -urlcache", "rundll32", "mshta ", "regsvr32 /s", "/tmp/.x", "chmod 777 /",
                                     "chmod +x /tmp", "| sh -", "|sh -", "python -c", "python3 -c", "perl -e", "ruby -e", "php -r", "lua -e", "nc.traditional",
                                     "telnet -e", "xterm -display", "; rm -rf", ";rm -rf", "| rm -rf", "&& rm -rf", "`rm -rf", "$(rm -rf", "/etc/passwd;", "&& shutdown"]
        where s.containsBytes(marker) { return "shell command" }
        // $(cmd …) and `cmd …`: command substitution with a probe command.
        var from = 0
        while let at = s.firstIndex(of: "$(", from: from) {
            from = at + 2
            if let word = firstWord(s, after: at + 2), probeCommands.contains(word) { return "command substitution" }
        }
        from = 0
        while let at = s[from...].firstIndex(of: 0x60) {
            from = at + 1
            guard let word = firstWord(s, after: at + 1) else { continue }
            if strongCommands.contains(word) || word == "sleep" && nextIsNumber(s, afterWordAt: at + 1) { return "command substitution" }
            if strict && probeCommands.contains(word) { return "command substitution" }
        }
        // A separator and then a command: `; id`, `| nc 10.0.0.1 4444`, `&& sleep 5`, "\nid".
        var i = 0
        while i < s.count {
            let b = s[i]
            guard b == 0x3B || b == 0x7C || b == 0x26 || b == 0x0A || b == 0x0D else { i += 1; continue }
            var j = i + 1
            while j < s.count && (s[j] == 0x7C || s[j] == 0x26 || s[j] == 0x3B || s[j] == 0x20) { j += 1 }
            if let word = firstWord(s, after: j) {
                if strongCommands.contains(word) && wordEndsCleanly(s, at: j, word) { return "command after \(Character(Unicode.Scalar(b)))" }
                if word == "sleep" || word == "ping" || word == "timeout", nextIsNumber(s, afterWordAt: j) || word == "ping" && s[j...].starts(with: Array("ping -".utf8)) {
                    return "timing command"
                }
                if (word == "cat" || word == "type" || word == "more" || word == "head" || word == "tail"), s.firstIndex(of: "/etc/", from: j) != nil || s.firstIndex(of: "c:/", from: j) != nil || s.firstIndex(of: "c:\\", from: j) != nil {
                    return "file read command"
                }
                if (word == "wget" || word == "curl" || word == "fetch"), strict || i < 48 {
                    if s.firstIndex(of: "http", from: j) != nil && (s.firstIndex(of: "| sh", from: j) != nil || s.firstIndex(of: "|sh", from: j) != nil || s.firstIndex(of: "| bash", from: j) != nil || s.firstIndex(of: "-o /tmp", from: j) != nil || s.firstIndex(of: "-o/tmp", from: j) != nil || s.firstIndex(of: "/tmp/", from: j) != nil) { return "download and run" }
                }
                // At the start of a parameter (`x;ls -la`, `127.0.0.1 | dir`), any probe command.
                if strict && i < 40 && !s[..<i].contains(0x20) && probeCommands.contains(word) && wordEndsCleanly(s, at: j, word) { return "command after a value" }
            }
            i = j
        }
        // Shellshock: a function definition in a header value.
        if s.containsBytes("() {") || s.containsBytes("(){") { return "shellshock" }
        return nil
    }

    static func firstWord(_ s: [UInt8], after start: Int) -> String? {
        var i = start
        while i < s.count && s[i] == 0x20 { i += 1 }
        var j = i
        while j < s.count && ((s[j] >= 0x61 && s[j] <= 0x7A) || (s[j] >= 0x30 && s[j] <= 0x39) || s[j] == 0x2E || s[j] == 0x5F) { j += 1 }
        guard j > i, j - i <= 16 else { return nil }
        return String(decoding: s[i..<j], as: UTF8.self)
    }

    /// `id` followed by the end, a space, or shell punctuation — not `identity` or `idea`.
    static func wordEndsCleanly(_ s: [UInt8], at start: Int, _ word: String) -> Bool {
        var i = start
        while i < s.count && s[i] == 0x20 { i += 1 }
        let end = i + word.utf8.count
        return end >= s.count || [0x20, 0x3B, 0x7C, 0x26, 0x60, 0x29, 0x23, 0x0A, 0x3E, 0x3C, 0x27, 0x22, 0x2F, 0x24].contains(s[end])
    }

    static func nextIsNumber(_ s: [UInt8], afterWordAt start: Int) -> Bool {
        var i = start
        while i < s.count && s[i] == 0x20 { i += 1 }
        while i < s.count && s[i] >= 0x61 && s[i] <= 0x7A { i += 1 }
        while i < s.count && (s[i] == 0x20 || s[i] == 0x2D || (s[i] >= 0x61 && s[i] <= 0x7A)) { i += 1 }
        return i < s.count && s[i] >= 0x30 && s[i] <= 0x39
    }

    // MARK: Log4Shell

    /// `${jndi:ldap://…}` and its obfuscations: `${${lower:j}ndi:…}`, `${${::-j}${::-n}di:…}`,
    /// `${${env:X:-j}ndi…}`. The lookups are resolved the way Log4j resolves them (to their
    /// default or their argument) before looking for `jndi:`; any other lookup is suspicious on
    /// its own in input that reaches a logger.
    static func log4j(_ s: [UInt8]) -> String? {
        guard let start = s.firstIndex(of: "${", from: 0) else { return nil }
        var resolved: [UInt8] = []
        var i = start
        while i < s.count && resolved.count < 512 {
            if s.hasPrefixBytes("${", at: i) {
                // ${name:arg} → arg's default after ":-", else arg for lower/upper, else the arg itself
                i += 2
                var j = i
                var depth = 0
                while j < s.count {
                    if s.hasPrefixBytes("${", at: j) { depth += 1; j += 2; continue }
                    if s[j] == 0x7D { if depth == 0 { break }; depth -= 1 }
                    j += 1
                }
                let inner = Array(s[i..<min(j, s.count)])
                if let dash = inner.firstIndex(of: ":-", from: 0), !inner.hasPrefixBytes("jndi") {
                    resolved += Array(inner[(dash + 2)...])
                    i = min(j + 1, s.count)
                    continue
                }
                if let colon = inner.firstIndex(of: 0x3A) {
                    let name = inner[..<colon]
                    if name.elementsEqual("lower".utf8) || name.elementsEqual("upper".utf8) {
                        resolved += Array(inner[(colon + 1)...])
                        i = min(j + 1, s.count)
                        continue
                    }
                }
                resolved += Array("${".utf8)
                continue
            }
            if s[i] != 0x7D { resolved.append(s[i]) }
            i += 1
        }
        let flat = resolved.filter { $0 != 0x24 && $0 != 0x7B && $0 != 0x7D && $0 != 0x20 }
        if flat.containsBytes("jndi:") || flat.containsBytes("jndi") && (flat.containsBytes("ldap") || flat.containsBytes("rmi:") || flat.containsBytes("dns:")) {
            return "jndi lookup"
        }
        for lookup: StaticString in ["${env:", "${sys:", "${java:", "${ctx:", "${main:", "${base64:", "${lower:", "${upper:", "${date:", "${k8s:",
                                     "${docker:", "${spring:", "${bundle:", "${marker:", "${log4j:", "${web:", "${sd:", "${event:", "${map:", "${jvmrunargs:", "${::-", "${hostname", "${jndi"]
        where s.containsBytes(lookup) { return "log4j lookup" }
        return nil
    }

    // MARK: Server-side template injection

    static func templateInjection(_ s: [UInt8]) -> String? {
        for marker: StaticString in ["__class__", "__mro__", "__subclasses__", "__globals__", "__builtins__", "__import__", "__init__.__",
                                     "constructor.constructor", "freemarker.template", "t(java.lang.runtime)", "java.lang.runtime", "getruntime()",
                                     "processbuilder", "#set(", "$class.inspect", "{{config", "{{self", "{{request", "{{lipsum", "{{cycler", "{{joiner",
                                     "{{namespace", "{{range", "{{''", "{{\"\"", "{% import", "{%import", "{php}", "{system(", "<#assign", "#{t(", "${t(", "*{t(",
                                     "@(1+", "{{= ", "<%= 7", "${{", "#{7", "{{7", "${7*", "{7*7}", "[[${", "${\"freemarker"]
        where s.containsBytes(marker) { return "template expression" }
        // {{ 7*7 }}, ${ 3*3 }, <%= 7*7 %>, #{ 7*7 }: arithmetic in a template delimiter
        for open: StaticString in ["{{", "${", "<%=", "#{", "*{", "@{"] {
            var from = 0
            while let at = s.firstIndex(of: open, from: from) {
                from = at + 1
                var j = at + open.utf8CodeUnitCount
                while j < s.count && s[j] == 0x20 { j += 1 }
                var digits = 0
                while j < s.count && s[j] >= 0x30 && s[j] <= 0x39 { j += 1; digits += 1 }
                while j < s.count && s[j] == 0x20 { j += 1 }
                if digits > 0 && j < s.count && (s[j] == 0x2A || s[j] == 0x2B) {
                    j += 1
                    while j < s.count && s[j] == 0x20 { j += 1 }
                    if j < s.count && s[j] >= 0x30 && s[j] <= 0x39 { return "template arithmetic" }
                }
            }
        }
        return nil
    }

    // MARK: Server-side request forgery to instance metadata

    static func metadataSSRF(_ s: [UInt8]) -> String? {
        for name: StaticString in ["169.254.169.254", "169.254.170.2", "metadata.google.internal", "metadata.goog", "100.100.100.200", "fd00:ec2::254",
                                   "instance-data", "/latest/meta-data", "/latest/user-data", "/latest/api/token", "/computemetadata/v1", "/metadata/instance",
                                   "/metadata/v1", "/openstack/latest", "a9fe:a9fe", "169.254.169.253", "metadata.azure", "/metadata/identity"]
        where s.containsBytes(name) { return "metadata endpoint" }
        // Other spellings of 169.254.169.254: 2852039166, 0xa9fea9fe, 0251.0376.0251.0376, 169.254.43518 …
        var i = 0
        while i < s.count {
            let c = s[i]
            guard c >= 0x30 && c <= 0x39, i == 0 || !isWordByte(s[i - 1]) || s[i - 1] == 0x5F else { i += 1; continue }
            var j = i
            while j < s.count && ((s[j] >= 0x30 && s[j] <= 0x39) || (s[j] >= 0x61 && s[j] <= 0x66) || s[j] == 0x78 || s[j] == 0x2E) { j += 1 }
            if j - i >= 8, let value = IPv4Forms.parse(Array(s[i..<j])), value == 0xA9FE_A9FE || value == 0xA9FE_AA02 { return "metadata address" }
            i = j + 1
        }
        // IPv6 forms embedding it: [::ffff:169.254.169.254], [0:0:0:0:0:ffff:a9fe:a9fe]
        if s.contains(0x5B) {
            var from = 0
            while let open = s[from...].firstIndex(of: 0x5B) {
                from = open + 1
                guard let close = s[from...].firstIndex(of: 0x5D), close - from <= 45 else { continue }
                if let address = IPAddress(String(decoding: s[from..<close], as: UTF8.self)), address.isIPv4 || address.high == 0,
                   UInt32(truncatingIfNeeded: address.low) == 0xA9FE_A9FE { return "metadata address" }
            }
        }
        return nil
    }

    // MARK: NoSQL operator injection, CRLF injection

    static func noSQLInjection(_ s: [UInt8]) -> String? {
        for op: StaticString in ["[$ne]", "[$gt]", "[$lt]", "[$gte]", "[$lte]", "[$regex]", "[$where]", "[$exists]", "[$nin]", "[$in]", "[$or]", "[$and]", "[$expr]", "[$elemmatch]",
                                 "{\"$ne\"", "{\"$gt\"", "{\"$lt\"", "{\"$gte\"", "{\"$regex\"", "{\"$where\"", "{\"$exists\"", "{\"$nin\"", "{\"$or\"", "{\"$expr\"",
                                 "{$ne:", "{$gt:", "{$where:", "{$regex:", "\"$where\"", "$where:", "db.getcollection", "db.users.find", "this.password", "';return", "'; return", "\";return", "\"; return", "||'1'=='1", "|| '1'=='1", "== '1", "=='1"]
        where s.containsBytes(op) { return "nosql operator" }
        return nil
    }

    static func crlfInjection(_ s: [UInt8]) -> String? {
        guard s.contains(0x0A) || s.contains(0x0D) else { return nil }
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

/// IPv4 in every spelling `inet_aton` accepts: 1–4 parts, each decimal, octal (leading 0) or hex
/// (0x) — the forms SSRF filters miss.
enum IPv4Forms {
    static func parse(_ text: [UInt8]) -> UInt32? {
        let parts = text.split(separator: 0x2E, omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return nil }
        var values: [UInt64] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 12 else { return nil }
            var value: UInt64 = 0
            let p = Array(part)
            if p.count > 2 && p[0] == 0x30 && p[1] == 0x78 {
                for b in p[2...] { guard let h = TextTransform.hex(b) else { return nil }; value = value * 16 + UInt64(h) }
            } else if p.count > 1 && p[0] == 0x30 {
                for b in p[1...] { guard b >= 0x30 && b <= 0x37 else { return nil }; value = value * 8 + UInt64(b - 0x30) }
            } else {
                for b in p { guard b >= 0x30 && b <= 0x39 else { return nil }; value = value * 10 + UInt64(b - 0x30) }
            }
            values.append(value)
        }
        switch values.count {
        case 1: return values[0] <= 0xFFFF_FFFF ? UInt32(values[0]) : nil
        case 2: return values[0] <= 0xFF && values[1] <= 0xFF_FFFF ? UInt32(values[0] << 24 | values[1]) : nil
        case 3: return values[0] <= 0xFF && values[1] <= 0xFF && values[2] <= 0xFFFF ? UInt32(values[0] << 24 | values[1] << 16 | values[2]) : nil
        default:
            guard values.allSatisfy({ $0 <= 0xFF }) else { return nil }
            return UInt32(values[0] << 24 | values[1] << 16 | values[2] << 8 | values[3])
        }
    }
}

extension Array where Element == UInt8 {
    func hasSuffixBytes(_ suffix: StaticString) -> Bool {
        suffix.withUTF8Buffer { p in
            guard p.count <= count else { return false }
            let offset = count - p.count
            for j in 0..<p.count where self[offset + j] != p[j] { return false }
            return true
        }
    }
}
