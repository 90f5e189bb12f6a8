/// Random horizontal flips and translations of NHWC image batches, reproducible from a seed.
///
/// Translation is "zero-pad by `padding` pixels on every side, then crop a random window of the
/// original size": each image moves by dy, dx ∈ −padding...padding and uncovered pixels become 0.
/// The zeros are inserted in whatever space the batch is in; after standardisation or ZCA that
/// is the (training) mean, as in the usual pad-and-crop recipe applied to normalised inputs.
public struct Augmenter: CustomStringConvertible {
    /// Flip each image left–right with probability ½.
    public var horizontalFlip: Bool
    /// Maximum translation in pixels (0 disables translation).
    public var padding: Int
    /// The generator all random choices come from.
    public var random: SplitMix64

    /// Creates an augmenter; `seed` fixes every choice it will make.
    public init(horizontalFlip: Bool, padding: Int, seed: UInt64) throws {
        guard padding >= 0 else { throw TrainingError("augmentation: padding must be ≥ 0, got \(padding)") }
        self.horizontalFlip = horizontalFlip; self.padding = padding
        random = SplitMix64(seed: seed)
    }

    /// Whether this augmenter changes anything.
    public var isIdentity: Bool { !horizontalFlip && padding == 0 }

    /// A short description such as "flip + translate ±4 px" for logs.
    public var description: String {
        var parts: [String] = []
        if horizontalFlip { parts.append("horizontal flip") }
        if padding > 0 { parts.append("translate ±\(padding) px (zero pad + random crop)") }
        return parts.isEmpty ? "no augmentation" : parts.joined(separator: " + ")
    }

    /// Augments `count` images of height×width×channels in place; `scratch` must hold one image
    /// (height·width·channels floats) and is the only memory used, so nothing is allocated per image.
    public mutating func augment(images: UnsafeMutablePointer<Float>, count: Int, height: Int, width: Int, channels: Int,
                                 scratch: UnsafeMutablePointer<Float>) {
        if isIdentity || count <= 0 || height <= 0 || width <= 0 || channels <= 0 { return }
        let size = height * width * channels
        let rowSize = width * channels
        for n in 0..<count {
            let flip = horizontalFlip && random.nextBool()
            let dy = padding > 0 ? random.nextInt(below: 2 * padding + 1) - padding : 0
            let dx = padding > 0 ? random.nextInt(below: 2 * padding + 1) - padding : 0
            if !flip && dx == 0 && dy == 0 { continue }
            let image = images + n * size
            scratch.update(from: image, count: size)
            for y in 0..<height {
                let out = image + y * rowSize
                let sourceY = y + dy
                if sourceY < 0 || sourceY >= height {
                    out.update(repeating: 0, count: rowSize)
                    continue
                }
                let sourceRow = scratch + sourceY * rowSize
                for x in 0..<width {
                    // Output pixel x shows padded-image column x + dx of the (possibly flipped) image.
                    let shifted = x + dx
                    let pixel = out + x * channels
                    if shifted < 0 || shifted >= width {
                        pixel.update(repeating: 0, count: channels)
                    } else {
                        let sourceX = flip ? width - 1 - shifted : shifted
                        pixel.update(from: sourceRow + sourceX * channels, count: channels)
                    }
                }
            }
        }
    }

    /// Convenience for arrays: augments a whole NHWC batch held in `images`.
    public mutating func augment(_ images: inout [Float], count: Int, height: Int, width: Int, channels: Int) throws {
        guard images.count == count * height * width * channels else {
            throw TrainingError("augmentation: batch holds \(images.count) floats, expected \(count)×\(height)×\(width)×\(channels)")
        }
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, height * width * channels))
        defer { scratch.deallocate() }
        images.withUnsafeMutableBufferPointer { buffer in
            augment(images: buffer.baseAddress!, count: count, height: height, width: width, channels: channels, scratch: scratch)
        }
    }
}

/// A reproducible random order of a dataset's images for every epoch.
public struct EpochShuffler: Sendable {
    /// Number of images shuffled.
    public let count: Int
    /// The seed every epoch's order derives from.
    public let seed: UInt64

    /// Creates a shuffler for `count` images.
    public init(count: Int, seed: UInt64) { self.count = max(0, count); self.seed = seed }

    /// The permutation of 0..<count used in `epoch` (a Fisher–Yates shuffle seeded by seed and epoch).
    public func order(epoch: Int) -> [Int] {
        var order = Array(0..<count)
        var random = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0xD1B5_4A32_D192_ED03))
        _ = random.next()
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) {
                order.swapAt(i, random.nextInt(below: i + 1))
            }
        }
        return order
    }

    /// `order(epoch:)` cut into batches of `batchSize`; the last, shorter batch is dropped when `dropLast`.
    public func batches(epoch: Int, batchSize: Int, dropLast: Bool = false) -> [ArraySlice<Int>] {
        let order = order(epoch: epoch)
        let size = max(1, batchSize)
        var result: [ArraySlice<Int>] = []
        var start = 0
        while start < order.count {
            let end = min(order.count, start + size)
            if end - start == size || !dropLast { result.append(order[start..<end]) }
            start = end
        }
        return result
    }
}
