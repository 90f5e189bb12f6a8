import DSLCommands
import Foundation
import XCTest

/// Runs `dsl` in-process with standard output and error captured (through temporary files).
private func dsl(_ args: [String]) -> (code: Int32, out: String, err: String) {
    let dir = FileManager.default.temporaryDirectory
    let o = dir.appendingPathComponent("dsl-out-\(UUID().uuidString)").path
    let e = dir.appendingPathComponent("dsl-err-\(UUID().uuidString)").path
    FileManager.default.createFile(atPath: o, contents: nil)
    FileManager.default.createFile(atPath: e, contents: nil)
    let fo = open(o, O_WRONLY), fe = open(e, O_WRONLY)
    let savedOut = dup(1), savedErr = dup(2)
    dup2(fo, 1); dup2(fe, 2)
    let code = runDSL(args)
    dup2(savedOut, 1); dup2(savedErr, 2)
    close(fo); close(fe); close(savedOut); close(savedErr)
    let out = (try? String(contentsOfFile: o, encoding: .utf8)) ?? ""
    let err = (try? String(contentsOfFile: e, encoding: .utf8)) ?? ""
    try? FileManager.default.removeItem(atPath: o); try? FileManager.default.removeItem(atPath: e)
    return (code, out, err)
}

private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private func spec(_ n: String) -> String { root.appendingPathComponent("specs/\(n)").path }

private func tempCopy(_ name: String) throws -> String {
    try DSL.temporaryFile(name, Data(contentsOf: URL(fileURLWithPath: spec(name))))
}

final class RewriteCommandTests: XCTestCase {
    func testSpecToStdoutReportToStderr() {
        let r = dsl(["rewrite", spec("model-c.dsl"), "--pass", "all-conv"])
        XCTAssertEqual(r.code, 0)
        XCTAssertTrue(r.out.contains("conv 3 2 96  # all-conv: replaces pool at line 15"))
        XCTAssertTrue(r.err.contains("all-conv: 2 changes"))
        XCTAssertTrue(r.err.contains("params    954,730 -> 1,369,738 (+415,008)"), r.err)
    }

    func testOutputMayNotOverwriteInputWithoutInPlace() throws {
        let p = try tempCopy("model-c.dsl")
        let before = try String(contentsOfFile: p, encoding: .utf8)
        let r = dsl(["rewrite", p, "--pass", "all-conv", "-o", p])
        XCTAssertEqual(r.code, 2)
        XCTAssertTrue(r.err.contains("is the input file; add --in-place"))
        XCTAssertEqual(try String(contentsOfFile: p, encoding: .utf8), before)
        let r2 = dsl(["rewrite", p, "--pass", "all-conv", "--in-place"])
        XCTAssertEqual(r2.code, 0)
        XCTAssertTrue(try String(contentsOfFile: p, encoding: .utf8).contains("# all-conv: replaces pool"))
        XCTAssertTrue(r2.out.contains("all-conv: 2 changes"))   // the report goes to stdout when the spec does not
    }

    func testDiffAndDryRunWriteNothing() throws {
        let p = try tempCopy("model-c.dsl")
        let out = p + ".out"
        let r = dsl(["rewrite", p, "--pass", "strided", "-o", out, "--dry-run", "--diff"])
        XCTAssertEqual(r.code, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertTrue(r.out.hasPrefix("--- \(p)\n+++ \(out)\n@@ "), r.out)
        XCTAssertTrue(r.out.contains("-conv 3 1 96\n-pool                    # 3x3 max-pooling, stride 2\n+conv 3 2 96  # strided"), r.out)
    }

    func testJSONReport() {
        let r = dsl(["rewrite", spec("inception-3a-naive.dsl"), "--pass", "reduce", "--ratio", "0.5,0.0833", "--dry-run", "--format", "json"])
        XCTAssertEqual(r.code, 0)
        XCTAssertTrue(r.out.contains("\"weights\": 163328"), r.out)
        XCTAssertTrue(r.out.contains("\"delta_params\": -229776"), r.out)
        XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(r.out.utf8)))
    }

    func testExitCodes() throws {
        XCTAssertEqual(dsl(["rewrite", spec("model-c.dsl")]).code, 2)
        XCTAssertEqual(dsl(["rewrite", spec("model-c.dsl"), "--pass", "nope"]).code, 2)
        XCTAssertEqual(dsl(["rewrite", spec("model-c.dsl"), "--pass", "reduce"]).code, 2)
        XCTAssertEqual(dsl(["rewrite", spec("model-c.dsl"), "--pass", "reduce", "--ratio", "2"]).code, 2)
        XCTAssertEqual(dsl(["rewrite", "--list-passes"]).code, 0)
        XCTAssertEqual(dsl(["rewrite", "--help"]).code, 0)
        // Warnings are fine; --strict makes them errors.
        XCTAssertEqual(dsl(["rewrite", spec("googlenet.dsl"), "--pass", "all-conv"]).code, 0)
        let strict = dsl(["rewrite", spec("googlenet.dsl"), "--pass", "all-conv", "--strict"])
        XCTAssertEqual(strict.code, 1)
        XCTAssertEqual(strict.out, "")
        XCTAssertTrue(strict.err.contains("error: all-conv: cannot apply: the max-pooling inside inception module '3a'"), strict.err)
        XCTAssertEqual(dsl(["rewrite", "/nonexistent.dsl", "--pass", "strided"]).code, 1)
    }

    /// Issue #11: `--budget` on a plain convolution stack said "nothing in the network can be
    /// reduced". The spec printed is the golden file of the pass tests.
    func testBudgetOnAllCNNC() throws {
        let r = dsl(["rewrite", spec("all-cnn-c.dsl"), "--pass", "reduce", "--budget", "150M"])
        XCTAssertEqual(r.code, 0, r.err)
        let golden = root.appendingPathComponent("Tests/DSLPassesTests/golden/all-cnn-c.reduce-budget-150M.dsl").path
        // The command also names the network after the original and the pass.
        XCTAssertEqual(r.out, try String(contentsOfFile: golden, encoding: .utf8).replacingOccurrences(of: "\nnetwork all-cnn-c\n", with: "\nnetwork all-cnn-c-reduce\n"))
        XCTAssertTrue(r.err.contains("reduce: 6 changes in \(spec("all-cnn-c.dsl"))"), r.err)
        XCTAssertTrue(r.err.contains("reduce: budget 150,000,000 MACs (270,798,336 without reductions): ratios 0.4727 (kernels below 5), 0.4727 (5 and up), 0.4727 (pool projections), step 121/256 of the common ratio, are the widest that fit: 149,720,832 MACs; the next step would need 152,216,064 MACs"), r.err)
        XCTAssertTrue(r.err.contains("MACs      270,798,336 -> 149,720,832 (-121,077,504)"), r.err)
        XCTAssertTrue(r.err.contains("13:1: note: reduce: not reduced: the convolution reads the network input through 'dropout'"), r.err)
        // A budget below what the narrowest reductions reach: the least reachable figure.
        let low = dsl(["rewrite", spec("all-cnn-c.dsl"), "--pass", "reduce", "--budget", "1M"])
        XCTAssertEqual(low.code, 1)
        XCTAssertEqual(low.out, "")
        XCTAssertTrue(low.err.contains("error: reduce: the budget of 1,000,000 MACs cannot be met: the narrowest reductions (step 1/256, ratios 0.0039 (kernels below 5), 0.0039 (5 and up), 0.0039 (pool projections)) still need 6,545,664 MACs, the least it can reach (270,798,336 without reductions)"), low.err)
    }

    func testFmt() throws {
        let p = try tempCopy("model-c.dsl")
        let check = dsl(["fmt", "--check", p])
        XCTAssertEqual(check.code, 1)
        XCTAssertEqual(check.out, "\(p): not formatted\n")
        XCTAssertEqual(dsl(["fmt", p]).code, 0)
        XCTAssertEqual(dsl(["fmt", "--check", p]).code, 0)
        let text = try String(contentsOfFile: p, encoding: .utf8)
        XCTAssertTrue(text.contains("pool  # 3x3 max-pooling, stride 2"))
        let bad = p + ".bad.dsl"
        try "input 8x8x3\nconv (\n".write(toFile: bad, atomically: true, encoding: .utf8)
        XCTAssertEqual(dsl(["fmt", bad]).code, 1)
        XCTAssertEqual(try String(contentsOfFile: bad, encoding: .utf8), "input 8x8x3\nconv (\n")
    }
    /// Issue #15: a rewritten spec's default run directory (runs/NETWORK) never collides with
    /// the original's; --name sets the name, and renames alone.
    func testRewrittenNetworkHasANameOfItsOwn() throws {
        func network(_ text: String) throws -> String? {
            let path = try DSL.temporaryFile("n.dsl", Data(text.utf8))
            let r = try DSL.run(["check", path, "--format", "json"])
            return (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["network"] as? String
        }
        for pass in ["strided", "all-conv", "gap-head"] {
            let r = dsl(["rewrite", spec("model-c.dsl"), "--pass", pass])
            XCTAssertEqual(r.code, 0, r.err)
            XCTAssertEqual(try network(r.out), "model-c-\(pass)")
            XCTAssertTrue(r.err.contains("network: model-c -> model-c-\(pass)"), r.err)
        }
        let named = dsl(["rewrite", spec("model-c.dsl"), "--pass", "all-conv", "--pass", "strided", "--name", "mine"])
        XCTAssertEqual(named.code, 0, named.err)
        XCTAssertEqual(try network(named.out), "mine")
        // --name alone renames; a spec without a 'network' line gets one before 'input'.
        let path = try DSL.temporaryFile("plain.dsl", Data("# c\ninput 8x8x3\nconv 3 1 8\ngap\n".utf8))
        let only = dsl(["rewrite", path, "--name", "renamed"])
        XCTAssertEqual(only.code, 0, only.err)
        XCTAssertEqual(only.out, "# c\nnetwork renamed\ninput 8x8x3\nconv 3 1 8\ngap\n")
        for bad in ["", "a b", "-x", "caf\u{e9}", String(repeating: "x", count: 129)] {
            let r = dsl(["rewrite", spec("model-c.dsl"), "--name", bad])
            XCTAssertEqual(r.code, 2, "\(bad): \(r.err)")
            XCTAssertTrue(r.err.contains("--name must be"), r.err)
        }
        let none = dsl(["rewrite", spec("model-c.dsl")])
        XCTAssertEqual(none.code, 2)
        XCTAssertTrue(none.err.contains("--name NAME"), none.err)
    }
}
