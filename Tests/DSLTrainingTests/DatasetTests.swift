import Foundation
import XCTest
@testable import DSLTraining

final class DatasetTests: XCTestCase {
    /// A synthetic CIFAR-10 record: label, then planes R = index, G = 2·index, B = 255 − index (mod 256).
    private func cifarRecord(label: UInt8, extraLabel: UInt8? = nil) -> [UInt8] {
        var record: [UInt8] = extraLabel.map { [$0, label] } ?? [label]
        record += (0..<1024).map { UInt8($0 & 255) }
        record += (0..<1024).map { UInt8((2 * $0) & 255) }
        record += (0..<1024).map { UInt8(255 - ($0 & 255)) }
        return record
    }

    func testCIFAR10PlanarToNHWC() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeBytes(cifarRecord(label: 3) + cifarRecord(label: 9), directory + "/data_batch_2.bin")
        try writeBytes(cifarRecord(label: 0), directory + "/test_batch.bin")
        XCTAssertEqual(try detectDatasetFormat(directory: directory), .cifar10)
        let (train, test) = try loadDataset(directory: directory)
        XCTAssertEqual(train.count, 2); XCTAssertEqual(test.count, 1)
        XCTAssertEqual(train.labels, [3, 9])
        XCTAssertEqual(train.classNames, cifar10ClassNames)
        XCTAssertEqual([train.height, train.width, train.channels], [32, 32, 3])
        // Pixel (y=1, x=2) is plane index 34.
        let pixel = (1 * 32 + 2) * 3
        XCTAssertEqual(Array(train.images[pixel..<(pixel + 3)]), [34, 68, 221])
        XCTAssertEqual(Array(train.images[(3072 + pixel)..<(3072 + pixel + 3)]), [34, 68, 221])
    }

    func testRealCIFAR10() throws {
        let directory = try sharedData("cifar-10-batches-bin")
        let (train, test) = try loadDataset(directory: directory)
        XCTAssertEqual(train.count, 10_000); XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(train.classNames, cifar10ClassNames)
        XCTAssertEqual(train.classCounts().reduce(0, +), 10_000)
        XCTAssertTrue(train.classCounts().allSatisfy { $0 > 800 })
        let firstThousand = train.images[0..<(1000 * 3072)]  // debug-built test code: keep the scan short
        let mean = firstThousand.reduce(0, +) / Float(firstThousand.count)
        XCTAssertGreaterThan(mean, 100); XCTAssertLessThan(mean, 140)  // CIFAR's mean pixel is about 120
        XCTAssertEqual(firstThousand.max(), 255); XCTAssertEqual(firstThousand.min(), 0)
    }

    func testShippedSample() throws {
        let (train, test) = try loadDataset(directory: repositoryRoot + "/data/cifar10-sample", format: .cifar10)
        XCTAssertEqual(train.count, 1000); XCTAssertEqual(test.count, 500)
        XCTAssertEqual(train.classCounts(), [91, 87, 86, 120, 122, 98, 102, 95, 93, 106])
        XCTAssertEqual(test.classCounts(), [57, 43, 55, 50, 41, 46, 58, 47, 47, 56])
    }

    func testRealMNIST() throws {
        let directory = try sharedData("mnist")
        XCTAssertEqual(try detectDatasetFormat(directory: directory), .mnist)
        let (train, test) = try loadDataset(directory: directory)
        XCTAssertEqual(train.count, 4000); XCTAssertEqual(test.count, 1000)
        XCTAssertEqual([train.height, train.width, train.channels], [28, 28, 1])
        XCTAssertTrue(train.classCounts().allSatisfy { $0 > 300 })
    }

    func testCIFAR100FineAndCoarse() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeBytes(cifarRecord(label: 42, extraLabel: 7) + cifarRecord(label: 99, extraLabel: 19), directory + "/train.bin")
        try writeBytes(cifarRecord(label: 5, extraLabel: 1), directory + "/test.bin")
        try writeBytes(Array((0..<20).map { "coarse\($0)\n" }.joined().utf8), directory + "/coarse_label_names.txt")
        XCTAssertEqual(try detectDatasetFormat(directory: directory), .cifar100)
        let fine = try loadDataset(directory: directory, labels: .fine)
        XCTAssertEqual(fine.train.labels, [42, 99]); XCTAssertEqual(fine.train.classes, 100)
        XCTAssertEqual(fine.train.classNames[42], "class42")
        let coarse = try loadDataset(directory: directory, format: .cifar100, labels: .coarse)
        XCTAssertEqual(coarse.train.labels, [7, 19]); XCTAssertEqual(coarse.test.labels, [1])
        XCTAssertEqual(coarse.train.classNames[19], "coarse19")
        XCTAssertEqual(Array(coarse.train.images[0..<6]), [0, 0, 255, 1, 2, 254])

        try writeBytes(cifarRecord(label: 100, extraLabel: 1), directory + "/test.bin")
        assertThrowsMessage(try loadDataset(directory: directory), contains: "test.bin", "record 0 has label 100", "0...99")
        try writeBytes(cifarRecord(label: 1, extraLabel: 20), directory + "/test.bin")
        assertThrowsMessage(try loadDataset(directory: directory, labels: .coarse), contains: "test.bin", "label 20", "0...19")
    }

    func testCorruptedCIFAR10() throws {
        let directory = try makeTemporaryDirectory(self)
        let batch = directory + "/data_batch_1.bin", test = directory + "/test_batch.bin"
        try writeBytes(cifarRecord(label: 1), test)
        // Truncated file.
        try writeBytes(cifarRecord(label: 1) + Array(cifarRecord(label: 2).prefix(100)), batch)
        assertThrowsMessage(try loadCIFAR10(directory: directory), contains: "data_batch_1.bin", "3173", "not a multiple of the 3073-byte record")
        // Label out of range.
        try writeBytes(cifarRecord(label: 1) + cifarRecord(label: 10), batch)
        assertThrowsMessage(try loadCIFAR10(directory: directory), contains: "data_batch_1.bin", "record 1 has label 10")
        // Empty file.
        try writeBytes([], batch)
        assertThrowsMessage(try loadCIFAR10(directory: directory), contains: "data_batch_1.bin", "empty")
        // Missing test batch.
        try writeBytes(cifarRecord(label: 1), batch)
        try FileManager.default.removeItem(atPath: test)
        assertThrowsMessage(try loadCIFAR10(directory: directory), contains: "test_batch.bin", "not found")
        // Wrong number of class names.
        try writeBytes(cifarRecord(label: 1), test)
        try writeBytes(Array("a\nb\n".utf8), directory + "/batches.meta.txt")
        assertThrowsMessage(try loadCIFAR10(directory: directory), contains: "batches.meta.txt", "2 class names, expected 10")
    }

    /// IDX files: images header (magic, count, rows, cols) + pixels; labels header (magic, count) + labels.
    private func idxImages(count: Int, rows: Int = 2, columns: Int = 3, magic: UInt32 = 0x803) -> [UInt8] {
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }
        return be(magic) + be(UInt32(count)) + be(UInt32(rows)) + be(UInt32(columns)) + (0..<(count * rows * columns)).map { UInt8($0 & 255) }
    }
    private func idxLabels(_ labels: [UInt8], magic: UInt32 = 0x801) -> [UInt8] {
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }
        return be(magic) + be(UInt32(labels.count)) + labels
    }

    func testCorruptedMNIST() throws {
        let directory = try makeTemporaryDirectory(self)
        func write(trainImages: [UInt8]? = nil, trainLabels: [UInt8]? = nil) throws {
            try writeBytes(trainImages ?? idxImages(count: 3), directory + "/train-images-idx3-ubyte")
            try writeBytes(trainLabels ?? idxLabels([1, 2, 3]), directory + "/train-labels-idx1-ubyte")
            try writeBytes(idxImages(count: 1), directory + "/t10k-images-idx3-ubyte")
            try writeBytes(idxLabels([9]), directory + "/t10k-labels-idx1-ubyte")
        }
        try write()
        let (train, test) = try loadMNIST(directory: directory)
        XCTAssertEqual(train.count, 3); XCTAssertEqual(test.labels, [9])
        XCTAssertEqual([train.height, train.width, train.channels], [2, 3, 1])
        XCTAssertEqual(Array(train.images[6..<9]), [6, 7, 8])

        try write(trainImages: idxImages(count: 3, magic: 0x801))
        assertThrowsMessage(try loadMNIST(directory: directory), contains: "train-images-idx3-ubyte", "magic number 0x801", "0x00000803")
        try write(trainLabels: idxLabels([1, 2, 3], magic: 0x803))
        assertThrowsMessage(try loadMNIST(directory: directory), contains: "train-labels-idx1-ubyte", "0x00000801")
        try write(trainImages: Array(idxImages(count: 3).dropLast(2)))
        assertThrowsMessage(try loadMNIST(directory: directory), contains: "train-images-idx3-ubyte", "3 images", "file has 32 bytes")
        try write(trainLabels: idxLabels([1, 2]))
        assertThrowsMessage(try loadMNIST(directory: directory), contains: "2 labels", "has 3 images")
        try write(trainLabels: idxLabels([1, 12, 3]))
        assertThrowsMessage(try loadMNIST(directory: directory), contains: "train-labels-idx1-ubyte", "label 1 is 12")
        try write(trainImages: [0, 0, 8])
        assertThrowsMessage(try loadMNIST(directory: directory), contains: "too short")

        // Only gzip files present.
        let gz = try makeTemporaryDirectory(self)
        for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            try writeBytes([0x1f, 0x8b], gz + "/" + name + ".gz")
        }
        XCTAssertEqual(try detectDatasetFormat(directory: gz), .mnist)
        assertThrowsMessage(try loadDataset(directory: gz), contains: "train-images-idx3-ubyte.gz", "decompressed first")
    }

    func testDetectionErrors() throws {
        let empty = try makeTemporaryDirectory(self)
        assertThrowsMessage(try detectDatasetFormat(directory: empty), contains: empty, "no known dataset files", "data_batch_1.bin", "train.bin", "t10k-images-idx3-ubyte")
        assertThrowsMessage(try loadDataset(directory: empty), contains: "no known dataset files")
        assertThrowsMessage(try loadDataset(directory: empty + "/missing"), contains: "missing", "not found")
        assertThrowsMessage(try loadCIFAR10(directory: empty), contains: "no CIFAR-10 training batch")
        try writeBytes([1], empty + "/test_batch.bin")
        try writeBytes([1], empty + "/train.bin")
        assertThrowsMessage(try detectDatasetFormat(directory: empty), contains: "several dataset formats", "cifar10", "cifar100")
        XCTAssertEqual(try DatasetFormat(parsing: "CIFAR-10"), .cifar10)
        assertThrowsMessage(try DatasetFormat(parsing: "svhn"), contains: "svhn", "cifar10, cifar100, mnist")
    }

    func testGatherBatch() throws {
        let data = try Dataset(images: (0..<12).map(Float.init), labels: [0, 1, 2], count: 3, height: 1, width: 2, channels: 2, classes: 3)
        var images = [Float](repeating: -1, count: 8), labels = [Int32](repeating: -1, count: 2)
        try data.gatherBatch(indices: [2, 0], images: &images, labels: &labels)
        XCTAssertEqual(images, [8, 9, 10, 11, 0, 1, 2, 3]); XCTAssertEqual(labels, [2, 0])
        assertThrowsMessage(try data.gatherBatch(indices: [3], images: &images, labels: &labels), contains: "index 3 out of range")
        assertThrowsMessage(try Dataset(images: [1], labels: [5], count: 1, height: 1, width: 1, channels: 1, classes: 2), contains: "label 5")
    }
}
