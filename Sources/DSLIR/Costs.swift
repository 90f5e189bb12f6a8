/// What one node costs, per image unless stated (README, "Counting rules").
public struct NodeCost: Sendable, Equatable {
    /// Trainable elements: weights, biases, batch-norm scale and shift.
    public var params = 0
    /// Elements of `params` that are never trained (`freeze`): counted in `params` (they are
    /// parameters, as PyTorch's `parameters()` counts a tensor with requires_grad False).
    public var frozen = 0
    /// Non-trainable elements a checkpoint holds (buffers, as Keras's "non-trainable params"):
    /// batch norm's running mean and variance, 2 per channel.
    public var buffers = 0
    /// Weights only: convolution kernels and linear matrices (no biases, no batch norm).
    public var weights = 0
    /// Multiply-accumulates of convolutions and linear layers.
    public var macs = 0
    /// Other arithmetic: one per element for batch norm, activations, dropout and additions,
    /// k·k per output element for pooling, one per input element for global average pooling.
    public var otherOps = 0
    /// Receptive field in input rows (the maximum over paths through branches), at most
    /// `CostModel.maxReceptiveField`: a value at the cap means "at least this". For a node
    /// after a global operation (`isGlobal`) it is the receptive field of the spatial layers
    /// before it (the last convolution's, or pooling's): every output of such a node depends
    /// on the whole input, and growing the figure by the pooled map's size would report more
    /// pixels than the input has.
    public var receptiveFieldHeight = 1
    /// Receptive field in input columns (as `receptiveFieldHeight`; differs from it only after
    /// rectangular kernels, dilations or adaptive pooling of a non-square map).
    public var receptiveFieldWidth = 1
    /// The larger of the two receptive-field extents (the one figure shown when they agree).
    public var receptiveField: Int { max(receptiveFieldHeight, receptiveFieldWidth) }
    /// Whether a global average pooling or a fully connected layer lies on a path to this node
    /// (the node itself included): each of its outputs sees the whole input.
    public var isGlobal = false
    /// Cumulative stride along rows: input rows between neighbouring outputs (maximum over
    /// paths), at most `CostModel.maxReceptiveField`: a value at the cap means "at least this".
    public var cumulativeStrideHeight = 1
    /// Cumulative stride along columns.
    public var cumulativeStrideWidth = 1
    /// The larger of the two cumulative strides.
    public var cumulativeStride: Int { max(cumulativeStrideHeight, cumulativeStrideWidth) }
    /// Whether the receptive field or the cumulative stride reached `CostModel.maxReceptiveField`
    /// (the true value is at least the cap).
    public var isCapped: Bool { receptiveField >= CostModel.maxReceptiveField || cumulativeStride >= CostModel.maxReceptiveField }
    /// This node's count in the convention of the `ptflops` package, which the reference
    /// figures of the All-CNN family use: MACs plus one per output element for each bias,
    /// activation and (affine) batch-norm parameter pair, plus the input elements of pooling.
    public var ptflopsMACs = 0
    /// Activation elements this node materialises per image (a conv with batch norm and
    /// an activation materialises three tensors in training).
    public var activationElements = 0
}

/// Costs of a whole network: per node and totals.
public struct NetworkCost: Sendable {
    /// Per node, indexed like `Graph.nodes`.
    public var nodes: [NodeCost]
    /// Sum of parameters (trainable).
    public var params: Int
    /// Sum of frozen parameters (`freeze`: part of `params`, never trained).
    public var frozen: Int { nodes.reduce(0) { $0 + $1.frozen } }
    /// Sum of buffers (non-trainable: batch-norm running statistics).
    public var buffers: Int { nodes.reduce(0) { $0 + $1.buffers } }
    /// Sum of weights (no biases or batch norm).
    public var weights: Int
    /// Sum of MACs.
    public var macs: Int
    /// Sum of other ops.
    public var otherOps: Int
    /// The total in the `ptflops` convention (see `NodeCost.ptflopsMACs`).
    public var ptflopsMACs: Int { nodes.reduce(0) { $0 + $1.ptflopsMACs } }
    /// FLOPs = 2 × MACs.
    public var flops: Int { 2 * macs }
    /// Activation elements per image, input included.
    public var activationElements: Int

    /// Training memory at batch B, fp32: weights + gradients + momentum (3 × params) and
    /// every saved activation (input included) with its gradient counted once more for the
    /// live gradient buffers, approximated as saved activations + the largest gradient pair.
    /// The arithmetic saturates at `Int.max` (never reached for the networks the front end
    /// accepts, at any batch up to 10^6; a larger batch must not trap).
    public func trainingBytes(batch: Int) -> Int {
        let largest = nodes.map(\.activationElements).max() ?? 0
        let perImage = saturatingAdd(activationElements, saturatingMul(2, largest))
        return saturatingMul(4, saturatingAdd(saturatingMul(3, params), saturatingMul(max(0, batch), perImage)))
    }

    /// Inference memory at batch B: params plus the two largest live activations (saturating
    /// at `Int.max`, as `trainingBytes`).
    public func inferenceBytes(batch: Int) -> Int {
        var first = 0, second = 0
        for n in nodes {
            let e = n.activationElements
            if e > first { second = first; first = e } else if e > second { second = e }
        }
        return saturatingMul(4, saturatingAdd(params, saturatingMul(max(0, batch), saturatingAdd(first, second))))
    }

    /// Sums costs over a set of node ids.
    public func sum(_ ids: [Int]) -> (params: Int, weights: Int, macs: Int) {
        var p = 0, w = 0, m = 0
        for i in ids { p += nodes[i].params; w += nodes[i].weights; m += nodes[i].macs }
        return (p, w, m)
    }

    /// Sums buffers (non-trainable elements) over a set of node ids.
    public func buffers(_ ids: [Int]) -> Int {
        ids.reduce(0) { $0 + nodes[$1].buffers }
    }
}

/// `a + b`, or `Int.max` / `Int.min` where the sum does not fit.
@inline(__always) func saturatingAdd(_ a: Int, _ b: Int) -> Int {
    let (r, o) = a.addingReportingOverflow(b)
    return o ? (b > 0 ? Int.max : Int.min) : r
}

/// `a * b` for non-negative operands, or `Int.max` where the product does not fit.
@inline(__always) func saturatingMul(_ a: Int, _ b: Int) -> Int {
    let (r, o) = a.multipliedReportingOverflow(by: b)
    return o ? Int.max : r
}

/// Computes the costs of every node (`README.md`, "Counting rules").
///
/// Parameters, weights, MACs, other ops and activation elements cannot overflow: the
/// elaborator refuses networks beyond `Elaborator.maxElements`, `maxMACs` and `maxParams`.
/// The receptive field and the cumulative stride are not bounded by those limits (a 1x1 input
/// keeps its size through any number of stride-2 layers), so they saturate at
/// `maxReceptiveField`.
public enum CostModel {
    /// The largest receptive field and cumulative stride reported, 10^15 (a value at the cap
    /// means "at least this"; no input is wider than 2^20 pixels).
    public static let maxReceptiveField = 1_000_000_000_000_000

    /// `min(cap, rf + (k - 1) * jump)`, `min(cap, jump * stride)` without overflow.
    @inline(__always) static func grow(_ rf: Int, window: Int, jump: Int) -> Int {
        min(maxReceptiveField, saturatingAdd(rf, saturatingMul(max(0, window - 1), jump)))
    }
    @inline(__always) static func stride(_ jump: Int, _ s: Int) -> Int {
        min(maxReceptiveField, saturatingMul(jump, max(1, s)))
    }

    /// Whether the `ptflops` package counts an activation (one per element): its hooks cover
    /// ReLU, LeakyReLU and ReLU6 modules, not GELU, SiLU, the hard and smooth sigmoids or tanh.
    static func ptflopsCounts(_ a: Activation) -> Bool {
        switch a {
        case .relu, .leaky, .relu6: return true
        case .none, .gelu, .silu, .hardswish, .hardsigmoid, .sigmoid, .tanh: return false
        }
    }

    /// The sizes of PyTorch's AdaptiveAvgPool2d bins along one axis: bin i covers
    /// floor(i·n/out) ..< ceil((i+1)·n/out).
    public static func adaptiveBins(_ n: Int, _ out: Int) -> [Int] {
        (0..<max(0, out)).map { i in ((i + 1) * n + out - 1) / out - (i * n) / out }
    }

    /// Costs of all nodes and totals.
    public static func analyze(_ g: Graph) -> NetworkCost {
        var costs = [NodeCost](repeating: NodeCost(), count: g.nodes.count)
        for n in g.nodes {
            var c = NodeCost()
            let out = n.shape
            let ins = n.inputs.map { g.nodes[$0].shape }
            let inCosts = n.inputs.map { costs[$0] }
            // The spatial path: a 1x1 input that `mul` broadcasts over a larger map (the
            // excitation of squeeze-and-excitation) scales every cell by a global figure, and
            // is left out of the receptive field, the stride and `isGlobal`, as receptive-field
            // tools count the convolution path (else every layer after the first SE block
            // would report the receptive field of the layers before it).
            var spatial = inCosts
            if case .mul = n.op, out.height * out.width > 1 {
                spatial = n.inputs.indices.filter { ins[$0].height == out.height && ins[$0].width == out.width }.map { inCosts[$0] }
            }
            let rfInH = spatial.map(\.receptiveFieldHeight).max() ?? 1
            let rfInW = spatial.map(\.receptiveFieldWidth).max() ?? 1
            let jumpInH = spatial.map(\.cumulativeStrideHeight).max() ?? 1
            let jumpInW = spatial.map(\.cumulativeStrideWidth).max() ?? 1
            c.receptiveFieldHeight = rfInH; c.receptiveFieldWidth = rfInW
            c.cumulativeStrideHeight = jumpInH; c.cumulativeStrideWidth = jumpInW
            c.isGlobal = spatial.contains { $0.isGlobal }
            c.activationElements = out.elements
            /// A window of `h`×`w` input cells (of the input's grid) moved by `sh`×`sw`.
            func window(_ h: Int, _ w: Int, stride sh: Int, _ sw: Int) {
                c.receptiveFieldHeight = grow(rfInH, window: h, jump: jumpInH)
                c.receptiveFieldWidth = grow(rfInW, window: w, jump: jumpInW)
                c.cumulativeStrideHeight = stride(jumpInH, sh)
                c.cumulativeStrideWidth = stride(jumpInW, sw)
            }
            /// Everything after this node sees the whole input.
            func global() {
                c.isGlobal = true
                c.cumulativeStrideHeight = stride(jumpInH, ins[0].height)
                c.cumulativeStrideWidth = stride(jumpInW, ins[0].width)
            }
            switch n.op {
            case .input:
                break
            case .conv(let a):
                // A grouped convolution's filter sees IC/G channels (depthwise: one).
                let cinPerGroup = ins[0].channels / a.groups
                let kernelArea = a.kernelHeight * a.kernelWidth
                c.weights = kernelArea * cinPerGroup * a.filters
                let bnScale = a.batchNorm && a.norm.scale ? a.filters : 0, bnShift = a.batchNorm ? a.filters : 0
                c.params = c.weights + (a.bias ? a.filters : 0) + bnScale + bnShift
                c.frozen = (a.training.frozenWeight ? c.weights + bnScale : 0) + (a.training.frozenBias ? (a.bias ? a.filters : 0) + bnShift : 0)
                c.buffers = a.batchNorm ? 2 * a.filters : 0
                c.macs = out.height * out.width * a.filters * kernelArea * cinPerGroup
                var extra = 0
                if a.batchNorm { extra += 1 }
                if a.activation != .none { extra += 1 }
                c.otherOps = extra * out.elements
                c.activationElements = out.elements * (1 + extra)
                // A dilated kernel spans dilation·(K − 1) + 1 input cells.
                window(a.spanHeight, a.spanWidth, stride: a.strideHeight, a.strideWidth)
                c.ptflopsMACs = c.macs + out.elements * ((a.bias ? 1 : 0) + (a.batchNorm ? 2 : 0) + (ptflopsCounts(a.activation) ? 1 : 0))
            case .pool(let p):
                c.ptflopsMACs = ins[0].elements
                c.otherOps = out.elements * p.kernel * p.kernel
                window(p.kernel, p.kernel, stride: p.stride, p.stride)
            case .globalAvgPool:
                c.otherOps = ins[0].elements
                c.ptflopsMACs = ins[0].elements
                global()
            case .adaptiveAvgPool(let oh, let ow):
                // One addition per input cell of every bin (bins overlap when the size does not
                // divide), as ptflops: the input elements.
                let rows = adaptiveBins(ins[0].height, oh), cols = adaptiveBins(ins[0].width, ow)
                c.otherOps = rows.reduce(0, +) * cols.reduce(0, +) * out.channels
                c.ptflopsMACs = ins[0].elements
                if oh == 1 && ow == 1 {
                    global()
                } else {
                    // The largest bin is the window; bin starts are at most ceil(H/OH) apart.
                    window(rows.max() ?? 1, cols.max() ?? 1,
                           stride: (ins[0].height + oh - 1) / oh, (ins[0].width + ow - 1) / ow)
                }
            case .batchNorm(let b):
                c.params = (b.scale ? 2 : 1) * out.channels
                c.frozen = (b.training.frozenWeight && b.scale ? out.channels : 0) + (b.training.frozenBias ? out.channels : 0)
                c.buffers = 2 * out.channels
                c.otherOps = out.elements
                c.ptflopsMACs = 2 * out.elements
            case .activation(let a):
                c.otherOps = out.elements
                c.ptflopsMACs = ptflopsCounts(a) ? out.elements : 0
            case .dropout, .softmax, .scale:
                c.otherOps = out.elements
            case .linear(let l):
                let fin = ins[0].elements
                c.weights = fin * l.units
                c.params = c.weights + (l.bias ? l.units : 0)
                c.frozen = (l.training.frozenWeight ? c.weights : 0) + (l.training.frozenBias && l.bias ? l.units : 0)
                c.macs = fin * l.units
                c.ptflopsMACs = c.macs + (l.bias ? l.units : 0) + (ptflopsCounts(l.activation) ? l.units : 0)
                c.otherOps = l.activation == .none ? 0 : l.units
                c.activationElements = out.elements * (l.activation == .none ? 1 : 2)
                global()
            case .concat:
                break
            case .add, .mul:
                c.otherOps = out.elements * max(0, n.inputs.count - 1)
            }
            // Past a global operation every output sees the whole input: the figure stays the
            // spatial layers' (a convolution on the pooled 1x1 map does not widen it).
            if c.isGlobal { c.receptiveFieldHeight = rfInH; c.receptiveFieldWidth = rfInW }
            costs[n.id] = c
        }
        return NetworkCost(
            nodes: costs,
            params: costs.reduce(0) { $0 + $1.params },
            weights: costs.reduce(0) { $0 + $1.weights },
            macs: costs.reduce(0) { $0 + $1.macs },
            otherOps: costs.reduce(0) { $0 + $1.otherOps },
            activationElements: costs.reduce(0) { $0 + $1.activationElements })
    }

    /// Node ids inside every module instance (including nested modules), indexed like
    /// `Graph.modules`, in one pass over the nodes. Calling `members(of:in:)` once per module
    /// scanned every node for every module: quadratic, 4 s for 10,000 block calls.
    public static func membersByModule(in g: Graph) -> [[Int]] {
        var members = [[Int]](repeating: [], count: g.modules.count)
        for n in g.nodes {
            var m = n.module
            while let id = m { members[id].append(n.id); m = g.modules[id].parent }
        }
        return members
    }

    /// The node ids inside each module instance (including nested modules) as ranges, indexed
    /// like `Graph.modules`, in time and memory linear in the number of nodes and modules. The
    /// elaborator builds a module's nodes one after the other, so they are contiguous:
    /// `membersByModule` holds the same ids, but as one array per module and nesting level
    /// (2,000,000 nodes 60 modules deep are 120,000,000 ids). Empty modules have empty ranges.
    public static func memberRanges(in g: Graph) -> [Range<Int>] {
        var lo = [Int](repeating: Int.max, count: g.modules.count)
        var hi = [Int](repeating: Int.min, count: g.modules.count)
        for n in g.nodes {
            guard let m = n.module else { continue }
            lo[m] = min(lo[m], n.id); hi[m] = max(hi[m], n.id)
        }
        // A module is created before the modules inside it: children have larger ids.
        for m in g.modules.indices.reversed() {
            guard let p = g.modules[m].parent, lo[m] <= hi[m] else { continue }
            lo[p] = min(lo[p], lo[m]); hi[p] = max(hi[p], hi[m])
        }
        return g.modules.indices.map { lo[$0] <= hi[$0] ? lo[$0]..<(hi[$0] + 1) : 0..<0 }
    }

    /// Node ids inside a module instance (including nested modules).
    public static func members(of module: Int, in g: Graph) -> [Int] {
        g.nodes.filter { n in
            var m = n.module
            while let id = m { if id == module { return true }; m = g.modules[id].parent }
            return false
        }.map(\.id)
    }
}

