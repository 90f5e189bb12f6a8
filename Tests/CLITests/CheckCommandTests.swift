import Foundation
import XCTest

/// `dsl check` through the binary: warnings, JSON, budget gates, usage errors.
final class CheckCommandTests: XCTestCase {
    private func check(_ text: String, _ extra: [String] = [], name: String = "spec.dsl") throws -> (DSLRun, String) {
        let path = try DSL.temporaryFile(name, Data(text.utf8))
        return (try DSL.run(["check", path] + extra), path)
    }

    private func assertWarning(_ text: String, line: Int, _ substring: String, file: StaticString = #filePath, line l: UInt = #line) throws {
        let (r, path) = try check(text)
        XCTAssertEqual(r.status, 0, r.summary, file: file, line: l)
        let ds = printedDiagnostics(r.stderr, path: path)
        XCTAssertEqual(ds.filter { $0.severity == "error" }.count, 0, r.stderr, file: file, line: l)
        XCTAssertTrue(ds.contains { $0.severity == "warning" && $0.line == line && $0.message.contains(substring) },
                      "no warning '\(substring)' on line \(line):\n\(r.stderr)", file: file, line: l)
        XCTAssertTrue(r.stdout.contains("params:"), "the report is printed despite warnings", file: file, line: l)
    }

    func testWarningStrideDropsBorderPixels() throws {
        try assertWarning("input 32x32x3\nconv 2 2 8 pad=valid\nconv 3 2 8 pad=valid\ngap\n", line: 3, "stride 2 drops the last 1 row")
    }

    func testWarningDropoutAfterClassifier() throws {
        try assertWarning("input 8x8x3\nconv 3 1 8\ngap\nfc 10\ndropout 0.5\n", line: 5, "dropout after the classifier")
    }

    func testWarningSoftmaxOverAMap() throws {
        try assertWarning("input 8x8x3\nconv 3 1 10\nsoftmax\n", line: 3, "softmax over a 8x8 map")
    }

    func testManyWarningsDoNotBecomeAnError() throws {
        // 200 identical warnings: capped, but the spec has no error and must pass.
        let (r, _) = try check("input 8x8x3\nconv 3 1 8\n" + String(repeating: "relu\nrelu\n", count: 100) + "gap\n")
        XCTAssertEqual(r.status, 0, r.summary)
        XCTAssertTrue(r.stderr.contains("too many warnings"))
        XCTAssertFalse(r.stderr.contains("error"))
    }

    func testNoWarningsFlag() throws {
        let (r, _) = try check("input 8x8x3\nconv 3 1 10\nsoftmax\n", ["--no-warnings"])
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stderr, "")
    }

    // MARK: JSON

    private func json(_ spec: String) throws -> [String: Any] {
        let r = try DSL.run(["check", spec, "--format", "json"])
        XCTAssertEqual(r.status, 0, r.summary)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    func testJSONTotalsOfAllCNNC() throws {
        let j = try json("specs/all-cnn-c.dsl")
        let total = try XCTUnwrap(j["total"] as? [String: Any])
        XCTAssertEqual(total["params"] as? Int, 1_369_738)
        XCTAssertEqual(total["macs"] as? Int, 270_798_336)
        XCTAssertEqual(total["flops"] as? Int, 2 * 270_798_336)
        XCTAssertEqual(j["network"] as? String, "all-cnn-c")
        XCTAssertEqual(j["output"] as? [Int], [1, 1, 10])
        let layers = try XCTUnwrap(j["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.count, 15) // input, 3 dropouts, 9 convs, gap, softmax
        XCTAssertEqual(layers.filter { $0["op"] as? String == "conv" }.count, 9)
        XCTAssertEqual(layers.map { $0["params"] as? Int ?? -1 }.reduce(0, +), 1_369_738)
    }

    func testJSONGoogLeNetModulesMatchTable1() throws {
        let j = try json("specs/googlenet.dsl")
        let modules = try XCTUnwrap(j["modules"] as? [[String: Any]])
        let table: [(String, Int, Int)] = [
            ("3a", 163_328, 128_049_152), ("3b", 388_096, 304_267_264), ("4a", 375_552, 73_608_192),
            ("4b", 448_512, 87_908_352), ("4c", 509_440, 99_850_240), ("4d", 604_672, 118_515_712),
            ("4e", 867_328, 169_996_288), ("5a", 1_042_432, 51_079_168), ("5b", 1_442_816, 70_697_984),
        ]
        XCTAssertEqual(modules.count, 9)
        for (name, weights, macs) in table {
            let m = try XCTUnwrap(modules.first { $0["name"] as? String == name }, "no module \(name)")
            XCTAssertEqual(m["kind"] as? String, "inception")
            XCTAssertEqual(m["weights"] as? Int, weights, name)
            XCTAssertEqual(m["macs"] as? Int, macs, name)
        }
        let total = try XCTUnwrap(j["total"] as? [String: Any])
        XCTAssertEqual(total["macs"] as? Int, 1_582_671_872)
        XCTAssertEqual(total["weights"] as? Int, 6_990_272)
        XCTAssertEqual(total["params"] as? Int, 6_998_552)
    }

    func testJSONCountsTrainableAndNonTrainableParametersOfResNet18() throws {
        // torchvision's resnet18: 11,689,512 parameters and 9,600 running-statistics numbers
        // (Keras: trainable / non-trainable).
        let j = try json("Tests/CLITests/good-specs/resnet-18.dsl")
        let total = try XCTUnwrap(j["total"] as? [String: Any])
        XCTAssertEqual(total["params"] as? Int, 11_689_512)
        XCTAssertEqual(total["non_trainable_params"] as? Int, 9_600)
        XCTAssertEqual(total["checkpoint_numbers"] as? Int, 11_699_112)
        let layers = try XCTUnwrap(j["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.map { $0["non_trainable_params"] as? Int ?? -1 }.reduce(0, +), 9_600)
        let shares = layers.map { $0["params_percent"] as? Double ?? -1 }
        XCTAssertEqual(shares.reduce(0, +), 100, accuracy: 0.5)
        // Geometry as fields; a merge names its inputs, the identity shortcut included.
        let stem = try XCTUnwrap(layers.first { $0["name"] as? String == "conv1" })
        XCTAssertEqual([stem["kernel"], stem["stride"], stem["padding"]].map { $0 as? Int }, [7, 2, 3])
        let add = try XCTUnwrap(layers.first { $0["name"] as? String == "basic1.add1" })
        XCTAssertEqual(add["inputs"] as? [String], ["basic1.conv2", "maxpool1"])
        // After global pooling the receptive field stays the last convolution's.
        let lastConv = try XCTUnwrap(layers.last { $0["op"] as? String == "conv" })
        for l in layers.drop(while: { $0["op"] as? String != "gap" }) {
            XCTAssertEqual(l["receptive_field"] as? Int, lastConv["receptive_field"] as? Int, "\(l["name"] ?? "")")
            XCTAssertEqual(l["global"] as? Bool, true)
        }
    }

    func testTableShowsNonTrainableParametersAndShares() throws {
        let r = try DSL.run(["check", "Tests/CLITests/good-specs/resnet-18.dsl"])
        XCTAssertEqual(r.status, 0, r.summary)
        XCTAssertTrue(r.stdout.contains("params:      11,689,512 trainable"), r.stdout)
        XCTAssertTrue(r.stdout.contains("9,600 non-trainable (batch-norm running mean and variance)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("add(basic1.conv2, maxpool1)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("ptflops:     1,822,177,768"), r.stdout)
    }

    func testDepthAppliesToJSON() throws {
        let r = try DSL.run(["check", "specs/googlenet.dsl", "--format", "json", "--depth", "0"])
        XCTAssertEqual(r.status, 0, r.summary)
        let j = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let layers = try XCTUnwrap(j["layers"] as? [[String: Any]])
        let modules = layers.filter { $0["op"] as? String == "module" }
        XCTAssertEqual(modules.map { $0["name"] as? String ?? "" }, ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"])
        XCTAssertFalse(layers.contains { $0["module"] is String }, "no layer inside a collapsed module")
        let total = try XCTUnwrap(j["total"] as? [String: Any])
        XCTAssertEqual(layers.map { $0["params"] as? Int ?? 0 }.reduce(0, +), total["params"] as? Int)
        XCTAssertEqual(layers.map { $0["macs"] as? Int ?? 0 }.reduce(0, +), total["macs"] as? Int)
        let m3a = try XCTUnwrap(modules.first)
        XCTAssertEqual(m3a["output"] as? [Int], [28, 28, 256])
        XCTAssertEqual(m3a["inputs"] as? [String], ["maxpool2"])
    }

    func testJSONWithErrorsStillPrintsAnObjectWithItsDiagnostics() throws {
        let (r, _) = try check("input 32x32x3\nconv 3 1 8 pad=vaild\ngap\n", ["--format", "json"])
        XCTAssertEqual(r.status, 1, r.summary)
        let j = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        XCTAssertEqual(j["valid"] as? Bool, false)
        let d = try XCTUnwrap((j["diagnostics"] as? [[String: Any]])?.first)
        XCTAssertEqual(d["severity"] as? String, "error")
        XCTAssertEqual(d["line"] as? Int, 2)
        XCTAssertEqual(d["column"] as? Int, 16)
        XCTAssertTrue((d["message"] as? String ?? "").contains("did you mean 'valid'"))
        XCTAssertTrue(r.stderr.contains("error: unknown padding"), "the diagnostics still go to standard error")
        // A table run prints nothing on standard output.
        let (t, _) = try check("input 32x32x3\nconv 3 1 8 pad=vaild\n")
        XCTAssertEqual(t.stdout, "")
    }

    func testInputOverridesTheDeclaredSize() throws {
        let r = try DSL.run(["check", "specs/all-cnn-c.dsl", "--format", "json", "--input", "64x48x3"])
        XCTAssertEqual(r.status, 0, r.summary)
        let j = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(j["input"] as? [Int], [64, 48, 3])
        XCTAssertEqual(j["declared_input"] as? [Int], [32, 32, 3])
        let layers = try XCTUnwrap(j["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.first { $0["op"] as? String == "conv" }?["output"] as? [Int], [64, 48, 96])
        XCTAssertEqual((j["total"] as? [String: Any])?["params"] as? Int, 1_369_738, "the weights do not depend on the input size")
        // A channel count the first convolution was not written for changes its weights.
        let gray = try DSL.run(["check", "specs/all-cnn-c.dsl", "--format", "json", "--input", "32x32x1"])
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(gray.stdout.utf8)) as? [String: Any]).flatMap { ($0["total"] as? [String: Any])?["params"] as? Int },
                       1_369_738 - 2 * 3 * 3 * 96)
        for bad in ["64x64", "0x64x3", "axbxc", "64x64x3x1"] {
            let u = try DSL.run(["check", "specs/all-cnn-c.dsl", "--input", bad])
            XCTAssertEqual(u.status, 2, "\(bad): \(u.summary)")
            XCTAssertTrue(u.stderr.contains("--input must be HEIGHTxWIDTHxCHANNELS"), u.stderr)
        }
    }

    func testYesAndNoAreOnAndOff() throws {
        func params(_ spec: String) throws -> Int? {
            let (r, _) = try check(spec, ["--format", "json"])
            XCTAssertEqual(r.status, 0, r.summary)
            return ((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["total"] as? [String: Any])?["params"] as? Int
        }
        let on = try params("input 8x8x3\nconv 3 1 8 bn=yes bias=yes\ngap\n")
        XCTAssertEqual(on, try params("input 8x8x3\nconv 3 1 8 bn=on bias=on\ngap\n"))
        XCTAssertEqual(on, 3 * 3 * 3 * 8 + 8 + 16)
        XCTAssertEqual(try params("input 8x8x3\nconv 3 1 8 bn=no bias=no\ngap\n"), 3 * 3 * 3 * 8)
    }

    func testNegativeDepthSaysZeroOrMore() throws {
        let r = try DSL.run(["check", "specs/all-cnn-c.dsl", "--depth", "-1"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("--depth must be a whole number, 0 or more, got '-1'"), r.stderr)
    }

    // MARK: Budgets

    func testMaxParamsBudgetFailsAndSaysByHowMuch() throws {
        let r = try DSL.run(["check", "specs/all-cnn-c.dsl", "--max-params", "1M"])
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("1,369,738 parameters exceed the budget of 1,000,000 by 369,738"), r.stderr)
        XCTAssertTrue(r.stdout.contains("params:"), "the report is still printed")
        let ok = try DSL.run(["check", "specs/all-cnn-c.dsl", "--max-params", "1,369,738"])
        XCTAssertEqual(ok.status, 0, "a budget equal to the count passes: \(ok.summary)")
        // JSON says which gate failed.
        let j = try DSL.run(["check", "specs/all-cnn-c.dsl", "--max-params", "1M", "--format", "json"])
        XCTAssertEqual(j.status, 1)
        let budgets = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])?["budgets"] as? [String: Any])
        let params = try XCTUnwrap(budgets["max_params"] as? [String: Any])
        XCTAssertEqual(params["limit"] as? Int, 1_000_000)
        XCTAssertEqual(params["value"] as? Int, 1_369_738)
        XCTAssertEqual(params["exceeded"] as? Bool, true)
        XCTAssertTrue(budgets["max_macs"] is NSNull)
    }

    func testMaxMacsBudgetOnGoogLeNet() throws {
        let fail = try DSL.run(["check", "specs/googlenet.dsl", "--max-macs", "1.5G"])
        XCTAssertEqual(fail.status, 1, fail.summary)
        XCTAssertTrue(fail.stderr.contains("1,582,671,872 MACs exceed the budget of 1,500,000,000 by 82,671,872"), fail.stderr)
        let pass = try DSL.run(["check", "specs/googlenet.dsl", "--max-macs", "1.6G"])
        XCTAssertEqual(pass.status, 0, pass.summary)
        XCTAssertTrue(pass.stdout.contains("1.58 G"))
    }

    // MARK: Usage

    func testUsageErrorsExit2() throws {
        let cases: [[String]] = [
            [], ["chekc"], ["check"], ["check", "a.dsl", "b.dsl"], ["check", "specs/all-cnn-c.dsl", "--format", "xml"],
            ["check", "specs/all-cnn-c.dsl", "--batch", "0"], ["check", "specs/all-cnn-c.dsl", "--max-params", "lots"],
            ["check", "specs/all-cnn-c.dsl", "--frobnicate"], ["check", "specs/all-cnn-c.dsl", "--batch"],
        ]
        for args in cases {
            let r = try DSL.run(args)
            XCTAssertFalse(r.signaled)
            XCTAssertEqual(r.status, 2, "\(args): \(r.summary)")
            XCTAssertFalse(r.stderr.isEmpty, "\(args): no message")
            XCTAssertEqual(r.stdout, "", "\(args)")
        }
        let typo = try DSL.run(["chekc"])
        XCTAssertTrue(typo.stderr.contains("did you mean 'check'"), typo.stderr)
        let value = try DSL.run(["check", "specs/all-cnn-c.dsl", "--format", "jsno"])
        XCTAssertTrue(value.stderr.contains("--format must be table or json, got 'jsno'; did you mean 'json'?"), value.stderr)
        let option = try DSL.run(["check", "specs/all-cnn-c.dsl", "--no-warning"])
        XCTAssertTrue(option.stderr.contains("did you mean --no-warnings?"), option.stderr)
    }

    func testHelpExits0() throws {
        let r = try DSL.run(["check", "--help"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.stdout.contains("Usage: dsl check FILE"))
    }
}
