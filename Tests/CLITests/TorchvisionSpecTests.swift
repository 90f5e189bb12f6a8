import Foundation
import XCTest

/// Issue #13: the specs of `specs/` that transcribe torchvision models state in their header
/// the figures torchvision gives, `torchvision (..., HxW): P parameters, M conv+linear MACs`
/// (measured by `bash bench/torchvision-parity.sh`: sum(p.numel()) of the model built with
/// weights=None, and forward hooks on every Conv2d and Linear). `dsl check` must give exactly
/// those figures at that input size, with no warning. Their tables are golden files in
/// `good-specs/` (GoldenTests).
final class TorchvisionSpecTests: XCTestCase {
    static let specs = [
        "mobilenet-v2", "mobilenet-v3-large", "efficientnet-b0", "resnext-50-32x4d", "inception-v3",
        "resnet-18", "resnet-50", "vgg-16", "densenet-121",
    ]

    /// The comment lines above the first statement, without `#`, joined by blanks.
    static func header(_ text: String) -> String {
        var lines: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard t.hasPrefix("#") else { break }
            lines.append(t.dropFirst().trimmingCharacters(in: .whitespaces))
        }
        return lines.joined(separator: " ")
    }

    /// (input "HxW", parameters, MACs) stated in a header, or nil.
    static func statedFigures(_ header: String) -> (input: String, params: Int, macs: Int)? {
        let pattern = #"torchvision \(([^)]*)\): ([0-9,]+) parameters, ([0-9,]+) conv\+linear MACs"#
        guard let re = try? NSRegularExpression(pattern: pattern),
              let m = re.firstMatch(in: header, range: NSRange(header.startIndex..., in: header)),
              let settings = Range(m.range(at: 1), in: header), let p = Range(m.range(at: 2), in: header),
              let c = Range(m.range(at: 3), in: header),
              let params = Int(header[p].replacingOccurrences(of: ",", with: "")),
              let macs = Int(header[c].replacingOccurrences(of: ",", with: "")) else { return nil }
        let input = header[settings].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.range(of: #"^[0-9]+x[0-9]+$"#, options: .regularExpression) != nil }
        return (input ?? "?", params, macs)
    }

    func testHeaderFiguresAreWhatDslCheckCounts() throws {
        for name in Self.specs {
            let path = "specs/\(name).dsl"
            let text = try String(contentsOf: DSL.packageRoot.appendingPathComponent(path), encoding: .utf8)
            let header = Self.header(text)
            let stated = try XCTUnwrap(Self.statedFigures(header), "\(path): no 'torchvision (..., HxW): P parameters, M conv+linear MACs' in its header")
            XCTAssertTrue(header.contains("torchvision.models."), "\(path) names the torchvision model it transcribes")
            XCTAssertTrue(header.lowercased().contains("stochastic depth"), "\(path) says how it treats stochastic depth")
            let r = try DSL.run(["check", path, "--format", "json"])
            XCTAssertEqual(r.status, 0, "\(path): \(r.summary)")
            XCTAssertFalse(r.stderr.contains("warning:"), "\(path):\n\(r.stderr)")
            let j = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], path)
            let total = try XCTUnwrap(j["total"] as? [String: Any], path)
            let input = try XCTUnwrap(j["input"] as? [Int], path)
            XCTAssertEqual("\(input[0])x\(input[1])", stated.input, "\(path): the input size the figures are for")
            XCTAssertEqual(input[2], 3, path)
            XCTAssertEqual(total["params"] as? Int, stated.params, "\(path): parameters")
            XCTAssertEqual(total["macs"] as? Int, stated.macs, "\(path): conv+linear MACs")
            XCTAssertEqual(j["output"] as? [Int], [1, 1, 1000], "\(path): an ImageNet classifier")
        }
    }

    /// The parser of the header finds figures split over two comment lines, and nothing in a
    /// header without them (so the test above can fail).
    func testHeaderFiguresParse() throws {
        let text = "# A net, as torchvision builds it (torchvision.models.x).\n# torchvision (weights=None, 299x299): 1,234 parameters,\n# 5,678 conv+linear MACs.\n\ninput 8x8x3\n# torchvision (224x224): 1 parameters, 2 conv+linear MACs\n"
        let stated = try XCTUnwrap(Self.statedFigures(Self.header(text)))
        XCTAssertEqual(stated.input, "299x299")
        XCTAssertEqual(stated.params, 1234)
        XCTAssertEqual(stated.macs, 5678)
        XCTAssertNil(Self.statedFigures(Self.header("input 8x8x3\n# torchvision (224x224): 1 parameters, 2 conv+linear MACs\n")))
    }
}
