import Glibc
import Logging

/// At start-up, before the service listens: a call to something remote it cannot serve without
/// (AWS credentials, the database secret, an issuer's signing keys), retried for about 10 s
/// (0.5, 1, 2, 4 s apart), a permanent failure at once. Past that the service exits 1, as ECS
/// fails a task whose secret it cannot inject: the deployment shows the cause instead of a task
/// answering 503.
enum StartupRetry {
    static func run<T, Failure: Error>(_ what: String, logger: Logger, isPermanent: (Failure) -> Bool = { _ in false },
                                       _ body: () throws(Failure) -> T) throws(StartupDependencyError) -> T {
        var delay: UInt32 = 500_000
        var waited: UInt32 = 0
        while true {
            do {
                return try body()
            } catch {
                if isPermanent(error) || waited >= 7_000_000 {
                    throw StartupDependencyError(description: "cannot get \(what): \(error)")
                }
                logger.warning("\(what) not available yet: retrying", metadata: ["error": "\(error)"])
                usleep(delay)
                waited += delay
                delay *= 2
            }
        }
    }
}

/// Something the service needs from outside could not be had at start-up (exit 1).
public struct StartupDependencyError: Error, CustomStringConvertible {
    public let description: String
}
