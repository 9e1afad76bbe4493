import Testing
import TodoAPI

/// The command line on its own; tests/smoke_test.py runs the binary with it (exit codes, messages).
@Suite struct ServiceCommandLineTests {
    private func parse(_ arguments: String...) throws(UsageError) -> ServiceCommandLine {
        try ServiceCommandLine.parse(arguments)
    }

    private func usageError(_ arguments: String...) -> UsageError? {
        do {
            _ = try ServiceCommandLine.parse(arguments)
            return nil
        } catch {
            return error
        }
    }

    @Test func serveIsTheDefaultCommand() throws {
        #expect(try parse() == ServiceCommandLine(command: .serve))
        #expect(try parse("--port", "9000") == ServiceCommandLine(command: .serve, options: ["port": "9000"]))
        #expect(try parse("serve", "--port", "9000") == ServiceCommandLine(command: .serve, options: ["port": "9000"]))
    }

    @Test func bothOptionFormsAndTheLastRepeatWins() throws {
        let line = try parse("serve", "--host=127.0.0.1", "--port", "1", "--port=2", "--log-level", "debug", "--waf-rules=a=b")
        #expect(line.options == ["host": "127.0.0.1", "port": "2", "log-level": "debug", "waf-rules": "a=b"])
        // An empty value is a value (the configuration then refuses it, naming the setting).
        #expect(try parse("--host=").options == ["host": ""])
        // A value may start with one dash: a negative number is refused later, by the setting.
        #expect(try parse("--port", "-1").options == ["port": "-1"])
    }

    @Test func migrateIsASwitch() throws {
        #expect(try parse("--migrate", "--port", "0").options == ["migrate": "true", "port": "0"])
        #expect(usageError("--migrate=false") == UsageError(command: .serve, message: "'--migrate' takes no value"))
        #expect(try parse("migrate", "--db-iam-auth").options == ["db-iam-auth": "true"])
    }

    @Test func everyConfigurationSettingIsAServeOption() throws {
        for setting in ServiceConfiguration.settings where !ServiceConfiguration.switches.contains(setting.flag) {
            #expect(try parse("--\(setting.flag)", "v").options == [setting.flag: "v"])
        }
    }

    @Test func eachCommandTakesOnlyItsOwnOptions() throws {
        #expect(try parse("migrate", "--migrations-dir", "m", "--log-level", "error").options == ["migrations-dir": "m", "log-level": "error"])
        #expect(try parse("healthcheck", "--url", "http://h/health", "--timeout", "1s") ==
                ServiceCommandLine(command: .healthcheck, options: ["url": "http://h/health", "timeout": "1s"]))
        #expect(usageError("migrate", "--port", "1") == UsageError(command: .migrate, message: "unknown option '--port'"))
        #expect(usageError("healthcheck", "--host", "h") == UsageError(command: .healthcheck, message: "unknown option '--host'"))
    }

    @Test func mistakesAreNamed() {
        #expect(usageError("--no-such-flag") == UsageError(command: .serve, message: "unknown option '--no-such-flag'"))
        #expect(usageError("--port") == UsageError(command: .serve, message: "'--port' needs a value"))
        #expect(usageError("--host", "--port", "80") == UsageError(command: .serve, message: "'--host' needs a value"))
        #expect(usageError("serve", "extra") == UsageError(command: .serve, message: "unexpected argument 'extra'"))
        #expect(usageError("-p", "80") == UsageError(command: .serve, message: "unexpected argument '-p'"))
        #expect(usageError("--") == UsageError(command: .serve, message: "unexpected argument '--'"))
        #expect(usageError("help", "nope") == UsageError(command: nil, message: "no such command 'nope'"))
        #expect("\(usageError("migrate", "--x")!)" == "unknown option '--x' (see 'todo-api help migrate')")
    }

    @Test func helpInEveryForm() throws {
        #expect(try parse("--help") == ServiceCommandLine(command: .serve, wantsHelp: true, helpIsGeneral: true))
        #expect(try parse("-h") == ServiceCommandLine(command: .serve, wantsHelp: true, helpIsGeneral: true))
        #expect(try parse("help") == ServiceCommandLine(command: .serve, wantsHelp: true, helpIsGeneral: true))
        #expect(try parse("help", "migrate") == ServiceCommandLine(command: .migrate, wantsHelp: true))
        #expect(try parse("healthcheck", "--help").wantsHelp)
        #expect(try parse("serve", "--port", "1", "-h").wantsHelp)
        #expect(try parse("serve", "--bogus", "--help") == ServiceCommandLine(command: .serve, wantsHelp: true))
        #expect(usageError("help", "serve", "extra") == UsageError(command: .serve, message: "unexpected argument 'extra'"))
    }

    @Test func versionInEveryForm() throws {
        #expect(try parse("--version").wantsVersion)
        #expect(try parse("version").wantsVersion)
        #expect(try parse("serve", "--port", "1", "--version").wantsVersion)
        #expect(try !parse("serve").wantsVersion)
    }

    @Test func usageListsCommandsAndEveryOptionWithItsVariable() {
        let overview = ServiceCommandLine.usage(nil)
        for command in ServiceCommandLine.Command.allCases {
            #expect(overview.contains("  \(command.rawValue) "))
        }
        let serve = ServiceCommandLine.usage(.serve)
        for setting in ServiceConfiguration.settings {
            let flag = ServiceConfiguration.switches.contains(setting.flag) ? "--\(setting.flag) " : "--\(setting.flag) <value>"
            #expect(serve.contains(flag) && serve.contains("\(setting.environment): \(setting.help)"), "\(setting.flag)")
        }
        #expect(ServiceCommandLine.usage(.healthcheck).contains("--timeout <value>"))
    }
}
