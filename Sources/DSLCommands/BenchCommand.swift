import DSLEngine
import DSLIR
import DSLTraining
import Foundation

/// `dsl bench FILE`: per-layer forward and backward times, training and inference throughput,
/// achieved GFLOP/s and the fraction of this machine's measured peak.
enum BenchCommand {
    static let command = Command(name: "bench", summary: "time every layer forward and backward; throughput, GFLOP/s, % of peak", help: """
    Usage: dsl bench FILE [--batch N] [--threads T] [--steps N] [--format table|json]

    Builds the network on the CPU engine and times, like `caffe time`: each layer's forward
    and backward pass (mean over --steps profiled steps) and its time in the inference-only
    graph ("infer ms"; zero for a folded batch norm, for an add fused into the convolution
    before it, and for 1x1 convolutions run as one GEMM with the first 1x1 convolution of
    the same input, whose time includes theirs), the whole training step
    (forward + backward + SGD update) and inference, in images per second, the achieved
    GFLOP/s (2 x MACs of convolutions and linear layers; backward counts 2 x forward, or
    1 x where no input gradient is computed, as for the first layer) and the fraction of
    this machine's peak FP32 FMA rate, measured before and after the timed steps (the
    higher of the two) and printed. Inference is timed as `dsl run` and a deployment run
    it: the network compiled for inference only (no gradients kept; each convolution keeps
    its packed weights between calls, a batch norm that alone reads a convolution's
    output is folded into it, an add that alone reads one is fused into its store, and the
    1x1 convolutions of one input run as one GEMM). A network that does not end in softmax is timed in
    inference only. The engine's memory is planned first: a batch that does not fit in the
    memory this machine can give is refused, with the largest batch that does. The "kernel" column names each convolution's
    algorithm (with "(infer: ...)" when the inference-only graph chooses another: at batch 1,
    Winograd for 16x16 outputs); Winograd layers do fewer multiplications than a direct convolution, so
    their rate (counted as the direct convolution's FLOPs) can exceed 100 % of peak. A
    ReLU marked "fused fwd" is applied by the convolution before it as it stores its
    output (the convolution's forward time includes it); its backward runs on its own.
    A ReLU marked "fused" after a convolution has, in training, its backward done too: by
    the backward-data of the convolution after it (in that convolution's backward time).
    An activation marked "fused" after a batch norm is applied by the batch norm's store and,
    in training, its backward by the batch norm's backward (both in the batch norm's times).
    Memory-bound layers (batch norm, activations, pooling, add, concat, mul, dropout,
    softmax, depthwise convolutions) are also reported in GB/s against this machine's
    bandwidth, measured as a parallel copy (bytes read + written, as STREAM counts) with
    the same threads: the bytes a pass must move at least, forward reading each input and
    writing the output, backward reading the output gradient and one input-sized tensor
    and reading and writing each input gradient it adds to (writing only one it stores,
    as the first node in backward order to produce it).
    Build in release mode for meaningful figures: swift build -c release.

    Options:
      --batch N        images per batch (default 64)
      --threads T      worker threads (default: all cores)
      --steps N        timed steps (default 5, after 2 warm-up steps)
      --format F       table (default) or json (fields: train_images_per_second,
                       inference_images_per_second, gflops_per_second, peak_gflops,
                       fraction_of_peak, bandwidth_gbps, layers: [{name, op, kernel,
                       forward_ms, backward_ms, inference_ms, macs, flops,
                       gflops_per_second, fraction_of_peak, bytes, gbps,
                       fraction_of_bandwidth}]; the
                       last three null for arithmetic-bound layers)

    """, run: run)

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["--batch", "--threads", "--steps", "--format"], flagOptions: [])
        guard a.positional.count == 1 else { throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file") }
        let batch = try a.integer("--batch", default: 64, in: 1...4096)
        let steps = try a.integer("--steps", default: 5, in: 1...10_000)
        let format = a.value("--format") ?? "table"
        guard format == "table" || format == "json" else { throw UsageError(message: "--format must be table or json") }
        engineThreadCount = try a.integer("--threads", default: ProcessInfoCores.count, in: 1...256)
        guard let (checked, g, cost) = try loadChecked(a.positional[0], printWarnings: false) else { return ExitCode.failure }
        // Training needs the loss of a final softmax; other networks are timed in inference only.
        let trains = endsInSoftmax(g)
        guard let lowered = try lowerAndCompile(checked, graph: g, batch: batch, seed: 1, training: trains) else {
            return ExitCode.failure
        }
        let engine = lowered.engine
        var rng = EngineRandom(seed: 42)
        var input = [Float](repeating: 0, count: batch * g.inputShape.elements)
        for i in input.indices { input[i] = Float(rng.normal()) }
        let classes = engine.classCount
        var labels = [Int32](repeating: 0, count: batch)
        for i in 0..<batch { labels[i] = Int32(rng.next() % UInt64(classes)) }
        // Measured before and after the timed steps, keeping the higher: other work on a shared
        // machine can slow one ~0.1 s measurement, which would overstate every fraction of peak.
        let peakBefore = machinePeakGFLOPS(threads: engineThreadCount)
        // The trainer's fused SGD update (momentum 0.9, tiny learning rate so the weights stay put).
        let optimizer = try SGDOptimizer(parameterCount: engine.parameterCount, momentum: 0.9)

        func trainStep() {
            input.withUnsafeBufferPointer { _ = engine.forward($0.baseAddress!, batch: batch, training: true) }
            _ = labels.withUnsafeBufferPointer { engine.backward(labels: $0.baseAddress!, batch: batch) }
            optimizer.step(parameters: engine.parameterValues, gradients: engine.parameterGrads, learningRate: 1e-6)
        }
        // Inference runs on the network compiled for inference only, as `dsl run` runs it.
        let inferEngine: EngineGraph
        if trains {
            guard let l = try lowerAndCompile(checked, graph: g, batch: batch, seed: 1, training: false) else {
                return ExitCode.failure
            }
            inferEngine = l.engine
        } else {
            inferEngine = engine
        }
        func inferStep() { input.withUnsafeBufferPointer { _ = inferEngine.forward($0.baseAddress!, batch: batch, training: false) } }

        var trainIPS = 0.0
        if trains {
            for _ in 0..<2 { trainStep() }
            let t0 = Date()
            for _ in 0..<steps { trainStep() }
            trainIPS = Double(batch * steps) / Date().timeIntervalSince(t0)
        }
        for _ in 0..<2 { inferStep() }
        let t1 = Date()
        for _ in 0..<steps { inferStep() }
        let inferIPS = Double(batch * steps) / Date().timeIntervalSince(t1)

        // Per-layer profile.
        engine.profiling = true
        for _ in 0..<steps { if trains { trainStep() } else { inferStep() } }
        engine.profiling = false
        // Each layer's time in the inference-only graph (folded batch norms take none).
        var inferenceMS: [String: Double] = [:]
        if trains {
            inferEngine.profiling = true
            for _ in 0..<steps { inferStep() }
            inferEngine.profiling = false
        }
        // A convolution's algorithm in the inference-only graph, where it differs from the
        // training graph's (batch 1: Winograd on 16×16 outputs for inference only).
        var inferenceKernel: [String: String] = [:]
        for e in 1..<inferEngine.nodeCount {
            inferenceMS[inferEngine.name(of: e)] = inferEngine.forwardSeconds[e] / Double(steps) * 1000
            if case .conv? = inferEngine.op(of: e), let a = inferEngine.algorithm(of: e) { inferenceKernel[inferEngine.name(of: e)] = a }
        }
        let peak = max(peakBefore, machinePeakGFLOPS(threads: engineThreadCount))
        // The machine's bandwidth with the engine's harness (a parallel copy of 64 MB, STREAM's
        // bytes read + written), against which the memory-bound layers are reported.
        let bandwidth = (try? benchmarkStreamCopy(megabytes: 64, threads: engineThreadCount)) ?? 0
        struct Row { var name: String; var op: String; var kernel: String; var fwd: Double; var bwd: Double
                     var infer: Double; var macs: Int; var flops: Double; var bytes: Double? }
        var rows: [Row] = []
        for e in 1..<engine.nodeCount {
            let ir = lowered.sourceOf[e]
            let isPrimary = engine.name(of: e) == g.nodes[ir].name
            let macs = isPrimary ? cost.nodes[ir].macs * batch : 0
            // Forward, plus in training the weight gradient and (unless nobody needs it) dX.
            let passes = trains ? (engine.computesInputGradient(of: e) ? 3 : 2) : 1
            // Memory-bound layers: the bytes their passes must move (none for a forward another
            // kernel applies as it stores, "fused fwd", nor for a backward it does too, "fused").
            var kernel = engine.algorithm(of: e) ?? ""
            if trains, case .conv? = engine.op(of: e), let a = inferenceKernel[engine.name(of: e)],
               a.split(separator: " ").first != kernel.split(separator: " ").first {
                kernel += " (infer: \(a))"
            }
            let bytes = engine.compulsoryBytes(of: e, batch: batch).map { b in
                (kernel.contains("fused") ? 0 : b.forward)
                    + (trains && engine.computesInputGradient(of: e) && kernel != "fused" ? b.backward : 0)
            }
            rows.append(Row(name: engine.name(of: e), op: engine.op(of: e).map { "\($0)" } ?? "",
                            kernel: kernel, fwd: engine.forwardSeconds[e] / Double(steps) * 1000,
                            bwd: trains ? engine.backwardSeconds[e] / Double(steps) * 1000 : 0,
                            infer: inferenceMS[engine.name(of: e)] ?? 0, macs: macs,
                            flops: Double(2 * macs * passes), bytes: bytes))
        }
        let flopsPerImage = rows.reduce(0) { $0 + $1.flops } / Double(batch)
        let gflops = (trains ? trainIPS : inferIPS) * flopsPerImage / 1e9
        func layerGFLOPS(_ r: Row) -> Double {
            let t = (r.fwd + r.bwd) / 1000
            return t > 0 ? r.flops / t / 1e9 : 0
        }
        /// GB/s of a memory-bound layer (nil for others, and below a microsecond of time).
        func layerGBps(_ r: Row) -> Double? {
            let t = (r.fwd + r.bwd) / 1000
            guard let b = r.bytes, b > 0, t > 1e-6 else { return nil }
            return b / t / 1e9
        }
        if format == "json" {
            out(JSON.object([
                ("network", .string(g.name)), ("batch", .int(batch)), ("threads", .int(engineThreadCount)),
                ("train_images_per_second", trains ? .double(trainIPS) : .null), ("inference_images_per_second", .double(inferIPS)),
                ("gflops_per_second", .double(gflops)), ("peak_gflops", .double(peak)), ("fraction_of_peak", .double(gflops / peak)),
                ("bandwidth_gbps", .double(bandwidth)),
                ("layers", .array(rows.map { r in .object([("name", .string(r.name)), ("op", .string(r.op)), ("kernel", .string(r.kernel)), ("forward_ms", .double(r.fwd)), ("backward_ms", .double(r.bwd)), ("inference_ms", .double(r.infer)),
                                                         ("macs", .int(r.macs)), ("flops", .double(r.flops)), ("gflops_per_second", .double(layerGFLOPS(r))), ("fraction_of_peak", .double(layerGFLOPS(r) / peak)),
                                                         ("bytes", r.bytes.map { .double($0) } ?? .null), ("gbps", layerGBps(r).map { .double($0) } ?? .null),
                                                         ("fraction_of_bandwidth", layerGBps(r).map { .double(bandwidth > 0 ? $0 / bandwidth : 0) } ?? .null)]) })),
            ]).render() + "\n")
            return ExitCode.ok
        }
        /// `text` right-aligned in `width` columns.
        func right(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        var s = "\(g.name): batch \(batch), \(engineThreadCount) thread\(engineThreadCount == 1 ? "" : "s"), measured peak \(String(format: "%.0f", peak)) GFLOP/s (FP32 FMA), bandwidth \(String(format: "%.1f", bandwidth)) GB/s (copy)\n\n"
        let nameW = max(5, rows.map(\.name.count).max() ?? 5), opW = max(2, rows.map(\.op.count).max() ?? 2)
        let kernelW = max(6, rows.map(\.kernel.count).max() ?? 6)
        s += "layer".padding(toLength: nameW, withPad: " ", startingAt: 0) + "  " + "op".padding(toLength: opW, withPad: " ", startingAt: 0)
            + "  " + "kernel".padding(toLength: kernelW, withPad: " ", startingAt: 0) + "  forward ms  backward ms  infer ms  GFLOP/s  % peak   GB/s  % bw\n"
        for r in rows {
            let gf = layerGFLOPS(r)
            s += r.name.padding(toLength: nameW, withPad: " ", startingAt: 0) + "  " + r.op.padding(toLength: opW, withPad: " ", startingAt: 0)
                + "  " + r.kernel.padding(toLength: kernelW, withPad: " ", startingAt: 0)
                + String(format: "  %10.2f  %11.2f  %8.2f", r.fwd, r.bwd, r.infer)
                + "  " + right(gf > 0 ? String(format: "%.1f", gf) : "", 7) + "  " + right(gf > 0 ? String(format: "%.0f%%", gf / peak * 100) : "", 6)
            if let gb = layerGBps(r) {
                s += "  " + right(String(format: "%.1f", gb), 5) + "  " + right(String(format: "%.0f%%", bandwidth > 0 ? gb / bandwidth * 100 : 0), 4)
            }
            s += "\n"
        }
        let tf = rows.reduce(0) { $0 + $1.fwd }, tb = rows.reduce(0) { $0 + $1.bwd }
        let ti = rows.reduce(0) { $0 + $1.infer }
        s += String(format: "\ntotal: forward %.1f ms, backward %.1f ms, inference %.1f ms per batch of %d\n", tf, tb, ti, batch)
        if trains { s += String(format: "training:  %.1f images/s (forward + backward + SGD)\n", trainIPS) }
        s += String(format: "inference: %.1f images/s\n", inferIPS)
        s += String(format: "achieved:  %.1f GFLOP/s (%.0f%% of peak) in %@\n", gflops, gflops / peak * 100, trains ? "training" : "inference")
        out(s)
        return ExitCode.ok
    }
}
