import Net

/// Settings of the request filter; built once at start-up.
public struct WAFConfiguration: Sendable {
    public var enabled = true
    /// Per rule, indexed by `WAFRule.rawValue`. Default: every rule blocks.
    public var actions = [WAFAction](repeating: .block, count: WAFRule.allCases.count)
    /// Clients never filtered (monitoring, a partner's egress) and clients always refused.
    public var allowList: [IPNetwork] = []
    public var denyList: [IPNetwork] = []

    // Size limits (AWS WAF Core rule set: body 8 KB, URI path 1 KB, query 2 KB, cookie 10 KB).
    /// A todo is at most 200 + 2,000 characters; as JSON with every character `\uXXXX`-escaped
    /// (or a surrogate pair) that stays under 32 KiB, AWS's 8 KB would refuse real Japanese text.
    public var maxBodyBytes = 32 * 1024
    public var maxURIPathBytes = 1024
    public var maxQueryStringBytes = 2048
    public var maxCookieBytes = 10 * 1024
    public var maxHeaderBytes = 8 * 1024
    /// Paths whose shape admits no attack text (see `PathShape`): their path skips the content
    /// rules. Set by the application from its routes; empty by default.
    public var inertPaths: [PathShape] = []

    public init() {}

    public func action(_ rule: WAFRule) -> WAFAction { actions[rule.rawValue] }

    public mutating func set(_ rules: [WAFRule], _ action: WAFAction) {
        for rule in rules { actions[rule.rawValue] = action }
    }

    /// `WAF_RULES`: `rule-or-group=action` pairs separated by commas or new lines
    /// (`sqli=count,CrossSiteScripting=off,all=block`); applied left to right.
    public mutating func apply(rules text: String) -> String? {
        for item in text.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            var line = item.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            line = line.trimmingWhitespace
            guard !line.isEmpty else { continue }
            let parts = line.split(whereSeparator: { $0 == "=" || $0 == " " || $0 == "\t" }).map(String.init)
            guard parts.count == 2, let action = WAFAction(rawValue: parts[1].lowercased()) else {
                return "'\(line)' is not rule=block|count|off"
            }
            let rules = WAFRule.named(parts[0])
            guard !rules.isEmpty else { return "unknown rule or group '\(parts[0])'" }
            set(rules, action)
        }
        return nil
    }

    /// `WAF_RULES_FILE`: the same pairs, one per line, `#` comments.
    public mutating func apply(rulesFile path: String) -> String? {
        guard let bytes = FileBytes.read(path, limit: 1 << 20) else { return "cannot read \(path)" }
        return apply(rules: String(decoding: bytes, as: UTF8.self))
    }
}
