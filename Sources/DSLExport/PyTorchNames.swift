import DSLIR

// How a dsl network's layers are named in the generated PyTorch module.
//
// dsl names (`conv3`, `3a.b2.conv`, `pyramid1.s2.u3.conv1`, `unit.2`) are not Python
// identifiers, so the module mirrors dsl's module instances instead: every inception module,
// pyramid, pyramid stage and unit, and block call becomes a `Block` attribute named after the
// instance (relative to its parent), and each layer with state or a training mode (conv, fc,
// bn, dropout) an attribute of its innermost instance named after the rest of its dsl name.
// A name is made an identifier by replacing every `.` with `_`, putting `_` before a leading
// digit (`3a` -> `_3a`), `n` before a leading `__` (which Python would mangle), and `_` after a
// Python keyword or a name `nn.Module` already uses (`train`, `eval`, `forward`, ...); two names
// that meet in one scope get `_2`, `_3`, ... So `3a.b2.conv.weight` is `_3a.b2_conv.weight` in
// the state_dict, `pyramid1.s2.u3.conv1.bn.running_mean` is
// `pyramid1.s2.u3.conv1.bn.running_mean`. `PyTorchStateEntry` lists every state_dict key with
// its dsl name: a bijection, in the engine's parameter order (node order, weight before bias,
// a convolution's batch norm after it), buffers beside their layer.

/// How a tensor's layout differs between dsl and PyTorch.
public enum PyTorchTensorLayout: String, Sendable {
    /// A convolution kernel: dsl (KH, KW, IC, OC), PyTorch (OC, IC, KH, KW).
    case conv
    /// A fully connected weight: dsl (IN, OUT) with IN in (h, w, c) order, PyTorch (OUT, IN)
    /// with the same feature order (the module flattens NHWC, as dsl does).
    case linear
    /// Biases, batch-norm scale, shift and running statistics: (C) in both.
    case vector
}

/// One tensor of the module's state_dict and its dsl counterpart.
public struct PyTorchStateEntry: Equatable, Sendable {
    /// The state_dict key, e.g. `_3a.b2_conv.weight`.
    public var stateKey: String
    /// dsl's parameter or buffer name (`dsl check`'s layer name and a suffix), e.g. `3a.b2.conv.weight`.
    public var dslName: String
    /// How the layouts differ.
    public var layout: PyTorchTensorLayout
    /// A batch-norm running statistic (a buffer, not a parameter).
    public var isBuffer: Bool
    /// The dsl shape (KH, KW, IC, OC), (IN, OUT) or (C).
    public var dslShape: [Int]
}

/// The attribute structure of the generated module for one graph.
struct PyTorchNaming {
    /// Python attribute path (from `self`) of each module instance, indexed like `Graph.modules`.
    var modulePath: [[String]]
    /// Python attribute path (from `self`) of each node that is a submodule (conv, fc, bn, dropout > 0); nil otherwise.
    var nodePath: [[String]?]
    /// Every state_dict tensor in engine order.
    var entries: [PyTorchStateEntry]

    /// Names no attribute may take: Python keywords, `nn.Module`'s attributes (PyTorch 2.x) and
    /// the ones the generated `Block` class adds.
    static let reserved: Set<String> = [
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
        "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
        "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
        "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu",
        "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
        "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers",
        "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook",
        "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
        "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
        "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
        "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
        "training", "type", "xpu", "zero_grad",
        "_apply", "_backward_hooks", "_backward_pre_hooks", "_buffers", "_call_impl", "_compiled_call_impl",
        "_forward_hooks", "_forward_hooks_always_called", "_forward_hooks_with_kwargs", "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs", "_get_backward_hooks", "_get_backward_pre_hooks", "_get_name",
        "_is_full_backward_hook", "_load_from_state_dict", "_load_state_dict_post_hooks", "_load_state_dict_pre_hooks",
        "_maybe_warn_non_full_backward_hook", "_modules", "_named_members", "_non_persistent_buffers_set",
        "_parameters", "_register_load_state_dict_pre_hook", "_register_state_dict_hook",
        "_replicate_for_data_parallel", "_save_to_state_dict", "_slow_forward", "_state_dict_hooks",
        "_state_dict_pre_hooks", "_version", "_wrapped_call_impl",
        "dsl_kind", "dsl_summary",
    ]

    /// A dsl name (or part of one) as a Python identifier (see the file comment).
    static func identifier(_ name: String) -> String {
        var s = String(name.map { $0 == "." ? "_" : ($0.isLetter || $0.isNumber || $0 == "_") && $0.isASCII ? $0 : "_" })
        if s.isEmpty { s = "_" }
        if s.first!.isNumber { s = "_" + s }
        if s.hasPrefix("__") { s = "n" + s }
        if reserved.contains(s) { s += "_" }
        return s
    }

    init(_ g: Graph) {
        // One namespace per scope: the network (-1) and each module instance.
        var taken: [Int: Set<String>] = [:]
        func claim(_ base: String, in scope: Int) -> String {
            var name = base, n = 2
            while taken[scope, default: []].contains(name) { name = "\(base)_\(n)"; n += 1 }
            taken[scope, default: []].insert(name)
            return name
        }
        func relative(_ name: String, to parent: String?) -> String {
            guard let parent, name.hasPrefix(parent + "."), name.count > parent.count + 1 else { return name }
            return String(name.dropFirst(parent.count + 1))
        }
        var modulePath = [[String]](repeating: [], count: g.modules.count)
        var made = [Bool](repeating: false, count: g.modules.count)
        func path(ofModule m: Int) -> [String] {
            if made[m] { return modulePath[m] }
            let module = g.modules[m]
            let parentPath = module.parent.map { path(ofModule: $0) } ?? []
            let parentName = module.parent.map { g.modules[$0].name }
            let attribute = claim(PyTorchNaming.identifier(relative(module.name, to: parentName)), in: module.parent ?? -1)
            modulePath[m] = parentPath + [attribute]
            made[m] = true
            return modulePath[m]
        }
        // Modules in creation order (parents before children), so names are claimed in source order.
        for m in g.modules.indices { _ = path(ofModule: m) }

        var nodePath = [[String]?](repeating: nil, count: g.nodes.count)
        var entries: [PyTorchStateEntry] = []
        for n in g.nodes where n.id > 0 {
            let isModule: Bool
            switch n.op {
            case .conv, .linear, .batchNorm: isModule = true
            case .dropout(let p): isModule = p > 0
            default: isModule = false
            }
            guard isModule else { continue }
            let scope = n.module ?? -1
            let base = n.module.map { modulePath[$0] } ?? []
            let attribute = claim(PyTorchNaming.identifier(relative(n.name, to: n.module.map { g.modules[$0].name })), in: scope)
            let path = base + [attribute]
            nodePath[n.id] = path
            let key = path.joined(separator: ".")
            let inputShape = g.nodes[n.inputs[0]].shape
            func vector(_ suffix: String, _ dslSuffix: String, _ c: Int, buffer: Bool = false) {
                entries.append(PyTorchStateEntry(stateKey: key + "." + suffix, dslName: n.name + "." + dslSuffix, layout: .vector,
                                                 isBuffer: buffer, dslShape: [c]))
            }
            func batchNorm(_ prefix: String, _ c: Int, scale: Bool = true) {
                if scale { vector(prefix + "weight", prefix + "weight", c) }
                vector(prefix + "bias", prefix + "bias", c)
            }
            func statistics(_ prefix: String, _ c: Int) {
                vector(prefix + "running_mean", prefix + "running_mean", c, buffer: true)
                vector(prefix + "running_var", prefix + "running_var", c, buffer: true)
            }
            switch n.op {
            case .conv(let c):
                entries.append(PyTorchStateEntry(stateKey: key + ".weight", dslName: n.name + ".weight", layout: .conv, isBuffer: false,
                                                 dslShape: [c.kernelHeight, c.kernelWidth, inputShape.channels / c.groups, c.filters]))
                if c.bias { vector("bias", "bias", c.filters) }
                if c.batchNorm { batchNorm("bn.", c.filters, scale: c.norm.scale); statistics("bn.", c.filters) }
            case .linear(let l):
                entries.append(PyTorchStateEntry(stateKey: key + ".weight", dslName: n.name + ".weight", layout: .linear, isBuffer: false,
                                                 dslShape: [inputShape.elements, l.units]))
                if l.bias { vector("bias", "bias", l.units) }
            case .batchNorm(let b):
                batchNorm("", inputShape.channels, scale: b.scale); statistics("", inputShape.channels)
            default:
                break
            }
        }
        self.modulePath = modulePath
        self.nodePath = nodePath
        self.entries = entries
    }
}
