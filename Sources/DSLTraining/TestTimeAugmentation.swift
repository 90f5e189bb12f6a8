import DSLEngine
import Foundation

// Test-time augmentation (`dsl train --tta`, `dsl eval --tta`), airbench's `infer`:
//   level 1: 0.5·f(x) + 0.5·f(mirror x)
//   level 2: 0.5·level1(x) + 0.25·level1(t₋(x)) + 0.25·level1(t₊(x))
// where f is the network's logits (the input of its final softmax: airbench's network has no
// softmax and averages its outputs, so the softmax's input is what matches), t₋ and t₊ are
// the image shifted by one pixel up-left and down-right out of a 1-pixel reflect-padded copy
// (airbench: F.pad(x, (1,1,1,1), 'reflect')[:, :, 0:32, 0:32] and [2:34, 2:34]). The loss and
// the prediction are then computed from the averaged logits as `EngineGraph.loss` and
// `predictedClasses` do from the network's own: log-softmax cross-entropy averaged over the
// output's pixels, argmax of the pixel-mean probabilities.

/// One view of a test image: shifted by (dy, dx) out of a reflect-padded copy (output pixel
/// (y, x) shows input pixel (y + dy, x + dx), mirrored at the border), then mirrored left–right
/// when `mirror`; its logits count with `weight`.
public struct TTAView: Equatable, Sendable {
    /// Rows shifted: output row y shows input row y + dy (reflected at the border).
    public var dy: Int
    /// Columns shifted likewise.
    public var dx: Int
    /// Mirrored left–right after the shift.
    public var mirror: Bool
    /// Weight of the view's logits in the mean (the weights of a level sum to 1).
    public var weight: Double

    /// The views of a TTA level (0: the image itself; 1: and its mirror; 2: airbench's six).
    public static func views(level: Int) -> [TTAView] {
        switch level {
        case 0: return [TTAView(dy: 0, dx: 0, mirror: false, weight: 1)]
        case 1: return [TTAView(dy: 0, dx: 0, mirror: false, weight: 0.5), TTAView(dy: 0, dx: 0, mirror: true, weight: 0.5)]
        default:
            return [TTAView(dy: 0, dx: 0, mirror: false, weight: 0.25), TTAView(dy: 0, dx: 0, mirror: true, weight: 0.25),
                    TTAView(dy: -1, dx: -1, mirror: false, weight: 0.125), TTAView(dy: -1, dx: -1, mirror: true, weight: 0.125),
                    TTAView(dy: 1, dx: 1, mirror: false, weight: 0.125), TTAView(dy: 1, dx: 1, mirror: true, weight: 0.125)]
        }
    }

    /// Writes this view of `count` NHWC images from `source` to `destination` (no overlap).
    /// |dy| and |dx| must be below the height and width (reflection of one pixel or more).
    public func apply(_ source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, count: Int, height: Int, width: Int, channels: Int) {
        func reflect(_ i: Int, _ n: Int) -> Int { i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i) }
        let size = height * width * channels
        for n in 0..<count {
            let image = source + n * size, out = destination + n * size
            for y in 0..<height {
                let row = image + reflect(y + dy, height) * width * channels
                let outRow = out + y * width * channels
                for x in 0..<width {
                    let column = reflect((mirror ? width - 1 - x : x) + dx, width)
                    (outRow + x * channels).update(from: row + column * channels, count: channels)
                }
            }
        }
    }
}

/// An evaluation with test-time augmentation.
public struct TTAEvaluation: Sendable, Equatable {
    /// The level (1 or 2; 0 is a plain evaluation).
    public var level: Int
    /// Mean cross-entropy of the averaged logits.
    public var loss: Double
    /// Fraction of correct top-1 predictions of the averaged logits.
    public var accuracy: Double
    /// confusion[true][predicted] counts.
    public var confusion: [[Int]]
}

extension Trainer {
    /// Evaluates on a (preprocessed) dataset in inference mode with test-time augmentation.
    public func evaluate(_ data: Dataset, tta level: Int) throws -> TTAEvaluation {
        try Trainer.evaluate(engine: engine, data: data, batch: options.batch, tta: level)
    }

    /// Evaluates a compiled classifier engine on a preprocessed dataset, averaging the logits
    /// (the final softmax's input) over the views of `TTAView.views(level:)` with their
    /// weights; loss and prediction as `evaluate(engine:data:batch:)` computes them, from the
    /// averaged logits. Level 0 gives the plain evaluation's numbers. Throws as that does, and
    /// for a level outside 0...2 or images of one pixel (nothing to reflect).
    public static func evaluate(engine: EngineGraph, data: Dataset, batch: Int, tta level: Int) throws -> TTAEvaluation {
        let classes = data.classes
        guard (0...2).contains(level) else { throw TrainingError("test-time augmentation level must be 0, 1 or 2, got \(level)") }
        try Trainer.checkEvaluable(engine: engine, data: data, batch: batch)
        if level == 2 && (data.height < 2 || data.width < 2) {
            throw TrainingError("test-time augmentation level 2 shifts by one reflected pixel: images need at least 2x2 pixels, these are \(data.height)x\(data.width)")
        }
        let views = TTAView.views(level: level)
        let size = data.imageSize
        let outputs = engine.outputShape.count
        let pixels = outputs / classes
        let viewImages = UnsafeMutablePointer<Float>.allocate(capacity: batch * size)
        let sums = UnsafeMutablePointer<Double>.allocate(capacity: batch * outputs)
        let probabilities = UnsafeMutablePointer<Double>.allocate(capacity: classes)
        let row = UnsafeMutablePointer<Double>.allocate(capacity: classes)
        defer { viewImages.deallocate(); sums.deallocate(); probabilities.deallocate(); row.deallocate() }
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        var lossSum = 0.0
        data.images.withUnsafeBufferPointer { imgs in
            var i = 0
            while i < data.count {
                let n = min(batch, data.count - i)
                sums.update(repeating: 0, count: n * outputs)
                for view in views {
                    view.apply(imgs.baseAddress! + i * size, to: viewImages, count: n, height: data.height, width: data.width, channels: data.channels)
                    engine.forward(viewImages, batch: n, training: false)
                    let logits = engine.logits!
                    for k in 0..<(n * outputs) { sums[k] += view.weight * Double(logits[k]) }
                }
                for j in 0..<n {
                    let label = Int(data.labels[i + j])
                    probabilities.update(repeating: 0, count: classes)
                    var imageLoss = 0.0
                    for p in 0..<pixels {
                        let z = sums + (j * pixels + p) * classes
                        var top = z[0]
                        for c in 1..<max(classes, 1) { top = max(top, z[c]) }
                        var total = 0.0
                        for c in 0..<classes { row[c] = Foundation.exp(z[c] - top); total += row[c] }
                        imageLoss += -(z[label] - top - Foundation.log(total))
                        for c in 0..<classes { probabilities[c] += row[c] / total }
                    }
                    lossSum += imageLoss / Double(pixels)
                    var predicted = 0
                    for c in 1..<max(classes, 1) where probabilities[c] > probabilities[predicted] { predicted = c }
                    confusion[label][predicted] += 1
                }
                i += n
            }
        }
        let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
        return TTAEvaluation(level: level, loss: lossSum / Double(max(data.count, 1)), accuracy: Double(correct) / Double(max(data.count, 1)), confusion: confusion)
    }
}
