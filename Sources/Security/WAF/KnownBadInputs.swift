/// Paths no client of this API has a reason to request: what scanners probe for (AWS Known bad
/// inputs `ExploitablePaths_URIPATH` and the CRS's restricted files).
enum ExploitablePaths {
    static let segments = MarkerSet([
        "/.git", "/.env", "/.svn", "/.hg", "/.bzr", "/.ds_store", "/.htaccess", "/.htpasswd", "/.aws", "/.ssh", "/.docker",
        "/.vscode", "/.idea", "/.npmrc", "/.bash_history", "/.well-known/security", "/wp-admin", "/wp-login", "/wp-content", "/wp-includes",
        "/wp-json", "/xmlrpc.php", "/phpmyadmin", "/pma/", "/myadmin", "/phpinfo", "/actuator", "/server-status", "/server-info",
        "/cgi-bin/", "/manager/html", "/jmx-console", "/web-console", "/invoker/", "/solr/", "/jenkins", "/console/", "/_ignition",
        "/vendor/phpunit", "/boaform", "/hnap1", "/autodiscover", "/owa/", "/ecp/", "/telescope", "/debug/", "/_profiler",
        "/elmah.axd", "/trace.axd", "/web.config", "/config.php", "/backup", "/dump.sql", "/database.sql", "/.user.ini",
        "/etc/passwd", "/proc/self", "/admin.php", "/setup.php", "/install.php", "/shell", "/cmd", "/eval-stdin.php", "/adminer",
        "/struts", "/hudson", "/nacos", "/druid/", "/api/jsonws", "/securityrealm", "/remote/login", "/global-protect", "/sslvpn",
    ])
    static let extensions: [StaticString] = [
        ".php", ".asp", ".aspx", ".jsp", ".jspx", ".cgi", ".pl", ".cfm", ".do", ".action", ".env", ".bak", ".old", ".sql",
        ".ini", ".log", ".swp", ".git", ".sh", ".exe", ".dll", ".war", ".ear", ".inc", ".mdb", ".config", ".conf", ".pem", ".key",
    ]

    static let segmentEnds: Set<UInt8> = [0x2F, 0x2E, 0x3B, 0x3F, 0x2D, 0x5F]

    static func match(_ path: [UInt8]) -> String? {
        let normalized = normalizePath(path)
        var probe = false
        segments.forEachMatch(in: normalized) { index, at in
            // "/todos/.git-notes" would not be a probe; a segment must end at /, the end or punctuation.
            let segment = segments.marker(index)
            let end = at + segment.count
            if segment.last == 0x2F || end == normalized.count || Self.segmentEnds.contains(normalized[end]) {
                probe = true
                return false
            }
            return true
        }
        if probe { return "exploitable path" }
        for ext in extensions where normalized.hasSuffixBytes(ext) { return "script or backup file" }
        return nil
    }

    /// NORMALIZE_PATH: `\` → `/`, `//` → `/`, `/./` → `/` (so `/.//.git` is `/.git`).
    static func normalizePath(_ path: [UInt8]) -> [UInt8] {
        if !path.contains(0x5C) && !path.containsBytes("//") && !path.containsBytes("/./") { return path }
        var out: [UInt8] = []
        out.reserveCapacity(path.count)
        for var b in path {
            if b == 0x5C { b = 0x2F }
            if b == 0x2F && out.last == 0x2F { continue }
            out.append(b)
            if out.count >= 3 && out[out.count - 1] == 0x2F && out[out.count - 2] == 0x2E && out[out.count - 3] == 0x2F {
                out.removeLast(2)
            }
        }
        return out
    }
}

/// Scanner and attack-tool user agents (AWS `UserAgent_BadBots_HEADER`, the CRS's
/// scanners-user-agents list). Browsers, curl, HTTP libraries and the ALB's health checker pass.
enum BadBots {
    static let names = MarkerSet([
        "sqlmap", "nikto", "nmap", "masscan", "zgrab", "acunetix", "nessus", "openvas", "w3af", "wpscan", "dirbuster", "gobuster",
        "dirb/", "wfuzz", "ffuf", "nuclei", "havij", "netsparker", "appscan", "arachni", "skipfish", "whatweb", "jaeles", "zmeu",
        "morfeus", "commix", "xsstrike", "hydra", "medusa", "fimap", "bsqlbf", "brutus", "sqlninja", "pangolin", "webinspect",
        "paros", "burpcollaborator", "burp suite", "owasp zap", "zaproxy", "vega/", "grabber", "nuclei", "feroxbuster", "dotdotpwn",
        "joomscan", "droopescan", "cmsmap", "qualys", "detectify", "intruder", "xenu", "sf-scanner", "httpx - open-source", "interactsh",
        "censysinspect", "internet-measurement", "expanse", "l9explore", "l9tcpid", "leakix", "zmap", "binaryedge", "netcraft survey",
        "wprecon", "teh forest lobster", "muieblackcat", "xpymep", "morpheus fucking scanner", "nsauditor", "struts-pwn", "jorgee",
        "sysscan", "webshag", "uniscan", "ntlmssp", "x-scan", "blackwidow", "grendel-scan", "metis", "mysqloit", "absinthe", "bilbo",
        "mozilla/5.0 sf", "crimscanner", "python-nmap", "nmap scripting engine", "aioscan", "scan4all", "assetnote", "project discovery",
        "fuzz faster u fool", "xsser", "jsql", "ghauri", "panoptic", "lfisuite", "kadimus", "tplmap", "sstimap", "nosqlmap", "dalfox", "arjun",
        "wapiti", "sqlsus", "bbqsql", "zap/", "nikto", "openvas", "rustbuster", "dirsearch", "gospider", "hakrawler", "katana", "subfinder",
        "amass", "naabu", "nessus", "metasploit", "n-stealth", "internet ninja", "s.t.a.l.k.e.r", "fhscan", "webtrends security analyzer",
        "security scan", "vulnerability scan", "bfac", "pmafind", "sqlpowerinjector", "sysscan", "visualware", "webbandit", "webshag", "w3af.org", "sqlninja", "netsparker", "cgichk", "webvulnscan", "vulnscan", "scanbot",
    ])

    static func match(_ userAgent: [UInt8]) -> String? {
        names.firstMatch(in: userAgent).map { "scanner \($0)" }
    }
}

/// `Host: localhost` from an internet client is a probe for what the service trusts locally (AWS
/// `Host_localhost_HEADER`); from an internal one (loopback, Docker's bridge gateway when a port
/// is published, a private network) it is how local users address us (docs/SECURITY.md).
enum HostProbe {
    static func isLoopbackName(_ host: [UInt8]) -> Bool {
        var h = host.map { $0 &- 65 < 26 ? $0 | 0x20 : $0 }
        while h.last == 0x20 { h.removeLast() }
        if h.first == 0x5B, let close = h.firstIndex(of: 0x5D) { h = Array(h[1..<close]) }
        else if let colon = h.lastIndex(of: 0x3A), h.filter({ $0 == 0x3A }).count == 1 { h = Array(h[..<colon]) }
        if h == Array("localhost".utf8) || h.hasSuffixBytes(".localhost") || h == Array("::1".utf8) || h == Array("0.0.0.0".utf8) || h == Array("0".utf8) { return true }
        if let v4 = IPv4Forms.parse(h) { return v4 >> 24 == 127 || v4 == 0 }
        return false
    }
}
