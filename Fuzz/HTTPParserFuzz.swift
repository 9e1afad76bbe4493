// libFuzzer target for the HTTP/1.1 parser. Built by scripts/fuzz with
//   swiftc -sanitize=fuzzer,address -parse-as-library Sources/HTTP/<parser files> Fuzz/HTTPParserFuzz.swift
// It checks more than "does not crash": the parser must stay within its limits, always make
// progress, and give the same result whether the input arrives whole or in pieces.

/// Small limits so the fuzzer reaches every limit path with short inputs.
let fuzzLimits: HTTPLimits = {
    var limits = HTTPLimits()
    limits.maxRequestLineBytes = 128
    limits.maxHeaderBytes = 512
    limits.maxHeaderFields = 8
    limits.maxBodyBytes = 1024
    limits.maxChunkLineBytes = 64
    return limits
}()

/// A summary of everything the parser said, to compare the two ways of feeding.
func run(_ input: UnsafeRawBufferPointer, chunkSize: Int) -> [String] {
    var parser = HTTPParser(limits: fuzzLimits)
    var pending: [UInt8] = []
    var log: [String] = []
    var bodyBytes = 0
    var bodyHash = 0
    var offset = 0
    while offset < input.count || !pending.isEmpty {
        let next = min(input.count, offset + chunkSize)
        pending += input[offset..<next]
        offset = next
        var steps = 0
        // Progress: each event but `.end` consumes bytes, and `.end` follows a head or body, so
        // a batch of n bytes yields at most about 2n events; more means the parser is looping.
        let budget = pending.count * 2 + 8
        parsing: while true {
            steps += 1
            precondition(steps <= budget, "parser made no progress")
            let (event, consumed) = pending.withUnsafeBytes { parser.parse($0) }
            precondition(consumed >= 0 && consumed <= pending.count, "consumed out of range")
            switch event {
            case .needMore:
                pending.removeFirst(consumed)
                break parsing
            case .head(let head):
                precondition(head.fields.count <= fuzzLimits.maxHeaderFields, "field limit exceeded")
                precondition(consumed <= fuzzLimits.maxHeaderBytes + 2, "head limit exceeded")
                precondition((head.contentLength ?? 0) <= fuzzLimits.maxBodyBytes, "body limit exceeded")
                precondition(!(head.isChunked && head.contentLength != nil), "ambiguous framing")
                log.append("head \(head.method) \(head.target) \(head.fields.count) \(head.keepAlive)")
                bodyBytes = 0
                bodyHash = 0
            case .body(let range):
                precondition(range.lowerBound >= 0 && range.upperBound <= consumed && !range.isEmpty, "body range out of bounds")
                bodyBytes += range.count
                precondition(bodyBytes <= fuzzLimits.maxBodyBytes, "body limit exceeded")
                bodyHash = pending[range].reduce(bodyHash) { ($0 &* 31) &+ Int($1) }
            case .end:
                log.append("end \(bodyBytes) \(bodyHash)")
            case .error(let error):
                log.append("error \(error)")
                return log
            }
            pending.removeFirst(consumed)
        }
        if offset == input.count { break }
    }
    return log
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let whole = run(input, chunkSize: max(size, 1))
    let pieces = run(input, chunkSize: 1 + (size > 0 ? Int(input[0] % 7) : 0))
    precondition(whole == pieces, "whole and split inputs disagree")
    return 0
}
