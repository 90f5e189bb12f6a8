/// How translation fills the pixels a shift uncovers (`dsl train --pad-mode`).
public enum PadMode: String, CaseIterable, Sendable {
    /// Zeros, in whatever space the batch is in (after standardisation: the training mean).
    case zero
    /// The image mirrored at its border without repeating the edge pixel, as
    /// `torch.nn.functional.pad(mode: 'reflect')` and `np.pad(mode: 'reflect')`: padded index
    /// −k shows pixel k, index H−1+k shows pixel H−1−k. Needs padding < height and width.
    case reflect
}

/// How images are mirrored left–right during training (`dsl train --flip`).
public enum FlipMode: String, CaseIterable, Sendable {
    /// Each image of each step flipped with probability ½.
    case random
    /// airbench's alternating flip: each image gets one seeded coin toss for the whole run
    /// (`alternateFlipBases`), and in every odd epoch (0-based) all images are flipped on top
    /// of it, so every image is seen both ways in any two consecutive epochs.
    case alternate
    /// No flips.
    case off
}

/// The per-image flips of `FlipMode.alternate`: element i is 1 when image i (in dataset
/// order) starts flipped. One seeded coin per image, independent of the epoch and batch size.
public func alternateFlipBases(count: Int, seed: UInt64) -> [UInt8] {
    (0..<max(0, count)).map { i in
        var random = SplitMix64(seed: seed ^ (UInt64(i) &* 0x9E37_79B9_7F4A_7C15) ^ 0xF11F_F11F)
        return random.nextBool() ? 1 : 0
    }
}

/// Random horizontal flips and translations of NHWC image batches, reproducible from a seed.
///
/// Translation is "pad by `padding` pixels on every side, then crop a random window of the
/// original size": each image moves by dy, dx ∈ −padding...padding (uniform, independent per
/// axis and image). The padding is zeros (`PadMode.zero`), inserted in whatever space the
/// batch is in (after standardisation or ZCA that is the training mean), or the mirrored
/// border (`PadMode.reflect`, airbench's pad-and-crop). A flip is applied before the crop; the
/// shifts being symmetric, flipping after the crop gives the same distribution.
public struct Augmenter: CustomStringConvertible {
    /// Flip each image left–right with probability ½ (when no per-image flips are given).
    public var horizontalFlip: Bool
    /// Maximum translation in pixels (0 disables translation).
    public var padding: Int
    /// What the uncovered pixels show.
    public var padMode: PadMode
    /// The generator all random choices come from.
    public var random: SplitMix64

    /// Creates an augmenter; `seed` fixes every choice it will make.
    public init(horizontalFlip: Bool, padding: Int, padMode: PadMode = .zero, seed: UInt64) throws {
        guard padding >= 0 else { throw TrainingError("augmentation: padding must be ≥ 0, got \(padding)") }
        self.horizontalFlip = horizontalFlip; self.padding = padding; self.padMode = padMode
        random = SplitMix64(seed: seed)
    }

    /// Whether this augmenter changes anything.
    public var isIdentity: Bool { !horizontalFlip && padding == 0 }

    /// A short description such as "flip + translate ±4 px" for logs.
    public var description: String {
        var parts: [String] = []
        if horizontalFlip { parts.append("horizontal flip") }
        if padding > 0 { parts.append("translate ±\(padding) px (\(padMode == .reflect ? "reflect" : "zero") pad + random crop)") }
        return parts.isEmpty ? "no augmentation" : parts.joined(separator: " + ")
    }

    /// Augments `count` images of height×width×channels in place; `scratch` must hold one image
    /// (height·width·channels floats) and is the only memory used, so nothing is allocated per image.
    /// `flips`, when given, says for each image whether it is flipped (1) and replaces the
    /// random flips; the shifts are drawn as without it. With `PadMode.reflect` the padding
    /// must be below the height and the width (checked: nothing is done otherwise).
    public mutating func augment(images: UnsafeMutablePointer<Float>, count: Int, height: Int, width: Int, channels: Int,
                                 scratch: UnsafeMutablePointer<Float>, flips: UnsafePointer<UInt8>? = nil) {
        if (isIdentity && flips == nil) || count <= 0 || height <= 0 || width <= 0 || channels <= 0 { return }
        if padMode == .reflect && (padding >= height || padding >= width) { return }
        let size = height * width * channels
        let rowSize = width * channels
        let reflect = padMode == .reflect
        for n in 0..<count {
            let randomFlip = horizontalFlip && random.nextBool()
            let flip = flips.map { $0[n] != 0 } ?? randomFlip
            let dy = padding > 0 ? random.nextInt(below: 2 * padding + 1) - padding : 0
            let dx = padding > 0 ? random.nextInt(below: 2 * padding + 1) - padding : 0
            if !flip && dx == 0 && dy == 0 { continue }
            let image = images + n * size
            scratch.update(from: image, count: size)
            for y in 0..<height {
                let out = image + y * rowSize
                var sourceY = y + dy
                if sourceY < 0 || sourceY >= height {
                    if !reflect {
                        out.update(repeating: 0, count: rowSize)
                        continue
                    }
                    sourceY = sourceY < 0 ? -sourceY : 2 * (height - 1) - sourceY
                }
                let sourceRow = scratch + sourceY * rowSize
                for x in 0..<width {
                    // Output pixel x shows padded-image column x + dx of the (possibly flipped) image.
                    var shifted = x + dx
                    let pixel = out + x * channels
                    if shifted < 0 || shifted >= width {
                        if !reflect {
                            pixel.update(repeating: 0, count: channels)
                            continue
                        }
                        shifted = shifted < 0 ? -shifted : 2 * (width - 1) - shifted
                    }
                    let sourceX = flip ? width - 1 - shifted : shifted
                    pixel.update(from: sourceRow + sourceX * channels, count: channels)
                }
            }
        }
    }

    /// Convenience for arrays: augments a whole NHWC batch held in `images`.
    public mutating func augment(_ images: inout [Float], count: Int, height: Int, width: Int, channels: Int, flips: [UInt8]? = nil) throws {
        guard images.count == count * height * width * channels else {
            throw TrainingError("augmentation: batch holds \(images.count) floats, expected \(count)×\(height)×\(width)×\(channels)")
        }
        if let flips, flips.count != count { throw TrainingError("augmentation: \(flips.count) flips for \(count) images") }
        if padMode == .reflect && (padding >= height || padding >= width) {
            throw TrainingError("augmentation: reflect padding of \(padding) px needs images larger than \(padding)×\(padding), got \(height)×\(width)")
        }
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, height * width * channels))
        defer { scratch.deallocate() }
        images.withUnsafeMutableBufferPointer { buffer in
            if let flips {
                flips.withUnsafeBufferPointer { f in
                    augment(images: buffer.baseAddress!, count: count, height: height, width: width, channels: channels, scratch: scratch, flips: f.baseAddress!)
                }
            } else {
                augment(images: buffer.baseAddress!, count: count, height: height, width: width, channels: channels, scratch: scratch)
            }
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
