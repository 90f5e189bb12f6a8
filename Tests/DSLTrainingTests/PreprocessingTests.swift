import Foundation
import XCTest
@testable import DSLTraining

final class PreprocessingTests: XCTestCase {
    private func sample() throws -> (train: Dataset, test: Dataset) {
        try loadDataset(directory: repositoryRoot + "/data/cifar10-sample", format: .cifar10)
    }

    func testStandardization() throws {
        let (train, _) = try sample()
        let pre = Preprocessor.fitStandardization(on: train)
        XCTAssertEqual(pre.mean.count, 3)
        var transformed = train
        try pre.apply(to: &transformed)
        for channel in 0..<3 {
            var sum = 0.0, squares = 0.0
            var index = channel
            while index < transformed.images.count { let v = Double(transformed.images[index]); sum += v; squares += v * v; index += 3 }
            let n = Double(transformed.images.count / 3)
            XCTAssertEqual(sum / n, 0, accuracy: 1e-4)
            XCTAssertEqual(squares / n, 1, accuracy: 1e-3)
        }
        XCTAssertTrue(pre.summary.contains("standardisation"))
    }

    func testGCNZCAWhitensTrainingData() throws {
        let train = try croppedImages(try sample().train)
        let epsilon: Float = 1e-2
        let pre = try Preprocessor.fitGCNZCA(on: train, epsilon: epsilon)
        let d = 192
        XCTAssertEqual(pre.whitening.count, d * d)
        // W is symmetric.
        for i in stride(from: 0, to: d, by: 17) { for j in stride(from: 0, to: d, by: 13) {
            XCTAssertEqual(pre.whitening[i * d + j], pre.whitening[j * d + i], accuracy: 1e-3 * max(1, abs(pre.whitening[i * d + j])))
        } }
        // GCN alone gives every image mean 0 and norm 55.
        var gcnOnly = pre; gcnOnly.whitening = (0..<(d * d)).map { $0 % (d + 1) == 0 ? 1 : 0 }
        gcnOnly.mean = [Float](repeating: 0, count: d)
        var image = Array(train.images[0..<d])
        try image.withUnsafeMutableBufferPointer { try gcnOnly.apply(images: $0.baseAddress!, count: 1) }
        XCTAssertEqual(Double(image.reduce(0, +)), 0, accuracy: 1e-2)
        XCTAssertEqual(Double(image.map { $0 * $0 }.reduce(0, +)).squareRoot(), 55, accuracy: 1e-2)
        // Whitened training data: covariance Cw = W C W with Cw + ε W² = I.
        var whitened = train
        try pre.apply(to: &whitened)
        let n = whitened.count
        var covariance = [Double](repeating: 0, count: d * d)
        var means = [Double](repeating: 0, count: d)
        for s in 0..<n { for j in 0..<d { means[j] += Double(whitened.images[s * d + j]) } }
        for j in 0..<d { means[j] /= Double(n) }
        XCTAssertLessThan(means.map(abs).max()!, 1e-3)
        whitened.images.withUnsafeBufferPointer { x in
            for s in 0..<n {
                let row = x.baseAddress! + s * d
                for i in 0..<d { let xi = Double(row[i]); for j in 0..<d { covariance[i * d + j] += xi * Double(row[j]) } }
            }
        }
        var worst = 0.0
        for i in 0..<d {
            for j in 0..<d {
                var w2 = 0.0
                for k in 0..<d { w2 += Double(pre.whitening[i * d + k]) * Double(pre.whitening[k * d + j]) }
                let value = covariance[i * d + j] / Double(n) + Double(epsilon) * w2
                worst = max(worst, abs(value - (i == j ? 1 : 0)))
            }
        }
        XCTAssertLessThan(worst, 2e-2, "Cw + εW² should be the identity")
    }

    func testSerialisationRoundTrip() throws {
        let train = try croppedImages(try sample().train.prefix(200))
        let directory = try makeTemporaryDirectory(self)
        for pre in [Preprocessor.identity(height: 8, width: 8, channels: 3), Preprocessor.fitStandardization(on: train),
                    try Preprocessor.fitGCNZCA(on: train, scale: 10, useStd: true, epsilon: 0.1)] {
            let path = directory + "/pre.safetensors"
            try writeSafetensors(pre.tensors(), metadata: pre.metadata(), to: path)
            let restored = try Preprocessor(contents: try readSafetensors(path: path), file: path)
            XCTAssertEqual(restored, pre)
        }
        assertThrowsMessage(try Preprocessor(contents: SafetensorsContents(tensors: [:], metadata: ["preprocess.method": "pca"]), file: "x.safetensors"),
                            contains: "x.safetensors", "unknown preprocess.method 'pca'")
        assertThrowsMessage(try Preprocessor(contents: SafetensorsContents(tensors: [:], metadata: ["preprocess.method": "standardize", "preprocess.shape": "8,8,3"]), file: "y"),
                            contains: "y: no tensor named 'preprocess.mean'")
        var wrongShape = train
        wrongShape.channels = 1; wrongShape.width = 24
        assertThrowsMessage(try Preprocessor.fitStandardization(on: train).apply(to: &wrongShape), contains: "fitted for 8×8×3")
    }

    /// Full-size measurement: ZCA on 10,000 CIFAR-10 images (3072 dims). Opt in with DSL_ZCA_BENCH=1.
    func testFullSizeZCATiming() throws {
        guard ProcessInfo.processInfo.environment["DSL_ZCA_BENCH"] == "1" else { throw XCTSkip("set DSL_ZCA_BENCH=1 to time full-size ZCA") }
        let (train, test) = try loadDataset(directory: try sharedData("cifar-10-batches-bin"))
        let start = Date()
        let pre = try Preprocessor.fitGCNZCA(on: train)
        let fitted = Date()
        var whitenedTest = test
        try pre.apply(to: &whitenedTest)
        let applied = Date()
        print(String(format: "ZCA fit on %d×%d: %.2f s; apply to %d images: %.2f s",
                     train.count, train.imageSize, fitted.timeIntervalSince(start), test.count, applied.timeIntervalSince(fitted)))
        XCTAssertTrue(whitenedTest.images.prefix(100_000).allSatisfy { $0.isFinite })
        // Spot-check the defining identity Cw + εW² = I on a few rows, with Cw from whitened training data.
        var whitenedTrain = train
        try pre.apply(to: &whitenedTrain)
        let d = train.imageSize, n = train.count, epsilon = Double(pre.zcaEpsilon)
        var worst = 0.0
        for i in [0, 1000, 3071] {
            var covarianceRow = [Double](repeating: 0, count: d)
            whitenedTrain.images.withUnsafeBufferPointer { x in
                for s in 0..<n {
                    let row = x.baseAddress! + s * d
                    let xi = Double(row[i])
                    for j in 0..<d { covarianceRow[j] += xi * Double(row[j]) }
                }
            }
            pre.whitening.withUnsafeBufferPointer { w in
                var square = [Double](repeating: 0, count: d)
                for k in 0..<d {
                    let wik = Double(w[i * d + k])
                    for j in 0..<d { square[j] += wik * Double(w[k * d + j]) }
                }
                for j in 0..<d { worst = max(worst, abs(covarianceRow[j] / Double(n) + epsilon * square[j] - (i == j ? 1 : 0))) }
            }
        }
        print(String(format: "ZCA full size: max |Cw + εW² − I| on 3 rows = %.2e", worst))
        XCTAssertLessThan(worst, 5e-2)
    }
}
