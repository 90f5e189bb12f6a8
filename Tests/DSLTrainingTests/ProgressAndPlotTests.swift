import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import DSLTraining

final class ProgressTests: XCTestCase {
    func testFormatting() {
        XCTAssertEqual(ProgressFormat.duration(0), "0s")
        XCTAssertEqual(ProgressFormat.duration(59.4), "59s")
        XCTAssertEqual(ProgressFormat.duration(187), "3m07s")
        XCTAssertEqual(ProgressFormat.duration(7530), "2h05m")
        XCTAssertEqual(ProgressFormat.duration(.nan), "--")
        XCTAssertEqual(ProgressFormat.duration(-1), "--")
        XCTAssertEqual(ProgressFormat.duration(1e300), ">30y")
        XCTAssertEqual(ProgressFormat.bar(fraction: 0.5, width: 10), "[#####.....]")
        XCTAssertEqual(ProgressFormat.bar(fraction: 2, width: 4), "[####]")
        XCTAssertEqual(ProgressFormat.bar(fraction: -1, width: 3), "[...]")
        XCTAssertEqual(ProgressFormat.eta(elapsed: 30, fraction: 0.25), 90)
        XCTAssertNil(ProgressFormat.eta(elapsed: 30, fraction: 0))
        XCTAssertEqual(ProgressFormat.percent(0.5623), "56.2%")
        XCTAssertEqual(ProgressFormat.percent(0.5623, decimals: 2), "56.23%")
        XCTAssertEqual(ProgressFormat.percent(.nan), "--%")
        XCTAssertEqual(ProgressFormat.speed(1234.4), "1234 img/s")
        XCTAssertEqual(ProgressFormat.speed(250_000), "250k img/s")
        XCTAssertEqual(ProgressFormat.speed(.infinity), "-- img/s")
    }

    /// Numbers are rounded: a diverging loss never prints 40 digits.
    func testRounding() {
        XCTAssertEqual(ProgressFormat.loss(2.302585093), "2.3026")
        XCTAssertEqual(ProgressFormat.loss(12.3456789), "12.346")
        XCTAssertEqual(ProgressFormat.loss(123.456789), "123.46")
        XCTAssertEqual(ProgressFormat.loss(12345.678), "12346")
        XCTAssertEqual(ProgressFormat.loss(3.1e38), "3.100e+38")
        XCTAssertEqual(ProgressFormat.loss(Double(Float.greatestFiniteMagnitude)), "3.403e+38")
        XCTAssertEqual(ProgressFormat.loss(.nan), "nan")
        XCTAssertEqual(ProgressFormat.loss(.infinity), "inf")
        XCTAssertEqual(ProgressFormat.loss(-2.5), "-2.5000")
        for v in [0.0, 1e-30, 9.99995, 99_999.4, 99_999.6, 1e6, 1e300, -1e300, -1e10] {
            XCTAssertLessThanOrEqual(ProgressFormat.loss(v).count, v < 0 ? 11 : 10, "\(v) -> \(ProgressFormat.loss(v))")
        }
        XCTAssertEqual(ProgressFormat.rate(0.05), "0.05")
        XCTAssertEqual(ProgressFormat.rate(0.00003), "0.00003")
        XCTAssertEqual(ProgressFormat.rate(0.0012345678), "0.001235")
        XCTAssertEqual(ProgressFormat.rate(5.4812e-8), "5.48e-08")
        XCTAssertEqual(ProgressFormat.rate(0), "0")
        // An epoch line of a diverged run stays short.
        let diverged = EpochMetrics(epoch: 7, step: 70, learningRate: 0.1234567891, trainLoss: 3.0e38, trainAccuracy: 0.1,
                                    testLoss: .nan, testAccuracy: 0.1, imagesPerSecond: 1234.5678, elapsedSeconds: 61.7)
        XCTAssertEqual(ProgressFormat.epochLine(diverged, epochs: 10),
                       "epoch 7/10: train loss 3.000e+38 acc 10.0%, test loss nan acc 10.00%, lr 0.1235, 1235 img/s, 1m02s")
    }

    /// The updating line fits any width (one character less than the terminal's is passed), and
    /// keeps the most useful fields first.
    func testLineFitsTheWidth() {
        func line(_ width: Int?) -> String {
            ProgressFormat.line(epoch: 3, epochs: 200, batch: 17, batches: 391, loss: 1.23456, accuracy: 0.5623,
                                imagesPerSecond: 1234.4, etaSeconds: 7530, barWidth: 20, width: width)
        }
        XCTAssertEqual(line(nil), "epoch   3/200 batch  17/391 [....................] loss 1.2346 acc  56.2% 1234 img/s ETA 2h05m")
        XCTAssertEqual(line(79), "epoch   3/200 batch  17/391 [.....] loss 1.2346 acc  56.2% 1234 img/s ETA 2h05m")
        XCTAssertEqual(line(60), "epoch   3/200 batch  17/391 loss 1.2346 acc  56.2% ETA 2h05m")
        XCTAssertEqual(line(40), "epoch   3/200 batch  17/391 loss 1.2346")
        for width in 1...200 { XCTAssertLessThanOrEqual(line(width).count, width, "width \(width): \(line(width))") }
        let record = EpochMetrics(epoch: 3, step: 3, learningRate: 0.05, trainLoss: 1.2, trainAccuracy: 0.5, testLoss: 1.3,
                                  testAccuracy: 0.45, imagesPerSecond: 1000, elapsedSeconds: 100)
        for width in 1...200 { XCTAssertLessThanOrEqual(ProgressFormat.epochLine(record, epochs: 200, width: width).count, width) }
    }

    /// In a log, an epoch of any size gets at most 9 progress lines: 782 steps (50,000 images in
    /// batches of 64) get 9, 10 steps or fewer none.
    func testLogIntervals() {
        func progressLines(_ batches: Int) -> Int {
            let every = ProgressFormat.logInterval(batches: batches)
            return (1..<batches).filter { $0 % every == 0 }.count
        }
        XCTAssertEqual(progressLines(782), 9)
        XCTAssertEqual(progressLines(10), 0)
        XCTAssertEqual(progressLines(4), 0)
        for batches in 1...5000 { XCTAssertLessThanOrEqual(progressLines(batches), 9, "\(batches) steps") }
    }

    private func record(_ epoch: Int) -> EpochMetrics {
        EpochMetrics(epoch: epoch, step: epoch, learningRate: 0.05, trainLoss: 1.2, trainAccuracy: 0.5, testLoss: 1.3,
                     testAccuracy: 0.45, imagesPerSecond: 1000, elapsedSeconds: 100)
    }

    func testLogMode() {
        var written: [String] = []
        let log = ProgressReporter(epochs: 2, batchesPerEpoch: 782, terminal: false) { written.append($0) }
        XCTAssertFalse(log.interactive)
        for epoch in 1...2 {
            for b in 1...782 { log.batch(epoch: epoch, batch: b, loss: 1, accuracy: 0.5, imagesPerSecond: 100) }
            log.evaluating(epoch: epoch, images: 10_000)
            log.endEpoch(record(epoch))
        }
        XCTAssertEqual(written.count, 20)   // 9 progress lines and the epoch line, per epoch
        XCTAssertTrue(written.allSatisfy { $0.hasSuffix("\n") && !$0.contains("\r") })
        XCTAssertEqual(written[0], "epoch 1/2 batch 79/782 (10%) loss 1.0000 acc 50.0% 100 img/s ETA " + written[0].split(separator: " ").last! )
        XCTAssertTrue(written[9].hasPrefix("epoch 1/2: train loss 1.2000 acc 50.0%, test loss 1.3000 acc 45.00%, lr 0.05, 1000 img/s"), written[9])
    }

    func testTerminalMode() {
        var written: [String] = []
        let tty = ProgressReporter(epochs: 1, batchesPerEpoch: 3, terminal: true, columns: { 40 }) { written.append($0) }
        XCTAssertTrue(tty.interactive)
        tty.batch(epoch: 1, batch: 1, loss: 1, accuracy: 0.5, imagesPerSecond: 100)
        tty.batch(epoch: 1, batch: 3, loss: 1, accuracy: 0.5, imagesPerSecond: 100)
        tty.endEpoch(record(1))
        XCTAssertTrue(written.dropLast().allSatisfy { $0.hasPrefix("\r") && !$0.contains("\n") }, "\(written)")
        XCTAssertEqual(written.last, "\n")
        // Every redraw fits in 39 columns (the line, and the spaces that cover a longer one).
        XCTAssertTrue(written.allSatisfy { $0.replacingOccurrences(of: "\r", with: "").count <= 39 }, "\(written)")
        // The epoch line replaced the progress line.
        XCTAssertTrue(written[written.count - 2].hasPrefix("\repoch 1/1: train loss 1.2000"), "\(written)")
    }

    func testQuietMode() {
        for terminal in [true, false] {
            var written: [String] = []
            let quiet = ProgressReporter(epochs: 1, batchesPerEpoch: 300, quiet: true, terminal: terminal, columns: { 80 }) { written.append($0) }
            for b in 1...300 { quiet.batch(epoch: 1, batch: b, loss: 1, accuracy: 0.5, imagesPerSecond: 100) }
            quiet.evaluating(epoch: 1, images: 100)
            quiet.endEpoch(record(1))
            XCTAssertEqual(written.count, 1, "\(written)")
            XCTAssertTrue(written[0].hasPrefix("epoch 1/1: train loss 1.2000") && written[0].hasSuffix("\n"), written[0])
        }
    }
}

final class StepLogTests: XCTestCase {
    func testWindowsNeverCrossAnEpochAndStayFew() {
        XCTAssertEqual(StepTrace.window(stepsPerEpoch: 4, epochs: 3), 1)
        XCTAssertEqual(StepTrace.window(stepsPerEpoch: 782, epochs: 10), 16)
        XCTAssertEqual(StepTrace.window(stepsPerEpoch: 391, epochs: 350), 8)   // ⌈391/50⌉
        XCTAssertEqual(StepTrace.window(stepsPerEpoch: 100, epochs: 5000), 25)   // ⌈500,000/20,000⌉
        var trace = StepTrace(stepsPerEpoch: 10, epochs: 2)   // window 1
        XCTAssertEqual(trace.add(epoch: 1, step: 1, loss: 2, learningRate: 0.1), StepRecord(step: 1, epoch: 0.1, count: 1, loss: 2, learningRate: 0.1))
        var long = StepTrace(stepsPerEpoch: 130, epochs: 1)   // window 3: 43 full windows and one of 1 step
        var records: [StepRecord] = []
        for s in 1...130 { if let r = long.add(epoch: 1, step: s, loss: Double(s), learningRate: 0.1) { records.append(r) } }
        XCTAssertEqual(records.count, 44)
        XCTAssertEqual(records[0], StepRecord(step: 3, epoch: 3.0 / 130, count: 3, loss: 2, learningRate: 0.1))
        XCTAssertEqual(records.last, StepRecord(step: 130, epoch: 1, count: 1, loss: 130, learningRate: 0.1))
        XCTAssertEqual(records.map(\.count).reduce(0, +), 130)
        XCTAssertNil(long.flush(epoch: 1, step: 130, learningRate: 0.1))
        _ = long.add(epoch: 2, step: 1, loss: 5, learningRate: 0.2)
        XCTAssertEqual(long.flush(epoch: 2, step: 1, learningRate: 0.2), StepRecord(step: 131, epoch: 131.0 / 130, count: 1, loss: 5, learningRate: 0.2))
    }

    func testFileRoundTripAndResumeTruncation() throws {
        let directory = try makeTemporaryDirectory(self)
        let path = directory + "/steps.jsonl"
        let records = (1...6).map { StepRecord(step: $0 * 2, epoch: Double($0) / 3, count: 2, loss: 2.5 / Double($0), learningRate: 0.1) }
        try appendStepRecords(records, to: path)
        XCTAssertEqual(try readStepLog(path: path).map(\.step), [2, 4, 6, 8, 10, 12])
        XCTAssertEqual(try readStepLog(path: path)[1].loss, 1.25, accuracy: 1e-6)
        // A line cut short by a killed process is skipped.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        handle.seekToEndOfFile(); handle.write(Data("{\"step\":14,\"epo".utf8)); try handle.close()
        XCTAssertEqual(try readStepLog(path: path).count, 6)
        // Resuming at step 7 keeps the records up to it and rewrites the file.
        let kept = try resumeStepLog(path: path, fallback: nil, upTo: 7)
        XCTAssertEqual(kept.map(\.step), [2, 4, 6])
        XCTAssertEqual(String(decoding: try readFileBytes(path), as: UTF8.self).split(separator: "\n").count, 3)
        // Non-finite values are written as null and read back as NaN.
        try appendStepRecords([StepRecord(step: 8, epoch: 8.0 / 3, count: 2, loss: .nan, learningRate: 0.1)], to: path)
        XCTAssertTrue(try readStepLog(path: path).last!.loss.isNaN)
    }
}

final class TrainingPlotTests: XCTestCase {
    /// Counts elements, classes and ids while checking the document parses as XML.
    private final class Collector: NSObject, XMLParserDelegate {
        var counts: [String: Int] = [:]
        var classes: [String: Int] = [:]
        var ids: [String] = []
        var series: [String] = []
        var texts: [String] = []
        var rects: [String: [String: String]] = [:]
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            counts[name, default: 0] += 1
            if let c = attributes["class"] { classes[c, default: 0] += 1 }
            if let id = attributes["id"] { ids.append(id) }
            if name == "polyline", let s = attributes["data-series"] { series.append(s) }
            if name == "rect", let c = attributes["class"] { rects[c + "#\(classes[c]!)"] = attributes }
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { texts.append(string) }
    }

    private func parse(_ svg: String, file: StaticString = #filePath, line: UInt = #line) -> Collector {
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        XCTAssertTrue(parser.parse(), "SVG is not well-formed XML: \(String(describing: parser.parserError))", file: file, line: line)
        return collector
    }

    private func records(_ count: Int, tested: Bool = true) -> [EpochMetrics] {
        (1...count).map { e in
            let x = Double(e)
            return EpochMetrics(epoch: e, step: e * 100, learningRate: 0.1 / x, trainLoss: 2.3 / x, trainAccuracy: min(0.99, 0.9 + 0.01 * x),
                                testLoss: tested ? 2.0 / x : nil, testAccuracy: tested ? (e == 3 ? 0.985 : 0.97) : nil,
                                imagesPerSecond: 1234.5, elapsedSeconds: 10 * x)
        }
    }

    private func steps(epochs: Int, perEpoch: Int) -> [StepRecord] {
        (1...(epochs * perEpoch)).map { s in
            StepRecord(step: s, epoch: Double(s) / Double(perEpoch), count: 1, loss: 2.3 / Double(s), learningRate: 0.1 / Double(s))
        }
    }

    /// After one epoch the plot shows points (markers), the best epoch and all three panels.
    func testOneEpoch() throws {
        let c = parse(renderTrainingSVG(records(1), steps: steps(epochs: 1, perEpoch: 4), title: "mnist <1> & co"))
        XCTAssertEqual(c.counts["svg"], 1)
        XCTAssertEqual(Set(c.ids), ["panel-loss", "panel-accuracy", "panel-learning-rate"])
        XCTAssertEqual(c.classes["panel"], 3)
        // train loss, test loss, per-iteration loss, train and test accuracy, learning rate.
        XCTAssertEqual(Set(c.series), ["train loss", "test loss", "train loss (per iteration)", "train accuracy", "test accuracy", "learning rate"])
        XCTAssertEqual(c.classes["marker"], 4)   // one per epoch curve
        XCTAssertEqual(c.classes["best-epoch"], 2)
        XCTAssertEqual(c.classes["best-marker"], 1)
        XCTAssertEqual(c.classes["legend"], 3)
        let text = c.texts.joined()
        for label in ["Loss", "Accuracy", "Learning rate", "epoch", "accuracy (%)", "mnist <1> & co", "best test accuracy 97.00 % at epoch 1"] {
            XCTAssertTrue(text.contains(label), "missing text \(label)")
        }
    }

    func testManyEpochs() throws {
        let svg = renderTrainingSVG(records(8), steps: steps(epochs: 8, perEpoch: 50))
        let c = parse(svg)
        XCTAssertEqual(c.classes["marker"], 4 * 8)
        XCTAssertTrue(c.texts.joined().contains("best test accuracy 98.50 % at epoch 3"))
        // The accuracy axis fits the data (97–99 %), not 0–100.
        let accuracy = try XCTUnwrap(svg.range(of: "id=\"panel-accuracy\"")).upperBound
        let rate = try XCTUnwrap(svg.range(of: "id=\"panel-learning-rate\"")).lowerBound
        let yTicks = svg[accuracy..<rate].components(separatedBy: "class=\"y-tick\"").dropFirst()
            .compactMap { Double($0.split(separator: ">")[1].split(separator: "<")[0]) }
        XCTAssertFalse(yTicks.isEmpty)
        XCTAssertGreaterThanOrEqual(yTicks.min()!, 80, "\(yTicks)")
        XCTAssertLessThanOrEqual(yTicks.max()!, 100, "\(yTicks)")
        // Without test values only the training curves (and the learning rate) are drawn.
        let trainOnly = parse(renderTrainingSVG(records(3, tested: false)))
        XCTAssertEqual(Set(trainOnly.series), ["train loss", "train accuracy", "learning rate (per epoch)"])
        XCTAssertTrue(trainOnly.texts.joined().contains("best training accuracy"))
        // Degenerate input still renders.
        _ = parse(renderTrainingSVG([]))
        _ = parse(renderTrainingSVG([], steps: steps(epochs: 1, perEpoch: 3)))
    }

    /// The legend is under the plot area: its box starts below the area's bottom edge.
    func testLegendIsOutsideThePlotArea() throws {
        let c = parse(renderTrainingSVG(records(5), steps: steps(epochs: 5, perEpoch: 10)))
        for panel in 1...3 {
            let area = try XCTUnwrap(c.rects["plot-area#\(panel)"]), legend = try XCTUnwrap(c.rects["legend-box#\(panel)"])
            let areaBottom = Double(area["y"]!)! + Double(area["height"]!)!
            XCTAssertGreaterThan(Double(legend["y"]!)!, areaBottom)
        }
    }

    func testNiceTicks() {
        XCTAssertEqual(niceTicks(0...100), [0, 20, 40, 60, 80, 100])
        XCTAssertEqual(niceTicks(1...6), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(niceTicks(0.37...2.41), [0.5, 1, 1.5, 2])
        XCTAssertEqual(fittedRange([97, 98.5, 99], limits: 0...100), 96.5...99.5)
        XCTAssertEqual(fittedRange([50], limits: 0...100), 20...80)   // 25...75 widened to ticks of 10
    }

    func testWriteIsAtomic() throws {
        let directory = try makeTemporaryDirectory(self)
        try writeTrainingPlot(records(2), steps: steps(epochs: 2, perEpoch: 3), to: directory + "/curves.svg", title: "t")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["curves.svg"])
        _ = parse(String(decoding: try readFileBytes(directory + "/curves.svg"), as: UTF8.self))
    }
}
