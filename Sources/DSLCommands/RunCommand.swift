import DSLEngine
import DSLIR
import Foundation

/// `dsl run FILE`: pushes random input through the lowered network on the CPU engine.
enum RunCommand {
    static let command = Command(name: "run", summary: "run random input through the network (forward, optionally backward)", help: """
    Usage: dsl run FILE [--batch N] [--seed S] [--threads T] [--backward]

    Lowers the checked network to the CPU engine, feeds a batch of random N(0,1) images
    (deterministic under --seed), and prints the output shape and a checksum of the output.
    With --backward it also computes the softmax cross-entropy loss against random labels,
    runs the backward pass and prints the loss and a checksum of all parameter gradients.

    Options:
      --batch N      images per batch (default 2)
      --seed S       seed for the weights, the input and dropout (default 1)
      --threads T    worker threads (default: all cores)
      --backward     also run the backward pass (the network must end in softmax)

    """, run: run)

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["--batch", "--seed", "--threads"], flagOptions: ["--backward"])
        guard a.positional.count == 1 else { throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file") }
        let batch = try a.integer("--batch", default: 2, in: 1...4096)
        let seed = UInt64(try a.integer("--seed", default: 1, in: 0...Int.max))
        engineThreadCount = try a.integer("--threads", default: ProcessInfoCores.count, in: 1...256)
        guard let (_, g, _) = try loadChecked(a.positional[0]) else { return ExitCode.failure }
        let backward = a.has("--backward")
        if backward, case .softmax = g.nodes[g.output].op {} else if backward {
            throw CommandFailure(message: "--backward needs a network that ends in 'softmax' (the loss is softmax cross-entropy)")
        }
        let lowered = try lower(g, maxBatch: batch, seed: seed)
        let engine = lowered.engine
        engine.compile(training: backward)
        var rng = EngineRandom(seed: seed &+ 0x9E37_79B9)
        let inputCount = batch * g.inputShape.elements
        var input = [Float](repeating: 0, count: inputCount)
        for i in 0..<inputCount { input[i] = Float(rng.normal()) }
        let start = Date()
        let outPtr = input.withUnsafeBufferPointer { engine.forward($0.baseAddress!, batch: batch, training: backward) }
        let outShape = engine.outputShape
        let outCount = batch * outShape.height * outShape.width * outShape.channels
        var sum = 0.0, abs = 0.0
        for i in 0..<outCount { sum += Double(outPtr[i]); abs += Double(Swift.abs(outPtr[i])) }
        out("\(g.name): output \(batch)x\(outShape.height)x\(outShape.width)x\(outShape.channels) (batch x H x W x C)\n")
        out(String(format: "output checksum: sum %.6f, sum|x| %.6f\n", sum, abs))
        if backward {
            var labels = [Int32](repeating: 0, count: batch)
            let classes = outShape.height * outShape.width * outShape.channels
            var lrng = EngineRandom(seed: seed &+ 7)
            for i in 0..<batch { labels[i] = Int32(lrng.next() % UInt64(classes)) }
            let (loss, _) = labels.withUnsafeBufferPointer { engine.backward(labels: $0.baseAddress!, batch: batch) }
            var gsum = 0.0
            let grads = engine.parameterGrads
            for i in 0..<engine.parameterCount { gsum += Double(Swift.abs(grads[i])) }
            out(String(format: "loss %.6f, gradient checksum sum|g| %.6f over %d parameters\n", loss, gsum, engine.parameterCount))
        }
        out(String(format: "time %.3f s, engine memory %@\n", Date().timeIntervalSince(start), bytes(engine.plannedBytes)))
        return ExitCode.ok
    }
}

