extension AttackPatterns {
    static let shellMarkers = MarkerSet(["/dev/tcp/", "/dev/udp/", "bash -i", "sh -i >", "nc -e", "ncat -e", "nc -c", "-e /bin/", "0<&196", "exec 5<>",
                                     "${ifs}", "$ifs$9", "{cat,", "{ls,", "{id,", "powershell -e", "powershell -nop", "powershell -w hidden", "iex(", "iex (",
                                     "invoke-expression", "downloadstring(", "| iex", "%comspec%", "certutil -urlcache", "rundll32 ", "mshta http", "regsvr32 /s",
                                     "mkfifo /tmp", "nc.traditional", "telnet -e", "xterm -display", "/usr/bin/id", "/usr/bin/whoami", "&& shutdown", "/etc/passwd;",
                                     "<!--#exec", "<!--#include", "phpinfo()", "passthru(", "shell_exec(", "proc_open(", "pcntl_exec(", "system('", "system(\"",
                                     "exec('", "exec(\"", "popen('", "assert(", "base64_decode(", "<?php", "<?=", "${phpinfo", "exit(md5(", "die(md5(", "print(md5(",
                                     "=$'", "=$\"", "netsh firewall", "netsh advfirewall", "net user ", "net localgroup", "reg add ", "vssadmin ", "wmic process"])
    static let parameterShellMarkers = MarkerSet(["/bin/sh", "/bin/bash", "/bin/zsh", "/bin/busybox", "$ifs", "cmd /c", "cmd.exe", "powershell -c", "powershell.exe",
                                         "invoke-webrequest", "chmod 777 /", "chmod +x /tmp", "/tmp/.x", "| sh -", "|sh -", "python -c", "python3 -c", "perl -e",
                                         "ruby -e", "php -r", "lua -e", "; rm -rf", ";rm -rf", "| rm -rf", "&& rm -rf", "`rm -rf", "$(rm -rf"])

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
        if Self.shellMarkers.contains(in: s) { return "shell command" }
        // Likely in a person's shell snippet ("#!/bin/bash", "cd build; rm -rf out"): parameters only.
        if strict {
            if Self.parameterShellMarkers.contains(in: s) { return "shell command" }
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
        let readsSystemFile = Lazy { s.containsBytes("/etc/") || s.containsBytes("c:/") || s.containsBytes("c:\\") }
        let downloadsAndRuns = Lazy {
            s.containsBytes("http") && (s.containsBytes("| sh") || s.containsBytes("|sh") || s.containsBytes("| bash") || s.containsBytes("-o /tmp")
                                        || s.containsBytes("-o/tmp") || s.containsBytes("/tmp/"))
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
                // (What the command works on is looked for once per value, not after every
                // separator: "; cat" repeated 5,000 times was a quadratic scan on the loop.)
                if (word == "cat" || word == "type" || word == "more" || word == "head" || word == "tail"), readsSystemFile.value {
                    return "file read command"
                }
                if (word == "wget" || word == "curl" || word == "fetch"), strict || i < 48, downloadsAndRuns.value { return "download and run" }
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
        let end = min(s.count, start + 32)  // `sleep 5`, `ping -n 10`: the number is close
        while i < end && s[i] == 0x20 { i += 1 }
        while i < end && s[i] >= 0x61 && s[i] <= 0x7A { i += 1 }
        while i < end && (s[i] == 0x20 || s[i] == 0x2D || (s[i] >= 0x61 && s[i] <= 0x7A)) { i += 1 }
        return i < end && s[i] >= 0x30 && s[i] <= 0x39
    }
}

/// A value computed on first use, then remembered (for checks a loop may need many times).
final class Lazy<Value> {
    private var computed: Value?
    private let compute: () -> Value

    init(_ compute: @escaping () -> Value) { self.compute = compute }

    var value: Value {
        if let computed { return computed }
        let value = compute()
        computed = value
        return value
    }
}
