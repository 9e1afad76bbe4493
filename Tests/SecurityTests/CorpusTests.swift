import Glibc
import Net
import HTTP
import Testing
@testable import Security

/// The labelled corpus (Tests/SecurityTests/Corpus, see its README) through the inspector, each
/// attack in five placements and each benign sample where it belongs. The rates are printed and
/// recorded in docs/SECURITY.md; the thresholds sit below what is measured so that a regression
/// fails while a small corpus change does not.
@Suite struct CorpusTests {
    static let directory = "/" + #filePath.split(separator: "/").dropLast().joined(separator: "/") + "/Corpus"

    static func load(_ name: String) -> [(label: String, text: String)] {
        guard let bytes = FileBytes.read(directory + "/" + name) else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), let tab = line.firstIndex(of: "\t") else { return nil }
            return (String(line[..<tab]), unescape(line[line.index(after: tab)...]))
        }
    }

    /// `\n`, `\r`, `\t`, `\\` as the README defines them; other backslashes are literal.
    static func unescape(_ text: Substring) -> String {
        var out = ""
        var iterator = text.makeIterator()
        while let c = iterator.next() {
            guard c == "\\" else { out.append(c); continue }
            var lookahead = iterator
            switch lookahead.next() {
            case "n": out.append("\n"); iterator = lookahead
            case "r": out.append("\r"); iterator = lookahead
            case "t": out.append("\t"); iterator = lookahead
            case "\\": out.append("\\"); iterator = lookahead
            default: out.append("\\")
            }
        }
        return out
    }

    static func jsonString(_ text: String) -> String {
        var json = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": json += "\\\""
            case "\\": json += "\\\\"
            case _ where scalar.value < 0x20: json += "\\u00" + String(scalar.value, radix: 16).leftPadded(2)
            default: json.unicodeScalars.append(scalar)
            }
        }
        return json + "\""
    }

    /// The header-safe form of a value (CR/LF cannot be sent raw in a header).
    static func headerValue(_ text: String) -> String? {
        text.utf8.contains { $0 < 0x20 && $0 != 0x09 || $0 == 0x7F } ? nil : text
    }

    static func requests(for label: String, _ text: String, attack: Bool) -> [HTTPRequest] {
        let json = [("User-Agent", "Mozilla/5.0"), ("Content-Type", "application/json")]
        if !attack {
            switch label {
            case "title": return [makeRequest(method: "POST", target: "/todos", headers: json, body: "{\"title\":\(jsonString(text))}")]
            case "description": return [makeRequest(method: "POST", target: "/todos", headers: json, body: "{\"title\":\"x\",\"description\":\(jsonString(text))}")]
            case "query": return [makeRequest(target: "/todos?q=" + percentEncode(text))]
            case "useragent": return headerValue(text).map { [makeRequest(target: "/todos", headers: [("User-Agent", $0)])] } ?? []
            case "cookie": return headerValue(text).map { [makeRequest(target: "/todos", headers: [("User-Agent", "Mozilla/5.0"), ("Cookie", $0)])] } ?? []
            case "referer": return headerValue(text).map { [makeRequest(target: "/todos", headers: [("User-Agent", "Mozilla/5.0"), ("Referer", $0)])] } ?? []
            default: return []
            }
        }
        if label == "scanner" { return headerValue(text).map { [makeRequest(target: "/todos", headers: [("User-Agent", $0)])] } ?? [] }
        var result = [
            makeRequest(target: "/todos?q=" + percentEncode(text)),
            makeRequest(target: "/todos/" + percentEncode(text)),
            makeRequest(method: "POST", target: "/todos", headers: json, body: "{\"title\":\(jsonString(text))}"),
        ]
        if let value = headerValue(text) {
            result.append(makeRequest(target: "/todos", headers: [("User-Agent", "Mozilla/5.0"), ("X-Custom-Data", value)]))
        }
        result.append(makeRequest(target: "/todos", headers: [("User-Agent", "Mozilla/5.0"), ("Cookie", "session=" + percentEncode(text))]))
        return result
    }

    /// The first corpus, and the one built independently later (`holdout-*`: measured once before
    /// the rules saw it, see docs/SECURITY.md; since then a second regression corpus).
    /// `hard-benign.tsv`: developer-heavy todos (shell, SQL, HTML, templates, paths) written to
    /// provoke false positives; its bound is the issue's 1.5 %.
    @Test(arguments: [("attacks.tsv", "benign.tsv", 0.88, 0.005), ("holdout-attacks.tsv", "holdout-benign.tsv", 0.80, 0.005),
                      ("attacks.tsv", "hard-benign.tsv", 0.88, 0.015)])
    func detectionAndFalsePositiveRates(attackFile: String, benignFile: String, minimumDetection: Double, maximumFalsePositives: Double) {
        let attacks = Self.load(attackFile)
        let benign = Self.load(benignFile)
        #expect(attacks.count > 1000, "corpus missing: \(Self.directory)/\(attackFile)")
        #expect(benign.count > 1000)
        let inspector = RequestInspector(configuration: WAFConfiguration())
        var sent = 0, blocked = 0
        var byClass: [String: (Int, Int)] = [:]
        for (label, text) in attacks {
            for request in Self.requests(for: label, text, attack: true) {
                let hit = inspector.inspect(request, client: remotePeer, peer: remotePeer).blocking != nil
                sent += 1
                if hit { blocked += 1 }
                byClass[label, default: (0, 0)].0 += 1
                if hit { byClass[label, default: (0, 0)].1 += 1 }
            }
        }
        var benignSent = 0
        var falsePositives: [String] = []
        for (label, text) in benign {
            for request in Self.requests(for: label, text, attack: false) {
                benignSent += 1
                if let match = inspector.inspect(request, client: remotePeer, peer: remotePeer).blocking {
                    falsePositives.append("\(label) [\(match.rule.id): \(match.reason)] \(text)")
                }
            }
        }
        let detection = Double(blocked) / Double(max(sent, 1))
        let fpRate = Double(falsePositives.count) / Double(max(benignSent, 1))
        print("corpus: detection \(blocked)/\(sent) = \(Double(Int(detection * 1000)) / 10) %, false positives \(falsePositives.count)/\(benignSent) = \(Double(Int(fpRate * 10000)) / 100) %")
        for (label, counts) in byClass.sorted(by: { $0.key < $1.key }) {
            print("corpus:   \(label): \(counts.1)/\(counts.0)")
        }
        for line in falsePositives.prefix(20) { print("corpus: false positive: \(line)") }
        #expect(detection >= minimumDetection, "\(attackFile)")
        #expect(fpRate <= maximumFalsePositives, "\(benignFile)")
    }
}
