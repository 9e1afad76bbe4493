extension AttackPatterns {
    /// Files only an attacker asks a web form for: blocked wherever they appear.
    static let sensitiveFiles = MarkerSet(["/etc/passwd", "/etc/shadow", "/etc/master.passwd", "/etc/sudoers", "/etc/gshadow", "/proc/self/", "/proc/version",
                                   "/proc/cmdline", "/environ", "boot.ini", "win.ini", "system.ini", ".htpasswd", "/.bash_history", "/.mysql_history",
                                   "/.aws/credentials", "/var/run/secrets/", "wp-config.php", "web-inf/web.xml", "/system32/drivers/etc/hosts",
                                   "/inetpub/wwwroot", "/etc/ssh/sshd_config"])
    /// /proc/cpuinfo", "C:\Windows\System32 is full", "file:///Users/me/report.pdf"): parameters only.
    static let parameterFiles = MarkerSet(["/etc/group", "/id_rsa", "/.ssh/", "/etc/issue", "/etc/crontab", "/etc/security/", "windows/system32", "winnt/system32",
                                   "/etc/mysql/my.cnf", "/etc/apache2/", "/etc/httpd/", "/etc/nginx/nginx.conf", "/etc/hostname", "/etc/resolv.conf",
                                   "/etc/os-release", "/etc/profile", "/usr/local/etc/", "/etc/motd", "/etc/fstab", "/proc/", "/etc/kubernetes/",
                                   "/etc/environment", "/root/.", "/var/lib/mysql", ".git/config", "/.bashrc", "/.cshrc", "/.xauthority", "/.profile",
                                   "/var/adm/", "/var/run/", "/boot/grub", "/etc/apt/", "/.netrc", "/.viminfo", "/etc/sysconfig/", "/etc/pam.d/", "file://"])
    static let anchoredParameterFiles = MarkerSet(["/etc/hosts", "/var/log/", "/logs/access_log", "/logs/error_log", "access.log", "error.log", "/windows/", "c:/windows", "/system32", "web.config", ".htaccess", "/web-inf/", "/meta-inf/", "/etc/"])
    static let streamWrappers = MarkerSet(["php://", "expect://", "phar://", "zip://", "glob://", "data://", "compress.zlib://", "jar:file:", "netdoc://"])

    // MARK: Path traversal and local file inclusion

    static func traversal(_ s: [UInt8], strict: Bool) -> String? {
        let slashed = s.contains(0x5C) ? s.map { $0 == 0x5C ? 0x2F : $0 } : s
        let dotdot = slashed.containsBytes("../") || slashed.containsBytes("..;/") || slashed.hasSuffixBytes("/..")
        if dotdot && (strict || slashed.containsBytes("../../../")) { return "dot-dot-slash" }
        if Self.sensitiveFiles.contains(in: slashed) { return "sensitive file" }
        if strict {
            if Self.parameterFiles.contains(in: slashed) { return "sensitive file" }
            if Self.anchoredParameterFiles.contains(in: slashed) && (dotdot || slashed.first == 0x2F || slashed.hasPrefixBytes("c:")) { return "sensitive file" }
        }
        if Self.streamWrappers.contains(in: slashed) { return "stream wrapper" }
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
            // Bounded windows: a value of "http://" repeated thousands of times stays linear.
            let hostWindow = min(s.count, from + 256)
            let hostEnd = s[from..<hostWindow].firstIndex { $0 == 0x2F || $0 == 0x3F || $0 == 0x23 || $0 == 0x20 } ?? hostWindow
            var host = Array(s[from..<hostEnd])
            if let atSign = host.lastIndex(of: 0x40) { host = Array(host[(atSign + 1)...]) }
            if let colon = host.lastIndex(of: 0x3A), !host.contains(0x5D) || colon > host.lastIndex(of: 0x5D)! { host = Array(host[..<colon]) }
            let urlWindow = min(s.count, hostEnd + 1024)
            let urlEnd = s[hostEnd..<urlWindow].firstIndex(of: 0x20) ?? urlWindow
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
}
