import Foundation

/// A fitted input transform, applied identically in training and evaluation.
///
/// Methods:
/// - `none`: pixels pass through unchanged (raw 0...255).
/// - `standardize`: per-channel `(x − mean_c) / std_c`, mean and std fitted on the training set.
/// - `gcnZCA`: the All-CNN / maxout CIFAR recipe. Per image, global contrast normalisation as
///   pylearn2's `global_contrast_normalize(X, scale=55)`: subtract the image's mean, then divide by
///   `sqrt(sqrtBias + Σx²) / scale` (or, with `useStd`, by `sqrt(sqrtBias + var(x, ddof=1)) / scale`;
///   divisors below 1e-8 are replaced by 1). Then ZCA whitening on the flattened h·w·c vector:
///   `y = W (x − μ)` with μ the training mean and `W = U diag(1/√(λ + ε)) Uᵀ` from the
///   eigendecomposition `U diag(λ) Uᵀ` of the training covariance `(1/N) Σ (x − μ)(x − μ)ᵀ`.
///   ε (default 0.1, as pylearn2's ZCA `filter_bias`, which adds it to the covariance's diagonal)
///   regularises the small eigenvalues, which would otherwise amplify noise. Fitted on fewer
///   images than features, the covariance is singular: directions no training image varies in
///   are scaled by 1/√ε, so test images (which do vary there) come out unlike any training image.
public struct Preprocessor: Equatable, Sendable {
    /// Which transform this preprocessor applies.
    public enum Method: String, Sendable, CaseIterable {
        /// Raw pixels, unchanged.
        case none
        /// Per-channel (x − mean) / std.
        case standardize
        /// Global contrast normalisation, then ZCA whitening.
        case gcnZCA = "gcn-zca"
    }

    /// The transform.
    public var method: Method
    /// Image height the transform was fitted for.
    public var height: Int
    /// Image width the transform was fitted for.
    public var width: Int
    /// Channels the transform was fitted for.
    public var channels: Int
    /// `standardize`: per-channel mean; `gcnZCA`: per-feature mean (h·w·c) of the GCN'd training images.
    public var mean: [Float]
    /// `standardize`: per-channel 1/std; unused otherwise.
    public var inverseStd: [Float]
    /// `gcnZCA`: the symmetric D×D whitening matrix W (row-major); unused otherwise.
    public var whitening: [Float]
    /// GCN scale (55 in the All-CNN paper).
    public var gcnScale: Float
    /// GCN bias under the square root (0 by default).
    public var gcnSqrtBias: Float
    /// GCN divides by the standard deviation instead of the norm.
    public var gcnUseStd: Bool
    /// ZCA regularisation ε added to every eigenvalue.
    public var zcaEpsilon: Float

    /// Largest image size (h·w·c) ZCA is fitted for: its matrices take 8·D² bytes while fitting.
    public static let maximumZCAFeatures = 6144

    /// Floats per image.
    public var featureCount: Int { height * width * channels }

    private init(method: Method, height: Int, width: Int, channels: Int) {
        self.method = method; self.height = height; self.width = width; self.channels = channels
        mean = []; inverseStd = []; whitening = []
        gcnScale = 55; gcnSqrtBias = 0; gcnUseStd = false; zcaEpsilon = 1e-2
    }

    /// The identity transform for images of the given shape.
    public static func identity(height: Int, width: Int, channels: Int) -> Preprocessor {
        Preprocessor(method: .none, height: height, width: width, channels: channels)
    }

    /// Fits per-channel mean and standard deviation on `dataset` (population std; floors at 1e-6).
    public static func fitStandardization(on dataset: Dataset) -> Preprocessor {
        var result = Preprocessor(method: .standardize, height: dataset.height, width: dataset.width, channels: dataset.channels)
        let c = dataset.channels
        var sums = [Double](repeating: 0, count: c), squares = [Double](repeating: 0, count: c)
        let pixels = dataset.count * dataset.height * dataset.width
        dataset.images.withUnsafeBufferPointer { buffer in
            let x = buffer.baseAddress!
            // Per-image partial sums in Float are exact for 0...255 inputs up to large images; accumulate in Double.
            for channel in 0..<c {
                var sum = 0.0, square = 0.0
                var index = channel
                for _ in 0..<pixels { let v = Double(x[index]); sum += v; square += v * v; index += c }
                sums[channel] = sum; squares[channel] = square
            }
        }
        let n = Double(max(1, pixels))
        result.mean = sums.map { Float($0 / n) }
        result.inverseStd = (0..<c).map { channel in
            let variance = max(0, squares[channel] / n - (sums[channel] / n) * (sums[channel] / n))
            return Float(1 / max(variance.squareRoot(), 1e-6))
        }
        return result
    }

    /// The default ZCA regularisation ε (pylearn2's `filter_bias`, used by the maxout and
    /// All-CNN CIFAR-10 preprocessing).
    public static let defaultZCAEpsilon: Float = 0.1

    /// Fits GCN + ZCA on `dataset` (see the type's documentation for the formulas and defaults).
    public static func fitGCNZCA(on dataset: Dataset, scale: Float = 55, sqrtBias: Float = 0, useStd: Bool = false,
                                 epsilon: Float = defaultZCAEpsilon) throws -> Preprocessor {
        guard dataset.count >= 2 else { throw TrainingError("ZCA: needs at least 2 training images, got \(dataset.count)") }
        guard epsilon >= 0, scale > 0 else { throw TrainingError("ZCA: epsilon must be ≥ 0 and scale > 0") }
        guard dataset.imageSize <= Preprocessor.maximumZCAFeatures else {
            throw TrainingError("ZCA: images of \(dataset.height)×\(dataset.width)×\(dataset.channels) = \(dataset.imageSize) features exceed the supported \(Preprocessor.maximumZCAFeatures) (the whitening matrix grows with the square); use per-channel standardisation")
        }
        var result = Preprocessor(method: .gcnZCA, height: dataset.height, width: dataset.width, channels: dataset.channels)
        result.gcnScale = scale; result.gcnSqrtBias = sqrtBias; result.gcnUseStd = useStd; result.zcaEpsilon = epsilon
        let d = dataset.imageSize, n = dataset.count
        // Two passes over the images in chunks (no full copy of the dataset): the mean of the
        // contrast-normalised images, then the covariance C = (1/N) Σ (x − μ)(x − μ)ᵀ.
        let chunk = min(n, 1024)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: chunk * d)
        defer { scratch.deallocate() }
        var sums = [Double](repeating: 0, count: d)
        var mean = [Float](repeating: 0, count: d)
        var covariance = [Float](repeating: 0, count: d * d)
        dataset.images.withUnsafeBufferPointer { source in
            for pass in 0..<2 {
                var first = 0
                while first < n {
                    let rows = min(chunk, n - first)
                    scratch.update(from: source.baseAddress! + first * d, count: rows * d)
                    for image in 0..<rows { result.contrastNormalize(scratch + image * d) }
                    if pass == 0 {
                        for image in 0..<rows {
                            let row = scratch + image * d
                            for j in 0..<d { sums[j] += Double(row[j]) }
                        }
                    } else {
                        for image in 0..<rows {
                            let row = scratch + image * d
                            for j in 0..<d { row[j] -= mean[j] }
                        }
                        covariance.withUnsafeMutableBufferPointer { cs in
                            sgemm(m: d, n: d, k: rows, a: scratch, aRowStride: 1, aColumnStride: d,
                                  b: scratch, ldb: d, c: cs.baseAddress!, ldc: d, accumulate: true)
                        }
                    }
                    first += rows
                }
                if pass == 0 { for j in 0..<d { mean[j] = Float(sums[j] / Double(n)) } }
            }
        }
        var matrix = [Double](repeating: 0, count: d * d)
        let inverseN = 1 / Double(n)
        for i in 0..<d {
            for j in 0..<d {  // symmetrise exactly: rounding differs between C[i,j] and C[j,i]
                matrix[i * d + j] = 0.5 * (Double(covariance[i * d + j]) + Double(covariance[j * d + i])) * inverseN
            }
        }
        covariance = []
        let (values, vectors) = try symmetricEigen(&matrix, n: d)
        matrix = []
        // W = Σ_i f_i u_i u_iᵀ with f_i = 1/√(λ_i + ε) = Bᵀ B where row i of B is √f_i · u_i.
        var scaled = [Float](repeating: 0, count: d * d)
        for i in 0..<d {
            let factor = (1 / (max(values[i], 0) + Double(epsilon)).squareRoot()).squareRoot()
            for j in 0..<d { scaled[i * d + j] = Float(factor * vectors[i * d + j]) }
        }
        var whitening = [Float](repeating: 0, count: d * d)
        scaled.withUnsafeBufferPointer { bs in
            whitening.withUnsafeMutableBufferPointer { ws in
                sgemm(m: d, n: d, k: d, a: bs.baseAddress!, aRowStride: 1, aColumnStride: d,
                      b: bs.baseAddress!, ldb: d, c: ws.baseAddress!, ldc: d, accumulate: false)
            }
        }
        result.mean = mean
        result.whitening = whitening
        return result
    }

    /// Global contrast normalisation of one image in place.
    @inline(__always)
    private func contrastNormalize(_ x: UnsafeMutablePointer<Float>) {
        let d = featureCount
        var sum = 0.0
        for j in 0..<d { sum += Double(x[j]) }
        let imageMean = Float(sum / Double(d))
        var squares = 0.0
        for j in 0..<d { let v = x[j] - imageMean; x[j] = v; squares += Double(v * v) }
        let spread = gcnUseStd ? squares / Double(max(1, d - 1)) : squares
        var divisor = Float((Double(gcnSqrtBias) + spread).squareRoot()) / gcnScale
        if divisor < 1e-8 { divisor = 1 }
        let inverse = 1 / divisor
        for j in 0..<d { x[j] *= inverse }
    }

    /// Throws when the fitted arrays do not match the method and image shape (e.g. after editing fields).
    public func validate() throws {
        guard height > 0, width > 0, channels > 0 else { throw TrainingError("preprocessing: invalid image shape \(height)×\(width)×\(channels)") }
        switch method {
        case .none: return
        case .standardize:
            guard mean.count == channels, inverseStd.count == channels else {
                throw TrainingError("preprocessing: standardisation needs \(channels) means and inverse stds, has \(mean.count) and \(inverseStd.count)")
            }
        case .gcnZCA:
            guard mean.count == featureCount, whitening.count == featureCount * featureCount else {
                throw TrainingError("preprocessing: ZCA needs a \(featureCount)-value mean and a \(featureCount)×\(featureCount) matrix, has \(mean.count) and \(whitening.count) values")
            }
        }
    }

    /// Transforms `count` NHWC images in place (`images` holds count × featureCount floats).
    public func apply(images: UnsafeMutablePointer<Float>, count: Int) throws {
        try validate()
        if count <= 0 { return }
        let d = featureCount
        switch method {
        case .none:
            return
        case .standardize:
            let c = channels
            mean.withUnsafeBufferPointer { m in
                inverseStd.withUnsafeBufferPointer { s in
                    let pixels = count * height * width
                    var index = 0
                    for _ in 0..<pixels {
                        for channel in 0..<c { images[index + channel] = (images[index + channel] - m[channel]) * s[channel] }
                        index += c
                    }
                }
            }
        case .gcnZCA:
            let chunk = 768
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: min(chunk, max(count, 1)) * d)
            defer { scratch.deallocate() }
            mean.withUnsafeBufferPointer { m in
                whitening.withUnsafeBufferPointer { w in
                    var first = 0
                    while first < count {
                        let rows = min(chunk, count - first)
                        let block = images + first * d
                        for image in 0..<rows {
                            let x = block + image * d
                            contrastNormalize(x)
                            for j in 0..<d { x[j] -= m[j] }
                        }
                        // Y = X W (W symmetric, so this is W x for every row x).
                        sgemm(m: rows, n: d, k: d, a: UnsafePointer(block), aRowStride: d, aColumnStride: 1,
                              b: w.baseAddress!, ldb: d, c: scratch, ldc: d, accumulate: false)
                        block.update(from: scratch, count: rows * d)
                        first += rows
                    }
                }
            }
        }
    }

    /// Transforms a whole dataset in place; throws when its image shape differs from the fitted one.
    public func apply(to dataset: inout Dataset) throws {
        guard dataset.height == height, dataset.width == width, dataset.channels == channels else {
            throw TrainingError("preprocessing was fitted for \(height)×\(width)×\(channels) images, dataset has \(dataset.height)×\(dataset.width)×\(dataset.channels)")
        }
        let count = dataset.count
        guard dataset.images.count >= count * featureCount else {
            throw TrainingError("dataset: \(dataset.images.count) pixel values for \(count) images of \(featureCount)")
        }
        if count == 0 { return }
        try dataset.images.withUnsafeMutableBufferPointer { try apply(images: $0.baseAddress!, count: count) }
    }

    // MARK: Serialisation

    /// Checkpoint tensors: "preprocess.mean", "preprocess.inv_std" (standardize) or "preprocess.zca" (gcn-zca).
    public func tensors() -> [String: StoredTensor] {
        switch method {
        case .none:
            return [:]
        case .standardize:
            return ["preprocess.mean": try! StoredTensor(shape: [channels], floats: mean),
                    "preprocess.inv_std": try! StoredTensor(shape: [channels], floats: inverseStd)]
        case .gcnZCA:
            return ["preprocess.mean": try! StoredTensor(shape: [featureCount], floats: mean),
                    "preprocess.zca": try! StoredTensor(shape: [featureCount, featureCount], floats: whitening)]
        }
    }

    /// Checkpoint metadata: method, image shape and GCN/ZCA parameters as strings.
    public func metadata() -> [String: String] {
        var result = ["preprocess.method": method.rawValue, "preprocess.shape": "\(height),\(width),\(channels)"]
        if method == .gcnZCA {
            result["preprocess.gcn_scale"] = "\(gcnScale)"
            result["preprocess.gcn_sqrt_bias"] = "\(gcnSqrtBias)"
            result["preprocess.gcn_use_std"] = gcnUseStd ? "true" : "false"
            result["preprocess.zca_epsilon"] = "\(zcaEpsilon)"
        }
        return result
    }

    /// Restores a preprocessor from checkpoint contents written with `tensors()` and `metadata()`.
    public init(contents: SafetensorsContents, file: String = "checkpoint") throws {
        func fail(_ message: String) -> TrainingError { TrainingError("\(file): \(message)") }
        guard let methodName = contents.metadata["preprocess.method"] else { throw fail("no 'preprocess.method' metadata") }
        guard let method = Method(rawValue: methodName) else {
            throw fail("unknown preprocess.method '\(methodName)', expected one of: \(Method.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let dims = (contents.metadata["preprocess.shape"] ?? "").split(separator: ",").compactMap { Int($0) }
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else {
            throw fail("'preprocess.shape' metadata must be 'height,width,channels', got '\(contents.metadata["preprocess.shape"] ?? "")'")
        }
        guard dims[0] <= 1 << 20, dims[1] <= 1 << 20, dims[2] <= 1 << 20, dims[0].multipliedReportingOverflow(by: dims[1] * dims[2]).overflow == false else {
            throw fail("'preprocess.shape' metadata '\(contents.metadata["preprocess.shape"] ?? "")' is too large")
        }
        self.init(method: method, height: dims[0], width: dims[1], channels: dims[2])
        let expected: Set<String>
        switch method {
        case .none: expected = []
        case .standardize: expected = ["preprocess.mean", "preprocess.inv_std"]
        case .gcnZCA: expected = ["preprocess.mean", "preprocess.zca"]
        }
        let present = Set(contents.tensors.keys.filter { $0.hasPrefix("preprocess.") })
        if let extra = present.subtracting(expected).sorted().first {
            throw fail("tensor '\(extra)' does not belong to preprocess.method '\(methodName)'")
        }
        let allowedKeys: Set<String> = method == .gcnZCA
            ? ["preprocess.method", "preprocess.shape", "preprocess.gcn_scale", "preprocess.gcn_sqrt_bias", "preprocess.gcn_use_std", "preprocess.zca_epsilon"]
            : ["preprocess.method", "preprocess.shape"]
        if let extra = contents.metadata.keys.filter({ $0.hasPrefix("preprocess.") && !allowedKeys.contains($0) }).sorted().first {
            throw fail("metadata '\(extra)' does not belong to preprocess.method '\(methodName)'")
        }
        switch method {
        case .none:
            break
        case .standardize:
            mean = try contents.floats("preprocess.mean", shape: [channels], file: file)
            inverseStd = try contents.floats("preprocess.inv_std", shape: [channels], file: file)
            if let bad = inverseStd.firstIndex(where: { !($0 > 0 && $0.isFinite) }) {
                throw fail("tensor 'preprocess.inv_std' holds \(inverseStd[bad]) at element \(bad), expected a finite value > 0")
            }
        case .gcnZCA:
            func number(_ key: String, positive: Bool) throws -> Float {
                guard let text = contents.metadata[key], let value = Float(text), value.isFinite, positive ? value > 0 : value >= 0 else {
                    throw fail("metadata '\(key)' missing or not a finite number \(positive ? "> 0" : "≥ 0")")
                }
                return value
            }
            gcnScale = try number("preprocess.gcn_scale", positive: true)
            gcnSqrtBias = try number("preprocess.gcn_sqrt_bias", positive: false)
            zcaEpsilon = try number("preprocess.zca_epsilon", positive: false)
            guard let useStd = contents.metadata["preprocess.gcn_use_std"], useStd == "true" || useStd == "false" else {
                throw fail("metadata 'preprocess.gcn_use_std' must be true or false")
            }
            gcnUseStd = useStd == "true"
            mean = try contents.floats("preprocess.mean", shape: [featureCount], file: file)
            whitening = try contents.floats("preprocess.zca", shape: [featureCount, featureCount], file: file)
        }
    }

    /// A one-line human-readable summary, e.g. for the start of a training log.
    public var summary: String {
        switch method {
        case .none: return "no preprocessing (raw 0...255 pixels)"
        case .standardize:
            let means = mean.map { String(format: "%.2f", $0) }.joined(separator: ", ")
            let stds = inverseStd.map { String(format: "%.2f", 1 / $0) }.joined(separator: ", ")
            return "per-channel standardisation (mean \(means); std \(stds))"
        case .gcnZCA:
            return "global contrast normalisation (scale \(gcnScale), \(gcnUseStd ? "std" : "norm")) + ZCA whitening (\(featureCount) dims, epsilon \(zcaEpsilon))"
        }
    }
}
