import Foundation

/// A labelled image set held in memory: images NHWC as raw pixel values 0...255 in `Float`.
///
/// Pixel values are NOT scaled to 0...1: loaders store the file's byte values unchanged (as
/// floats), and the `Preprocessor` (standardisation or GCN + ZCA) maps them to network inputs.
public struct Dataset: Sendable {
    /// Pixels, NHWC: image n, row y, column x, channel c at `((n * height + y) * width + x) * channels + c`.
    public var images: [Float]
    /// One class index per image, each in 0..<classes.
    public var labels: [Int32]
    /// Number of images.
    public var count: Int
    /// Image height in pixels.
    public var height: Int
    /// Image width in pixels.
    public var width: Int
    /// Channels per pixel (3 for CIFAR, 1 for MNIST).
    public var channels: Int
    /// Number of classes.
    public var classes: Int
    /// One name per class, in label order.
    public var classNames: [String]

    /// Floats per image: height × width × channels.
    public var imageSize: Int { height * width * channels }

    /// Creates a dataset, checking that every size agrees and every label is in range.
    public init(images: [Float], labels: [Int32], count: Int, height: Int, width: Int, channels: Int,
                classes: Int, classNames: [String]? = nil) throws {
        guard count >= 0, height > 0, width > 0, channels > 0, classes > 0 else {
            throw TrainingError("dataset: invalid shape count \(count), \(height)×\(width)×\(channels), \(classes) classes")
        }
        let (perImage, overflow1) = height.multipliedReportingOverflow(by: width)
        let (perImage2, overflow2) = perImage.multipliedReportingOverflow(by: channels)
        let (total, overflow3) = perImage2.multipliedReportingOverflow(by: count)
        guard !overflow1, !overflow2, !overflow3, images.count == total else {
            throw TrainingError("dataset: \(images.count) pixel values, expected \(count)×\(height)×\(width)×\(channels) = \(count * height * width * channels)")
        }
        guard labels.count == count else {
            throw TrainingError("dataset: \(labels.count) labels for \(count) images")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
            throw TrainingError("dataset: image \(bad) has label \(labels[bad]), expected 0...\(classes - 1)")
        }
        let names = classNames ?? (0..<classes).map { "class\($0)" }
        guard names.count == classes else {
            throw TrainingError("dataset: \(names.count) class names for \(classes) classes")
        }
        self.images = images; self.labels = labels; self.count = count
        self.height = height; self.width = width; self.channels = channels
        self.classes = classes; self.classNames = names
    }

    /// How many images each class has, indexed by label (labels outside 0..<classes, possible
    /// only after editing `labels`, are not counted).
    public func classCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: max(0, classes))
        for label in labels.prefix(count) where label >= 0 && Int(label) < counts.count { counts[Int(label)] += 1 }
        return counts
    }

    /// The first `n` images (all of them when n ≥ count).
    public func prefix(_ n: Int) -> Dataset {
        var copy = self
        let kept = max(0, min(n, count))
        copy.count = kept
        copy.images = Array(images[0..<(kept * imageSize)])
        copy.labels = Array(labels[0..<kept])
        return copy
    }

    /// Copies the images and labels at `indices` into caller-owned batch buffers (NHWC, one label each).
    /// Throws when an index is out of range; allocates nothing.
    public func gatherBatch<Indices: Collection>(indices: Indices, images batchImages: UnsafeMutablePointer<Float>,
                                                  labels batchLabels: UnsafeMutablePointer<Int32>) throws where Indices.Element == Int {
        let size = imageSize
        guard images.count >= count * size, labels.count >= count else {
            throw TrainingError("dataset: \(images.count) pixel values and \(labels.count) labels do not hold \(count) images of \(size)")
        }
        try images.withUnsafeBufferPointer { source in
            var slot = 0
            for index in indices {
                guard index >= 0 && index < count else {
                    throw TrainingError("dataset: batch index \(index) out of range 0..<\(count)")
                }
                (batchImages + slot * size).update(from: source.baseAddress! + index * size, count: size)
                batchLabels[slot] = labels[index]
                slot += 1
            }
        }
    }
}

/// The dataset file formats `dsl` reads.
public enum DatasetFormat: String, CaseIterable, Sendable {
    /// CIFAR-10 binary: `data_batch_1.bin` … `data_batch_5.bin` (any subset) + `test_batch.bin`.
    case cifar10
    /// CIFAR-100 binary: `train.bin` + `test.bin`.
    case cifar100
    /// MNIST IDX: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`.
    case mnist

    /// Parses a command-line name (`cifar10`, `cifar100`, `mnist`; case-insensitive, `-` ignored).
    public init(parsing text: String) throws {
        let key = text.lowercased().replacingOccurrences(of: "-", with: "")
        guard let format = DatasetFormat(rawValue: key) else {
            throw TrainingError("unknown dataset format '\(text)', expected one of: \(DatasetFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = format
    }
}

/// Which CIFAR-100 label a record's class comes from.
public enum CIFAR100Labels: String, CaseIterable, Sendable {
    /// The 100 fine classes.
    case fine
    /// The 20 coarse superclasses.
    case coarse

    /// Parses `fine` or `coarse`.
    public init(parsing text: String) throws {
        guard let value = CIFAR100Labels(rawValue: text.lowercased()) else {
            throw TrainingError("unknown CIFAR-100 label kind '\(text)', expected fine or coarse")
        }
        self = value
    }
}

// MARK: - File names

private let cifar10TrainFiles = (1...5).map { "data_batch_\($0).bin" }
private let cifar10TestFile = "test_batch.bin"
private let cifar100Files = ["train.bin", "test.bin"]
private let mnistFiles = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

/// The CIFAR-10 class names, used when `batches.meta.txt` is absent.
public let cifar10ClassNames = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

private func join(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
}

private func checkDirectory(_ directory: String) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
        throw TrainingError("\(directory): dataset directory not found")
    }
    guard isDirectory.boolValue else { throw TrainingError("\(directory): is a file, expected a dataset directory") }
}

/// The MNIST file for `name`, accepting the common dotted spelling (`train-images.idx3-ubyte`).
private func mnistPath(_ directory: String, _ name: String) -> String? {
    let dotted = name.replacingOccurrences(of: "-idx", with: ".idx")
    for candidate in [name, dotted] where isRegularFile(join(directory, candidate)) { return join(directory, candidate) }
    return nil
}

// MARK: - Detection and loading

/// Decides a directory's dataset format from the files present; throws listing what was expected.
public func detectDatasetFormat(directory: String) throws -> DatasetFormat {
    try checkDirectory(directory)
    var found: [DatasetFormat] = []
    if (cifar10TrainFiles + [cifar10TestFile]).contains(where: { isRegularFile(join(directory, $0)) }) { found.append(.cifar10) }
    if cifar100Files.contains(where: { isRegularFile(join(directory, $0)) }) { found.append(.cifar100) }
    if mnistFiles.contains(where: { mnistPath(directory, $0) != nil || isRegularFile(join(directory, $0 + ".gz")) }) { found.append(.mnist) }
    if found.count == 1 { return found[0] }
    if found.count > 1 {
        throw TrainingError("\(directory): files of several dataset formats (\(found.map(\.rawValue).joined(separator: ", "))); choose one with --dataset")
    }
    throw TrainingError("""
        \(directory): no known dataset files found. Expected one of:
          cifar10:  data_batch_1.bin … data_batch_5.bin (any subset) and test_batch.bin, optional batches.meta.txt
          cifar100: train.bin and test.bin, optional fine_label_names.txt / coarse_label_names.txt
          mnist:    train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte
        """)
}

/// Loads a dataset directory's training and test sets; `format` nil means detect it from the files.
public func loadDataset(directory: String, format: DatasetFormat? = nil,
                        labels: CIFAR100Labels = .fine) throws -> (train: Dataset, test: Dataset) {
    let chosen = try format ?? detectDatasetFormat(directory: directory)
    switch chosen {
    case .cifar10: return try loadCIFAR10(directory: directory)
    case .cifar100: return try loadCIFAR100(directory: directory, labels: labels)
    case .mnist: return try loadMNIST(directory: directory)
    }
}

/// Reads class names, one a line (blank lines ignored); nil when the file is absent.
private func readClassNames(_ path: String, expected: Int) throws -> [String]? {
    guard isRegularFile(path) else { return nil }
    let bytes = try readFileBytes(path)
    guard let text = String(bytes: bytes, encoding: .utf8) else {
        throw TrainingError("\(path): not valid UTF-8 text")
    }
    let names = text.split(whereSeparator: \.isNewline)
        .map { $0.trimmingCharacters(in: .whitespaces) }
        .filter { !$0.isEmpty }
    guard names.count == expected else {
        throw TrainingError("\(path): \(names.count) class names, expected \(expected) (one a line)")
    }
    return names
}

/// Converts CIFAR records (label bytes, then 3 planes of 32×32) to NHWC floats and labels.
/// `labelOffset` picks which label byte of the `labelBytes` is the class; labels must be < `classes`.
private func decodeCIFAR(_ path: String, labelBytes: Int, labelOffset: Int, classes: Int,
                         images: inout [Float], labels: inout [Int32]) throws {
    let bytes = try readFileBytes(path)
    let recordSize = labelBytes + 3072
    guard !bytes.isEmpty else { throw TrainingError("\(path): file is empty, expected \(recordSize)-byte records") }
    guard bytes.count % recordSize == 0 else {
        throw TrainingError("\(path): size \(bytes.count) bytes is not a multiple of the \(recordSize)-byte record (\(bytes.count / recordSize) whole records and \(bytes.count % recordSize) bytes left over; truncated?)")
    }
    let records = bytes.count / recordSize
    let firstImage = images.count
    let firstLabel = labels.count
    images.append(contentsOf: repeatElement(0, count: records * 3072))
    labels.append(contentsOf: repeatElement(0, count: records))
    var badRecord = -1, badLabel = 0
    bytes.withUnsafeBufferPointer { source in
        images.withUnsafeMutableBufferPointer { imageBuffer in
            labels.withUnsafeMutableBufferPointer { labelBuffer in
                let input = source.baseAddress!
                let output = imageBuffer.baseAddress! + firstImage
                for record in 0..<records {
                    let base = input + record * recordSize
                    let label = Int(base[labelOffset])
                    if label >= classes && badRecord < 0 { badRecord = record; badLabel = label }
                    labelBuffer[firstLabel + record] = Int32(label)
                    let red = base + labelBytes, green = red + 1024, blue = green + 1024
                    let pixels = output + record * 3072
                    for p in 0..<1024 {
                        pixels[3 * p] = Float(red[p])
                        pixels[3 * p + 1] = Float(green[p])
                        pixels[3 * p + 2] = Float(blue[p])
                    }
                }
            }
        }
    }
    if badRecord >= 0 {
        throw TrainingError("\(path): record \(badRecord) has label \(badLabel), expected 0...\(classes - 1)")
    }
}

/// Loads CIFAR-10 binary batches: any of `data_batch_1…5.bin` for training and `test_batch.bin`.
public func loadCIFAR10(directory: String) throws -> (train: Dataset, test: Dataset) {
    try checkDirectory(directory)
    let trainPaths = cifar10TrainFiles.map { join(directory, $0) }.filter(isRegularFile)
    guard !trainPaths.isEmpty else {
        throw TrainingError("\(directory): no CIFAR-10 training batch found, expected at least one of data_batch_1.bin … data_batch_5.bin")
    }
    let testPath = join(directory, cifar10TestFile)
    guard isRegularFile(testPath) else { throw TrainingError("\(testPath): file not found (the CIFAR-10 test batch)") }
    let names = try readClassNames(join(directory, "batches.meta.txt"), expected: 10) ?? cifar10ClassNames
    var trainImages: [Float] = [], trainLabels: [Int32] = []
    for path in trainPaths {
        try decodeCIFAR(path, labelBytes: 1, labelOffset: 0, classes: 10, images: &trainImages, labels: &trainLabels)
    }
    var testImages: [Float] = [], testLabels: [Int32] = []
    try decodeCIFAR(testPath, labelBytes: 1, labelOffset: 0, classes: 10, images: &testImages, labels: &testLabels)
    return (try Dataset(images: trainImages, labels: trainLabels, count: trainLabels.count, height: 32, width: 32, channels: 3, classes: 10, classNames: names),
            try Dataset(images: testImages, labels: testLabels, count: testLabels.count, height: 32, width: 32, channels: 3, classes: 10, classNames: names))
}

/// Loads CIFAR-100 binary files `train.bin` and `test.bin`, with fine (100) or coarse (20) labels.
public func loadCIFAR100(directory: String, labels kind: CIFAR100Labels = .fine) throws -> (train: Dataset, test: Dataset) {
    try checkDirectory(directory)
    let classes = kind == .fine ? 100 : 20
    let names = try readClassNames(join(directory, kind == .fine ? "fine_label_names.txt" : "coarse_label_names.txt"), expected: classes)
    var sets: [Dataset] = []
    for file in cifar100Files {
        let path = join(directory, file)
        guard isRegularFile(path) else { throw TrainingError("\(path): file not found (CIFAR-100 needs train.bin and test.bin)") }
        var images: [Float] = [], labels: [Int32] = []
        try decodeCIFAR(path, labelBytes: 2, labelOffset: kind == .fine ? 1 : 0, classes: classes, images: &images, labels: &labels)
        sets.append(try Dataset(images: images, labels: labels, count: labels.count, height: 32, width: 32, channels: 3, classes: classes, classNames: names))
    }
    return (sets[0], sets[1])
}

@inline(__always) private func bigEndian32(_ bytes: [UInt8], _ offset: Int) -> Int {
    Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
}

/// Reads one MNIST IDX image/label file pair, validating magic numbers, counts and sizes.
private func readIDXPair(imagesPath: String, labelsPath: String) throws -> (images: [Float], labels: [Int32], count: Int, rows: Int, columns: Int) {
    let imageBytes = try readFileBytes(imagesPath)
    guard imageBytes.count >= 16 else {
        throw TrainingError("\(imagesPath): \(imageBytes.count) bytes, too short for the 16-byte IDX image header")
    }
    let imageMagic = bigEndian32(imageBytes, 0)
    guard imageMagic == 0x0000_0803 else {
        throw TrainingError("\(imagesPath): magic number 0x\(String(imageMagic, radix: 16, uppercase: true)), expected 0x00000803 (IDX unsigned-byte images)")
    }
    let count = bigEndian32(imageBytes, 4), rows = bigEndian32(imageBytes, 8), columns = bigEndian32(imageBytes, 12)
    guard rows > 0, columns > 0, rows <= 4096, columns <= 4096 else {
        throw TrainingError("\(imagesPath): image size \(rows)×\(columns) is not plausible")
    }
    let expectedImageBytes = 16 + count * rows * columns
    guard imageBytes.count == expectedImageBytes else {
        throw TrainingError("\(imagesPath): header says \(count) images of \(rows)×\(columns) (\(expectedImageBytes) bytes) but the file has \(imageBytes.count) bytes")
    }
    let labelBytes = try readFileBytes(labelsPath)
    guard labelBytes.count >= 8 else {
        throw TrainingError("\(labelsPath): \(labelBytes.count) bytes, too short for the 8-byte IDX label header")
    }
    let labelMagic = bigEndian32(labelBytes, 0)
    guard labelMagic == 0x0000_0801 else {
        throw TrainingError("\(labelsPath): magic number 0x\(String(labelMagic, radix: 16, uppercase: true)), expected 0x00000801 (IDX unsigned-byte labels)")
    }
    let labelCount = bigEndian32(labelBytes, 4)
    guard labelBytes.count == 8 + labelCount else {
        throw TrainingError("\(labelsPath): header says \(labelCount) labels (\(8 + labelCount) bytes) but the file has \(labelBytes.count) bytes")
    }
    guard labelCount == count else {
        throw TrainingError("\(labelsPath): \(labelCount) labels but \(imagesPath) has \(count) images")
    }
    if let bad = labelBytes[8...].firstIndex(where: { $0 >= 10 }) {
        throw TrainingError("\(labelsPath): label \(bad - 8) is \(labelBytes[bad]), expected 0...9")
    }
    let images = imageBytes[16...].map { Float($0) }
    let labels = labelBytes[8...].map { Int32($0) }
    return (images, labels, count, rows, columns)
}

/// Loads MNIST IDX files (uncompressed; `.gz` files must be decompressed first with gunzip).
public func loadMNIST(directory: String) throws -> (train: Dataset, test: Dataset) {
    try checkDirectory(directory)
    var paths: [String] = []
    for name in mnistFiles {
        if let path = mnistPath(directory, name) { paths.append(path); continue }
        if isRegularFile(join(directory, name + ".gz")) {
            throw TrainingError("\(join(directory, name + ".gz")): gzip-compressed MNIST files must be decompressed first (gunzip \(join(directory, "*.gz")))")
        }
        throw TrainingError("\(join(directory, name)): file not found (MNIST needs \(mnistFiles.joined(separator: ", ")))")
    }
    let train = try readIDXPair(imagesPath: paths[0], labelsPath: paths[1])
    let test = try readIDXPair(imagesPath: paths[2], labelsPath: paths[3])
    guard train.rows == test.rows, train.columns == test.columns else {
        throw TrainingError("\(paths[2]): test images are \(test.rows)×\(test.columns) but training images (\(paths[0])) are \(train.rows)×\(train.columns)")
    }
    let names = (0..<10).map(String.init)
    return (try Dataset(images: train.images, labels: train.labels, count: train.count, height: train.rows, width: train.columns, channels: 1, classes: 10, classNames: names),
            try Dataset(images: test.images, labels: test.labels, count: test.count, height: test.rows, width: test.columns, channels: 1, classes: 10, classNames: names))
}
