import XCTest
import DSLIR
@testable import DSLEngine

/// The ReLU classifier of a softmax network starts with bias 1 (`reluClassifier`,
/// `classifierReLUBias`); every other bias starts at 0, and networks without such a classifier
/// are unchanged.
final class ClassifierBiasTests: XCTestCase {
    private func biases(_ text: String) throws -> [String: [Float]] {
        let checked = Frontend.check(text: text)
        let g = try XCTUnwrap(checked.graph, "\(checked.diagnostics.items.map(\.message))")
        let e = try lower(g, maxBatch: 1, seed: 1).engine
        try e.compile(training: true)
        var out: [String: [Float]] = [:]
        for p in e.parameters where p.name.hasSuffix(".bias") { out[p.name] = Array(UnsafeBufferPointer(start: p.value, count: p.count)) }
        return out
    }

    func testTheAllCNNClassifierStartsAtOne() throws {
        // Model C's head: the 1x1 classifier under a ReLU, through dropout-free gap to softmax.
        let b = try biases("input 8x8x3\nconv 3 1 8\npool\ndropout 0.5\nconv 1 1 8\nconv 1 1 10\ngap\nsoftmax\n")
        XCTAssertEqual(b["conv3.bias"], [Float](repeating: 1, count: 10))
        XCTAssertEqual(b["conv1.bias"], [Float](repeating: 0, count: 8))
        XCTAssertEqual(b["conv2.bias"], [Float](repeating: 0, count: 8))
        // Through pooling and dropout too, and for an fc head with act=relu.
        XCTAssertEqual(try biases("input 8x8x3\nconv 3 1 6\npool max 2\ndropout 0.2\ngap\nsoftmax\n")["conv1.bias"], [Float](repeating: 1, count: 6))
        XCTAssertEqual(try biases("input 4x4x3\nfc 5 act=relu\nsoftmax\n")["fc1.bias"], [Float](repeating: 1, count: 5))
    }

    func testOtherHeadsKeepZeroBiases() throws {
        for text in ["input 8x8x3\nconv 3 1 8\nconv 1 1 10 act=none\ngap\nsoftmax\n",   // no ReLU
                     "input 8x8x3\nconv 3 1 8\nconv 1 1 10 act=leaky\ngap\nsoftmax\n",  // leaky does not die
                     "input 8x8x3\nconv 3 1 8\ngap\nfc 10\nsoftmax\n",                  // linear fc head
                     "input 8x8x3\nconv 3 1 8\nconv 1 1 10\ngap\n",                     // no softmax
                     "input 8x8x3\nconv 3 1 8\nconv 1 1 10\nbn\ngap\nsoftmax\n"] {      // bn between
            for (name, values) in try biases(text) where !name.contains(".bn.") {
                XCTAssertEqual(values, [Float](repeating: 0, count: values.count), "\(name) in \(text)")
            }
        }
        XCTAssertNil(reluClassifier(try XCTUnwrap(Frontend.check(text: "input 8x8x3\nconv 1 1 10 nobias\ngap\nsoftmax\n").graph)))
    }
}
