@testable import AWS
import HTTPClient
import JSON
import Net
import Testing

/// SigV4 against botocore: the fixture holds botocore 1.44.5's own output for fixed credentials,
/// times, regions, hosts and names (made by scripts/aws_reference.py, which the test command runs
/// again with the pinned botocore to prove the file is still botocore's).
@Suite struct BotocoreVectorTests {
    struct Vector {
        let fields: [(key: String, value: JSONValue)]
        func string(_ key: String) -> String? {
            if case .string(let text)? = fields.first(where: { $0.key == key })?.value { return text }
            return nil
        }
        func int(_ key: String) -> Int64? {
            if case .number(let digits)? = fields.first(where: { $0.key == key })?.value { return Int64(digits) }
            return nil
        }
        func object(_ key: String) -> [(key: String, value: JSONValue)] {
            if case .object(let members)? = fields.first(where: { $0.key == key })?.value { return members }
            return []
        }
        var credentials: AWSCredentials {
            AWSCredentials(accessKeyId: string("accessKeyId")!, secretAccessKey: string("secretAccessKey")!, sessionToken: string("sessionToken"))
        }
    }

    static func vectors(_ group: String) throws -> [Vector] {
        let directory = String(#filePath.prefix { _ in true }.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/"))
        let bytes = try FileBytes.contents(directory + "/Fixtures/botocore-sigv4.json")
        guard case .object(let root) = try JSONParser.parse(bytes),
              case .array(let items)? = root.first(where: { $0.key == group })?.value else {
            throw FixtureError.malformed
        }
        return items.compactMap { if case .object(let fields) = $0 { Vector(fields: fields) } else { nil } }
    }

    enum FixtureError: Error { case malformed }

    @Test func rdsAuthTokensEqualBotocores() throws {
        let vectors = try Self.vectors("rdsAuthTokens")
        #expect(vectors.count >= 3)
        #expect(vectors.contains { $0.string("sessionToken") != nil })
        for vector in vectors {
            let token = RDSAuthToken.generate(host: vector.string("host")!, port: Int(vector.int("port")!), user: vector.string("user")!,
                                              region: vector.string("region")!, credentials: vector.credentials,
                                              epochSeconds: vector.int("epochSeconds")!)
            #expect(token == vector.string("token"), "vector \(vector.string("name")!)")
        }
    }

    @Test func getSecretValueRequestsEqualBotocores() throws {
        let vectors = try Self.vectors("getSecretValue")
        #expect(vectors.count >= 3)
        for vector in vectors {
            let name = vector.string("name")!
            let region = vector.string("region")!
            let endpoint = try #require(HTTPClientURL(vector.string("endpoint")!))
            let client = SecretsManagerClient(endpoint: endpoint, region: region)
            let request = client.request(secretId: vector.string("secretId")!, credentials: vector.credentials,
                                         epochSeconds: vector.int("epochSeconds")!)
            #expect(request.method == vector.string("method"), "\(name)")
            #expect(request.url.target == vector.string("path"), "\(name)")
            #expect(String(decoding: request.body, as: UTF8.self) == vector.string("body"), "\(name)")
            func sent(_ field: String) -> String? {
                if field == "host" { return request.url.hostField }
                return request.headers.last { $0.name.lowercased() == field }?.value
            }
            #expect(sent("authorization") == vector.string("authorization"), "\(name)")
            // Every field botocore signed is sent with the value it signed.
            for (field, value) in vector.object("signedHeaders") {
                guard case .string(let expected) = value else { continue }
                #expect(sent(field) == expected, "\(name): \(field)")
            }
        }
    }

    @Test func timesAreWrittenAndReadInUTC() {
        #expect(AWSTime.amzDate(epochSeconds: 1_709_251_199) == "20240229T235959Z")
        #expect(AWSTime.amzDate(epochSeconds: 0) == "19700101T000000Z")
        #expect(AWSTime.parse("2024-02-29T23:59:59Z") == 1_709_251_199)
        #expect(AWSTime.parse("2024-03-01T08:59:59+09:00") == 1_709_251_199)
        #expect(AWSTime.parse("tomorrow") == nil)
    }

    @Test func uriEncodingKeepsOnlyUnreservedCharacters() {
        #expect(SigV4Signer.encode("iam user+1@x/é~-_.") == "iam%20user%2B1%40x%2F%C3%A9~-_.")
        #expect(SigV4Signer.canonicalValue("  a   b\tc  ") == "a b c")
    }
}
