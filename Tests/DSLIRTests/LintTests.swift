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
}
