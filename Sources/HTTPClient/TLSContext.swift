import COpenSSL

/// The one client TLS configuration: TLS 1.2 or later, the peer's certificate verified against the
/// system CA store, which OpenSSL finds through its defaults or SSL_CERT_FILE / SSL_CERT_DIR (the
/// image sets SSL_CERT_FILE to the CA roots plus the RDS bundle). The host name is checked per
/// connection (`TLSStream`).
final class TLSContext: @unchecked Sendable {
    // SSL_CTX is reference-counted and safe to share between threads once configured (OpenSSL
    // 1.1.0+); nothing changes it after init.
    let context: OpaquePointer

    static let shared: Result<TLSContext, HTTPClientError> = {
        do throws(HTTPClientError) { return .success(try TLSContext()) } catch { return .failure(error) }
    }()

    private init() throws(HTTPClientError) {
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw HTTPClientError(.tls, "cannot create a TLS context: \(TLSContext.lastError())")
        }
        self.context = context
        guard copenssl_ctx_set_min_tls12(context) == 1 else {
            throw HTTPClientError(.tls, "cannot require TLS 1.2: \(TLSContext.lastError())")
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        copenssl_ctx_ignore_unexpected_eof(context)
        guard SSL_CTX_set_default_verify_paths(context) == 1 else {
            throw HTTPClientError(.tls, "cannot load the system CA store: \(TLSContext.lastError())")
        }
    }

    deinit { SSL_CTX_free(context) }

    /// OpenSSL's error queue, drained: its last entry as text ("" when empty).
    static func lastError() -> String {
        var text = ""
        while true {
            let code = ERR_get_error()
            guard code != 0 else { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return text
    }
}
