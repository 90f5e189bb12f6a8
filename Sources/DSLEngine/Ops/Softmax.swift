import Foundation

// Softmax over channels at every pixel; as the graph's last node also the loss.
// inp (logits) is (B,H,W,C), out (probabilities) is (B,H,W,C): out[n,p,:] = softmax(inp[n,p,:]).
// Backward (anywhere in the graph): dinp[n,p,c] += out[n,p,c]·(dout[n,p,c] − Σ_k dout[n,p,k]·out[n,p,k]).
// Loss (the last node; labels (B) Int32, one class per image, C classes): softmax cross-entropy
// from the logits with log-softmax in Double, averaged over the batch and the H·W pixels:
//   loss = 1/(B·P) Σ_n Σ_p (logsumexp(inp[n,p,:]) − inp[n,p,label_n])          (P = H·W)
//   dinp[n,p,c] += (out[n,p,c] − [c = label_n]) / (B·P)
// With label smoothing ε (PyTorch's CrossEntropyLoss(label_smoothing=ε)), the target is
// t_c = (1−ε)·[c = label_n] + ε/C instead of the one-hot label:
//   loss = 1/(B·P) Σ_n Σ_p (logsumexp(inp[n,p,:]) − (1−ε)·inp[n,p,label_n] − ε/C · Σ_c inp[n,p,c])
//   dinp[n,p,c] += (out[n,p,c] − t_c) / (B·P)
// and the predicted class of image n is the argmax of its pixel-mean probabilities (the first
// on ties; for a 1×1 map, the largest logit). A confident model's loss is not capped (−log of a
// probability rounded to 0 would be).
// Forward saves nothing beyond its output (backward and the loss read the output; the loss
// also reads the logits, which the graph keeps alive to the end for the last node).

/// Softmax kernel; as the last node its backward is `lossAndGradient`, which needs the labels.
final class SoftmaxKernel: EngineKernel {
    let channels: Int
    let pixelsPerSample: Int
    let io: UnaryTensors
    /// Per image of the batch: its loss (mean over pixels) and its predicted class.
    let sampleLoss: UnsafeMutablePointer<Double>
    let samplePrediction: UnsafeMutablePointer<Int>

    let block: MemoryBlock

    /// Layout of `sampleLoss` and `samplePrediction` for a batch.
    static func layout(maxBatch: Int) -> (layout: MemoryLayout64, losses: Int, predictions: Int) {
        var l = MemoryLayout64()
        let losses = l.doubles(maxBatch), predictions = l.reserve(maxBatch, stride: MemoryLayout<Int>.stride)
        return (l, losses, predictions)
    }

    init(storage s: NodeStorage) throws {
        channels = s.outputShape.channels
        pixelsPerSample = s.outputShape.height * s.outputShape.width
        io = UnaryTensors(s)
        let l = SoftmaxKernel.layout(maxBatch: s.maxBatch)
        block = try MemoryBlock(l.layout)
        sampleLoss = block.doubles(at: l.losses)
        samplePrediction = (block.base + l.predictions).bindMemory(to: Int.self, capacity: s.maxBatch)
    }

    var ownedScratchBytes: Int { block.bytes }

    func forward(batch: Int, training: Bool) {
        let c = channels, rows = batch * pixelsPerSample
        let (x, y) = (UnsafePointer(io.input), io.output)
        let chunks = elementwiseChunks(rows * c)
        parallelFor(chunks) { chunk in
            for r in chunkRange(chunk, of: chunks, count: rows) {
                let logits = x + r * c, probs = y + r * c
                var largest = -Float.infinity
                for i in 0..<c { largest = max(largest, logits[i]) }
                var total: Float = 0
                for i in 0..<c {
                    let e = expf(logits[i] - largest)
                    probs[i] = e
                    total += e
                }
                let inv = 1 / total
                for i in 0..<c { probs[i] *= inv }
            }
        }
    }

    /// Backward of a softmax inside the network (the last node's is `lossAndGradient`).
    func backward(batch: Int) {
        guard let dIn = io.inputGrad, let dOut = io.outputGrad else { return }
        let c = channels, rows = batch * pixelsPerSample
        let y = UnsafePointer(io.output)
        let chunks = elementwiseChunks(rows * c)
        parallelFor(chunks) { chunk in
            for r in chunkRange(chunk, of: chunks, count: rows) {
                let (probs, dy, dx) = (y + r * c, dOut + r * c, dIn + r * c)
                var dot: Float = 0
                for i in 0..<c { dot += dy[i] * probs[i] }
                for i in 0..<c { dx[i] += probs[i] * (dy[i] - dot) }
            }
        }
    }

    /// Image n's cross-entropy against `label` (smoothed by `smoothing`, see the header)
    /// averaged over its pixels (0 without a label), and
    /// its predicted class: the first argmax of its pixel-mean probabilities, computed in Double
    /// from the logits with log-softmax.
    @inline(__always)
    private func imageStatistics(_ n: Int, label: Int?, smoothing: Double = 0) -> (loss: Double, prediction: Int) {
        let c = channels, pixels = pixelsPerSample
        let x = UnsafePointer(io.input)
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: c) { buffer in
            let meanProbability = buffer.baseAddress!
            meanProbability.update(repeating: 0, count: c)
            var total = 0.0
            for p in 0..<pixels {
                let logits = x + (n * pixels + p) * c
                var largest = logits[0]
                for i in 1..<max(1, c) { largest = max(largest, logits[i]) }
                var sum = 0.0
                for i in 0..<c { sum += exp(Double(logits[i]) - Double(largest)) }
                let logSum = Double(largest) + log(sum)
                if let label {
                    if smoothing == 0 {
                        total += logSum - Double(logits[label])
                    } else {
                        var logitSum = 0.0
                        for i in 0..<c { logitSum += Double(logits[i]) }
                        total += logSum - (1 - smoothing) * Double(logits[label]) - smoothing / Double(c) * logitSum
                    }
                }
                for i in 0..<c { meanProbability[i] += exp(Double(logits[i]) - logSum) }
            }
            var best = 0
            for i in 1..<max(1, c) where meanProbability[i] > meanProbability[best] { best = i }
            return (total / Double(pixels), best)
        }
    }

    /// Mean cross-entropy over the batch and the pixels (against targets smoothed by
    /// `smoothing` ε in 0..<1), and the number of images whose predicted class is the label
    /// (see the header); with `accumulateGradient`, also adds the loss gradient to the logits' gradient.
    func lossAndGradient(labels: UnsafePointer<Int32>, batch: Int, accumulateGradient: Bool, smoothing: Float = 0) -> (loss: Double, correct: Int) {
        require(smoothing >= 0 && smoothing < 1, "label smoothing \(smoothing) outside 0..<1")
        let c = channels, pixels = pixelsPerSample
        for n in 0..<batch {
            let label = Int(labels[n])
            require(label >= 0 && label < c, "label \(label) of image \(n) outside 0..<\(c)")
        }
        let y = UnsafePointer(io.output)
        let (losses, predicted) = (sampleLoss, samplePrediction)
        let dIn = accumulateGradient ? io.inputGrad : nil
        let scale = 1 / Float(batch * pixels)
        // Smoothed target: (1−ε) on the label plus ε/C on every class, times the scale.
        let (labelScale, uniform) = (scale * (1 - smoothing), scale * smoothing / Float(c))
        // One job per image: each image's loss, prediction and gradient in a fixed order.
        parallelFor(batch) { n in
            let label = Int(labels[n])
            (losses[n], predicted[n]) = imageStatistics(n, label: label, smoothing: Double(smoothing))
            if let dIn {
                for p in 0..<pixels {
                    let (probs, dx) = (y + (n * pixels + p) * c, dIn + (n * pixels + p) * c)
                    if smoothing == 0 {
                        for i in 0..<c { dx[i] += probs[i] * scale }
                        dx[label] -= scale
                    } else {
                        for i in 0..<c { dx[i] += probs[i] * scale - uniform }
                        dx[label] -= labelScale
                    }
                }
            }
        }
        var totalLoss = 0.0, correct = 0
        for n in 0..<batch {
            totalLoss += losses[n]
            if predicted[n] == Int(labels[n]) { correct += 1 }
        }
        return (totalLoss / Double(batch), correct)
    }

    /// Each image's predicted class (argmax of its pixel-mean probabilities), without labels.
    func predictions(batch: Int) -> [Int] {
        let predicted = samplePrediction
        parallelFor(batch) { n in predicted[n] = imageStatistics(n, label: nil).prediction }
        return (0..<batch).map { predicted[$0] }
    }
}
