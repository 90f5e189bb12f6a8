import Foundation
import XCTest
@testable import DSLTraining
import DSLEngine

final class AugmentationTests: XCTestCase {
    /// A 1-image 3×4×2 batch whose value encodes (y, x, c) as 100y + 10x + c + 1 (never 0).
    private func batch() -> [Float] {
        var values: [Float] = []
        for y in 0..<3 { for x in 0..<4 { for c in 0..<2 { values.append(Float(100 * y + 10 * x + c + 1)) } } }
        return values
    }

    func testFlipOnlyMirrorsRows() throws {
        var augmenter = try Augmenter(horizontalFlip: true, padding: 0, seed: 7)
        var flips = 0
        for _ in 0..<40 {
            var images = batch()
            try augmenter.augment(&images, count: 1, height: 3, width: 4, channels: 2)
            if images != batch() {
                flips += 1
                for y in 0..<3 { for x in 0..<4 { for c in 0..<2 {
                    XCTAssertEqual(images[(y * 4 + x) * 2 + c], Float(100 * y + 10 * (3 - x) + c + 1))
                } } }
            }
        }
        XCTAssertGreaterThan(flips, 5); XCTAssertLessThan(flips, 35)
    }

    func testTranslationShiftsWithZeroFill() throws {
        var augmenter = try Augmenter(horizontalFlip: false, padding: 1, seed: 3)
        var seenShifts = Set<String>()
        for _ in 0..<200 {
            var images = batch()
            try augmenter.augment(&images, count: 1, height: 3, width: 4, channels: 2)
            // Find the shift from any non-zero pixel, then check every pixel against it.
            guard let index = images.firstIndex(where: { $0 != 0 }) else { XCTFail("all zero"); return }
            let value = Int(images[index]) - 1
            let y = index / 8, x = (index / 2) % 4
            let dy = value / 100 - y, dx = (value / 10) % 10 - x
            XCTAssertTrue(abs(dy) <= 1 && abs(dx) <= 1)
            seenShifts.insert("\(dy),\(dx)")
            for y in 0..<3 { for x in 0..<4 { for c in 0..<2 {
                let sy = y + dy, sx = x + dx
                let expected: Float = (0..<3).contains(sy) && (0..<4).contains(sx) ? Float(100 * sy + 10 * sx + c + 1) : 0
                XCTAssertEqual(images[(y * 4 + x) * 2 + c], expected)
            } } }
        }
        XCTAssertEqual(seenShifts.count, 9)
    }

    func testDeterministicFromSeed() throws {
        var first = try Augmenter(horizontalFlip: true, padding: 2, seed: 42)
        var second = try Augmenter(horizontalFlip: true, padding: 2, seed: 42)
        var a = (0..<(5 * 48)).map(Float.init), b = a
        try first.augment(&a, count: 5, height: 4, width: 4, channels: 3)
        try second.augment(&b, count: 5, height: 4, width: 4, channels: 3)
        XCTAssertEqual(a, b)
        XCTAssertThrowsError(try first.augment(&a, count: 6, height: 4, width: 4, channels: 3))
        XCTAssertThrowsError(try Augmenter(horizontalFlip: false, padding: -1, seed: 0))
    }

    func testEpochShuffler() {
        let shuffler = EpochShuffler(count: 100, seed: 9)
        let epoch0 = shuffler.order(epoch: 0), epoch1 = shuffler.order(epoch: 1)
        XCTAssertEqual(epoch0.sorted(), Array(0..<100))
        XCTAssertEqual(epoch0, EpochShuffler(count: 100, seed: 9).order(epoch: 0))
        XCTAssertNotEqual(epoch0, epoch1)
        XCTAssertNotEqual(epoch0, Array(0..<100))
        XCTAssertNotEqual(epoch0, EpochShuffler(count: 100, seed: 10).order(epoch: 0))
        XCTAssertEqual(shuffler.batches(epoch: 2, batchSize: 32).map(\.count), [32, 32, 32, 4])
        XCTAssertEqual(shuffler.batches(epoch: 2, batchSize: 32, dropLast: true).map(\.count), [32, 32, 32])
        XCTAssertEqual(EpochShuffler(count: 0, seed: 1).order(epoch: 0), [])
    }
}

final class OptimizerTests: XCTestCase {
    func testMomentumMatchesPyTorchFormula() throws {
        let sgd = try SGDOptimizer(parameterCount: 3, momentum: 0.9, weightDecay: 0.1, noDecay: [2..<3])
        var w: [Float] = [1, -2, 3]
        let g: [Float] = [0.5, 0.25, -1]
        // Reference in Double, step by step.
        var rw: [Double] = [1, -2, 3], rv: [Double] = [0, 0, 0]
        for _ in 0..<3 {
            try sgd.step(&w, gradients: g, learningRate: 0.1)
            for i in 0..<3 {
                let wd = i == 2 ? 0.0 : 0.1
                rv[i] = 0.9 * rv[i] + Double(g[i]) + wd * rw[i]
                rw[i] -= 0.1 * rv[i]
            }
        }
        for i in 0..<3 {
            XCTAssertEqual(Double(w[i]), rw[i], accuracy: 1e-5)
            XCTAssertEqual(Double(sgd.velocityValues[i]), rv[i], accuracy: 1e-5)
        }
    }

    /// A large buffer is updated in parallel chunks; no-decay ranges cross the chunk borders.
    /// Every element must get exactly the one-element formula, with 1 and 2 threads.
    func testParallelChunksMatchElementFormula() throws {
        let n = 100_003
        let noDecay = [0..<5, 16_380..<16_400, 50_000..<70_000, 100_000..<n]
        let g = (0..<n).map { Float(($0 * 7919) % 1000) / 500 - 1 }
        func run(threads: Int) throws -> ([Float], [Float]) {
            let saved = engineThreadCount
            engineThreadCount = threads
            defer { engineThreadCount = saved }
            let sgd = try SGDOptimizer(parameterCount: n, momentum: 0.9, weightDecay: 0.01, nesterov: true, noDecay: noDecay)
            var w = (0..<n).map { Float($0 % 97) / 97 }
            for _ in 0..<2 { try sgd.step(&w, gradients: g, learningRate: 0.05) }
            return (w, sgd.velocityValues)
        }
        let (w2, v2) = try run(threads: 2)
        let (w1, v1) = try run(threads: 1)
        XCTAssertTrue(w1.elementsEqual(w2) { $0.bitPattern == $1.bitPattern })
        XCTAssertTrue(v1.elementsEqual(v2) { $0.bitPattern == $1.bitPattern })
        for i in [0, 4, 5, 16_379, 16_380, 16_399, 16_400, 49_999, 50_000, 69_999, 70_000, 99_999, 100_000, n - 1] {
            let one = try SGDOptimizer(parameterCount: 1, momentum: 0.9, weightDecay: 0.01, nesterov: true,
                                       noDecay: noDecay.contains { $0.contains(i) } ? [0..<1] : [])
            var w = [Float(i % 97) / 97]
            for _ in 0..<2 { try one.step(&w, gradients: [g[i]], learningRate: 0.05) }
            XCTAssertEqual(w[0].bitPattern, w2[i].bitPattern, "element \(i)")
            XCTAssertEqual(one.velocityValues[0].bitPattern, v2[i].bitPattern, "velocity \(i)")
        }
    }

    func testNesterovAndPlain() throws {
        let nesterov = try SGDOptimizer(parameterCount: 1, momentum: 0.5, weightDecay: 0, nesterov: true)
        var w: [Float] = [1]
        try nesterov.step(&w, gradients: [2], learningRate: 0.1)   // v = 2, w = 1 − 0.1·(2 + 0.5·2)
        XCTAssertEqual(w[0], 0.7, accuracy: 1e-6)
        try nesterov.step(&w, gradients: [2], learningRate: 0.1)   // v = 3, w −= 0.1·(2 + 1.5)
        XCTAssertEqual(w[0], 0.35, accuracy: 1e-6)
        let plain = try SGDOptimizer(parameterCount: 1, momentum: 0, weightDecay: 0.5)
        var p: [Float] = [2]
        try plain.step(&p, gradients: [1], learningRate: 0.1)     // 2 − 0.1·(1 + 1)
        XCTAssertEqual(p[0], 1.8, accuracy: 1e-6)
    }

    func testVelocityCheckpointAndErrors() throws {
        let sgd = try SGDOptimizer(parameterCount: 4, momentum: 0.9, weightDecay: 1e-3, noDecay: [0..<1, 3..<4])
        var w: [Float] = [1, 2, 3, 4]
        try sgd.step(&w, gradients: [1, 1, 1, 1], learningRate: 0.01)
        let restored = try SGDOptimizer(parameterCount: 4, momentum: 0.9)
        try restored.restore(from: SafetensorsContents(tensors: sgd.tensors()))
        XCTAssertEqual(restored.velocityValues, sgd.velocityValues)
        XCTAssertTrue(sgd.description.contains("off for 2 parameters"))
        assertThrowsMessage(try restored.setVelocity([1]), contains: "1 values", "4 parameters")
        assertThrowsMessage(try SGDOptimizer(parameterCount: 4, noDecay: [3..<5]), contains: "3..<5")
        assertThrowsMessage(try sgd.step(&w, gradients: [1], learningRate: 1), contains: "expected 4")
        sgd.resetVelocity()
        XCTAssertEqual(sgd.velocityValues, [0, 0, 0, 0])
    }
}

final class ScheduleTests: XCTestCase {
    func testStepScheduleAllCNN() throws {
        let schedule = try LearningRateSchedule.parse("step:0.1@200,250,300", baseRate: 0.25, totalEpochs: 350)
        XCTAssertEqual(schedule.decay, .step(factor: 0.1, epochs: [200, 250, 300]))
        let perEpoch = 10
        XCTAssertEqual(schedule.lr(atStep: 0, stepsPerEpoch: perEpoch), 0.25)
        XCTAssertEqual(schedule.lr(atStep: 200 * perEpoch - 1, stepsPerEpoch: perEpoch), 0.25)
        XCTAssertEqual(schedule.lr(atStep: 200 * perEpoch, stepsPerEpoch: perEpoch), 0.025, accuracy: 1e-7)
        XCTAssertEqual(schedule.lr(atStep: 260 * perEpoch, stepsPerEpoch: perEpoch), 0.0025, accuracy: 1e-8)
        XCTAssertEqual(schedule.lr(atStep: 349 * perEpoch, stepsPerEpoch: perEpoch), 0.00025, accuracy: 1e-9)
        XCTAssertTrue(schedule.description.contains("×0.1 at epoch 200 → 0.025"), schedule.description)
    }

    func testWarmupAndCosine() throws {
        let schedule = try LearningRateSchedule.parse("warmup:2+cosine", baseRate: 1, totalEpochs: 12)
        XCTAssertEqual(schedule.warmupEpochs, 2)
        XCTAssertEqual(schedule.lr(atStep: 0, stepsPerEpoch: 5), 0.1, accuracy: 1e-6)
        XCTAssertEqual(schedule.lr(atStep: 9, stepsPerEpoch: 5), 1, accuracy: 1e-6)
        XCTAssertEqual(schedule.lr(atStep: 10, stepsPerEpoch: 5), 1, accuracy: 1e-6)      // cosine starts at the top
        XCTAssertEqual(schedule.lr(atStep: 35, stepsPerEpoch: 5), 0.5, accuracy: 1e-6)    // half-way: epoch 7 of 2...12
        XCTAssertEqual(schedule.lr(atStep: 60, stepsPerEpoch: 5), 0, accuracy: 1e-6)
        let floor = try LearningRateSchedule.parse("cosine:0.01", baseRate: 0.1, totalEpochs: 10)
        XCTAssertEqual(floor.lr(atStep: 1000, stepsPerEpoch: 10), 0.01, accuracy: 1e-7)
        let warmOnly = try LearningRateSchedule.parse("warmup:1", baseRate: 0.5, totalEpochs: 3)
        XCTAssertEqual(warmOnly.decay, .constant)
        XCTAssertEqual(warmOnly.lr(atStep: 100, stepsPerEpoch: 10), 0.5)
        XCTAssertTrue(schedule.description.contains("warm-up over 2 epochs"))
        XCTAssertTrue(schedule.description.contains("cosine"))
        XCTAssertEqual(try LearningRateSchedule.parse("constant", baseRate: 0.1, totalEpochs: 1).lr(atStep: 5, stepsPerEpoch: 1), 0.1)
    }

    func testParseErrors() {
        for (text, fragment) in [("", "empty"), ("step", "step needs"), ("step:0.1", "FACTOR@EPOCHS"), ("step:0.1@", "is not a positive integer"),
                                 ("step:0.1@300,200", "strictly increasing"), ("step:x@10", "FACTOR@EPOCHS"), ("warmup", "warmup needs"),
                                 ("warmup:-1", "warmup needs"), ("cosine+step:0.1@5", "more than one decay"), ("linear", "linear needs START,END@WARMUP"), ("triangle", "unknown part 'triangle'"),
                                 ("linear:0.2,0.07@1.5", "fraction must be in 0..<1"), ("linear:0.2@0.2", "linear needs"),
                                 ("warmup:1+linear:0.2,0.07@0.2", "own warm-up"), ("linear:-1,0.07@0.2", "≥ 0"),
                                 ("cosine:5", "cosine minimum")] {
            assertThrowsMessage(try LearningRateSchedule.parse(text, baseRate: 0.1, totalEpochs: 10), contains: "'\(text)'", fragment)
        }
        assertThrowsMessage(try LearningRateSchedule(baseRate: -1, totalEpochs: 1), contains: "positive")
        assertThrowsMessage(try LearningRateSchedule(baseRate: 1, epochs: 0), contains: "positive")
    }

    /// `linear:0.2,0.07@0.23` over 9.9 epochs of 48 steps is airbench94's get_lr: T = 476,
    /// warm-up int(476·0.23) = 109 steps from 0.2 to 1, then down to 0.07 at step 476; here the
    /// factors come from airbench's Python, transcribed.
    func testLinearScheduleIsAirbenchs() throws {
        let schedule = try LearningRateSchedule.parse("linear:0.2,0.07@0.23", baseRate: 1.5, epochs: 9.9)
        XCTAssertEqual(schedule.totalEpochs, 10)
        XCTAssertEqual(LearningRateSchedule.totalSteps(stepsPerEpoch: 48, epochs: 9.9), 476)
        let total = 476, warmup = Int(Double(total) * 0.23)
        XCTAssertEqual(warmup, 109)
        func getLR(_ step: Int) -> Double {
            if step < warmup {
                let frac = Double(step) / Double(warmup)
                return 0.2 * (1 - frac) + 1.0 * frac
            }
            let frac = Double(step - warmup) / Double(total - warmup)
            return 1.0 * (1 - frac) + 0.07 * frac
        }
        for step in [0, 1, 54, 108, 109, 110, 300, 474, 475] {
            XCTAssertEqual(schedule.lr(atStep: step, stepsPerEpoch: 48), Float(1.5 * getLR(step)), "step \(step)")
        }
        XCTAssertEqual(schedule.lr(atStep: 0, stepsPerEpoch: 48), 0.3, accuracy: 1e-7)
        XCTAssertEqual(schedule.lr(atStep: 109, stepsPerEpoch: 48), 1.5)
        XCTAssertTrue(schedule.description.contains("9.9 epochs"), schedule.description)
        XCTAssertTrue(schedule.description.contains("linear from 0.3 up to 1.5"), schedule.description)
    }

    /// ⌈steps per epoch × epochs⌉, a product a rounding error above a whole number counting as it.
    func testTotalStepsOfFractionalEpochs() throws {
        XCTAssertEqual(LearningRateSchedule.totalSteps(stepsPerEpoch: 48, epochs: 10), 480)
        XCTAssertEqual(LearningRateSchedule.totalSteps(stepsPerEpoch: 50, epochs: 0.2), 10)     // 50 × 0.2 = 10.000000000000002
        XCTAssertEqual(LearningRateSchedule.totalSteps(stepsPerEpoch: 7, epochs: 1.5), 11)
        XCTAssertEqual(LearningRateSchedule.totalSteps(stepsPerEpoch: 3, epochs: 0.01), 1)
        // Epochs run agree with the steps: 2 + 1e-11 epochs are 2 (not a third epoch of 0 steps).
        XCTAssertEqual(LearningRateSchedule.epochsRun(2 + 1e-11), 2)
        XCTAssertEqual(LearningRateSchedule.totalSteps(stepsPerEpoch: 48, epochs: 2 + 1e-11), 96)
        XCTAssertEqual(LearningRateSchedule.epochsRun(9.9), 10)
        var o = TrainingOptions()
        o.trainingEpochs = 2 + 1e-11
        XCTAssertEqual(o.epochs, 2)
        // The cosine horizon is the fractional length: at 2.5 of 2.5 epochs it reaches 0.
        let cosine = try LearningRateSchedule.parse("cosine", baseRate: 1, epochs: 2.5)
        XCTAssertEqual(cosine.totalEpochs, 3)
        XCTAssertEqual(cosine.lr(atStep: 25, stepsPerEpoch: 10), 0, accuracy: 1e-6)
        XCTAssertEqual(cosine.lr(atStep: 12, stepsPerEpoch: 10), Float(0.5 * (1 + cos(Double.pi * 1.2 / 2.5))), accuracy: 1e-6)
    }
}
