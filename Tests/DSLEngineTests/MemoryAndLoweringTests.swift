import XCTest
import DSLIR
@testable import DSLEngine

/// Memory planned before anything is allocated, refused with the largest batch that fits;
/// lowering errors located at IR nodes; lowering and compilation near-linear in the layers.
final class MemoryAndLoweringTests: XCTestCase {
    override func tearDown() { EngineMemory.availableOverride = nil }

    private func lowered(_ text: String, batch: Int) throws -> LoweredNetwork {
        let checked = Frontend.check(text: text)
        let g = try XCTUnwrap(checked.graph, "\(checked.diagnostics.items)")
        return try lower(g, maxBatch: batch, seed: 1)
    }

    private let allCNN = """
        input 32x32x3
        conv 3 1 96
        conv 3 2 96
        conv 3 1 192
        conv 3 2 192
        conv 1 1 10
        gap
        softmax
        """

    /// The plan made before `compile` is what `compile` allocates, for training and inference.
    func testPlanBeforeCompileIsWhatCompileAllocates() throws {
        for training in [true, false] {
            for batch in [1, 7, 64] {
                let e = try lowered(allCNN, batch: batch).engine
                let planned = e.plannedMemory(training: training)
                XCTAssertEqual(e.plannedBytes(training: training), planned.totalBytes)
                try e.compile(training: training)
                XCTAssertEqual(e.memoryPlan, planned, "training \(training), batch \(batch)")
            }
        }
    }

    /// A batch that does not fit in the available memory is refused before anything is
    /// allocated, with the planned and available figures and the largest batch that fits;
    /// that batch does fit. (The available figure is faked: the test does not depend on the machine.)
    func testBatchThatDoesNotFitIsRefusedWithTheLargestThatFits() throws {
        let big = try lowered(allCNN, batch: 512).engine
        let planned = big.plannedBytes(training: true)
        let available = planned / 10
        EngineMemory.availableOverride = available
        var caught: EngineMemoryError?
        do { try big.compile(training: true) } catch let e as EngineMemoryError { caught = e }
        let e = try XCTUnwrap(caught, "compile should refuse \(planned) bytes with \(available) available")
        XCTAssertFalse(big.isCompiled)
        XCTAssertEqual(e.plannedBytes, planned)
        XCTAssertEqual(e.availableBytes, available)
        XCTAssertEqual(e.batch, 512)
        let largest = try XCTUnwrap(e.largestBatch)
        XCTAssertGreaterThan(largest, 10)
        XCTAssertLessThan(largest, 512 / 5)
        XCTAssertTrue(e.description.contains("for training at batch 512"), e.description)
        XCTAssertTrue(e.description.contains("the largest batch that fits is \(largest)"), e.description)
        // The suggested batch fits; one more does not.
        let fits = try lowered(allCNN, batch: largest).engine
        XCTAssertNoThrow(try fits.checkMemory(training: true))
        XCTAssertThrowsError(try lowered(allCNN, batch: largest + 1).engine.checkMemory(training: true))
        try fits.compile(training: true)
        XCTAssertLessThanOrEqual(fits.plannedBytes, available)
        // Nothing fits: said so.
        XCTAssertThrowsError(try fits.checkMemory(training: true, availableBytes: 1000)) { error in
            XCTAssertTrue("\(error)".contains("even a batch of 1 does not fit"), "\(error)")
        }
    }

    func testByteCountsAndAvailableMemory() throws {
        XCTAssertEqual(EngineMemory.parseByteCount("123"), 123)
        XCTAssertEqual(EngineMemory.parseByteCount("64M"), 64 << 20)
        XCTAssertEqual(EngineMemory.parseByteCount("1.5g"), 3 << 29)
        XCTAssertNil(EngineMemory.parseByteCount("lots"))
        EngineMemory.availableOverride = nil
        #if os(Linux)
        // /proc/meminfo is there on Linux: a positive figure below the machine's memory.
        let available = try XCTUnwrap(EngineMemory.availableBytes())
        XCTAssertGreaterThan(available, 0)
        XCTAssertLessThan(available, Int(ProcessInfo.processInfo.physicalMemory))
        #endif
    }

    /// An allocation the system refuses is an error, not a trap.
    func testRefusedAllocationThrows() throws {
        XCTAssertThrowsError(try allocateFloats(Int.max / 8)) { error in
            XCTAssertTrue(error is EngineMemoryError)
            XCTAssertTrue("\(error)".contains("out of memory"), "\(error)")
        }
    }

    /// A layer the engine refuses names its IR node, so commands can print the source line.
    func testLoweringErrorsCarryTheIRNode() throws {
        let checked = Frontend.check(text: "input 8x8x3\nconv 3 1 4\npool max 2 2\nsoftmax\n")
        var g = try XCTUnwrap(checked.graph)
        // A pooling the checker would have refused (padding more than half the window).
        g.nodes[2].op = .pool(PoolAttributes(kind: .max, kernel: 2, stride: 2, pad: 2, ceil: false))
        XCTAssertThrowsError(try lower(g, maxBatch: 1, seed: 1)) { error in
            guard let e = error as? LoweringError else { return XCTFail("\(error)") }
            XCTAssertEqual(e.node, 2)
            XCTAssertEqual(g.nodes[e.node].location.line, 3)
            XCTAssertTrue(e.message.contains("maxpool1"), e.message)
        }
    }

    /// Everything `dsl check` accepts lowers: pooling windows overhanging a 1×1 input in ceil
    /// mode, pyramid shortcuts on 1×1 maps, softmax before the last layer, a final softmax over
    /// a map; and forward and backward run.
    func testWhatTheCheckerAcceptsRuns() throws {
        let specs = [
            "input 1x1x1\npool max 2 2 ceil\npool avg 3 2 pad=1 ceil\nsoftmax\n",
            "input 2x2x16\npyramid 1.5 1\ngap\nfc 10\nsoftmax\n",
            "input 4x4x3\nconv 1 1 5\nsoftmax\nconv 1 1 4\ngap\nsoftmax\n",
            "input 5x3x2\nconv 3 1 6\nsoftmax\n",
        ]
        for text in specs {
            let checked = Frontend.check(text: text)
            let g = try XCTUnwrap(checked.graph, "\(text): \(checked.diagnostics.items.map(\.message))")
            let e = try lower(g, maxBatch: 2, seed: 1).engine
            try e.compile(training: true)
            var random = TestRandom(2)
            let y = e.forward(random.normals(2 * e.inputShape.count), batch: 2, training: true)
            let (loss, _) = e.backward(labels: [0, Int32(e.classCount - 1)], batch: 2)
            XCTAssertTrue(loss.isFinite && y.allSatisfy(\.isFinite), text)
            XCTAssertEqual(e.outputShape, EngineShape(height: g.nodes[g.output].shape.height, width: g.nodes[g.output].shape.width,
                                                      channels: g.nodes[g.output].shape.channels), text)
        }
    }

    /// The planner packs tensors exactly as the scan over every slot did (kept here as the
    /// reference), on random lifetimes with and without reuse.
    func testPlannerMatchesTheSlotScan() {
        func reference(_ tensors: [PlannedTensor], reuse: Bool) -> (offsets: [Int], totalFloats: Int) {
            struct Slot { var floats: Int; var busyUntil: Int }
            var slots: [Slot] = []
            var slotOf = [Int](repeating: -1, count: tensors.count)
            let order = tensors.indices.sorted {
                (tensors[$0].start, -tensors[$0].floats, $0) < (tensors[$1].start, -tensors[$1].floats, $1)
            }
            for index in order {
                let tensor = tensors[index]
                var chosen = -1
                if reuse {
                    var bestFit = -1, largest = -1
                    for (s, slot) in slots.enumerated() where slot.busyUntil < tensor.start {
                        if slot.floats >= tensor.floats, bestFit < 0 || slot.floats < slots[bestFit].floats { bestFit = s }
                        if largest < 0 || slot.floats > slots[largest].floats { largest = s }
                    }
                    chosen = bestFit >= 0 ? bestFit : largest
                }
                if chosen < 0 {
                    slots.append(Slot(floats: tensor.floats, busyUntil: tensor.end))
                    chosen = slots.count - 1
                } else {
                    slots[chosen].floats = max(slots[chosen].floats, tensor.floats)
                    slots[chosen].busyUntil = tensor.end
                }
                slotOf[index] = chosen
            }
            var offsets: [Int] = [], total = 0
            for slot in slots { offsets.append(total); total += (slot.floats + 15) / 16 * 16 }
            return (slotOf.map { offsets[$0] }, total)
        }
        var random = TestRandom(31)
        for round in 0..<200 {
            let n = 1 + random.int(60)
            let tensors = (0..<n).map { _ -> PlannedTensor in
                let start = random.int(40)
                let end = random.int(8) == 0 ? Int.max : start + random.int(30)
                return PlannedTensor(floats: [16, 100, 100, 256, 1000, 4096][random.int(6)] * (1 + random.int(3)), start: start, end: end)
            }
            for reuse in [true, false] {
                let a = planArena(tensors, reuse: reuse), b = reference(tensors, reuse: reuse)
                XCTAssertEqual(a.offsets, b.offsets, "round \(round), reuse \(reuse)")
                XCTAssertEqual(a.totalFloats, b.totalFloats, "round \(round), reuse \(reuse)")
            }
        }
    }

    /// A deep chain lowers, compiles and runs (no quadratic step; timing is not asserted).
    func testDeepNetworkLowersAndCompiles() throws {
        var text = "input 4x4x2\n"
        for _ in 0..<3000 { text += "conv 3 1 2 bn\n" }
        text += "gap\nsoftmax\n"
        let e = try lowered(text, batch: 1).engine
        XCTAssertEqual(e.nodeCount, 1 + 3000 * 3 + 2)
        try e.compile(training: true)
        e.forward([Float](repeating: 0.5, count: 32), batch: 1, training: true)
        XCTAssertTrue(e.backward(labels: [1], batch: 1).loss.isFinite)
    }

    /// Every construct of issue 13 lowers to its engine operator, compiles with its memory
    /// planned, and trains: general and depthwise convolutions (the square ones keep `.conv`),
    /// the seven activations after convolutions and as layers, mul, adaptive pooling. (The IR is
    /// edited after checking a spec in the older syntax, so the test does not depend on the parser.)
    func testLoweringOfTheNewConstructs() throws {
        let text = """
            input 12x12x4
            conv 3 1 8 bn
            conv 3 1 8 bn
            add {
              conv 1 1 8
            } {
              conv 3 1 8
            }
            relu
            conv 3 1 6
            conv 3 1 6
            gap
            softmax
            """
        let checked = Frontend.check(text: text)
        var g = try XCTUnwrap(checked.graph, "\(checked.diagnostics.items.map(\.message))")
        var convs = 0
        for i in g.nodes.indices {
            switch g.nodes[i].op {
            case .conv(var c):
                convs += 1
                switch convs {
                case 1: c.activation = .relu6
                case 2: c.groups = 8; c.strideHeight = 2; c.strideWidth = 2; c.activation = .hardswish   // depthwise
                case 3: c.activation = .silu
                case 4: c.kernelWidth = 1; c.padLeft = 0; c.padRight = 0; c.padTop = 0; c.padBottom = 2; c.activation = .gelu
                case 5: c.dilationHeight = 2; c.dilationWidth = 2; c.padTop = 2; c.padLeft = 2; c.padBottom = 2; c.padRight = 2
                        c.groups = 2; c.activation = .sigmoid
                default: c.activation = .tanh   // square: the old kernels
                }
                g.nodes[i].op = .conv(c)
            case .add: g.nodes[i].op = .mul
            case .activation: g.nodes[i].op = .activation(.hardsigmoid)
            case .globalAvgPool: g.nodes[i].op = .adaptiveAvgPool(height: 2, width: 1)
            default: break
            }
        }
        XCTAssertEqual(convs, 6)
        let lowered = try lower(g, maxBatch: 3, seed: 1)
        let e = lowered.engine
        var ops: [String: EngineOp] = [:]
        for k in 1..<e.nodeCount { ops[e.name(of: k)] = e.op(of: k) }
        let names = Set(ops.keys)
        for suffix in ["relu6", "hardswish", "silu", "gelu", "sigmoid", "tanh"] {
            XCTAssertTrue(names.contains { $0.hasSuffix("." + suffix) }, "no .\(suffix) node in \(names.sorted())")
        }
        XCTAssertTrue(ops.values.contains(.mul))
        XCTAssertTrue(ops.values.contains(.adaptiveAvgPool(height: 2, width: 1)))
        XCTAssertTrue(ops.values.contains(.activation(.hardsigmoid)))
        let general = ops.values.compactMap { op -> ConvGeometry? in if case let .convolution(c) = op { return c } else { return nil } }
        XCTAssertEqual(general.count, 3)
        XCTAssertEqual(ops.values.filter { if case .conv = $0 { return true } else { return false } }.count, 3)
        try e.compile(training: true)
        XCTAssertEqual(e.parameters.first { $0.shape == [3, 3, 1, 8] } != nil, true, "depthwise weight (KH,KW,IC/G,OC)")
        XCTAssertTrue((1..<e.nodeCount).contains { e.algorithm(of: $0) == "depthwise" })
        var random = TestRandom(5)
        let y = e.forward(random.normals(3 * e.inputShape.count), batch: 3, training: true)
        let (loss, _) = e.backward(labels: [0, 2, 5], batch: 3)
        XCTAssertTrue(loss.isFinite && y.allSatisfy(\.isFinite))
        XCTAssertEqual(e.outputShape, EngineShape(height: 2, width: 1, channels: 6))
    }
}
