import DSLIR
import DSLSyntax
import Foundation

/// `dsl check FILE`: validates a spec and prints shapes, parameters, MACs, receptive fields and
/// memory, layer by layer, then the totals.
enum CheckCommand {
    static let command = Command(name: "check", summary: "validate a spec; print shapes, parameters, MACs, memory", help: """
    Usage: dsl check FILE [--format table|json] [--batch N] [--depth N] [--input HxWxC]
                          [--max-params N] [--max-macs N] [--no-warnings]

    Checks the spec and prints, per layer: output shape (HxWxC), trainable parameters and their
    share of the total, MACs, receptive field, cumulative stride, and activation memory at
    batch N (a merge row names its inputs: add(a, b)); then the totals (trainable and
    non-trainable parameters, weights, MACs, FLOPs = 2 x MACs, other ops) and a
    training-memory estimate at batch N.

    Options:
      --format table|json  output format (default table; JSON is described in README.md);
                           with errors, JSON still prints an object with its diagnostics
      --batch N            batch size for the memory figures (default 1)
      --depth N            expand modules (inception, pyramid, blocks) down to depth N;
                           deeper modules are shown as one summed row, in the table and in
                           JSON (default: all)
      --input HxWxC        check the network at another input size than its 'input' line
                           declares (e.g. 64x64x3), without editing the spec
      --max-params N       fail (exit 1) if the network has more than N trainable parameters;
                           N accepts 2M, 1.5G, 300k, 1e6 or 1,369,738
      --max-macs N         fail (exit 1) if the network needs more than N MACs per image
      --no-warnings        do not print warnings

    Non-trainable parameters are batch norm's running mean and variance (a checkpoint holds
    them; Keras counts them apart). The receptive field of a layer after global pooling or
    fc is that of the spatial layers before it: each output there sees the whole input. The
    RF and stride columns print HxW where the two axes differ (rectangular kernels, strides
    or dilations). MACs are those of convolutions (KH*KW*IC/G per output, G the groups) and
    fc layers only, as PyTorch forward hooks on Conv2d and Linear count them.

    Exit codes: 0 clean (warnings allowed), 1 errors in the spec or a budget exceeded, 2 usage.

    """, run: run)

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["--format", "--batch", "--depth", "--input", "--max-params", "--max-macs"], flagOptions: ["--no-warnings"])
        guard a.positional.count == 1 else {
            throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file, got \(a.positional.count)")
        }
        let format = a.value("--format") ?? "table"
        guard format == "table" || format == "json" else { throw UsageError(message: "--format must be table or json, got '\(format)'" + Arguments.suggestion(format, in: ["table", "json"])) }
        let batch = try a.integer("--batch", default: 1, in: 1...1_000_000)
        let depth = try a.integer("--depth", default: Int.max, in: 0...Int.max)
        let input = try a.value("--input").map(parseInputSize)
        let maxParams = try a.amount("--max-params")
        let maxMacs = try a.amount("--max-macs")
        let path = a.positional[0]
        let checked: (CheckedNetwork, Graph, NetworkCost)?
        do {
            checked = try loadChecked(path, printWarnings: !a.has("--no-warnings"), input: input, onErrors: { c in
                // Tools reading JSON get the diagnostics on standard output as well.
                if format == "json" { out(CheckReport.failureJSON(path: path, diagnostics: c.diagnostics.items).render() + "\n") }
            })
        } catch let e as SourceError where format == "json" {
            out(CheckReport.failureJSON(path: path, message: e.message).render() + "\n")
            throw e
        }
        guard let (checked, g, cost) = checked else { return ExitCode.failure }
        // With --input, the size the spec declares is named too.
        let declared: Shape? = input == nil ? nil : checked.spec.statements.lazy.compactMap { s -> Shape? in
            if case .input(let h, let w, let c) = s.kind { return Shape(h, w, c) }
            return nil
        }.first
        if format == "json" {
            var report = CheckReport.json(g, cost, checked: checked, batch: batch, depth: depth, path: path, declaredInput: declared)
            // The budget gates, so a tool reading the JSON knows why the exit status is 1.
            if case .object(var fields) = report {
                func gate(_ limit: Int?, _ value: Int) -> JSON {
                    limit.map { .object([("limit", .int($0)), ("value", .int(value)), ("exceeded", .bool(value > $0))]) } ?? .null
                }
                fields.append(("budgets", .object([("max_params", gate(maxParams, cost.params)), ("max_macs", gate(maxMacs, cost.macs))])))
                report = .object(fields)
            }
            out(report.render() + "\n")
        } else {
            out(CheckReport.table(g, cost, batch: batch, depth: depth, path: path, declaredInput: declared))
        }
        var failed = false
        if let m = maxParams, cost.params > m {
            err("error: \(grouped(cost.params)) parameters exceed the budget of \(grouped(m)) by \(grouped(cost.params - m)) (\(String(format: "%.1f", Double(cost.params - m) / Double(max(m, 1)) * 100))%)\n")
            failed = true
        }
        if let m = maxMacs, cost.macs > m {
            err("error: \(grouped(cost.macs)) MACs exceed the budget of \(grouped(m)) by \(grouped(cost.macs - m)) (\(String(format: "%.1f", Double(cost.macs - m) / Double(max(m, 1)) * 100))%)\n")
            failed = true
        }
        return failed ? ExitCode.failure : ExitCode.ok
    }

    /// `--input 64x64x3`: height, width and channels, each from 1 to 1,048,576.
    static func parseInputSize(_ text: String) throws -> Shape {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 3, let h = Int(parts[0]), let w = Int(parts[1]), let c = Int(parts[2]),
              [h, w, c].allSatisfy({ (1...1_048_576).contains($0) }) else {
            throw UsageError(message: "--input must be HEIGHTxWIDTHxCHANNELS such as 64x64x3 (each from 1 to 1048576), got '\(text)'")
        }
        return Shape(h, w, c)
    }
}

/// Renders check results as a table or JSON.
enum CheckReport {
    /// A short description of a node's op: `conv 3x3/2 96 pad 1 bn relu`.
    static func describe(_ op: Op) -> String {
        op.shortDescription
    }

    /// The op column of the table: `describe`, and for a merge the layers it merges,
    /// `add(basic1.conv2, maxpool1)`, so an identity shortcut is visible.
    static func tableDescription(_ n: Node, in g: Graph) -> String {
        switch n.op {
        case .add, .concat, .mul:
            return describe(n.op) + "(" + n.inputs.map { g.nodes[$0].name }.joined(separator: ", ") + ")"
        default:
            return describe(n.op)
        }
    }

    /// A share of the trainable parameters for the `%` column: blank for none, `<0.1%` for a
    /// share that rounds to zero, else one decimal.
    static func share(_ part: Int, of total: Int) -> String {
        guard part > 0, total > 0 else { return "" }
        let p = Double(part) / Double(total) * 100
        return p < 0.05 ? "<0.1%" : String(format: "%.1f%%", p)
    }

    /// One entry of the report: a layer, a module's header (expanded) or a module shown as one
    /// summed row (collapsed, beyond `--depth`). The table and JSON list the same entries.
    enum Entry {
        case node(Int, level: Int)
        case header(Int, level: Int)
        case collapsed(Int, level: Int)
    }

    /// The report's entries in graph order, modules deeper than `depth` collapsed.
    static func entries(_ g: Graph, depth: Int) -> [Entry] {
        var list: [Entry] = []
        var shown = Set<Int>()
        for n in g.nodes {
            let path = g.modulePath(of: n)
            var collapsed = false
            for (level, m) in path.enumerated() {
                if level >= depth {
                    if shown.insert(m).inserted { list.append(.collapsed(m, level: level)) }
                    collapsed = true
                    break
                }
                if shown.insert(m).inserted { list.append(.header(m, level: level)) }
            }
            if !collapsed { list.append(.node(n.id, level: path.count)) }
        }
        return list
    }

    /// The aligned per-layer table followed by totals.
    static func table(_ g: Graph, _ cost: NetworkCost, batch: Int, depth: Int, path: String, declaredInput: Shape? = nil) -> String {
        var rows: [[String]] = [["layer", "op", "output", "params", "%", "MACs", "RF", "stride", "memory", "line"]]
        let membersOf = CostModel.membersByModule(in: g)
        for e in entries(g, depth: depth) {
            switch e {
            case .collapsed(let m, let level):
                let members = membersOf[m]
                let s = cost.sum(members)
                let last = g.nodes[members.last!]
                let mem = members.reduce(0) { $0 + cost.nodes[$1].activationElements } * batch * 4
                rows.append([indent(level) + g.modules[m].name, g.modules[m].summary, last.shape.description, grouped(s.params), share(s.params, of: cost.params), grouped(s.macs),
                             rf(cost.nodes[last.id]), jump(cost.nodes[last.id]), bytes(mem), String(g.modules[m].location.line)])
            case .header(let m, let level):
                let s = cost.sum(membersOf[m])
                rows.append([indent(level) + g.modules[m].name, g.modules[m].summary, "", grouped(s.params), share(s.params, of: cost.params), grouped(s.macs), "", "", "", String(g.modules[m].location.line)])
            case .node(let id, let level):
                let n = g.nodes[id]
                let c = cost.nodes[id]
                rows.append([indent(level) + n.name, tableDescription(n, in: g), n.shape.description, grouped(c.params), share(c.params, of: cost.params), grouped(c.macs),
                             rf(c), jump(c), bytes(c.activationElements * batch * 4), String(n.location.line)])
            }
        }
        let rightAligned: Set<Int> = [3, 4, 5, 6, 7, 8, 9]
        var widths = [Int](repeating: 0, count: rows[0].count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        var s = "\(g.name): input \(g.inputShape)\(declaredInput.map { " (--input; the spec declares \($0))" } ?? ""), \(path)\n\n"
        for (ri, r) in rows.enumerated() {
            var line = ""
            for (i, c) in r.enumerated() {
                let padding = String(repeating: " ", count: widths[i] - c.count)
                line += (rightAligned.contains(i) ? padding + c : c + padding) + (i == r.count - 1 ? "" : "  ")
            }
            // Trailing blanks trimmed by hand: an ICU regular expression per row was a quarter
            // of the run time on deep networks.
            while line.last == " " { line.removeLast() }
            s += line + "\n"
            if ri == 0 { s += String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1)) + "\n" }
        }
        s += "\n"
        s += "output:      \(g.nodes[g.output].shape)\n"
        s += "params:      \(grouped(cost.params))\(cost.frozen > 0 ? "" : " trainable") (\(grouped(cost.weights)) weights, \(grouped(cost.params - cost.weights)) biases and batch-norm scale and shift)\n"
        if cost.frozen > 0 {
            s += "             \(grouped(cost.frozen)) frozen (freeze: never trained), \(grouped(cost.params - cost.frozen)) trained\n"
        }
        if cost.buffers > 0 {
            s += "             \(grouped(cost.buffers)) non-trainable (batch-norm running mean and variance); \(grouped(cost.params + cost.buffers)) in a checkpoint\n"
        } else {
            s += "             0 non-trainable\n"
        }
        s += "MACs:        \(grouped(cost.macs)) (\(human(cost.macs))) per image\n"
        s += "FLOPs:       \(grouped(cost.flops)) (\(human(cost.flops))) = 2 x MACs\n"
        s += "other ops:   \(grouped(cost.otherOps)) (batch norm, activations, pooling, additions; not in MACs)\n"
        s += "ptflops:     \(grouped(cost.ptflopsMACs)) (\(human(cost.ptflopsMACs))) MACs as ptflops 0.7.5 counts them with count_functional=False (its default counts ReLU and pooling twice)\n"
        s += "memory:      batch \(batch): activations \(bytes(cost.activationElements * batch * 4)), training estimate \(bytes(cost.trainingBytes(batch: batch))), inference \(bytes(cost.inferenceBytes(batch: batch)))\n"
        return s
    }

    private static func indent(_ level: Int) -> String { String(repeating: "  ", count: level) }

    private static func dims(_ s: Shape) -> JSON { .array([.int(s.height), .int(s.width), .int(s.channels)]) }

    /// Kernel, stride and padding of a convolution or pooling as JSON fields (JSON null for
    /// other layers), so tools need not parse `description`.
    private static func geometry(_ op: Op) -> [(String, JSON)] {
        switch op {
        case .conv(let c):
            // A number where both axes (all four sides) agree, else [height, width] ([top,
            // left, bottom, right] for the padding).
            func pair(_ h: Int, _ w: Int) -> JSON { h == w ? .int(h) : .array([.int(h), .int(w)]) }
            let pads = [c.padTop, c.padLeft, c.padBottom, c.padRight]
            return [("kernel", pair(c.kernelHeight, c.kernelWidth)), ("stride", pair(c.strideHeight, c.strideWidth)),
                    ("padding", Set(pads).count == 1 ? .int(c.padTop) : .array(pads.map { .int($0) })),
                    ("dilation", pair(c.dilationHeight, c.dilationWidth)), ("groups", .int(c.groups))]
        case .pool(let p): return [("kernel", .int(p.kernel)), ("stride", .int(p.stride)), ("padding", .int(p.pad)), ("dilation", .null), ("groups", .null)]
        default: return [("kernel", .null), ("stride", .null), ("padding", .null), ("dilation", .null), ("groups", .null)]
        }
    }

    /// The diagnostics as JSON: severity, message, line, column and notes.
    static func diagnosticsJSON(_ items: [Diagnostic]) -> JSON {
        .array(items.map { d in
            .object([("severity", .string(d.severity.rawValue)), ("message", .string(d.message)), ("line", .int(d.location.line)), ("column", .int(d.location.column)),
                     ("notes", .array(d.notes.map { .object([("message", .string($0.message)), ("line", .int($0.location.line)), ("column", .int($0.location.column))]) }))])
        })
    }

    /// The JSON object of a spec with errors (README, "dsl check --format json"): `file`,
    /// `valid` false and `diagnostics` (or one diagnostic without a place for a file that
    /// cannot be read).
    static func failureJSON(path: String, diagnostics: [Diagnostic] = [], message: String? = nil) -> JSON {
        var diags = diagnosticsJSON(diagnostics)
        if let m = message {
            diags = .array([.object([("severity", .string("error")), ("message", .string(m)), ("line", .null), ("column", .null), ("notes", .array([]))])])
        }
        return .object([("file", .string(path)), ("valid", .bool(false)), ("diagnostics", diags)])
    }

    /// The JSON report (README, "dsl check --format json"); `layers` and `modules` list what
    /// the table shows at `depth` (a collapsed module is a layer of op `module`).
    static func json(_ g: Graph, _ cost: NetworkCost, checked: CheckedNetwork, batch: Int, depth: Int = Int.max, path: String = "", declaredInput: Shape? = nil) -> JSON {
        let membersOf = CostModel.membersByModule(in: g)
        var layers: [JSON] = []
        var shownModules: [Int] = []
        for e in entries(g, depth: depth) {
            switch e {
            case .header(let m, _):
                shownModules.append(m)
            case .collapsed(let m, _):
                shownModules.append(m)
                let members = membersOf[m]
                let s = cost.sum(members)
                let memberSet = Set(members)
                let last = g.nodes[members.last!]
                let lc = cost.nodes[last.id]
                var inputs: [String] = []
                for id in members { for i in g.nodes[id].inputs where !memberSet.contains(i) && !inputs.contains(g.nodes[i].name) { inputs.append(g.nodes[i].name) } }
                let mod = g.modules[m]
                layers.append(.object([
                    ("name", .string(mod.name)), ("op", .string("module")), ("description", .string(mod.summary)),
                    ("line", .int(mod.location.line)), ("column", .int(mod.location.column)),
                    ("inputs", .array(inputs.map { .string($0) })), ("output", dims(last.shape)),
                    ("kernel", .null), ("stride", .null), ("padding", .null), ("dilation", .null), ("groups", .null),
                    ("params", .int(s.params)), ("non_trainable_params", .int(cost.buffers(members))), ("params_percent", .double(percent(s.params, cost.params))),
                    ("weights", .int(s.weights)), ("macs", .int(s.macs)), ("other_ops", .int(members.reduce(0) { $0 + cost.nodes[$1].otherOps })),
                    ("receptive_field", .int(lc.receptiveField)), ("cumulative_stride", .int(lc.cumulativeStride)),
                    ("receptive_field_hw", .array([.int(lc.receptiveFieldHeight), .int(lc.receptiveFieldWidth)])),
                    ("cumulative_stride_hw", .array([.int(lc.cumulativeStrideHeight), .int(lc.cumulativeStrideWidth)])), ("global", .bool(lc.isGlobal)),
                    ("activation_bytes", .int(members.reduce(0) { $0 + cost.nodes[$1].activationElements } * batch * 4)),
                    ("module", mod.parent.map { .string(g.modules[$0].name) } ?? .null),
                ]))
            case .node(let id, _):
                let n = g.nodes[id]
                let c = cost.nodes[id]
                layers.append(.object([
                    ("name", .string(n.name)), ("op", .string(n.op.kindName)), ("description", .string(describe(n.op))),
                    ("line", .int(n.location.line)), ("column", .int(n.location.column)),
                    ("inputs", .array(n.inputs.map { .string(g.nodes[$0].name) })),
                    ("output", dims(n.shape)),
                ] + geometry(n.op) + [
                    ("params", .int(c.params)), ("non_trainable_params", .int(c.buffers)), ("params_percent", .double(percent(c.params, cost.params))),
                    ("weights", .int(c.weights)), ("macs", .int(c.macs)), ("other_ops", .int(c.otherOps)),
                    ("receptive_field", .int(c.receptiveField)), ("cumulative_stride", .int(c.cumulativeStride)),
                    ("receptive_field_hw", .array([.int(c.receptiveFieldHeight), .int(c.receptiveFieldWidth)])),
                    ("cumulative_stride_hw", .array([.int(c.cumulativeStrideHeight), .int(c.cumulativeStrideWidth)])), ("global", .bool(c.isGlobal)),
                    ("activation_bytes", .int(c.activationElements * batch * 4)),
                    ("module", n.module.map { .string(g.modules[$0].name) } ?? .null),
                ]))
            }
        }
        let modules: [JSON] = shownModules.map { id in
            let m = g.modules[id]
            let members = membersOf[m.id]
            let s = cost.sum(members)
            let outShape = members.last.map { g.nodes[$0].shape }
            return .object([
                ("name", .string(m.name)), ("kind", .string(m.kind)), ("summary", .string(m.summary)),
                ("line", .int(m.location.line)), ("column", .int(m.location.column)),
                ("parent", m.parent.map { .string(g.modules[$0].name) } ?? .null),
                ("output", outShape.map { dims($0) } ?? .null),
                ("params", .int(s.params)), ("non_trainable_params", .int(cost.buffers(members))), ("params_percent", .double(percent(s.params, cost.params))),
                ("weights", .int(s.weights)), ("macs", .int(s.macs)),
            ])
        }
        return .object([
            ("file", .string(path)), ("valid", .bool(true)),
            ("network", .string(g.name)),
            ("input", dims(g.inputShape)),
            ("declared_input", declaredInput.map(dims) ?? .null),
            ("output", dims(g.nodes[g.output].shape)),
            ("layers", .array(layers)),
            ("modules", .array(modules)),
            ("total", .object([("params", .int(cost.params)), ("non_trainable_params", .int(cost.buffers)), ("checkpoint_numbers", .int(cost.params + cost.buffers)), ("frozen_params", .int(cost.frozen)),
                               ("weights", .int(cost.weights)), ("macs", .int(cost.macs)), ("flops", .int(cost.flops)), ("other_ops", .int(cost.otherOps)), ("ptflops_macs", .int(cost.ptflopsMACs))])),
            ("memory", .object([("batch", .int(batch)), ("activation_bytes", .int(cost.activationElements * batch * 4)), ("training_bytes", .int(cost.trainingBytes(batch: batch))), ("inference_bytes", .int(cost.inferenceBytes(batch: batch)))])),
            ("diagnostics", diagnosticsJSON(checked.diagnostics.items)),
        ])
    }

    /// A share in percent, rounded to 0.01.
    private static func percent(_ part: Int, _ total: Int) -> Double {
        total > 0 ? (Double(part) / Double(total) * 10_000).rounded() / 100 : 0
    }
}

/// A receptive field or cumulative stride for the table: at `CostModel.maxReceptiveField` the
/// figure stopped counting, so it reads ">=1e15" (JSON keeps the number).
private func extent(_ v: Int) -> String {
    v >= CostModel.maxReceptiveField ? ">=1e15" : String(v)
}

/// The RF column: one figure, or `HxW` where the axes differ (rectangular kernels, dilations).
private func rf(_ c: NodeCost) -> String {
    c.receptiveFieldHeight == c.receptiveFieldWidth ? extent(c.receptiveFieldHeight) : "\(extent(c.receptiveFieldHeight))x\(extent(c.receptiveFieldWidth))"
}

/// The stride column: one figure, or `HxW` where the axes differ.
private func jump(_ c: NodeCost) -> String {
    c.cumulativeStrideHeight == c.cumulativeStrideWidth ? extent(c.cumulativeStrideHeight) : "\(extent(c.cumulativeStrideHeight))x\(extent(c.cumulativeStrideWidth))"
}
