import DSLEngine
import DSLFuzz
import DSLIR
import DSLPasses
import DSLSyntax
import Foundation
import XCTest

/// The fuzzer in CI: a fixed-seed slice of the campaign (about a minute) and every input any
/// campaign ever found failing (`regressions/`), through every oracle. The long run is
/// `dsl-fuzz` (README, "Fuzzing").
final class FuzzSliceTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let regressions = root.appendingPathComponent("Tests/FuzzTests/regressions").path

    static func corpus() -> [(name: String, bytes: [UInt8])] {
        Campaign.loadCorpus(["specs", "Tests/CLITests/bad-specs", "Tests/CLITests/good-specs", "Tests/FuzzTests/regressions"]
            .map { root.appendingPathComponent($0).path })
    }

    override class func setUp() { CrashReporter.install() }

    /// Fixed seed, fixed count: the same inputs on every CI run.
    func testFixedSeedSlice() {
        let count = Int(ProcessInfo.processInfo.environment["DSL_FUZZ_COUNT"] ?? "") ?? 3000
        let campaign = Campaign(seed: 20261127, corpus: Self.corpus())
        XCTAssertGreaterThan(campaign.corpus.count, 50, "the corpus should hold the shipped and bad specs")
        var counts = OracleCounts()
        var failures: [String] = []
        for i in 0..<count {
            let (_, origin, findings) = campaign.run(i, counts: &counts)
            for f in findings { failures.append("input \(i) (\(origin)): \(f.kind.rawValue): \(f.message)") }
        }
        print("fuzz slice: \(counts.inputs) inputs, \(counts.parsed) parsed, \(counts.checked) checked, \(counts.formatted) fmt round trips, \(counts.passes) pass runs, \(counts.engineForward) engine runs (\(counts.engineBackward) with backward)")
        XCTAssertEqual(failures, [], "reproduce with: swift run dsl-fuzz --seed 20261127 --only INDEX")
        // The slice must exercise every oracle, or it proves nothing.
        XCTAssertGreaterThan(counts.checked, count / 5)
        XCTAssertGreaterThan(counts.formatted, count / 5)
        XCTAssertGreaterThan(counts.passes, count / 5)
        XCTAssertGreaterThan(counts.engineBackward, count / 20)
        // The engine oracle varies the Winograd tile rule per input and must leave it as it was.
        XCTAssertEqual(EngineTuning.winogradMinTiles, EngineTuning.defaultWinogradMinTiles)
    }

    /// Every input a campaign ever found failing, through every oracle.
    func testRegressionInputs() throws {
        let files = Campaign.loadCorpus([Self.regressions])
        let oracles = Oracles()
        var failures: [String] = []
        for (name, bytes) in files {
            var counts = OracleCounts()
            var r = FuzzRandom(seed: 7)
            CrashReporter.current(index: -1, bytes: bytes)
            for f in oracles.run(bytes, random: &r, counts: &counts) { failures.append("\(name): \(f.kind.rawValue): \(f.message)") }
        }
        XCTAssertEqual(failures, [])
    }

    /// The oracles can fail: a formatter that drops a comment, a pass whose rewrite changes the
    /// network's output and a diagnostic outside the file are each reported.
    func testOraclesDetectViolations() {
        let spec = Array("input 8x8x3  # in\nconv 3 1 8  # c\ngap\nfc 4\nsoftmax\n".utf8)
        var oracles = Oracles()
        var counts = OracleCounts()
        var r = FuzzRandom(seed: 1)
        XCTAssertEqual(oracles.run(spec, random: &r, counts: &counts), [])

        var dropsComments = oracles
        dropsComments.printer = { SpecPrinter.print($0).split(separator: "\n").map { $0.split(separator: "#").first.map(String.init) ?? "" }.joined(separator: "\n") }
        XCTAssertEqual(dropsComments.run(spec, random: &r, counts: &counts).map(\.kind), [.fmt])

        var widens = oracles
        widens.extraPasses = [("widen", [WideningPass()])]
        XCTAssertEqual(widens.run(spec, random: &r, counts: &counts).map(\.kind), [.pass])

        let source = SourceFile(path: "x.dsl", bytes: spec)
        var checked = Frontend.check(source)
        checked.diagnostics.error("outside", at: SourceLocation(offset: 500, length: 1, line: 9, column: 1))
        XCTAssertEqual(oracles.located(checked, source, &counts).map(\.kind), [.unlocated])
        checked = Frontend.check(source)
        checked.diagnostics.error("wrong line", at: SourceLocation(offset: 0, length: 1, line: 2, column: 1))
        XCTAssertEqual(oracles.located(checked, source, &counts).map(\.kind), [.unlocated])

        XCTAssertNil(Oracles.difference(Frontend.check(source).graph!, Frontend.check(source).graph!))
        let other = Frontend.check(text: "input 8x8x3\nconv 3 1 9\ngap\nfc 4\nsoftmax\n").graph!
        XCTAssertNotNil(Oracles.difference(Frontend.check(source).graph!, other))
    }

    /// The same seed and index give the same input on every run; different indices differ.
    func testInputsAreReproducible() {
        let c = Campaign(seed: 5, corpus: Self.corpus())
        for i in 0..<50 { XCTAssertEqual(c.input(i).bytes, c.input(i).bytes) }
        XCTAssertNotEqual(c.input(1).bytes, c.input(2).bytes)
    }
}

/// A faulty pass for the oracle's own test: it doubles the filters of the first convolution, so
/// the network's output changes and the verifier must reject the rewrite.
struct WideningPass: RewritePass {
    let name = "widen"
    let summary = "a faulty pass (tests only)"
    func apply(_ spec: SpecFile) -> PassResult {
        var result = PassResult(spec: spec)
        for (i, s) in spec.statements.enumerated() {
            guard case .layer("conv", let words, var args, let options) = s.kind, args.count == 3 else { continue }
            let before = SpecPrinter.line(s)
            args[2] = .number(99, text: "99", args[2].location)
            result.spec.statements[i].kind = .layer(kind: "conv", words: words, arguments: args, options: options)
            result.changes.append(Change(pass: name, location: s.location, before: before, after: SpecPrinter.line(result.spec.statements[i]),
                                         beforeRegion: [s.location], afterRegion: [[i]]))
            break
        }
        return result
    }
}
