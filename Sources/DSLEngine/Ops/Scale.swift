// Multiplication by a constant (`scale 1/9`: airbench's logit scaling).
// inp is (B,H,W,C), out is (B,H,W,C)
// y = factor·x; backward dx += factor·dy. Forward saves nothing; backward reads neither the
// input nor the output. Elementwise, in chunks: identical for any thread count.

/// Constant-multiply kernel.
final class ScaleKernel: EngineKernel {
    let factor: Float
    let io: UnaryTensors

    init(factor: Float, storage s: NodeStorage) {
        self.factor = factor
        io = UnaryTensors(s)
    }

    func forward(batch: Int, training: Bool) {
        // (B,H,W,C) -> (B,H,W,C)
        let count = batch * io.outShape.count
        let (x, y, a) = (UnsafePointer(io.input), io.output, factor)
        let chunks = elementwiseChunks(count)
        parallelFor(chunks) { chunk in
            for i in chunkRange(chunk, of: chunks, count: count) { y[i] = a * x[i] }
        }
    }

    func backward(batch: Int) {
        // dY (B,H,W,C) -> dX (B,H,W,C), accumulated
        guard let dOut = io.outputGrad, let dIn = io.inputGrad else { return }
        let count = batch * io.outShape.count
        let (dy, dx, a) = (UnsafePointer(dOut), dIn, factor)
        let chunks = elementwiseChunks(count)
        parallelFor(chunks) { chunk in
            for i in chunkRange(chunk, of: chunks, count: count) { dx[i] += a * dy[i] }
        }
    }
}
