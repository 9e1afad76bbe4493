import COpenSSL
import Glibc
import Logging
import Net

/// One numbered SQL file of `Migrations/`.
public struct Migration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let sql: String
    /// SHA-256 of the file, hex: an applied migration whose file changed is refused.
    public let checksum: String
}

public struct MigrationError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Applies pending migrations in order, each in its own transaction, recorded in
/// `schema_migrations` with its checksum. Holds a session advisory lock meanwhile, so 20 tasks
/// starting together migrate exactly once: the others wait, then find nothing to do.
public struct Migrator {
    /// Arbitrary but fixed: the advisory-lock key for "todo-api migrations".
    static let lockKey: Int64 = 0x746F_646F_6D69_6772

    public let migrations: [Migration]

    public init(migrations: [Migration]) {
        self.migrations = migrations
    }

    /// Reads `NNNN_name.sql` files from `directory`, ordered by their number.
    public static func load(directory: String) throws(MigrationError) -> [Migration] {
        guard let dir = opendir(directory) else {
            throw MigrationError(message: "cannot read the migrations directory \(directory): \(String(cString: strerror(errno)))")
        }
        defer { closedir(dir) }
        var migrations: [Migration] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasSuffix(".sql") else { continue }
            let digits = name.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let version = Int(digits), name.dropFirst(digits.count).first == "_" else {
                throw MigrationError(message: "migration file \(name) must be named NNNN_description.sql")
            }
            let bytes = try readFile("\(directory)/\(name)")
            migrations.append(Migration(version: version, name: name, sql: String(decoding: bytes, as: UTF8.self), checksum: sha256Hex(bytes)))
        }
        migrations.sort { $0.version < $1.version }
        for (a, b) in zip(migrations, migrations.dropFirst()) where a.version == b.version {
            throw MigrationError(message: "two migrations have number \(a.version): \(a.name) and \(b.name)")
        }
        return migrations
    }

    /// Applies what is pending; returns the names applied. Throws on an edited applied file.
    @discardableResult
    public func migrate(_ connection: BlockingPostgresConnection, logger: Logger) throws -> [String] {
        try connection.query("SELECT pg_advisory_lock(\(Self.lockKey))")
        defer { _ = try? connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))") }
        try connection.execute(script: """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        let rows = try connection.query("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        var applied: [Int: (name: String, checksum: String)] = [:]
        for row in 0..<rows.rowCount {
            applied[rows.int(row, 0)!] = (rows.string(row, 1)!, rows.string(row, 2)!)
        }
        var done: [String] = []
        for migration in migrations {
            if let existing = applied[migration.version] {
                guard existing.checksum == migration.checksum else {
                    throw MigrationError(message: "migration \(migration.name) was changed after it was applied "
                        + "(recorded checksum \(existing.checksum.prefix(12))…, file \(migration.checksum.prefix(12))…); "
                        + "add a new migration instead of editing an applied one")
                }
                continue
            }
            do {
                try connection.execute(script: "BEGIN")
                try connection.execute(script: migration.sql)
                try connection.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (\(migration.version), \(migration.name), \(migration.checksum))")
                try connection.execute(script: "COMMIT")
            } catch {
                _ = try? connection.execute(script: "ROLLBACK")
                throw MigrationError(message: "migration \(migration.name) failed: \(error)")
            }
            logger.info("migration applied", metadata: ["migration": "\(migration.name)"])
            done.append(migration.name)
        }
        return done
    }

    static func readFile(_ path: String) throws(MigrationError) -> [UInt8] {
        do throws(FileReadError) {
            return try FileBytes.contents(path)
        } catch {
            throw MigrationError(message: error.description)
        }
    }

    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        bytes.withUnsafeBufferPointer { _ = SHA256($0.baseAddress, $0.count, &digest) }
        return digest.map { ASCIIDigits.hex(UInt64($0), width: 2) }.joined()
    }
}
