import DSLEngine
import DSLIR
import Foundation
import PythonTestSupport
import XCTest
@testable import DSLTraining

/// The data side of airbench94 (issue 18): reflect padding, alternating flips, patch-whitening
/// initialisation, test-time augmentation, evaluation frequency; resumed and 1- vs 2-thread
/// runs with them end bit for bit the same.
final class AirbenchDataTests: XCTestCase {
    override func tearDown() { Trainer.stopRequested = false; engineThreadCount = ProcessInfo.processInfo.activeProcessorCount }

    /// Runs a numpy program reading JSON from argv[1] and printing JSON; skips without numpy.
    func numpy(_ program: String, input: Any) throws -> Any {
        let python = try PythonEnvironment.require(modules: ["numpy"], packages: ["numpy"])
        let directory = try makeTemporaryDirectory(self)
        let inputPath = directory + "/input.json", scriptPath = directory + "/script.py"
        try JSONSerialization.data(withJSONObject: input).write(to: URL(fileURLWithPath: inputPath))
        try ("import json, sys\nimport numpy as np\ndata = json.load(open(sys.argv[1]))\n" + program).write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let (status, output) = PythonEnvironment.run(python, [scriptPath, inputPath])
        XCTAssertEqual(status, 0, output)
        return try JSONSerialization.jsonObject(with: Data(output.utf8))
    }

    // MARK: Reflect padding

    /// Every output of the reflect-padding augmenter is one of numpy's np.pad(mode='reflect')
    /// crops (of the image or its mirror), and over many draws all 2·(2P+1)² of them appear.
    func testReflectPaddedCropsAreNumpys() throws {
        let (h, w, c, p) = (5, 6, 2, 2)
        let image = (0..<(h * w * c)).map { Float($0) * 0.5 - 7 }
        let crops = try numpy("""
        h, w, c, p = data["shape"]
        x = np.array(data["image"], dtype=np.float32).reshape(h, w, c)
        out = []
        for flip in (False, True):
            src = x[:, ::-1, :] if flip else x
            padded = np.pad(src, ((p, p), (p, p), (0, 0)), mode="reflect")
            for dy in range(-p, p + 1):
                for dx in range(-p, p + 1):
                    out.append(padded[p + dy:p + dy + h, p + dx:p + dx + w, :].reshape(-1).tolist())
        print(json.dumps(out))
        """, input: ["shape": [h, w, c, p], "image": image.map(Double.init)]) as! [[Double]]
        XCTAssertEqual(crops.count, 2 * 25)
        let expected = crops.map { $0.map(Float.init) }
        var augmenter = try Augmenter(horizontalFlip: true, padding: p, padMode: .reflect, seed: 11)
        var seen = Set<Int>()
        for _ in 0..<2000 {
            var batch = image
            try augmenter.augment(&batch, count: 1, height: h, width: w, channels: c)
            guard let index = expected.firstIndex(of: batch) else { XCTFail("an output that is no numpy crop: \(batch)"); return }
            seen.insert(index)
        }
        XCTAssertEqual(seen.count, 50, "every shift and flip occurs")
        // Padding as large as the image cannot reflect.
        var tooLarge = try Augmenter(horizontalFlip: false, padding: 5, padMode: .reflect, seed: 1)
        var batch = image
        XCTAssertThrowsError(try tooLarge.augment(&batch, count: 1, height: h, width: w, channels: c))
    }

    /// Per-image flips given to the augmenter replace its random ones.
    func testGivenFlipsReplaceRandomOnes() throws {
        let (h, w, c) = (2, 3, 1)
        let images = (0..<(3 * h * w * c)).map(Float.init)
        var augmenter = try Augmenter(horizontalFlip: false, padding: 0, seed: 5)
        var batch = images
        try augmenter.augment(&batch, count: 3, height: h, width: w, channels: c, flips: [1, 0, 1])
        XCTAssertEqual(batch, [2, 1, 0, 5, 4, 3, 6, 7, 8, 9, 10, 11, 14, 13, 12, 17, 16, 15])
    }

    // MARK: Alternating flips

    func tinyGraph(_ text: String) throws -> Graph {
        let checked = Frontend.check(text: text)
        return try XCTUnwrap(checked.graph, "\(checked.diagnostics.items)")
    }

    static let whitenNet = """
    network wtiny
    input 32x32x3
    conv 2 1 24
    conv 3 2 8 bn
    gap
    fc 10
    softmax
    """

    func sample() throws -> (train: Dataset, test: Dataset) { try loadDataset(directory: repositoryRoot + "/data/cifar10-sample") }

    func airbenchOptions(epochs: Int = 3) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs; o.batch = 16; o.trainLimit = 64; o.testLimit = 24; o.schedule = "step:0.5@1"
        o.dataDirectory = "/data/somewhere"; o.dataset = .cifar10
        o.flipMode = .alternate; o.padMode = .reflect; o.translate = 2
        o.patchWhiteningImages = 40; o.evalEvery = 0; o.tta = 2
        return o
    }

    /// Alternating flips: each image's flip is fixed in even epochs, inverted in odd ones, and
    /// about half the images start flipped; other flip modes have none.
    func testAlternateFlipSchedule() throws {
        let data = try sample()
        let trainer = try Trainer(graph: try tinyGraph(Self.whitenNet), train: data.train, test: data.test, options: airbenchOptions())
        let firstEpoch = (0..<64).map { trainer.alternateFlip(image: $0, epoch: 0) }
        XCTAssertTrue((20...44).contains(firstEpoch.filter { $0 == 1 }.count), "\(firstEpoch)")
        for epoch in 1..<5 {
            for image in 0..<64 {
                XCTAssertEqual(trainer.alternateFlip(image: image, epoch: epoch), firstEpoch[image] ^ UInt8(epoch % 2))
            }
        }
        XCTAssertEqual(alternateFlipBases(count: 64, seed: 3), alternateFlipBases(count: 64, seed: 3))
        XCTAssertNotEqual(alternateFlipBases(count: 64, seed: 3), alternateFlipBases(count: 64, seed: 4))
        var random = airbenchOptions(); random.flipMode = .random
        let other = try Trainer(graph: try tinyGraph(Self.whitenNet), train: data.train, test: data.test, options: random)
        XCTAssertEqual((0..<64).map { other.alternateFlip(image: $0, epoch: 1) }, [UInt8](repeating: 0, count: 64))
    }

    // MARK: Patch whitening

    /// The filters against airbench's init_whitening_conv written in numpy (torch layout
    /// (OC, C, KH, KW), eigenvalues descending, eigenvectors then their negatives), compared
    /// up to each eigenvector's sign; and the whitened patches' covariance is diag(λ/(λ+ε)).
    func testPatchWhiteningMatchesAirbenchInNumpy() throws {
        let (n, h, w, c, k) = (7, 6, 5, 3, 2)
        let epsilon = 5e-2
        var random = SplitMix64(seed: 99)
        let images = (0..<(n * h * w * c)).map { _ in random.nextUnitFloat() * 2 - 0.7 }
        let (weight, eigenvalues) = try images.withUnsafeBufferPointer {
            try patchWhiteningFilters(images: $0.baseAddress!, count: n, height: h, width: w, channels: c, kernelHeight: k, kernelWidth: k, epsilon: epsilon)
        }
        let d = k * k * c, oc = 2 * d
        XCTAssertEqual(weight.count, d * oc)
        let reference = try numpy("""
        n, h, w, c, k, eps = data["shape"]
        x = np.array(data["images"], dtype=np.float64).reshape(n, h, w, c).transpose(0, 3, 1, 2)  # NCHW
        patches = np.stack([x[:, :, i:i + k, j:j + k] for i in range(h - k + 1) for j in range(w - k + 1)], 1).reshape(-1, c * k * k)
        cov = patches.T @ patches / len(patches)
        values, vectors = np.linalg.eigh(cov)
        values = values[::-1]; vectors = vectors.T[::-1]
        scaled = vectors / np.sqrt(values + eps)[:, None]
        weight = np.concatenate([scaled, -scaled]).reshape(2 * c * k * k, c, k, k)
        print(json.dumps({"weight": weight.reshape(-1).tolist(), "values": values.tolist()}))
        """, input: ["shape": [n, h, w, c, k, epsilon] as [Any], "images": images.map(Double.init)]) as! [String: [Double]]
        let torchWeight = reference["weight"]!, values = reference["values"]!
        for (mine, theirs) in zip(eigenvalues, values) { XCTAssertEqual(mine, theirs, accuracy: 1e-9 * max(1, abs(theirs))) }
        // dsl (KH, KW, IC, OC)[ky, kx, ic, o] is torch (OC, IC, KH, KW)[o, ic, ky, kx], up to the sign of filter o.
        for o in 0..<oc {
            var sameSign = 0.0, oppositeSign = 0.0
            for ky in 0..<k { for kx in 0..<k { for ic in 0..<c {
                let mine = Double(weight[((ky * k + kx) * c + ic) * oc + o])
                let theirs = torchWeight[((o * c + ic) * k + ky) * k + kx]
                sameSign = max(sameSign, abs(mine - theirs)); oppositeSign = max(oppositeSign, abs(mine + theirs))
            } } }
            XCTAssertLessThan(min(sameSign, oppositeSign), 1e-4, "filter \(o)")
            if o >= d {  // the negatives
                for e in 0..<d { XCTAssertEqual(weight[e * oc + o], -weight[e * oc + o - d]) }
            }
        }
        // Whitened: the first d outputs' (uncentred) covariance over all patches is diag(λ/(λ+ε)).
        var covariance = [Double](repeating: 0, count: d * d), patches = 0.0
        for image in 0..<n { for y in 0...(h - k) { for x in 0...(w - k) {
            var patch: [Double] = []
            for ky in 0..<k { for kx in 0..<k { for ic in 0..<c { patch.append(Double(images[((image * h + y + ky) * w + x + kx) * c + ic])) } } }
            let out = (0..<d).map { o in (0..<d).reduce(0.0) { $0 + patch[$1] * Double(weight[$1 * oc + o]) } }
            for i in 0..<d { for j in 0..<d { covariance[i * d + j] += out[i] * out[j] } }
            patches += 1
        } } }
        for i in 0..<d { for j in 0..<d {
            let expected = i == j ? values[i] / (values[i] + epsilon) : 0
            XCTAssertEqual(covariance[i * d + j] / patches, expected, accuracy: 1e-4, "(\(i), \(j))")
        } }
    }

    /// The trainer whitens a marked parameter from the first N preprocessed training images
    /// before the first step of a new run, and refuses a parameter of the wrong shape.
    func testTrainerAppliesTheWhiteningOfMarkedParameters() throws {
        let data = try sample()
        let g = try tinyGraph(Self.whitenNet)
        let o = airbenchOptions(epochs: 1)
        let trainer = try Trainer(graph: g, train: data.train, test: data.test, options: o)
        let name = try XCTUnwrap(trainer.engine.parameters.first { $0.shape == [2, 2, 3, 24] }).name
        XCTAssertTrue(trainer.dataInitializations.isEmpty, "nothing is marked by the spec")
        trainer.dataInitializations[name] = .patchWhitening(epsilon: 5e-4)
        var lines: [String] = []
        // Stopped before the first step: the weights are the initialisation.
        Trainer.stopRequested = true
        XCTAssertEqual(try trainer.run(report: { if case let .started(text) = $0 { lines.append(text) } }, checkpoint: { _ in }), .interrupted(epoch: 0, step: 0))
        XCTAssertTrue(lines.contains { $0.contains("patch whitening") && $0.contains("first 40 preprocessed") }, "\(lines)")
        var preprocessed = data.train.prefix(40)
        try trainer.preprocessor.apply(to: &preprocessed)
        let expected = try preprocessed.images.withUnsafeBufferPointer {
            try patchWhiteningFilters(images: $0.baseAddress!, count: 40, height: 32, width: 32, channels: 3, kernelHeight: 2, kernelWidth: 2, epsilon: 5e-4).weight
        }
        let p = trainer.engine.parameters.first { $0.name == name }!
        XCTAssertEqual(Array(UnsafeBufferPointer(start: p.value, count: p.count)), expected)

        let other = try Trainer(graph: g, train: data.train, test: data.test, options: o)
        let wrong = other.engine.parameters.first { $0.shape.count == 4 && $0.shape != [2, 2, 3, 24] }!.name
        other.dataInitializations[wrong] = .patchWhitening(epsilon: 5e-4)
        assertThrowsMessage(try other.applyDataInitializations(), contains: "OC = 2·KH·KW·IC", wrong)
    }

    // MARK: Test-time augmentation

    /// TTAView reproduces airbench's six views (image, mirror; padded[0:H, 0:W] and
    /// padded[2:H+2, 2:W+2] of a 1-pixel reflect padding, and their mirrors) exactly.
    func testTTAViewsAreAirbenchs() throws {
        let (n, h, w, c) = (2, 4, 5, 3)
        let images = (0..<(n * h * w * c)).map { Float($0) }
        let reference = try numpy("""
        n, h, w, c = data["shape"]
        x = np.array(data["images"], dtype=np.float32).reshape(n, h, w, c).transpose(0, 3, 1, 2)
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
        views = [x, x[..., ::-1], padded[:, :, 0:h, 0:w], padded[:, :, 0:h, 0:w][..., ::-1], padded[:, :, 2:h + 2, 2:w + 2], padded[:, :, 2:h + 2, 2:w + 2][..., ::-1]]
        print(json.dumps([v.transpose(0, 2, 3, 1).reshape(-1).tolist() for v in views]))
        """, input: ["shape": [n, h, w, c], "images": images.map(Double.init)]) as! [[Double]]
        let views = TTAView.views(level: 2)
        XCTAssertEqual(views.map(\.weight), [0.25, 0.25, 0.125, 0.125, 0.125, 0.125])
        for (view, expected) in zip(views, reference) {
            var out = [Float](repeating: .nan, count: images.count)
            images.withUnsafeBufferPointer { source in out.withUnsafeMutableBufferPointer { view.apply(source.baseAddress!, to: $0.baseAddress!, count: n, height: h, width: w, channels: c) } }
            XCTAssertEqual(out, expected.map(Float.init), "\(view)")
        }
        XCTAssertEqual(TTAView.views(level: 1).map(\.weight), [0.5, 0.5])
    }

    /// The TTA evaluation of a small network equals the combination computed by hand from
    /// each view's logits (one image at a time); level 0 equals the plain evaluation.
    func testTTACombinesTheLogitsOfTheViews() throws {
        let g = try tinyGraph("""
        network ttatiny
        input 6x5x2
        conv 3 1 4
        relu
        gap
        fc 3
        softmax
        """)
        let engine = try lower(g, maxBatch: 8, seed: 7).engine
        try engine.compile(training: false)
        var random = SplitMix64(seed: 5)
        let count = 11
        let data = try Dataset(images: (0..<(count * 60)).map { _ in random.nextUnitFloat() * 4 - 2 }, labels: (0..<count).map { Int32($0 % 3) },
                           count: count, height: 6, width: 5, channels: 2, classes: 3, classNames: ["a", "b", "c"])
        let plain = try Trainer.evaluate(engine: engine, data: data, batch: 4)
        let level0 = try Trainer.evaluate(engine: engine, data: data, batch: 4, tta: 0)
        XCTAssertEqual(level0.accuracy, plain.accuracy)
        XCTAssertEqual(level0.confusion, plain.confusion)
        XCTAssertEqual(level0.loss, plain.loss, accuracy: 1e-6)
        for level in 1...2 {
            let result = try Trainer.evaluate(engine: engine, data: data, batch: 4, tta: level)
            var lossSum = 0.0, correct = 0
            for i in 0..<count {
                let image = Array(data.images[(i * 60)..<((i + 1) * 60)])
                var mean = [Double](repeating: 0, count: 3)
                for view in TTAView.views(level: level) {
                    var shown = [Float](repeating: 0, count: 60)
                    image.withUnsafeBufferPointer { s in shown.withUnsafeMutableBufferPointer { view.apply(s.baseAddress!, to: $0.baseAddress!, count: 1, height: 6, width: 5, channels: 2) } }
                    shown.withUnsafeBufferPointer { _ = engine.forward($0.baseAddress!, batch: 1, training: false) }
                    for k in 0..<3 { mean[k] += view.weight * Double(engine.logits![k]) }
                }
                let top = mean.max()!
                let logSum = log(mean.map { exp($0 - top) }.reduce(0, +)) + top
                lossSum += logSum - mean[Int(data.labels[i])]
                if mean.firstIndex(of: top)! == Int(data.labels[i]) { correct += 1 }
            }
            XCTAssertEqual(result.loss, lossSum / Double(count), accuracy: 1e-5, "level \(level)")
            XCTAssertEqual(result.accuracy, Double(correct) / Double(count), "level \(level)")
            XCTAssertEqual(result.confusion.joined().reduce(0, +), count)
        }
        XCTAssertThrowsError(try Trainer.evaluate(engine: engine, data: data, batch: 4, tta: 3))
    }

    // MARK: Whole runs

    /// Runs `options` to the end and returns the final checkpoint's bytes (elapsed time zeroed)
    /// and the evaluations reported; `marked` adds the patch whitening of the 2×2 conv.
    func runToEnd(_ o: TrainingOptions, threads: Int, stopAt: (epoch: Int, step: Int)? = nil,
                  resumeFrom: String? = nil) throws -> (bytes: [UInt8], evaluations: [Evaluation?], checkpointPath: String) {
        engineThreadCount = threads
        let data = try sample()
        var preprocessor: Preprocessor?
        var stored: TrainingCheckpoint?
        if let resumeFrom { stored = try TrainingCheckpoint.read(from: resumeFrom); preprocessor = stored!.preprocessor }
        let trainer = try Trainer(graph: try tinyGraph(Self.whitenNet), train: data.train, test: data.test, options: stored?.recipe ?? o, preprocessor: preprocessor)
        let name = trainer.engine.parameters.first { $0.shape == [2, 2, 3, 24] }!.name
        trainer.dataInitializations[name] = .patchWhitening(epsilon: 5e-4)
        if let stored, let resumeFrom { try trainer.restore(from: stored, file: resumeFrom) }
        let path = try makeTemporaryDirectory(self) + "/ckpt.safetensors"
        var evaluations: [Evaluation?] = []
        let outcome = try trainer.run(report: { e in
            if case let .epochEnded(_, _, _, test, _, _, _) = e { evaluations.append(test) }
            if let stopAt, case let .step(epoch, step, _, _, _, _, _, _, _) = e, epoch == stopAt.epoch, step == stopAt.step { Trainer.stopRequested = true }
        }, checkpoint: { try $0.checkpoint().write(to: path) })
        Trainer.stopRequested = false
        if stopAt != nil { XCTAssertNotEqual(outcome, .finished) }
        var checkpoint = try trainer.checkpoint()
        checkpoint.elapsedSeconds = 0
        let final = path + ".final"
        try checkpoint.write(to: final)
        return (try readFileBytes(final), evaluations, path)
    }

    /// With alternating flips, reflect padding, whitening, evaluation at the end only and
    /// TTA: a run interrupted and resumed ends with the uninterrupted run's checkpoint, and
    /// 1 and 2 threads give the same bytes; only the last epoch is evaluated, with TTA.
    func testAirbenchOptionsResumeExactlyAndDoNotDependOnThreads() throws {
        let o = airbenchOptions(epochs: 3)
        let reference = try runToEnd(o, threads: 2)
        XCTAssertEqual(reference.evaluations.count, 3)
        XCTAssertNil(reference.evaluations[0]); XCTAssertNil(reference.evaluations[1])
        let last = try XCTUnwrap(reference.evaluations[2])
        XCTAssertEqual(last.tta?.level, 2)
        XCTAssertEqual(last.tta?.confusion.joined().reduce(0, +), 24)

        let single = try runToEnd(o, threads: 1)
        XCTAssertEqual(single.bytes, reference.bytes, "1 and 2 threads")

        let interrupted = try runToEnd(o, threads: 2, stopAt: (2, 2))
        let resumed = try runToEnd(o, threads: 2, resumeFrom: interrupted.checkpointPath)
        XCTAssertEqual(resumed.bytes, reference.bytes, "resumed at epoch 2, step 2 (the whitening is not redone)")

        // The options matter: the run differs with random flips or zero padding.
        var randomFlips = o; randomFlips.flipMode = .random
        XCTAssertNotEqual(try runToEnd(randomFlips, threads: 2).bytes, reference.bytes)
        var zeroPad = o; zeroPad.padMode = .zero
        XCTAssertNotEqual(try runToEnd(zeroPad, threads: 2).bytes, reference.bytes)
    }

    /// The new recipe keys round-trip, default when absent (an older checkpoint), and only
    /// --epochs, --eval-every and --tta may change on resume.
    func testRecipeKeysOfTheDataOptions() throws {
        let o = airbenchOptions()
        var metadata = o.recipeMetadata()
        XCTAssertEqual(metadata["recipe.flip"], "alternate")
        XCTAssertEqual(metadata["recipe.pad_mode"], "reflect")
        XCTAssertEqual(metadata["recipe.eval_every"], "final")
        let back = try TrainingOptions(recipe: metadata, file: "c")
        XCTAssertEqual(back.recipeMetadata(), metadata)
        for key in ["recipe.pad_mode", "recipe.patch_whitening_images", "recipe.eval_every", "recipe.tta"] { metadata[key] = nil }
        metadata["recipe.flip"] = "false"
        let old = try TrainingOptions(recipe: metadata, file: "c")
        XCTAssertEqual(old.padMode, .zero); XCTAssertEqual(old.flipMode, .off); XCTAssertEqual(old.evalEvery, 1); XCTAssertEqual(old.tta, 0)
        XCTAssertEqual(old.patchWhiteningImages, 5000)
        metadata["recipe.pad_mode"] = "mirror"
        assertThrowsMessage(try TrainingOptions(recipe: metadata, file: "c"), contains: "recipe.pad_mode", "zero or reflect")
        var flags = o; flags.tta = 1; flags.evalEvery = 2; flags.padMode = .zero
        let resumed = try TrainingOptions.resumed(stored: o, flags: flags, given: ["--tta", "--eval-every"], completedEpochs: 1, file: "c") { _ in }
        XCTAssertEqual(resumed.tta, 1); XCTAssertEqual(resumed.evalEvery, 2); XCTAssertEqual(resumed.padMode, .reflect)
        XCTAssertThrowsError(try TrainingOptions.resumed(stored: o, flags: flags, given: ["--pad-mode"], completedEpochs: 1, file: "c") { _ in })
    }
}
