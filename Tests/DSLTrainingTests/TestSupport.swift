import Foundation
import XCTest
@testable import DSLTraining

/// The repository root, found from this file's path (Tests/DSLTrainingTests/TestSupport.swift).
let repositoryRoot: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}()

/// `/work/shared/data` seen from the worktree: `<repo>/../shared/data`.
let sharedDataDirectory: String = {
    URL(fileURLWithPath: repositoryRoot).deletingLastPathComponent().appendingPathComponent("shared/data").path
}()

/// A shared data directory, or an XCTSkip when it is absent on this machine.
func sharedData(_ name: String) throws -> String {
    let path = sharedDataDirectory + "/" + name
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw XCTSkip("shared data \(path) not present")
    }
    return path
}

/// A fresh empty temporary directory, removed when the test ends.
func makeTemporaryDirectory(_ test: XCTestCase) throws -> String {
    let path = NSTemporaryDirectory() + "dsltraining-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// Writes raw bytes to a file (non-atomically; test fixtures only).
func writeBytes(_ bytes: [UInt8], _ path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Asserts that `body` throws a `TrainingError` whose message contains every fragment.
func assertThrowsMessage<T>(_ body: @autoclosure () throws -> T, contains fragments: String...,
                            file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch let error as TrainingError {
        for fragment in fragments where !error.message.contains(fragment) {
            XCTFail("error '\(error.message)' does not contain '\(fragment)'", file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error type \(error)", file: file, line: line)
    }
}

/// `dataset`'s images cropped to their top-left side×side pixels (8×8: 192 features, which keeps
/// ZCA fast in tests).
func croppedImages(_ dataset: Dataset, side: Int = 8) throws -> Dataset {
    var images = [Float](); images.reserveCapacity(dataset.count * side * side * dataset.channels)
    let rowFloats = dataset.width * dataset.channels
    for n in 0..<dataset.count {
        for y in 0..<side {
            let start = (n * dataset.height + y) * rowFloats
            images.append(contentsOf: dataset.images[start..<(start + side * dataset.channels)])
        }
    }
    return try Dataset(images: images, labels: dataset.labels, count: dataset.count, height: side, width: side,
                       channels: dataset.channels, classes: dataset.classes, classNames: dataset.classNames)
}
