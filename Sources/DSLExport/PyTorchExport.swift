import DSLEngine
import DSLIR
import DSLTraining

/// PyTorch export: a checked network as readable Python, one `nn.Module` whose layers compute
/// exactly what dsl's CPU engine computes (Lowering.swift, Ops/), plus the functions that move
/// weights between the module and dsl's checkpoints; and a self-contained `torchrun` training
/// script reproducing `dsl train`'s recipe. README, "Export and scale out".
///
/// The generated module takes NCHW input (N, C, H, W), preprocessed as dsl's checkpoint says
/// (`Preprocessor`), and returns the logits: the input of the network's final softmax, (N, C)
/// for a 1×1 output map, else (N, C, H, W) (a network without a final softmax returns its last
/// layer's output). `DSL_NAMES` maps every state_dict key to dsl's name (see PyTorchNames.swift).
public enum PyTorchExport {
    /// The Python source of the module file for a checked graph. `source` is the spec's path
    /// (recorded in the file); `weights`, when given, the checkpoint `load_dsl_checkpoint(model)`
    /// loads by default (the caller has checked that it belongs to this network).
    public static func module(_ graph: Graph, source: String, weights: String? = nil) throws -> String {
        let generator = PyTorchGenerator(graph, source: source, weights: weights)
        return generator.header(kind: "module") + generator.moduleBody()
    }

    /// The Python source of a `torchrun`-ready training script for a classifier graph (one that
    /// ends in softmax): the module file's contents followed by the trainer. Throws otherwise.
    public static func trainingScript(_ graph: Graph, source: String, weights: String? = nil) throws -> String {
        guard case .softmax = graph.nodes[graph.output].op else {
            throw ExportError("training needs a network that ends in 'softmax' (the loss is softmax cross-entropy); this one ends in '\(graph.nodes[graph.output].name)'")
        }
        let generator = PyTorchGenerator(graph, source: source, weights: weights)
        return generator.header(kind: "training script") + generator.moduleBody() + pyTorchTrainingCode + "\n"
    }

    /// Every state_dict tensor of the generated module with its dsl name, layout and dsl
    /// shape, in dsl's parameter order (buffers beside their layer).
    public static func stateEntries(_ graph: Graph) -> [PyTorchStateEntry] {
        PyTorchNaming(graph).entries
    }

    /// The name of the generated `nn.Module` class for a network name (`all-cnn-c` → `AllCnnC`).
    public static func className(for network: String) -> String {
        var result = ""
        var upper = true
        for ch in network {
            if ch.isASCII && (ch.isLetter || ch.isNumber) {
                result.append(upper ? Character(ch.uppercased()) : ch)
                upper = false
            } else {
                upper = true
            }
        }
        if result.isEmpty || result.first!.isNumber { result = "Net" + result }
        let taken: Set<String> = ["Conv", "Linear", "BatchNorm", "Block", "Model", "Preprocessor", "DSLCheckpoint",
                                  "DSLCheckpointError", "None", "True", "False", "F", "nn", "torch", "math", "os"]
        if taken.contains(result) { result += "Net" }
        return result
    }
}

/// Builds the Python text for one graph.
struct PyTorchGenerator {
    let graph: Graph
    let source: String
    let weights: String?
    let naming: PyTorchNaming
    let className: String

    init(_ graph: Graph, source: String, weights: String?) {
        self.graph = graph
        self.source = source
        self.weights = weights
        naming = PyTorchNaming(graph)
        className = PyTorchExport.className(for: graph.name)
    }

    /// Whether the last node is the softmax the module leaves out (its input is the output).
    var endsInSoftmax: Bool {
        if case .softmax = graph.nodes[graph.output].op { return true }
        return false
    }

    /// The node whose value `forward` returns.
    var returnedNode: Int { endsInSoftmax ? graph.nodes[graph.output].inputs[0] : graph.output }

    func header(kind: String) -> String {
        """
        # \(graph.name): PyTorch \(kind) exported by dsl from \(pythonComment(source)).
        # Generated code: regenerate with 'dsl export' rather than editing it.

        """
    }

    /// Everything of the module file after its first comment lines.
    func moduleBody() -> String {
        var s = docstring()
        s += pyTorchModuleImports
        s += constants()
        s += pyTorchLayerClasses
        s += networkClass()
        s += stateTable()
        s += pyTorchModuleFunctions
        return s
    }

    func docstring() -> String {
        let input = graph.inputShape
        let output = graph.nodes[returnedNode].shape
        let outputText = output.height == 1 && output.width == 1
            ? "(N, \(output.channels))"
            : "(N, \(output.channels), \(output.height), \(output.width))"
        let what = endsInSoftmax
            ? "the logits, the input of the network's final softmax (left out, as PyTorch classifiers do)"
            : "the output of the network's last layer (it does not end in softmax)"
        return #"""
        """The dsl network '\#(graph.name)' as a PyTorch module: class \#(className) (also named Model).

        Every layer computes what dsl's CPU engine computes (README, "Export and scale out").

        Input: float32 (N, \#(input.channels), \#(input.height), \#(input.width)) (N, C, H, W), preprocessed as the
        checkpoint's Preprocessor says (dsl trains on raw 0..255 pixels standardised or GCN+ZCA
        whitened). Output: \#(what), \#(outputText).
        dsl_loss(logits, labels) and dsl_predict(logits) are dsl's loss and prediction.

        Weights: DSL_NAMES maps every state_dict key to dsl's parameter or buffer name (the layer
        names of 'dsl check'). load_dsl_checkpoint(model, path) reads a dsl checkpoint
        (.safetensors; conv weights (KH, KW, IC, OC) -> (OC, IC, KH, KW), fc weights (IN, OUT) ->
        (OUT, IN) with IN in dsl's (h, w, c) order, batch-norm running statistics included) and
        refuses one of another network; save_dsl_checkpoint(model, path, ...) writes the model
        back in dsl's format, for 'dsl eval' and the other dsl commands.

        Initialisation follows dsl: conv weights N(0, 2 / (K*K*max(IC, OC))), fc weights N(0, 1 / IN),
        biases 0 (a ReLU classifier's 1, DSL_INITIAL_BIAS), batch norm scale 1 and shift 0. Model(seed=S) gives exactly the weights dsl's
        engine starts from with seed S ('dsl train --seed S').
        """

        """#
    }

    func constants() -> String {
        let input = graph.inputShape
        let output = graph.nodes[returnedNode].shape
        let parameters = naming.entries.filter { !$0.isBuffer }.reduce(0) { $0 + $1.dslShape.reduce(1, *) }
        return """

        NETWORK = \(pythonString(graph.name))
        SOURCE = \(pythonString(source))
        SPEC_HASH = \(pythonString(Trainer.hash(graph)))  # dsl's hash of the network's layers (names, ops, shapes)
        SPEC_LAYERS = \(pythonString(LayerRecord.encode(LayerRecord.layers(of: graph))))  # [name, op, inputs, shape] per layer: how dsl names what differs
        INPUT_SHAPE = (\(input.channels), \(input.height), \(input.width))  # (C, H, W) of one image
        OUTPUT_SHAPE = (\(output.channels), \(output.height), \(output.width))  # (C, H, W) of the logits map
        ENDS_IN_SOFTMAX = \(endsInSoftmax ? "True" : "False")
        PARAMETERS = \(parameters)  # as 'dsl check' counts them
        WEIGHTS = \(weights.map(pythonString) ?? "None")  # the checkpoint load_dsl_checkpoint(model) reads by default

        """
    }

    // MARK: - The network class

    /// A short description of a node for comments (as `dsl check` prints it).
    func describe(_ n: Node) -> String {
        n.op.shortDescription
    }

    func activationArguments(_ a: Activation) -> String {
        switch a {
        case .none: return "act=None"
        case .leaky(let s): return "act=\"leaky\", slope=\(pythonNumber(s))"
        default: return "act=\"\(a.keyword)\""
        }
    }

    /// `K, stride=S, padding=P` of a square convolution; `(KH, KW), stride=(SH, SW),
    /// padding=(PH, PW)` otherwise (padding 0 when it differs between sides: see `convExtras`).
    func convGeometry(_ c: ConvAttributes) -> String {
        if let sq = c.square { return "\(sq.kernel), stride=\(sq.stride), padding=\(sq.pad)" }
        func pair(_ a: Int, _ b: Int) -> String { a == b ? "\(a)" : "(\(a), \(b))" }
        let padding = c.hasSymmetricAxes ? pair(c.padTop, c.padLeft) : "0"
        return "(\(c.kernelHeight), \(c.kernelWidth)), stride=\(pair(c.strideHeight, c.strideWidth)), padding=\(padding)"
    }

    /// `, dilation=..., groups=..., pre_pad=(left, right, top, bottom)` where they are not the defaults.
    func convExtras(_ c: ConvAttributes) -> String {
        var s = ""
        if c.dilationHeight != 1 || c.dilationWidth != 1 {
            s += ", dilation=" + (c.dilationHeight == c.dilationWidth ? "\(c.dilationHeight)" : "(\(c.dilationHeight), \(c.dilationWidth))")
        }
        if c.groups != 1 { s += ", groups=\(c.groups)" }
        if !c.hasSymmetricAxes { s += ", pre_pad=(\(c.padLeft), \(c.padRight), \(c.padTop), \(c.padBottom))" }
        return s
    }

    /// `, eps=..., momentum=..., scale=False` where a batch norm's settings are not PyTorch's
    /// defaults (`bn_eps=...` and so on for a convolution's).
    func normArguments(_ b: BatchNormAttributes, prefix: String) -> String {
        var s = ""
        if b.epsilon != 1e-5 { s += ", \(prefix)eps=\(pythonNumber(b.epsilon))" }
        if b.momentum != 0.1 { s += ", \(prefix)momentum=\(pythonNumber(b.momentum))" }
        if !b.scale { s += ", \(prefix)scale=False" }
        return s
    }

    /// `self.a.b` for an attribute path.
    func reference(_ path: [String]) -> String { (["self"] + path).joined(separator: ".") }

    func networkClass() -> String {
        var initLines: [String] = []
        var made = Set<Int>()
        func makeModule(_ m: Int) {
            if made.contains(m) { return }
            if let parent = graph.modules[m].parent { makeModule(parent) }
            made.insert(m)
            let module = graph.modules[m]
            initLines.append("\(reference(naming.modulePath[m])) = Block(\(pythonString(module.kind)), \(pythonString(module.summary)))  # \(pythonComment(module.name))")
        }
        for n in graph.nodes where n.id > 0 {
            if let m = n.module { makeModule(m) }
            guard let path = naming.nodePath[n.id] else { continue }
            let input = graph.nodes[n.inputs[0]].shape
            let constructor: String
            switch n.op {
            case .conv(let c):
                constructor = "Conv(\(input.channels), \(c.filters), \(convGeometry(c)), bias=\(c.bias ? "True" : "False"), bn=\(c.batchNorm ? "True" : "False"), \(activationArguments(c.activation))\(convExtras(c))\(c.batchNorm ? normArguments(c.norm, prefix: "bn_") : ""))"
            case .linear(let l):
                constructor = "Linear((\(input.channels), \(input.height), \(input.width)), \(l.units), bias=\(l.bias ? "True" : "False"), \(activationArguments(l.activation)))"
            case .batchNorm(let b):
                constructor = "BatchNorm(\(input.channels)\(normArguments(b, prefix: "")))"
            case .dropout(let p):
                constructor = "nn.Dropout(\(pythonNumber(p)))"
            default:
                continue
            }
            initLines.append("\(reference(path)) = \(constructor)  # \(pythonComment(n.name))")
        }
        // Modules without layers of their own still appear (they document the structure).
        for m in graph.modules.indices { makeModule(m) }

        var s = """


        class \(className)(nn.Module):
            \(pythonString("The network '\(graph.name)': \(graph.nodes.count - 1) dsl layers; forward(x) maps (N, C, H, W) images to the logits."))

            def __init__(self, seed=None):
                super().__init__()

        """
        for line in initLines { s += "        " + line + "\n" }
        s += """
                if seed is not None:
                    dsl_initialize(self, seed)
                else:
                    dsl_initial_biases(self)
                dsl_freeze(self)

            def forward(self, x):

        """
        for line in forwardLines() { s += "        " + line + "\n" }
        s += "\n\nModel = \(className)\n"
        return s
    }

    /// The body of `forward`: one statement per layer, values in a few reused variables.
    func forwardLines() -> [String] {
        let g = graph
        let returned = returnedNode
        // Identity layers (dropout 0, a linear activation, a one-branch concat) alias their input.
        var value = Array(0..<g.nodes.count)
        for n in g.nodes where n.id > 0 {
            var identity = false
            switch n.op {
            case .dropout(let p): identity = p == 0
            case .activation(let a): identity = a == .none
            case .concat: identity = n.inputs.count == 1
            default: break
            }
            if identity { value[n.id] = value[n.inputs[0]] }
        }
        let skipped = endsInSoftmax ? g.output : -1
        // Last use of every value (the returned one lives to the end).
        var lastUse = [Int](repeating: -1, count: g.nodes.count)
        for n in g.nodes where n.id > 0 && n.id != skipped {
            for i in n.inputs { lastUse[value[i]] = max(lastUse[value[i]], n.id) }
        }
        lastUse[value[returned]] = Int.max
        var slotOf = [Int](repeating: -1, count: g.nodes.count)
        var free: [Int] = []  // free slot numbers, kept sorted
        var slotCount = 1
        slotOf[0] = 0
        func name(_ slot: Int) -> String { slot == 0 ? "x" : "x\(slot)" }
        func variable(_ node: Int) -> String { name(slotOf[value[node]]) }

        var lines: [String] = []
        var previousPath: [Int] = []
        for n in g.nodes where n.id > 0 {
            let path = g.modulePath(of: n)
            if path != previousPath {
                for (depth, m) in path.enumerated() where depth >= previousPath.count || previousPath[depth] != m {
                    let module = g.modules[m]
                    lines.append("# " + String(repeating: "  ", count: depth) + "\(pythonComment(module.name)): \(pythonComment(module.summary))")
                }
                previousPath = path
            }
            let comment = "  # \(pythonComment(n.name)): \(pythonComment(describe(n)))"
            if n.id == skipped {
                lines.append("# \(pythonComment(n.name)): softmax, left out: forward returns the logits (dsl_loss and dsl_predict apply it)")
                continue
            }
            if value[n.id] != n.id {
                lines.append("# \(pythonComment(n.name)): \(pythonComment(describe(n))) (the identity)")
                continue
            }
            let ins = n.inputs.map(variable)
            let expression: String
            switch n.op {
            case .input:
                continue
            case .conv, .linear, .batchNorm, .dropout:
                expression = "\(reference(naming.nodePath[n.id]!))(\(ins[0]))"
            case .pool(let p):
                let function = p.kind == .max ? "F.max_pool2d" : "F.avg_pool2d"
                var arguments = "\(ins[0]), \(p.kernel), stride=\(p.stride), padding=\(p.pad)"
                if p.ceil { arguments += ", ceil_mode=True" }
                if p.kind == .avg { arguments += ", count_include_pad=True" }
                expression = "\(function)(\(arguments))"
            case .globalAvgPool:
                expression = "\(ins[0]).mean((2, 3), keepdim=True)"
            case .activation(let a):
                switch a {
                case .relu: expression = "F.relu(\(ins[0]))"
                case .leaky(let s): expression = "F.leaky_relu(\(ins[0]), \(pythonNumber(s)))"
                case .none: expression = ins[0]
                default: expression = "activation(\(ins[0]), \(pythonString(a.keyword)))"
                }
            case .softmax:
                expression = "F.softmax(\(ins[0]), 1)"
            case .concat:
                expression = "torch.cat((\(ins.joined(separator: ", "))), 1)"
            case .add:
                expression = "add_padded(\(ins.joined(separator: ", ")))"
            case .mul:
                // (N, C, 1, 1) inputs broadcast over the others' H x W.
                expression = ins.joined(separator: " * ")
            case .adaptiveAvgPool(let h, let w):
                expression = "F.adaptive_avg_pool2d(\(ins[0]), (\(h), \(w)))"
            case .scale(let a):
                // float32 times the factor rounded to float32, as the engine's kernel.
                expression = "\(ins[0]) * \(pythonNumber(Double(Float(a))))"
            }
            // Inputs used for the last time free their variables, which the output may reuse.
            for i in Set(n.inputs.map { value[$0] }) where lastUse[i] == n.id {
                free.append(slotOf[i])
            }
            free.sort()
            let slot: Int
            if !free.isEmpty {
                slot = free.removeFirst()
            } else {
                slot = slotCount
                slotCount += 1
            }
            slotOf[n.id] = slot
            if lastUse[n.id] < 0 {
                // A value nothing reads (possible only for a dead branch): computed, then dropped.
                free.append(slot)
                free.sort()
            }
            lines.append("\(name(slot)) = \(expression)" + comment)
        }
        let out = variable(returned)
        let shape = g.nodes[returned].shape
        lines.append(shape.height == 1 && shape.width == 1 ? "return \(out).flatten(1)" : "return \(out)")
        return lines
    }

    /// The parameters of each layer with `init=`, `freeze` or `train-epochs=`: (dsl name of the
    /// weight, of the bias or nil, the layer's init and training, the weight's fan-in), in node order.
    func parameterRules() -> [(weight: String?, bias: String?, initializer: WeightInit, training: LayerTraining, fanIn: Int)] {
        var rules: [(weight: String?, bias: String?, initializer: WeightInit, training: LayerTraining, fanIn: Int)] = []
        for n in graph.nodes where n.id > 0 {
            let input = graph.nodes[n.inputs[0]].shape
            switch n.op {
            case .conv(let c):
                rules.append((n.name + ".weight", c.bias ? n.name + ".bias" : nil, c.initializer, c.training,
                              c.kernelHeight * c.kernelWidth * input.channels / c.groups))
                if c.batchNorm {
                    rules.append((c.norm.scale ? n.name + ".bn.weight" : nil, n.name + ".bn.bias", .he, c.training, 0))
                }
            case .linear(let l):
                rules.append((n.name + ".weight", l.bias ? n.name + ".bias" : nil, l.initializer, l.training, input.elements))
            case .batchNorm(let b):
                rules.append((b.scale ? n.name + ".weight" : nil, n.name + ".bias", .he, b.training, 0))
            default:
                break
            }
        }
        return rules
    }

    /// The entries of DSL_INIT.
    func initTable() -> String {
        var entries: [String] = []
        for r in parameterRules() {
            let bound = 1 / Double(max(r.fanIn, 1)).squareRoot()
            switch r.initializer {
            case .he: continue
            case .torch:
                if let w = r.weight { entries.append("\(pythonString(w)): (\"uniform\", \(bound))") }
                if let b = r.bias { entries.append("\(pythonString(b)): (\"uniform\", \(bound))") }
            case .dirac:
                if let w = r.weight { entries.append("\(pythonString(w)): (\"dirac\", \(bound))") }
                if let b = r.bias { entries.append("\(pythonString(b)): (\"zero\", 0.0)") }
            case .whiten:
                if let b = r.bias { entries.append("\(pythonString(b)): (\"zero\", 0.0)") }
            }
        }
        return entries.joined(separator: ", ")
    }

    /// dsl names of the frozen parameters.
    func frozenNames() -> [String] {
        parameterRules().flatMap { r in
            (r.training.frozenWeight ? [r.weight].compactMap { $0 } : []) + (r.training.frozenBias ? [r.bias].compactMap { $0 } : [])
        }
    }

    /// dsl names of the parameters trained in the first N epochs only, with N.
    func trainEpochs() -> [(String, Int)] {
        parameterRules().flatMap { r -> [(String, Int)] in
            guard let e = r.training.epochs else { return [] }
            return (r.training.frozenWeight ? [] : [r.weight].compactMap { $0 }.map { ($0, e) })
                + (r.training.frozenBias ? [] : [r.bias].compactMap { $0 }.map { ($0, e) })
        }
    }

    // MARK: - The name table

    func stateTable() -> String {
        var s = """


        # Every state_dict key with dsl's name for it, how the layouts differ ("conv": dsl
        # (KH, KW, IC, OC) = PyTorch (OC, IC, KH, KW) permuted; "linear": dsl (IN, OUT) = PyTorch
        # (OUT, IN) transposed, IN in (h, w, c) order; "vector": the same), whether it is a trainable
        # parameter or a batch-norm buffer, and dsl's shape. The parameters are in dsl's order (that
        # of the optimizer state 'optimizer.velocity' in a checkpoint).
        DSL_NAMES = [

        """
        for e in naming.entries {
            let shape = e.dslShape.count == 1 ? "(\(e.dslShape[0]),)" : "(" + e.dslShape.map(String.init).joined(separator: ", ") + ")"
            s += "    (\(pythonString(e.stateKey)), \(pythonString(e.dslName)), \"\(e.layout.rawValue)\", \"\(e.isBuffer ? "buffer" : "parameter")\", \(shape)),\n"
        }
        s += "]\n"
        // The ReLU classifier's bias starts at 1 in dsl (DSLEngine.reluClassifier).
        let initial = reluClassifier(graph).map { "\(pythonString(graph.nodes[$0].name + ".bias")): \(classifierReLUBias)" } ?? ""
        s += """

        # Biases that start at a value other than 0 in dsl (by dsl name): the bias of a ReLU
        # classifier feeding the softmax through pooling, as All-CNN's 'conv 1 1 10', starts at 1 so
        # every class unit starts active.
        DSL_INITIAL_BIAS = {\(initial)}

        # Tensors that do not start as above (by dsl name): ("uniform", bound) is U(-bound, bound)
        # (init=torch; bound 1/sqrt(fan_in)), ("dirac", bound) Dirac on the first min(IC, OC)
        # filters and U(-bound, bound) for the rest (init=dirac), ("zero", 0.0) zeros (the bias of
        # init=dirac and init=whiten). See dsl_initialize.
        DSL_INIT = {\(initTable())}
        DSL_UNIFORM_STREAM_KEY = \(EngineGraph.uniformStreamKey)

        # Parameters the spec freezes ('freeze': never trained; requires_grad is False), and the
        # epochs the others of a layer with 'train-epochs=N' train in (epochs 0..N-1), by dsl name.
        DSL_FROZEN = [\(frozenNames().map(pythonString).joined(separator: ", "))]
        DSL_TRAIN_EPOCHS = {\(trainEpochs().map { "\(pythonString($0.0)): \($0.1)" }.joined(separator: ", "))}

        # dsl train's learning rate and schedule for this network when --lr and --schedule are not
        # given (0.05 and cosine with batch norm, 0.02 and cosine+warmup:1 without).
        DSL_DEFAULT_LR = \(TrainingOptions.defaultLearningRate(for: graph))
        DSL_DEFAULT_SCHEDULE = \(pythonString(TrainingOptions.defaultSchedule(for: graph)))

        """
        return s
    }
}

// MARK: - Python literals

/// A Python string literal (double quotes; backslash, quote, control and non-ASCII characters escaped).
func pythonString(_ text: String) -> String {
    var s = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\\": s += "\\\\"
        case "\"": s += "\\\""
        case "\n": s += "\\n"
        case "\r": s += "\\r"
        case "\t": s += "\\t"
        default:
            if scalar.value >= 0x20 && scalar.value < 0x7F {
                s.unicodeScalars.append(scalar)
            } else if scalar.value <= 0xFFFF {
                s += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            } else {
                s += "\\U" + String(repeating: "0", count: 8 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            }
        }
    }
    return s + "\""
}

/// Text safe inside a Python comment: one line, ASCII (an arrow as `->`, other characters as `\uXXXX`).
func pythonComment(_ text: String) -> String {
    let literal = pythonString(text.replacingOccurrences(of: "\u{2192}", with: "->"))
    return String(literal.dropFirst().dropLast())
}

/// A Python float literal for a Double (Swift's shortest round-trip form is valid Python).
func pythonNumber(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(format: "%.1f", value) : "\(value)"
}
