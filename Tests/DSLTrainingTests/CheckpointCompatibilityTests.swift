import DSLEngine
import DSLIR
import XCTest
@testable import DSLTraining

/// Which checkpoints fit which specs (issue #15): refusals name the layers and tensors that
/// differ; a dropout-only change keeps a checkpoint usable for evaluation, not for resuming;
/// `--init` loads every tensor whose name and shape match.
final class CheckpointCompatibilityTests: XCTestCase {
    static let base = """
    network tinyd
    input 32x32x3
    conv 3 2 8 bn
    dropout 0.3
    gap
    fc 10
    softmax
    """

    private func graph(_ text: String) throws -> Graph {
        let checked = Frontend.check(text: text)
        return try XCTUnwrap(checked.graph, "\(checked.diagnostics.items)")
    }

    private lazy var data: (train: Dataset, test: Dataset) = try! loadDataset(directory: repositoryRoot + "/data/cifar10-sample")

    private func options() -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = 1; o.batch = 16; o.trainLimit = 32; o.testLimit = 16
        return o
    }

    /// A checkpoint of `base` after one epoch.
    private func trained() throws -> TrainingCheckpoint {
        let trainer = try Trainer(graph: try graph(Self.base), train: data.train, test: data.test, options: options())
        _ = try trainer.run(report: { _ in }, checkpoint: { _ in })
        return try trainer.checkpoint()
    }

    func testLayerRecordsRoundTripAndDropDropout() throws {
        let layers = LayerRecord.layers(of: try graph(Self.base))
        XCTAssertEqual(layers.map(\.name), ["input", "conv1", "dropout1", "gap1", "fc1", "softmax1"])
        XCTAssertEqual(layers[1].op, "conv 3x3/2 pad 1 8 nobias bn relu")
        XCTAssertEqual(layers[2].summary, "dropout 0.3 -> 16x16x8")
        XCTAssertEqual(LayerRecord.decode(LayerRecord.encode(layers)), layers)
        XCTAssertNil(LayerRecord.decode("[[1,2]]"))
        let inference = LayerRecord.inferenceLayers(layers)
        XCTAssertEqual(inference.map(\.name), ["input", "conv1", "gap1", "fc1", "softmax1"])
        XCTAssertEqual(inference[2].inputs, ["conv1"])
    }

    func testDropoutOnlyChangeIsEvaluatedButNotResumed() throws {
        let checkpoint = try trained()
        XCTAssertNotNil(checkpoint.metadata["layers"])
        let changed = try graph(Self.base.replacingOccurrences(of: "dropout 0.3", with: "dropout 0.5"))
        let notes = try Trainer.checkCheckpoint(checkpoint, graph: changed, file: "a.safetensors", use: .evaluate)
        XCTAssertEqual(notes, ["a.safetensors was trained with other dropout (changed layer dropout1: 'dropout 0.3 -> 16x16x8' in the checkpoint, "
            + "'dropout 0.5 -> 16x16x8' here); dropout does nothing at evaluation, so its weights apply"])
        // Removing the dropout is also fine for evaluation.
        let without = try graph(Self.base.replacingOccurrences(of: "dropout 0.3\n", with: ""))
        XCTAssertEqual(try Trainer.checkCheckpoint(checkpoint, graph: without, file: "a.safetensors", use: .evaluate).count, 1)
        // The same spec: nothing to say.
        XCTAssertEqual(try Trainer.checkCheckpoint(checkpoint, graph: try graph(Self.base), file: "a.safetensors", use: .resume), [])
        // Resuming needs the same spec, and says what differs and what to do instead.
        assertThrowsMessage(try Trainer.checkCheckpoint(checkpoint, graph: changed, file: "a.safetensors", use: .resume),
                            contains: "a.safetensors: the checkpoint is of a different network (tinyd, spec hash ",
                            "changed layer dropout1: 'dropout 0.3 -> 16x16x8' in the checkpoint, 'dropout 0.5 -> 16x16x8' here",
                            "start a new run with --init a.safetensors")
        let trainer = try Trainer(graph: changed, train: data.train, test: data.test, options: options())
        assertThrowsMessage(try trainer.restore(from: checkpoint, file: "a.safetensors"), contains: "changed layer dropout1")
    }

    func testOtherNetworkIsRefusedNamingTheLayers() throws {
        let checkpoint = try trained()
        let other = try graph(Self.base.replacingOccurrences(of: "dropout 0.3", with: "conv 3 1 16 bn"))
        assertThrowsMessage(try Trainer.checkCheckpoint(checkpoint, graph: other, file: "a.safetensors", use: .evaluate),
                            contains: "layers only in the checkpoint: dropout1 (dropout 0.3 -> 16x16x8)",
                            "layers only in this spec: conv2 (conv 3x3/1 pad 1 16 nobias bn relu -> 16x16x16)",
                            "changed layer gap1: 'gap -> 1x1x8' in the checkpoint, 'gap -> 1x1x16' here (inputs dropout1 there, conv2 here)",
                            "tensors of other shapes: fc1.weight [8, 10] in the checkpoint, [16, 10] here",
                            "tensors missing from the checkpoint: conv2.weight, conv2.bn.weight")
        // A pooling change keeps every tensor but changes the inference: refused for evaluation.
        let pooled = try graph(Self.base.replacingOccurrences(of: "dropout 0.3", with: "pool max 2"))
        assertThrowsMessage(try Trainer.checkCheckpoint(checkpoint, graph: pooled, file: "a.safetensors", use: .evaluate),
                            contains: "layers only in this spec: maxpool1 (maxpool 2x2/2 pad 0 -> 8x8x8)")
    }

    /// A checkpoint written before layer records: evaluated when every tensor matches by name
    /// and shape (with a note that what changed cannot be told), refused naming the tensors when not.
    func testCheckpointWithoutLayerRecords() throws {
        var checkpoint = try trained()
        checkpoint.metadata["layers"] = nil
        let changed = try graph(Self.base.replacingOccurrences(of: "dropout 0.3", with: "dropout 0.5"))
        let notes = try Trainer.checkCheckpoint(checkpoint, graph: changed, file: "old.safetensors", use: .evaluate)
        XCTAssertEqual(notes.count, 1)
        XCTAssertTrue(notes[0].contains("predates layer records"), notes[0])
        let wider = try graph(Self.base.replacingOccurrences(of: "conv 3 2 8 bn", with: "conv 3 2 12 bn"))
        assertThrowsMessage(try Trainer.checkCheckpoint(checkpoint, graph: wider, file: "old.safetensors", use: .evaluate),
                            contains: "tensors of other shapes: conv1.weight [3, 3, 3, 8] in the checkpoint, [3, 3, 3, 12] here")
        assertThrowsMessage(try Trainer.checkCheckpoint(checkpoint, graph: changed, file: "old.safetensors", use: .resume),
                            contains: "cannot be told", "--init old.safetensors")
    }

    func testInitLoadsTensorsThatMatchByNameAndShape() throws {
        let checkpoint = try trained()
        let newHead = try graph(Self.base.replacingOccurrences(of: "dropout 0.3", with: "conv 3 1 16 bn"))
        let trainer = try Trainer(graph: newHead, train: data.train, test: data.test, options: options())
        let fresh = Dictionary(uniqueKeysWithValues: trainer.engine.parameters.map { ($0.name, Array(UnsafeBufferPointer(start: $0.value, count: $0.shape.reduce(1, *)))) })
        let report = try trainer.initialize(from: checkpoint, file: "base.safetensors")
        XCTAssertEqual(report.loaded, ["conv1.weight", "conv1.bn.weight", "conv1.bn.bias", "fc1.bias", "conv1.bn.running_mean", "conv1.bn.running_var"])
        XCTAssertEqual(report.skipped.map(\.name), ["fc1.weight"])
        XCTAssertEqual(report.missing, ["conv2.weight", "conv2.bn.weight", "conv2.bn.bias", "conv2.bn.running_mean", "conv2.bn.running_var"])
        XCTAssertEqual(report.unused, [])
        XCTAssertEqual(report.loadedValues, 3 * 3 * 3 * 8 + 8 * 4 + 10)
        for p in trainer.engine.parameters {
            let values = Array(UnsafeBufferPointer(start: p.value, count: p.shape.reduce(1, *)))
            if report.loaded.contains(p.name) {
                XCTAssertEqual(values, checkpoint.parameters[p.name]?.floats, p.name)
            } else {
                XCTAssertEqual(values, fresh[p.name], "\(p.name) keeps its initial values")
            }
        }
        // The run records where it started, and trains.
        XCTAssertEqual(try trainer.checkpoint().metadata["init"], "base.safetensors")
        XCTAssertEqual(try trainer.run(report: { _ in }, checkpoint: { _ in }), .finished)
        // Not twice, and not into a run that has started.
        assertThrowsMessage(try trainer.initialize(from: checkpoint, file: "base.safetensors"), contains: "--init base.safetensors", "new run")
        // A checkpoint sharing no tensor is refused.
        let unrelated = try graph("network other\ninput 32x32x3\nconv 5 1 4\ngap\nfc 10 nobias\nsoftmax\n")
        let other = try Trainer(graph: unrelated, train: data.train, test: data.test, options: options())
        assertThrowsMessage(try other.initialize(from: checkpoint, file: "base.safetensors"),
                            contains: "--init base.safetensors: no tensor of the checkpoint (network tinyd) matches a parameter of other")
    }
}
