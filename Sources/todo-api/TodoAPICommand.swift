import ArgumentParser
import Glibc
import TodoAPI

/// `todo-api [serve]`: the one executable. Exit codes: 0 clean stop, 1 runtime failure (port in
/// use, ...), 2 invalid command line or configuration.
@main
struct TodoAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "todo-api",
        abstract: "The Todo REST service.",
        subcommands: [ServeCommand.self, MigrateCommand.self, HealthcheckCommand.self],
        defaultSubcommand: ServeCommand.self
    )

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as ConfigurationError {
            printError("todo-api: \(error)")
            Glibc.exit(2)
        } catch let error as StartupError {
            printError("todo-api: \(error)")
            Glibc.exit(1)
        } catch {
            // Help and --version exit 0; any other command-line mistake exits 2 (not
            // ArgumentParser's 64), the usual code for bad usage.
            if exitCode(for: error) == .success { exit(withError: error) }
            printError(fullMessage(for: error))
            Glibc.exit(2)
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
