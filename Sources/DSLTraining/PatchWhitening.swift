import DSLEngine
import Foundation

// Patch-whitening initialisation (airbench's init_whitening_conv): a KH×KW convolution with
// OC = 2·KH·KW·IC output channels whose filters are the eigenvectors of the (uncentred)
// covariance of the training images' KH×KW patches, each divided by √(λ + ε), followed by the
// same filters negated. Its outputs on those patches are whitened: the covariance of the first
// half is diag(λ/(λ + ε)).

/// The patch-whitening filters of a KH×KW convolution for `count` NHWC images: every KH×KW
/// patch (stride 1, no padding) flattened in (kh, kw, c) order, Σ = XᵀX / n over all n patches
/// (no mean subtracted, as airbench), its eigenvectors in order of decreasing eigenvalue scaled
/// by 1/√(λ + epsilon), then their negatives. Returns the weight in dsl's (KH, KW, IC, OC)
/// layout, OC = 2·KH·KW·IC: filter o (o < KH·KW·IC) holds eigenvector o, filter o + KH·KW·IC
/// its negative. An eigenvector's sign is arbitrary (as in any eigensolver). The covariance is
/// accumulated in Double over a fixed split of the images, so the result does not depend on
/// the number of threads.
public func patchWhiteningFilters(images: UnsafePointer<Float>, count: Int, height: Int, width: Int, channels: Int,
                                  kernelHeight: Int, kernelWidth: Int, epsilon: Double) throws -> (weight: [Float], eigenvalues: [Double]) {
    guard count >= 1, kernelHeight >= 1, kernelWidth >= 1, kernelHeight <= height, kernelWidth <= width, channels >= 1 else {
        throw TrainingError("patch whitening: \(kernelHeight)x\(kernelWidth) patches of \(count) images of \(height)x\(width)x\(channels)")
    }
    guard epsilon >= 0, epsilon.isFinite else { throw TrainingError("patch whitening: epsilon must be ≥ 0, got \(epsilon)") }
    let d = kernelHeight * kernelWidth * channels
    let rowsOut = height - kernelHeight + 1, columnsOut = width - kernelWidth + 1
    let imageSize = height * width * channels
    let chunks = min(count, 16)
    var partials = [[Double]](repeating: [], count: chunks)
    partials.withUnsafeMutableBufferPointer { partialsBuffer in
        let partialPointer = partialsBuffer.baseAddress!
        runParallel(chunks) { chunk in
            let first = chunk * count / chunks, last = (chunk + 1) * count / chunks
            let sums = UnsafeMutablePointer<Double>.allocate(capacity: d * d)
            let patch = UnsafeMutablePointer<Double>.allocate(capacity: d)
            defer { sums.deallocate(); patch.deallocate() }
            sums.update(repeating: 0, count: d * d)
            for n in first..<last {
                let image = images + n * imageSize
                for y in 0..<rowsOut {
                    for x in 0..<columnsOut {
                        var k = 0
                        for ky in 0..<kernelHeight {
                            let row = image + ((y + ky) * width + x) * channels
                            for j in 0..<(kernelWidth * channels) { patch[k] = Double(row[j]); k += 1 }
                        }
                        for i in 0..<d {
                            let pi = patch[i], out = sums + i * d
                            for j in i..<d { out[j] += pi * patch[j] }
                        }
                    }
                }
            }
            partialPointer[chunk] = Array(UnsafeBufferPointer(start: sums, count: d * d))
        }
    }
    let n = Double(count * rowsOut * columnsOut)
    var covariance = [Double](repeating: 0, count: d * d)
    for partial in partials { for k in 0..<(d * d) { covariance[k] += partial[k] } }
    for i in 0..<d {
        for j in i..<d {
            covariance[i * d + j] /= n
            covariance[j * d + i] = covariance[i * d + j]
        }
    }
    let (values, vectors) = try symmetricEigen(&covariance, n: d)
    // Decreasing eigenvalue; equal ones keep the solver's order.
    let order = (0..<d).sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
    let outChannels = 2 * d
    var weight = [Float](repeating: 0, count: d * outChannels)
    var sorted: [Double] = []
    for (o, e) in order.enumerated() {
        let scaleSquared = values[e] + epsilon
        guard scaleSquared > 0, scaleSquared.isFinite else {
            throw TrainingError("patch whitening: eigenvalue \(values[e]) + epsilon \(epsilon) is not positive; the patches have no variance in some direction: use a larger whiten-eps")
        }
        let scale = 1 / scaleSquared.squareRoot()
        for k in 0..<d {
            // Patch element k = (ky·KW + kx)·IC + c is the (KH, KW, IC) index of the weight.
            let value = Float(vectors[e * d + k] * scale)
            weight[k * outChannels + o] = value
            weight[k * outChannels + o + d] = -value
        }
        sorted.append(values[e])
    }
    return (weight, sorted)
}

extension Trainer {
    /// Computes and stores the data initialisation of every parameter in
    /// `dataInitializations` from the first `options.patchWhiteningImages` preprocessed
    /// training images (all if fewer). `run` calls it before the first step of a new run (not
    /// on a resumed run or one started with `--init`); it returns a line per parameter for the
    /// log. Throws when a marked parameter is not a conv weight of shape (KH, KW, IC, 2·KH·KW·IC).
    @discardableResult
    public func applyDataInitializations() throws -> [String] {
        var lines: [String] = []
        for p in engine.parameters {
            guard let kind = dataInitializations[p.name] else { continue }
            switch kind {
            case .patchWhitening(let epsilon):
                guard p.shape.count == 4, p.shape[2] == train.channels, p.shape[3] == 2 * p.shape[0] * p.shape[1] * p.shape[2],
                      p.shape[0] <= train.height, p.shape[1] <= train.width else {
                    throw TrainingError("patch whitening of '\(p.name)': needs a convolution weight (KH, KW, IC, OC) on the input images with OC = 2·KH·KW·IC; its shape is \(p.shape)")
                }
                let count = min(train.count, options.patchWhiteningImages)
                let (weight, _) = try train.images.withUnsafeBufferPointer { buffer in
                    try patchWhiteningFilters(images: buffer.baseAddress!, count: count, height: train.height, width: train.width, channels: train.channels,
                                              kernelHeight: p.shape[0], kernelWidth: p.shape[1], epsilon: epsilon)
                }
                p.value.update(from: weight, count: p.count)
                lines.append("init: \(p.name) by patch whitening (the \(p.shape[0])x\(p.shape[1]) patches of the first \(count) preprocessed training images, eps \(epsilon))")
            }
        }
        return lines
    }
}
