import Glibc
import Postgres
import TodoAPI

/// `todo-api [serve | migrate | healthcheck | help]`: the one executable. Exit codes: 0 clean stop
/// (and the usage text), 1 runtime failure (port in use, ...), 2 invalid command line or
/// configuration.
@main
enum TodoAPICommand {
    static func main() {
        do {
            let commandLine = try ServiceCommandLine.parse(Array(CommandLine.arguments.dropFirst()))
            if commandLine.wantsHelp {
                print(ServiceCommandLine.usage(commandLine.helpIsGeneral ? nil : commandLine.command))
                return
            }
            if commandLine.wantsVersion {
                print("todo-api \(ServiceVersion.current) (libpq \(LinkedLibraries.libpq), \(LinkedLibraries.openSSL))")
                return
            }
            switch commandLine.command {
            case .serve:
                AllocatorTuning.executeAgainIfNeeded()
                try ServeCommand(options: commandLine.options).run()
            case .migrate: try MigrateCommand(options: commandLine.options).run()
            case .healthcheck: try HealthcheckCommand(options: commandLine.options).run()
            }
        } catch {
            printError("todo-api: \(error)")
            Glibc.exit(error is UsageError || error is ConfigurationError ? 2 : 1)
        }
    }
}

struct StartupError: Error, CustomStringConvertible {
    let description: String
}

/// Writes one line to stderr (fd 2) with write(2): no shared C `FILE*`.
func printError(_ message: String) {
    var line = Array((message + "\n").utf8)
    _ = line.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}
