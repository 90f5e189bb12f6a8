import DSLIR
import DSLSyntax
import XCTest

/// Warnings the elaborator gives for well-formed but suspicious networks.
final class LintTests: XCTestCase {
    func warnings(_ text: String) -> [String] {
        Frontend.check(text: text).diagnostics.items.filter { $0.severity == .warning }.map(\.message)
    }

    func testDropoutAfterTheClassifierIsReported() {
        let w = warnings("input 8x8x3\nconv 3 1 4\ngap\nfc 10\ndropout 0.5\nsoftmax\n")
        XCTAssertEqual(w.filter { $0.contains("dropout after the classifier") }.count, 1, "\(w)")
    }

    func testDropoutBeforeTheClassifierIsFine() {
        let w = warnings("input 8x8x3\nconv 3 1 4\ndropout 0.5\ngap\nfc 10\nsoftmax\n")
        XCTAssertFalse(w.contains { $0.contains("dropout after the classifier") }, "\(w)")
    }

    /// A network with no trainable layer has no classifier, so nothing is "after" it.
    func testDropoutInANetworkWithoutTrainableLayersIsNotCalledAfterTheClassifier() {
        let w = warnings("input 8x8x3\ndropout 0.5\ngap\n")
        XCTAssertFalse(w.contains { $0.contains("dropout after the classifier") }, "\(w)")
    }

    /// A window smaller than its stride skips pixels between windows by design (a ResNet's 1x1/2
    /// projection): no "drops the last row" warning; a 3x3/2 without padding still gets one.
    func testStrideLargerThanTheWindowDoesNotWarnAboutDroppedRows() {
        XCTAssertFalse(warnings("input 32x32x16\nconv 1 2 32\n").contains { $0.contains("drops the last") })
        XCTAssertTrue(warnings("input 32x32x16\nconv 3 2 32 pad=valid\n").contains { $0.contains("drops the last 1 row") })
    }

    /// The same diagnostic at the same place is kept once; different messages or places are not merged.
    func testRepeatedDiagnosticsAreReportedOnce() {
        let d = Frontend.check(text: "input 8x8x3\nblock b(c) {\n  conv 3 1 8 / 0\n  conv 3 1 c / 0\n}\nb(1)\nb(2)\n").diagnostics.items
        XCTAssertEqual(d.filter { $0.severity == .error }.map { "\($0.location.line):\($0.message)" }, ["3:division by zero", "4:division by zero"])
        XCTAssertEqual(d.first?.notes.first?.location.line, 6, "the first call's note is kept")
    }

    func testPlausibleSlipsAreWarnedWithTheirFix() {
        XCTAssertTrue(warnings("input 64x64x3\nconv 32 3 1\n").contains { $0.contains("did you mean 'conv 3 1 32'") })
        XCTAssertFalse(warnings("input 64x64x3\nconv 11 4 96\n").contains { $0.contains("did you mean") }, "AlexNet's first layer is fine")
        XCTAssertTrue(warnings("input 1x28x28\nconv 3 1 8\n").contains { $0.contains("did you mean 'input 28x28x1'") })
        XCTAssertFalse(warnings("input 4x4x64\nconv 3 1 8\n").contains { $0.contains("channels-first") }, "width differs from channels")
        XCTAssertTrue(warnings("input 8x8x3\ngap\nfc 10 act=leaky\nsoftmax\n").contains { $0.hasPrefix("a leaky ReLU on the logits right before softmax") })
        XCTAssertTrue(warnings("input 8x8x3\nconv 1 1 10\nsoftmax\n").contains { $0.contains("write act=linear on 'conv1'") })
        XCTAssertFalse(warnings("input 8x8x3\nconv 1 1 10\ngap\nsoftmax\n").contains { $0.contains("on the logits") }, "All-CNN's ReLU before gap is the paper's")
        XCTAssertTrue(warnings("input 32x32x16\npyramid 2 6\n").contains { $0.contains("did you mean 'pyramid 6 2'") })
        XCTAssertFalse(warnings("input 32x32x16\npyramid 1.5 1\n").contains { $0.contains("did you mean") })
    }
}
