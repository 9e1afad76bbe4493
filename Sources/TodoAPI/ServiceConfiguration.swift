import HTTP
import Net

/// The service's configuration: env vars, overridden by command-line flags, validated once at
/// start-up. An invalid value is a `ConfigurationError` naming the setting (exit code 2).
public struct ServiceConfiguration: Sendable {
    public var http = HTTPServerConfiguration()
    /// Event-loop threads; default: the CPUs this process may use (affinity and cgroup quota).
    public var threads = CPUCount.available()
    /// Graceful-shutdown budget; under ECS's default 30 s stopTimeout so we exit before SIGKILL.
    public var drainTimeout = TimeSpan.seconds(25)
    public var logLevel = "info"

    public init() {}

    /// One setting: its env var, its flag, how to read it and where it goes.
    public struct Setting: Sendable {
        public let environment: String
        public let flag: String
        public let help: String
        let apply: @Sendable (inout ServiceConfiguration, String) -> Bool
    }

    public static let settings: [Setting] = [
        Setting(environment: "HOST", flag: "host", help: "Address to listen on (default 0.0.0.0).") { c, v in
            guard !v.isEmpty else { return false }
            c.http.host = v
            return true
        },
        Setting(environment: "PORT", flag: "port", help: "TCP port (default 8000; 0 picks a free one).") { c, v in
            guard let port = Int(v), (0...65535).contains(port) else { return false }
            c.http.port = port
            return true
        },
        Setting(environment: "THREADS", flag: "threads", help: "Event-loop threads (default: usable CPUs).") { c, v in
            guard let n = Int(v), (1...256).contains(n) else { return false }
            c.threads = n
            return true
        },
        Setting(environment: "MAX_BODY_SIZE", flag: "max-body-size", help: "Largest request body in bytes (default 1048576).") { c, v in
            guard let n = Int(v), (0...(64 << 20)).contains(n) else { return false }
            c.http.limits.maxBodyBytes = n
            return true
        },
        Setting(environment: "MAX_CONNECTIONS", flag: "max-connections", help: "Open connections per process (default 10000).") { c, v in
            guard let n = Int(v), (1...1_000_000).contains(n) else { return false }
            c.http.maxConnections = n
            return true
        },
        timeout("HEADER_TIMEOUT", "header-timeout", "Time to receive a request head (default 10s).") { $0.http.headerTimeout = $1 },
        timeout("BODY_TIMEOUT", "body-timeout", "Longest pause inside a request body (default 15s).") { $0.http.bodyTimeout = $1 },
        timeout("WRITE_TIMEOUT", "write-timeout", "Longest stall writing a response (default 15s).") { $0.http.writeTimeout = $1 },
        timeout("IDLE_TIMEOUT", "idle-timeout", "Idle keep-alive connections close after this (default 75s).") { $0.http.idleTimeout = $1 },
        timeout("DRAIN_TIMEOUT", "drain-timeout", "Graceful shutdown budget (default 25s).") { $0.drainTimeout = $1 },
        Setting(environment: "LOG_LEVEL", flag: "log-level", help: "trace, debug, info, warn, error or critical (default info).") { c, v in
            let level = v.lowercased()
            guard ["trace", "debug", "info", "warn", "warning", "error", "critical"].contains(level) else { return false }
            c.logLevel = level
            return true
        },
    ]

    private static func timeout(_ environment: String, _ flag: String, _ help: String,
                                _ set: @escaping @Sendable (inout ServiceConfiguration, TimeSpan) -> Void) -> Setting {
        Setting(environment: environment, flag: flag, help: help + " Units: ms, s, m, h.") { c, v in
            guard let span = TimeSpan(parsing: v), span.nanoseconds > 0 else { return false }
            set(&c, span)
            return true
        }
    }

    /// Environment first, then flags (`flag name → value`) on top.
    public static func resolve(environment: [String: String], flags: [String: String]) throws(ConfigurationError) -> ServiceConfiguration {
        var configuration = ServiceConfiguration()
        for setting in settings {
            if let value = environment[setting.environment] {
                guard setting.apply(&configuration, value) else {
                    throw ConfigurationError(setting: setting.environment, value: value, help: setting.help)
                }
            }
            if let value = flags[setting.flag] {
                guard setting.apply(&configuration, value) else {
                    throw ConfigurationError(setting: "--\(setting.flag)", value: value, help: setting.help)
                }
            }
        }
        return configuration
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public let setting: String
    public let value: String
    public let help: String

    public var description: String {
        "invalid value '\(value)' for \(setting): \(help)"
    }
}
