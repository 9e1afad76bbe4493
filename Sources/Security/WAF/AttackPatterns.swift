import Glibc

/// Detectors for the attack classes other than SQL injection and XSS, on normalized text (see
/// `TextTransform.normalize`). Each returns the reason it matched, or nil. `strict` is false for
/// free text a person wrote (JSON string fields), where only unambiguous forms count: a todo may
/// well say "cd ../app" or "curl -fsSL https://get.docker.com | sh".
enum AttackPatterns {
    static let markers101 = MarkerSet(["__class__", "__mro__", "__subclasses__", "__globals__", "__builtins__", "__import__", "__init__.__",
                                     "constructor.constructor", "freemarker.template", "t(java.lang.runtime)", "java.lang.runtime", "getruntime()",
                                     "processbuilder", "#set(", "$class.inspect", "{{config", "{{self", "{{request", "{{lipsum", "{{cycler", "{{joiner",
                                     "{{namespace", "{{range", "{{''", "{{\"\"", "{% import", "{%import", "{php}", "{system(", "<#assign", "#{t(", "${t(", "*{t(",
                                     "@(1+", "{{= ", "<%= 7", "${7*", "{7*7}", "[[${", "${\"freemarker",
                                     "{{=", "@(7", "{{settings", "{{_self", "|filter(", "{{app.", "${@", "{{#with", "smarty_internal", "{{dump(",
                                     "|system", "popen(", "child_process", "mainmodule", ".getclass()", ".forname(", "{{[", "${t(", "#{t(",
                                     "{{constructor", "{{@", "{$smarty", "{{exec", "{{.__", "${class", "${product.getclass", "{{~", "${{<%", "#{%x(",
                                     "{{range.constructor", "{{'a'.constructor", "${request.", "${session.", "${application.", "{{request.", "{{cookies", "{{ config",
                                     "{% debug", "{%debug", "${self.", "${__", "{{3*", "*'3'", "[].class", "''.class", ".class.base", "{{ request", "{{ config", "{{ self", "{{ [", "{*", "#{'", "${\"", "{{\"", "{{'"])
    static let markers102 = MarkerSet(["[$ne]", "[$gt]", "[$lt]", "[$gte]", "[$lte]", "[$regex]", "[$where]", "[$exists]", "[$nin]", "[$in]", "[$or]", "[$and]", "[$expr]", "[$elemmatch]",
                                 "{\"$ne\"", "{\"$gt\"", "{\"$lt\"", "{\"$gte\"", "{\"$regex\"", "{\"$where\"", "{\"$exists\"", "{\"$nin\"", "{\"$or\"", "{\"$expr\"",
                                 "{$ne:", "{$gt:", "{$where:", "{$regex:", "\"$where\"", "$where:", "db.getcollection", "db.users.find", "this.password", "';return", "'; return", "\";return", "\"; return", "||'1'=='1", "|| '1'=='1", "== '1", "=='1"])
    /// Files only an attacker asks a web form for: blocked wherever they appear.
    static let markers1 = MarkerSet(["/etc/passwd", "/etc/shadow", "/etc/master.passwd", "/etc/sudoers", "/etc/gshadow", "/proc/self/", "/proc/version",
                                   "/proc/cmdline", "/environ", "boot.ini", "win.ini", "system.ini", ".htpasswd", "/.bash_history", "/.mysql_history",
                                   "/.aws/credentials", "/var/run/secrets/", "wp-config.php", "web-inf/web.xml", "/system32/drivers/etc/hosts",
                                   "/inetpub/wwwroot", "/etc/ssh/sshd_config"])
    /// Files and places a person also writes about ("add the alias to ~/.ssh/config", "cat
    /// /proc/cpuinfo", "C:\Windows\System32 is full", "file:///Users/me/report.pdf"): parameters only.
    static let parameterFiles = MarkerSet(["/etc/group", "/id_rsa", "/.ssh/", "/etc/issue", "/etc/crontab", "/etc/security/", "windows/system32", "winnt/system32",
                                   "/etc/mysql/my.cnf", "/etc/apache2/", "/etc/httpd/", "/etc/nginx/nginx.conf", "/etc/hostname", "/etc/resolv.conf",
                                   "/etc/os-release", "/etc/profile", "/usr/local/etc/", "/etc/motd", "/etc/fstab", "/proc/", "/etc/kubernetes/",
                                   "/etc/environment", "/root/.", "/var/lib/mysql", ".git/config", "/.bashrc", "/.cshrc", "/.xauthority", "/.profile",
                                   "/var/adm/", "/var/run/", "/boot/grub", "/etc/apt/", "/.netrc", "/.viminfo", "/etc/sysconfig/", "/etc/pam.d/", "file://"])
    static let markers2 = MarkerSet(["/etc/hosts", "/var/log/", "/logs/access_log", "/logs/error_log", "access.log", "error.log", "/windows/", "c:/windows", "/system32", "web.config", ".htaccess", "/web-inf/", "/meta-inf/", "/etc/"])
    static let markers3 = MarkerSet(["php://", "expect://", "phar://", "zip://", "glob://", "data://", "compress.zlib://", "jar:file:", "netdoc://"])
    static let markers4 = MarkerSet(["/dev/tcp/", "/dev/udp/", "bash -i", "sh -i >", "nc -e", "ncat -e", "nc -c", "-e /bin/", "0<&196", "exec 5<>",
                                     "${ifs}", "$ifs$9", "{cat,", "{ls,", "{id,", "powershell -e", "powershell -nop", "powershell -w hidden", "iex(", "iex (",
                                     "invoke-expression", "downloadstring(", "| iex", "%comspec%", "certutil -urlcache", "rundll32 ", "mshta http", "regsvr32 /s",
                                     "mkfifo /tmp", "nc.traditional", "telnet -e", "xterm -display", "/usr/bin/id", "/usr/bin/whoami", "&& shutdown", "/etc/passwd;",
                                     "<!--#exec", "<!--#include", "phpinfo()", "passthru(", "shell_exec(", "proc_open(", "pcntl_exec(", "system('", "system(\"",
                                     "exec('", "exec(\"", "popen('", "assert(", "base64_decode(", "<?php", "<?=", "${phpinfo", "exit(md5(", "die(md5(", "print(md5(",
                                     "=$'", "=$\"", "netsh firewall", "netsh advfirewall", "net user ", "net localgroup", "reg add ", "vssadmin ", "wmic process"])
    static let markers5 = MarkerSet(["/bin/sh", "/bin/bash", "/bin/zsh", "/bin/busybox", "$ifs", "cmd /c", "cmd.exe", "powershell -c", "powershell.exe",
                                         "invoke-webrequest", "chmod 777 /", "chmod +x /tmp", "/tmp/.x", "| sh -", "|sh -", "python -c", "python3 -c", "perl -e",
                                         "ruby -e", "php -r", "lua -e", "; rm -rf", ";rm -rf", "| rm -rf", "&& rm -rf", "`rm -rf", "$(rm -rf"])
    static let markers6 = MarkerSet(["${jndi", "${env:", "${sys:", "${java:", "${ctx:", "${main:", "${base64:", "${lower:", "${upper:", "${date:", "${k8s:",
                                     "${docker:", "${spring:", "${bundle:", "${marker:", "${log4j:", "${web:", "${sd:", "${event:", "${map:", "${jvmrunargs:", "${::-", "${hostname"])
    static let markers7 = MarkerSet(["gopher://", "dict://", "ldap://", "tftp://", "jar:http", "netdoc:"])
    static let markers8 = MarkerSet(["169.254.169.254", "169.254.170.2", "metadata.google.internal", "metadata.goog", "100.100.100.200", "fd00:ec2::254",
                                   "192.0.0.192", "metadata.packet.net", "rancher-metadata", "metadata.tencentyun.com", "169.254.0.23", "metadata.platformequinix",
                                   "instance-data", "/latest/meta-data", "/latest/user-data", "/latest/api/token", "/computemetadata/v1", "/metadata/instance",
                                   "/metadata/v1", "/openstack/latest", "a9fe:a9fe", "169.254.169.253", "metadata.azure", "/metadata/identity"])
    static let markers9 = MarkerSet(["db.injection", "db.getcollectionnames", "this.constructor", "';it="])

    // MARK: Path traversal and local file inclusion

    static func traversal(_ s: [UInt8], strict: Bool) -> String? {
        let slashed = s.contains(0x5C) ? s.map { $0 == 0x5C ? 0x2F : $0 } : s
        let dotdot = slashed.containsBytes("../") || slashed.containsBytes("..;/") || slashed.hasSuffixBytes("/..")
        if dotdot && (strict || slashed.containsBytes("../../../")) { return "dot-dot-slash" }
        if Self.markers1.contains(in: slashed) { return "sensitive file" }
        if strict {
            if Self.parameterFiles.contains(in: slashed) { return "sensitive file" }
            if Self.markers2.contains(in: slashed) && (dotdot || slashed.first == 0x2F || slashed.hasPrefixBytes("c:")) { return "sensitive file" }
        }
        if Self.markers3.contains(in: slashed) { return "stream wrapper" }
        return nil
    }

    // MARK: Remote file inclusion (parameters only)

    /// `freeText`: only the shape nobody writes in a note: a script file on an IP-literal host.
    static func remoteInclusion(_ s: [UInt8], freeText: Bool = false) -> String? {
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
            let urlEnd = s[hostEnd...].firstIndex(of: 0x20) ?? s.count
            let url = Array(s[hostEnd..<urlEnd])
            let path = url.split(separator: 0x3F, maxSplits: 1, omittingEmptySubsequences: false).first.map(Array.init) ?? []
            let scriptFile = Self.scriptExtensions.contains { path.hasSuffixBytes($0) }
            let endsInQuestion = url.last == 0x3F || url.hasSuffixBytes("?%00")
            let ipHost = isIPLiteral(host)
            if freeText {
                // ("Did you read https://example.com/docs?" ends in ? too.)
                if ipHost && scriptFile { return "script file on an ip address" }
                continue
            }
            if scheme == "gopher" || scheme == "dict" || scheme == "ldap" || scheme == "tftp" || scheme == "smb" { return "\(scheme) url" }
            if ipHost { return "url to an ip address" }
            if host == Array("localhost".utf8) || host.hasSuffixBytes(".localhost") || host.hasSuffixBytes(".nip.io") || host.hasSuffixBytes(".sslip.io") { return "url to a loopback name" }
            if scriptFile { return "url to a script file" }
            if endsInQuestion { return "url ending in ?" }
        }
        return nil
    }

    static let scriptExtensions: [StaticString] = [".php", ".txt", ".sh", ".pl", ".py", ".jsp", ".asp", ".aspx", ".cgi", ".exe", ".inc", ".jar", ".war", ".ps1", ".bat", ".dll", ".so"]

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
        "perl", "php", "ruby", "lua", "cat", "ls", "dir", "echo", "env", "printenv", "busybox", "telnet", "tftp",
        "powershell", "pwsh", "cmd", "cmd.exe", "certutil", "bitsadmin", "net", "whoami.exe", "uname.exe", "pwd",
        "head", "tail", "chmod", "rm", "xterm", "nohup", "crontab", "socat", "base64", "sysinfo", "ver",
        "getent", "ps", "kill", "killall", "reboot", "shutdown", "mkfifo", "awk",
        "xxd", "od", "tasklist", "taskkill", "reg", "wmic", "ssh", "scp", "ftp", "passwd",
    ]
    /// The subset that is rare in a person's text even after `;` or `|`.
    static let strongCommands: Set<String> = [
        "id", "whoami", "uname", "ifconfig", "ipconfig", "netstat", "systeminfo", "nslookup", "nc", "ncat", "netcat",
        "busybox", "telnet", "tftp", "powershell", "pwsh", "cmd", "cmd.exe", "certutil", "bitsadmin", "whoami.exe",
        "socat", "mkfifo", "printenv", "tasklist", "wmic", "xterm", "sysinfo", "uname.exe",
    ]

    static func commandInjection(_ s: [UInt8], strict: Bool) -> String? {
        // Reverse shells and shell tricks: unambiguous anywhere.
        if Self.markers4.contains(in: s) { return "shell command" }
        // Likely in a person's shell snippet ("#!/bin/bash", "cd build; rm -rf out"): parameters only.
        if strict {
            if Self.markers5.contains(in: s) { return "shell command" }
        }
        // $(cmd …) and `cmd …`: command substitution with a probe command.
        var from = 0
        while let at = s.firstIndex(of: "$(", from: from) {
            from = at + 2
            if let word = firstWord(s, after: at + 2), probeCommands.contains(word) { return "command substitution" }
        }
        from = 0
        while let at = s[from...].firstIndex(of: 0x60) {
            from = at + 1
            // Markdown's ``` fences and `` spans are not command substitution.
            if at + 1 < s.count && s[at + 1] == 0x60 || at > 0 && s[at - 1] == 0x60 { continue }
            guard let word = firstWord(s, after: at + 1) else { continue }
            if strongCommands.contains(word) || word == "sleep" && nextIsNumber(s, afterWordAt: at + 1) { return "command substitution" }
            if strict && probeCommands.contains(word) { return "command substitution" }
        }
        // A separator and then a command: `; id`, `| nc 10.0.0.1 4444`, `&& sleep 5`, "\nid".
        var i = 0
        while i < s.count {
            let b = s[i]
            // In free text a line break is just a line break (code blocks, lists).
            guard b == 0x3B || b == 0x7C || b == 0x26 || strict && (b == 0x0A || b == 0x0D) else { i += 1; continue }
            var j = i + 1
            while j < s.count && (s[j] == 0x7C || s[j] == 0x26 || s[j] == 0x3B || s[j] == 0x20) { j += 1 }
            if let word = firstWord(s, after: j) {
                if strongCommands.contains(word) && wordEndsCleanly(s, at: j, word) { return "command after \(Character(Unicode.Scalar(b)))" }
                // ("while true; do date; sleep 60; done" is a person's loop: free text only near the start)
                if word == "sleep" || word == "ping" || word == "timeout", strict || i < 8,
                   nextIsNumber(s, afterWordAt: j) || word == "ping" && s[j...].starts(with: Array("ping -".utf8)) {
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
        // Payload lists write the newline as the two characters `\n`: a parameter that starts so.
        if strict, s.hasPrefixBytes("\\n") || s.hasPrefixBytes("\\r\\n") || s.first == 0x3C || s.first == 0x5E {
            let skip = s.hasPrefixBytes("\\r\\n") ? 4 : s.first == 0x5C ? 2 : 1
            if let word = firstWord(s, after: skip), probeCommands.contains(word), wordEndsCleanly(s, at: skip, word) { return "command after a line break" }
            if s.firstIndex(of: "/bin/", from: skip) == skip { return "command after a line break" }
        }
        // A field that starts with a separator and a command (`; ls -la`, `| id`, `&& pwd`):
        // nobody starts a sentence that way.
        if !strict {
            var k = 0
            while k < s.count && s[k] == 0x20 { k += 1 }
            // (Not a backtick: Markdown code fences start with ```.)
            if k < s.count && [0x3B, 0x7C, 0x26, 0x0A].contains(s[k]) {
                var m = k
                while m < s.count && [0x3B, 0x7C, 0x26, 0x0A, 0x20].contains(s[m]) { m += 1 }
                if let word = firstWord(s, after: m), probeCommands.contains(word), wordEndsCleanly(s, at: m, word) { return "command at the start" }
                if m < s.count && s[m] == 0x2F, s.firstIndex(of: "/bin/", from: m) == m || s.firstIndex(of: "/usr/bin/", from: m) == m { return "command at the start" }
            }
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
        guard s.containsBytes("${") else { return nil }
        if Self.markers6.contains(in: s) { return "log4j lookup" }
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

    // MARK: Server-side template injection

    static func templateInjection(_ s: [UInt8]) -> String? {
        if Self.markers101.contains(in: s) { return "template expression" }
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
        if Self.markers7.contains(in: s) { return "internal protocol url" }
        if Self.markers8.contains(in: s) { return "metadata endpoint" }
        // Other spellings of 169.254.169.254: 2852039166, 0xa9fea9fe, 0251.0376.0251.0376, 169.254.43518 …
        var i = 0
        while i < s.count {
            let c = s[i]
            guard c >= 0x30 && c <= 0x39, i == 0 || !isWordByte(s[i - 1]) || s[i - 1] == 0x5F else { i += 1; continue }
            var j = i
            while j < s.count && ((s[j] >= 0x30 && s[j] <= 0x39) || (s[j] >= 0x61 && s[j] <= 0x66) || s[j] == 0x78 || s[j] == 0x2E) { j += 1 }
            // Without a dot the address is one number: 10 decimal digits, or 0x… / 0… (hex, octal).
            // UUID segments ("8d2c6d41") are neither, and are not parsed at all.
            let dotted = s[i..<j].contains(0x2E)
            let plausible = dotted || s[i] == 0x30 || (j - i == 10 && s[i..<j].allSatisfy { $0 >= 0x30 && $0 <= 0x39 })
            if j - i >= 8, plausible, let value = IPv4Forms.parse(Array(s[i..<j])), value == 0xA9FE_A9FE || value == 0xA9FE_AA02 { return "metadata address" }
            i = j + 1
        }
        // IPv6 forms embedding it: [::ffff:169.254.169.254], [0:0:0:0:0:ffff:a9fe:a9fe]
        if s.contains(0x5B) {
            var from = 0
            while let open = s[from...].firstIndex(of: 0x5B) {
                from = open + 1
                guard let close = s[from...].firstIndex(of: 0x5D), close - from <= 45 else { continue }
                if let address = IPAddress(String(decoding: s[from..<close], as: UTF8.self)) {
                    if (address.isIPv4 || address.high == 0 || address.high == 0x0064_ff9b_0000_0000), UInt32(truncatingIfNeeded: address.low) == 0xA9FE_A9FE { return "metadata address" }
                    if address == IPAddress("fd00:ec2::254") { return "metadata address" }
                }
            }
        }
        return nil
    }

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
        if Self.markers9.contains(in: s) { return "nosql javascript" }
        if Self.markers102.contains(in: s) { return "nosql operator" }
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
