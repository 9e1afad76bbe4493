/// The filter's rules, named after the AWS WAF managed rule groups they stand in for (Core rule
/// set, Known bad inputs, SQL database, Linux/POSIX) so that a WAF log and ours read alike.
public enum WAFRule: Int, CaseIterable, Sendable {
    case ipDenyList
    case restrictedMethods
    case sizeBody, sizeURIPath, sizeQueryString, sizeCookie, sizeHeader
    case noUserAgent, badBots
    case exploitablePaths, hostLocalhost
    case sqlInjection, crossSiteScripting
    case localFileInclusion, remoteFileInclusion, commandInjection
    case log4j, metadataSSRF, templateInjection, noSQLInjection, crlfInjection

    public var id: String {
        switch self {
        case .ipDenyList: "IPDenyList"
        case .restrictedMethods: "RestrictedMethods"
        case .sizeBody: "SizeRestrictions_BODY"
        case .sizeURIPath: "SizeRestrictions_URIPATH"
        case .sizeQueryString: "SizeRestrictions_QUERYSTRING"
        case .sizeCookie: "SizeRestrictions_Cookie_HEADER"
        case .sizeHeader: "SizeRestrictions_HEADER"
        case .noUserAgent: "NoUserAgent_HEADER"
        case .badBots: "UserAgent_BadBots_HEADER"
        case .exploitablePaths: "ExploitablePaths_URIPATH"
        case .hostLocalhost: "Host_localhost_HEADER"
        case .sqlInjection: "SQLi"
        case .crossSiteScripting: "CrossSiteScripting"
        case .localFileInclusion: "GenericLFI"
        case .remoteFileInclusion: "GenericRFI"
        case .commandInjection: "CommandInjection"
        case .log4j: "Log4JRCE"
        case .metadataSSRF: "EC2MetaDataSSRF"
        case .templateInjection: "TemplateInjection"
        case .noSQLInjection: "NoSQLi"
        case .crlfInjection: "CRLFInjection"
        }
    }

    /// The group a rule belongs to, for `WAF_RULES=sqli=count`.
    public var group: String {
        switch self {
        case .ipDenyList: "ip"
        case .restrictedMethods: "methods"
        case .sizeBody, .sizeURIPath, .sizeQueryString, .sizeCookie, .sizeHeader: "size"
        case .noUserAgent, .badBots: "useragent"
        case .exploitablePaths: "paths"
        case .hostLocalhost: "host"
        case .sqlInjection: "sqli"
        case .crossSiteScripting: "xss"
        case .localFileInclusion: "lfi"
        case .remoteFileInclusion: "rfi"
        case .commandInjection: "cmdi"
        case .log4j: "log4j"
        case .metadataSSRF: "ssrf"
        case .templateInjection: "ssti"
        case .noSQLInjection: "nosqli"
        case .crlfInjection: "crlf"
        }
    }

    public static func named(_ name: String) -> [WAFRule] {
        let lower = name.lowercased()
        if lower == "all" || lower == "*" { return allCases }
        if let rule = allCases.first(where: { $0.id.lowercased() == lower }) { return [rule] }
        return allCases.filter { $0.group == lower }
    }
}

/// What a rule does when it matches (AWS WAF's rule action override).
public enum WAFAction: String, Sendable {
    /// Refuse with 403, log and count.
    case block
    /// Log and count only: for rolling a rule out.
    case count
    /// Not evaluated.
    case off
}
