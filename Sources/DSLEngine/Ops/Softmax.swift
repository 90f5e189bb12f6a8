import Foundation

// Softmax over the flattened input, and softmax cross-entropy as the training loss.
// inp (logits) is (B,K) with K = H·W·C, out (probabilities) is (B,K), labels are (B) Int32
// loss = mean over the batch of logsumexp(inp[n]) − inp[n, label], computed stably in Double
// from the logits; dinp[n,k] += (out[n,k] − [k = label]) / B.
// Backward reads both the logits (loss) and the probabilities (gradient).

/// Softmax kernel; its backward needs labels, so the graph calls `lossAndGradient` instead.
final class SoftmaxKernel: EngineKernel {
    let classes: Int
    let input: UnsafeMutablePointer<Float>
    let inputGrad: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>

    init(storage s: NodeStorage) {
        classes = s.outputShape.count
        input = s.inputs[0]
        inputGrad = s.inputGrads[0]
        output = s.output
    }

    func forward(batch: Int, training: Bool) {
        let k = classes
        let (x, y) = (UnsafePointer(input), output)
        parallelFor(batch) { sample in
            let logits = x + sample * k, probs = y + sample * k
            var largest = -Float.infinity
            for i in 0..<k { largest = max(largest, logits[i]) }
            var total: Float = 0
            for i in 0..<k {
                let e = expf(logits[i] - largest)
                probs[i] = e
                total += e
            }
            let inv = 1 / total
            for i in 0..<k { probs[i] *= inv }
        }
    }

    /// Without labels there is nothing to do; see `lossAndGradient`.
    func backward(batch: Int) {}

    /// Mean cross-entropy and the number of samples whose first most probable class is the label;
    /// with `accumulateGradient`, also adds the loss gradient to the logits' gradient.
    func lossAndGradient(labels: UnsafePointer<Int32>, batch: Int, accumulateGradient: Bool) -> (loss: Double, correct: Int) {
        let k = classes
        let (x, y) = (UnsafePointer(input), UnsafePointer(output))
        var totalLoss = 0.0
        var correct = 0
        for sample in 0..<batch {
            let logits = x + sample * k
            let label = Int(labels[sample])
            require(label >= 0 && label < k, "label \(label) outside 0..<\(k)")
            var largest = logits[0], best = 0
            for i in 1..<max(1, k) where logits[i] > largest {
                largest = logits[i]
                best = i
            }
            var sum = 0.0
            for i in 0..<k { sum += exp(Double(logits[i]) - Double(largest)) }
            totalLoss += Double(largest) + log(sum) - Double(logits[label])
            if best == label { correct += 1 }
        }
        if accumulateGradient, let dIn = inputGrad {
            let scale = 1 / Float(batch)
            for sample in 0..<batch {
                let (probs, dx) = (y + sample * k, dIn + sample * k)
                for i in 0..<k { dx[i] += probs[i] * scale }
                dx[Int(labels[sample])] -= scale
            }
        }
        return (totalLoss / Double(batch), correct)
    }
}
