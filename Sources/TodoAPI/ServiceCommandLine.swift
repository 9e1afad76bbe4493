/// The command line of `todo-api`: a command (`serve` when none is named) and its options, as
/// `--name value` or `--name=value`; `-h`, `--help` or `help [command]` for the usage text.
/// Pure: parsed from the argument list, no I/O (the executable prints and exits).
///
/// Hand-written rather than swift-argument-parser: that package and the FoundationEssentials it
/// links kept 1.2 MB of code resident in a service whose whole peak RSS target is 15 MB
/// (docs/BENCHMARKS.md, "Memory"), for a command line of three commands whose serve options are
/// already a table (`ServiceConfiguration.settings`).
public struct ServiceCommandLine: Equatable, Sendable {
    public enum Command: String, CaseIterable, Sendable {
        case serve, migrate, healthcheck
    }

    /// One option: `--name <value>`, or `--name` alone when `isSwitch`.
    public struct Option: Sendable {
        public let name: String
        public let environment: String?
        public let help: String
        public let isSwitch: Bool
    }

    public var command: Command
    /// Option name (without `--`) → value; a switch given is `"true"`. A repeated option keeps its
    /// last value, as most Unix tools do.
    public var options: [String: String]
    /// The usage text was asked for (`-h`, `--help`, `help`); `command` says whose.
    public var wantsHelp: Bool
    /// `help` or `--help` before any command: the overview rather than serve's options.
    public var helpIsGeneral: Bool
    /// `--version` (anywhere, like `--help`) or the `version` command.
    public var wantsVersion: Bool

    public init(command: Command, options: [String: String] = [:], wantsHelp: Bool = false, helpIsGeneral: Bool = false,
                wantsVersion: Bool = false) {
        self.command = command
        self.options = options
        self.wantsHelp = wantsHelp
        self.helpIsGeneral = helpIsGeneral
        self.wantsVersion = wantsVersion
    }

    public static let commandSummaries: [(Command, String)] = [
        (.serve, "Serve the API (the default command). Every option also reads an environment variable; the option wins."),
        (.migrate, "Apply pending database migrations (DATABASE_URL, PG* or DB_SECRET) and exit."),
        (.healthcheck, "GET a health URL; exit 0 on a 200, 1 otherwise (for Docker HEALTHCHECK and ECS)."),
    ]

    public static func options(for command: Command) -> [Option] {
        switch command {
        case .serve:
            ServiceConfiguration.settings.map {
                Option(name: $0.flag, environment: $0.environment, help: $0.help, isSwitch: ServiceConfiguration.switches.contains($0.flag))
            }
        case .migrate:
            ServiceConfiguration.settings.filter { ["migrations-dir", "log-level", "db-secret-id", "db-iam-auth"].contains($0.flag) }.map {
                Option(name: $0.flag, environment: $0.environment, help: $0.help, isSwitch: ServiceConfiguration.switches.contains($0.flag))
            }
        case .healthcheck:
            [
                Option(name: "url", environment: nil,
                       help: "http:// URL to check (default http://127.0.0.1:$PORT/health, PORT defaulting to 8000).", isSwitch: false),
                Option(name: "timeout", environment: nil, help: "Budget for the whole check (default 2s). Units: ms, s.", isSwitch: false),
            ]
        }
    }

    /// `arguments` without the program name (`CommandLine.arguments.dropFirst()`).
    public static func parse(_ arguments: [String]) throws(UsageError) -> ServiceCommandLine {
        var rest = arguments[...]
        var result = ServiceCommandLine(command: .serve)
        if let first = rest.first {
            if let command = Command(rawValue: first) {
                result.command = command
                rest = rest.dropFirst()
            } else if first == "help" {
                rest = rest.dropFirst()
                result.wantsHelp = true
                guard let topic = rest.first else {
                    result.helpIsGeneral = true
                    return result
                }
                guard let command = Command(rawValue: topic) else {
                    throw UsageError(command: nil, message: "no such command '\(topic)'")
                }
                if let extra = rest.dropFirst().first {
                    throw UsageError(command: command, message: "unexpected argument '\(extra)'")
                }
                result.command = command
                return result
            } else if first == "-h" || first == "--help" {
                result.wantsHelp = true
                result.helpIsGeneral = true
                return result
            } else if first == "version" {
                result.wantsVersion = true
                return result
            }
        }
        // Help wins over every mistake around it, as in most tools: `serve --bogus --help` helps.
        if rest.contains("-h") || rest.contains("--help") {
            result.wantsHelp = true
            return result
        }
        if rest.contains("--version") {
            result.wantsVersion = true
            return result
        }
        let known = options(for: result.command)
        while let argument = rest.popFirst() {
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw UsageError(command: result.command, message: "unexpected argument '\(argument)'")
            }
            let body = argument.dropFirst(2)
            let name: Substring
            var value: String?
            if let equals = body.firstIndex(of: "=") {
                name = body[..<equals]
                value = String(body[body.index(after: equals)...])
            } else {
                name = body
            }
            guard let option = known.first(where: { $0.name == name }) else {
                throw UsageError(command: result.command, message: "unknown option '--\(name)'")
            }
            if option.isSwitch {
                guard value == nil else { throw UsageError(command: result.command, message: "'--\(name)' takes no value") }
                value = "true"
            } else if value == nil {
                // The next argument is the value, unless it is another option: `--host --port 80`
                // is a forgotten value, not a host named "--port".
                guard let next = rest.first, !next.hasPrefix("--") else {
                    throw UsageError(command: result.command, message: "'--\(name)' needs a value")
                }
                value = next
                rest = rest.dropFirst()
            }
            result.options[String(name)] = value
        }
        return result
    }

    /// The usage text: the overview, or one command's options.
    public static func usage(_ command: Command?) -> String {
        var lines: [String] = []
        guard let command else {
            lines += ["todo-api: the Todo REST service.", "",
                      "Usage: todo-api [serve] [--option value ...]",
                      "       todo-api migrate [--option value ...]",
                      "       todo-api healthcheck [--url URL] [--timeout DURATION]",
                      "       todo-api help [command]", "", "Commands:"]
            for (command, summary) in commandSummaries {
                lines.append("  " + command.rawValue.padding(to: 13) + summary)
            }
            lines += ["", "Exit codes: 0 done, 1 runtime failure, 2 invalid command line or configuration.",
                      "See 'todo-api help <command>' for a command's options."]
            return lines.joined(separator: "\n")
        }
        let summary = commandSummaries.first { $0.0 == command }!.1
        lines += ["todo-api \(command.rawValue): \(summary)", "",
                  "Usage: todo-api \(command.rawValue)\(command == .serve ? " (or no command)" : "") [options]", "", "Options:"]
        for option in options(for: command) {
            let flag = "--" + option.name + (option.isSwitch ? "" : " <value>")
            let environment = option.environment.map { "\($0): " } ?? ""
            lines.append("  " + flag.padding(to: 34) + environment + option.help)
        }
        lines.append("  " + "-h, --help".padding(to: 34) + "Show this text.")
        return lines.joined(separator: "\n")
    }
}

/// A command line that cannot be run: says what is wrong and where to look (exit code 2).
public struct UsageError: Error, Equatable, CustomStringConvertible {
    public let command: ServiceCommandLine.Command?
    public let message: String

    public init(command: ServiceCommandLine.Command?, message: String) {
        self.command = command
        self.message = message
    }

    public var description: String {
        let help = command.map { "todo-api help \($0.rawValue)" } ?? "todo-api help"
        return "\(message) (see '\(help)')"
    }
}

private extension String {
    /// Left-aligned in a column of `width` characters, with at least one space after.
    func padding(to width: Int) -> String {
        count < width ? self + String(repeating: " ", count: width - count) : self + " "
    }
}
