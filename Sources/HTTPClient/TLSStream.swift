import COpenSSL
import Glibc
import Net

/// A byte stream the client reads and writes with deadlines: plain TCP or TLS over it.
protocol ClientStream {
    func send(_ bytes: [UInt8], until deadline: MonotonicTime) throws(HTTPClientError)
    func receive(into buffer: UnsafeMutableRawBufferPointer, until deadline: MonotonicTime) throws(HTTPClientError) -> Int
}

extension ClientSocket: ClientStream {}

/// TLS over a connected `ClientSocket`, driven non-blocking: each WANT_READ / WANT_WRITE waits on
/// the socket with the deadline. The certificate must verify and match the host (RFC 6125
/// through OpenSSL's X509_check_host / X509_check_ip); there is no option to turn that off.
final class TLSStream: ClientStream {
    private let socket: ClientSocket
    private let ssl: OpaquePointer
    private let host: String

    init(socket: ClientSocket, host: String, deadline: MonotonicTime) throws(HTTPClientError) {
        let context: TLSContext
        switch TLSContext.shared {
        case .success(let shared): context = shared
        case .failure(let error): throw error
        }
        guard let ssl = SSL_new(context.context) else { throw HTTPClientError(.tls, "cannot create a TLS session: \(TLSContext.lastError())") }
        self.ssl = ssl
        self.socket = socket
        self.host = host
        SSL_set_fd(ssl, socket.fd)
        if Self.isIPLiteral(host) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
        } else {
            // SNI (RFC 6066 §3) is for names only; the name check covers the certificate's SANs.
            _ = copenssl_set_sni(ssl, host)
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            guard SSL_set1_host(ssl, host) == 1 else { throw HTTPClientError(.tls, "cannot set the expected host name \(host)") }
        }
        try drive(until: deadline, doing: "the TLS handshake with \(host)") { SSL_connect(ssl) }
    }

    deinit {
        // No close_notify wait: the response is complete (or abandoned) when we get here.
        SSL_free(ssl)
    }

    func send(_ bytes: [UInt8], until deadline: MonotonicTime) throws(HTTPClientError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw -> Result<Int32, HTTPClientError> in
                let base = raw.baseAddress! + offset
                let count = Int32(clamping: raw.count - offset)
                do throws(HTTPClientError) { return .success(try drive(until: deadline, doing: "sending the request to \(host)") { SSL_write(ssl, base, count) }) }
                catch { return .failure(error) }
            }
            offset += Int(try written.get())
        }
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer, until deadline: MonotonicTime) throws(HTTPClientError) -> Int {
        let count = Int32(clamping: buffer.count)
        let n = try drive(until: deadline, doing: "reading the response from \(host)", endOfStreamIsZero: true) {
            SSL_read(ssl, buffer.baseAddress, count)
        }
        return Int(n)
    }

    /// Repeats `operation` until it succeeds, waiting on the socket as OpenSSL asks.
    @discardableResult
    private func drive(until deadline: MonotonicTime, doing what: String, endOfStreamIsZero: Bool = false,
                       _ operation: () -> Int32) throws(HTTPClientError) -> Int32 {
        while true {
            ERR_clear_error()
            let rc = operation()
            if rc > 0 { return rc }
            let error = SSL_get_error(ssl, rc)
            switch error {
            case SSL_ERROR_WANT_READ:
                try socket.wait(for: Int16(POLLIN), until: deadline, doing: what)
            case SSL_ERROR_WANT_WRITE:
                try socket.wait(for: Int16(POLLOUT), until: deadline, doing: what)
            case SSL_ERROR_ZERO_RETURN where endOfStreamIsZero:
                return 0
            case SSL_ERROR_SYSCALL where endOfStreamIsZero && ERR_peek_error() == 0:
                // The peer closed without close_notify: the end of the stream; the parser decides
                // whether the response was complete.
                return 0
            default:
                let verify = SSL_get_verify_result(ssl)
                if verify != X509_V_OK {
                    throw HTTPClientError(.tls, "TLS with \(host): certificate not accepted: \(String(cString: X509_verify_cert_error_string(verify)))")
                }
                let detail = TLSContext.lastError()
                throw HTTPClientError(.tls, "TLS with \(host) failed during \(what): \(detail.isEmpty ? "error \(error)" : detail)")
            }
        }
    }

    static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
