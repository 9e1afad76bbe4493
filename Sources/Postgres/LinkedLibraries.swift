import CLibPQ
import COpenSSL

/// The libpq and OpenSSL in the binary, for the start-up log line. Both are linked statically
/// (scripts/libpq-static): a security update reaches the service only through a rebuild, and this
/// tells which ones a running task has.
public enum LinkedLibraries {
    /// `15.18` (PQlibVersion returns major * 10000 + minor since PostgreSQL 10).
    public static var libpq: String {
        let version = PQlibVersion()
        return "\(version / 10000).\(version % 10000)"
    }

    /// `OpenSSL 3.0.17 1 Jul 2025`.
    public static var openSSL: String {
        String(cString: OpenSSL_version(OPENSSL_VERSION))
    }
}
