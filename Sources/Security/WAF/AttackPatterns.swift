/// Detectors for the attack classes other than SQL injection and XSS, on normalized text (see
/// `TextTransform.normalize`). Each returns the reason it matched, or nil. `strict` is false for
/// free text a person wrote (JSON string fields), where only unambiguous forms count: a todo may
/// well say "cd ../app" or "curl -fsSL https://get.docker.com | sh".
enum AttackPatterns {
    // The detectors live in one file per attack class: AttackPatterns+FileInclusion.swift,
    // +CommandInjection, +Log4Shell, +TemplateInjection, +MetadataSSRF, +NoSQLAndCRLF.
}

extension Array where Element == UInt8 {
    func hasSuffixBytes(_ suffix: StaticString) -> Bool {
        suffix.withUTF8Buffer { p in
            guard p.count <= count else { return false }
            let offset = count - p.count
            for j in 0..<p.count where self[offset + j] != p[j] { return false }
            return true
        }
    }
}
