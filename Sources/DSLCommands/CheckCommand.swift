import DSLIR
import DSLSyntax
import Foundation

/// `dsl check FILE`: validates a spec and prints shapes, parameters, MACs, receptive fields and
/// memory, layer by layer, then the totals.
enum CheckCommand {
    static let command = Command(name: "check", summary: "validate a spec; print shapes, parameters, MACs, memory", help: """
    Usage: dsl check FILE [--format table|json] [--batch N] [--depth N]
                          [--max-params N] [--max-macs N]

    Checks the spec and prints, per layer: output shape (HxWxC), parameters, MACs, receptive
    field, cumulative stride, and activation memory at batch N; then the totals (parameters,
    weights, MACs, FLOPs = 2 x MACs, other ops) and a training-memory estimate at batch N.

    Options:
      --format table|json  output format (default table; JSON is described in README.md)
      --batch N            batch size for the memory figures (default 1)
      --depth N            expand modules (inception, pyramid, blocks) down to depth N;
                           deeper modules are shown as one summed row (default: all)
      --max-params N       fail (exit 1) if the network has more than N parameters;
                           N accepts 2M, 1.5G, 300k, 1e6 or 1,369,738
      --max-macs N         fail (exit 1) if the network needs more than N MACs per image
      --no-warnings        do not print warnings

    Exit codes: 0 clean (warnings allowed), 1 errors in the spec or a budget exceeded, 2 usage.

    """, run: run)

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["--format", "--batch", "--depth", "--max-params", "--max-macs"], flagOptions: ["--no-warnings"])
        guard a.positional.count == 1 else {
            throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file, got \(a.positional.count)")
        }
        let format = a.value("--format") ?? "table"
        guard format == "table" || format == "json" else { throw UsageError(message: "--format must be table or json, got '\(format)'") }
        let batch = try a.integer("--batch", default: 1, in: 1...1_000_000)
        let depth = try a.integer("--depth", default: Int.max, in: 0...Int.max)
        let maxParams = try a.amount("--max-params")
        let maxMacs = try a.amount("--max-macs")
        guard let (checked, g, cost) = try loadChecked(a.positional[0], printWarnings: !a.has("--no-warnings")) else { return ExitCode.failure }
        if format == "json" {
            out(CheckReport.json(g, cost, checked: checked, batch: batch).render() + "\n")
        } else {
            out(CheckReport.table(g, cost, batch: batch, depth: depth, path: a.positional[0]))
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
}

/// Renders check results as a table or JSON.
enum CheckReport {
    /// A short description of a node's op: `conv 3x3/2 96 pad 1 bn relu`.
    static func describe(_ op: Op) -> String {
        func act(_ a: Activation) -> String {
            switch a { case .none: return ""; case .relu: return " relu"; case .leaky(let s): return " leaky \(s)" }
        }
        switch op {
        case .input: return "input"
        case .conv(let c):
            return "conv \(c.kernel)x\(c.kernel)/\(c.stride) \(c.filters)" + (c.pad != (c.kernel - 1) / 2 ? " pad \(c.pad)" : "")
                + (c.bias ? "" : " nobias") + (c.batchNorm ? " bn" : "") + act(c.activation)
        case .pool(let p):
            return "\(p.kind.rawValue)pool \(p.kernel)x\(p.kernel)/\(p.stride)" + (p.pad > 0 ? " pad \(p.pad)" : "") + (p.ceil ? " ceil" : "")
        case .globalAvgPool: return "gap"
        case .batchNorm: return "bn"
        case .activation(let a): return a == .none ? "linear" : String(act(a).dropFirst())
        case .dropout(let p): return "dropout \(p)"
        case .linear(let l): return "fc \(l.units)" + (l.bias ? "" : " nobias") + act(l.activation)
        case .softmax: return "softmax"
        case .concat: return "concat"
        case .add: return "add"
        }
    }

    /// The aligned per-layer table followed by totals.
    static func table(_ g: Graph, _ cost: NetworkCost, batch: Int, depth: Int, path: String) -> String {
        var rows: [[String]] = [["layer", "op", "output", "params", "MACs", "RF", "stride", "memory", "line"]]
        var indentOf: [Int] = [0]
        var shownModules = Set<Int>()
        let membersOf = CostModel.membersByModule(in: g)
        for n in g.nodes {
            let path = g.modulePath(of: n)
            // Module header rows when entering modules; collapse beyond depth.
            var collapsed = false
            for (level, m) in path.enumerated() {
                if level >= depth {
                    if !shownModules.contains(m) {
                        shownModules.insert(m)
                        let members = membersOf[m]
                        let s = cost.sum(members)
                        let last = g.nodes[members.last!]
                        let mem = members.reduce(0) { $0 + cost.nodes[$1].activationElements } * batch * 4
                        rows.append([indent(level) + g.modules[m].name, g.modules[m].summary, last.shape.description, grouped(s.params), grouped(s.macs),
                                     extent(cost.nodes[last.id].receptiveField), extent(cost.nodes[last.id].cumulativeStride), bytes(mem), String(g.modules[m].location.line)])
                        indentOf.append(level)
                    }
                    collapsed = true
                    break
                }
                if !shownModules.contains(m) {
                    shownModules.insert(m)
                    let members = membersOf[m]
                    let s = cost.sum(members)
                    rows.append([indent(level) + g.modules[m].name, g.modules[m].summary, "", grouped(s.params), grouped(s.macs), "", "", "", String(g.modules[m].location.line)])
                    indentOf.append(level)
                }
            }
            if collapsed { continue }
            let c = cost.nodes[n.id]
            rows.append([indent(path.count) + n.name, describe(n.op), n.shape.description, grouped(c.params), grouped(c.macs),
                         extent(c.receptiveField), extent(c.cumulativeStride), bytes(c.activationElements * batch * 4), String(n.location.line)])
        }
        let rightAligned: Set<Int> = [3, 4, 5, 6, 7, 8]
        var widths = [Int](repeating: 0, count: rows[0].count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        var s = "\(g.name): input \(g.inputShape), \(path)\n\n"
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
        s += "params:      \(grouped(cost.params)) (\(grouped(cost.weights)) weights, \(grouped(cost.params - cost.weights)) biases and batch-norm)\n"
        s += "MACs:        \(grouped(cost.macs)) (\(human(cost.macs))) per image\n"
        s += "FLOPs:       \(grouped(cost.flops)) (\(human(cost.flops))) = 2 x MACs\n"
        s += "other ops:   \(grouped(cost.otherOps)) (batch norm, activations, pooling, additions; not in MACs)\n"
        s += "ptflops:     \(grouped(cost.ptflopsMACs)) (\(human(cost.ptflopsMACs))) MACs as the ptflops package counts them (adds biases, activations, pooling)\n"
        s += "memory:      batch \(batch): activations \(bytes(cost.activationElements * batch * 4)), training estimate \(bytes(cost.trainingBytes(batch: batch))), inference \(bytes(cost.inferenceBytes(batch: batch)))\n"
        return s
    }

    private static func indent(_ level: Int) -> String { String(repeating: "  ", count: level) }

    /// The JSON report (README, "dsl check --format json").
    static func json(_ g: Graph, _ cost: NetworkCost, checked: CheckedNetwork, batch: Int) -> JSON {
        let layers: [JSON] = g.nodes.map { n in
            let c = cost.nodes[n.id]
            return .object([
                ("name", .string(n.name)), ("op", .string(n.op.kindName)), ("description", .string(describe(n.op))),
                ("line", .int(n.location.line)), ("column", .int(n.location.column)),
                ("inputs", .array(n.inputs.map { .string(g.nodes[$0].name) })),
                ("output", .array([.int(n.shape.height), .int(n.shape.width), .int(n.shape.channels)])),
                ("params", .int(c.params)), ("weights", .int(c.weights)), ("macs", .int(c.macs)), ("other_ops", .int(c.otherOps)),
                ("receptive_field", .int(c.receptiveField)), ("cumulative_stride", .int(c.cumulativeStride)),
                ("activation_bytes", .int(c.activationElements * batch * 4)),
                ("module", n.module.map { .string(g.modules[$0].name) } ?? .null),
            ])
        }
        let membersOf = CostModel.membersByModule(in: g)
        let modules: [JSON] = g.modules.map { m in
            let members = membersOf[m.id]
            let s = cost.sum(members)
            let outShape = members.last.map { g.nodes[$0].shape }
            return .object([
                ("name", .string(m.name)), ("kind", .string(m.kind)), ("summary", .string(m.summary)),
                ("line", .int(m.location.line)), ("column", .int(m.location.column)),
                ("parent", m.parent.map { .string(g.modules[$0].name) } ?? .null),
                ("output", outShape.map { .array([.int($0.height), .int($0.width), .int($0.channels)]) } ?? .null),
                ("params", .int(s.params)), ("weights", .int(s.weights)), ("macs", .int(s.macs)),
            ])
        }
        let diags: [JSON] = checked.diagnostics.items.map {
            .object([("severity", .string($0.severity.rawValue)), ("message", .string($0.message)), ("line", .int($0.location.line)), ("column", .int($0.location.column))])
        }
        return .object([
            ("network", .string(g.name)),
            ("input", .array([.int(g.inputShape.height), .int(g.inputShape.width), .int(g.inputShape.channels)])),
            ("output", .array([.int(g.nodes[g.output].shape.height), .int(g.nodes[g.output].shape.width), .int(g.nodes[g.output].shape.channels)])),
            ("layers", .array(layers)),
            ("modules", .array(modules)),
            ("total", .object([("params", .int(cost.params)), ("weights", .int(cost.weights)), ("macs", .int(cost.macs)), ("flops", .int(cost.flops)), ("other_ops", .int(cost.otherOps)), ("ptflops_macs", .int(cost.ptflopsMACs))])),
            ("memory", .object([("batch", .int(batch)), ("activation_bytes", .int(cost.activationElements * batch * 4)), ("training_bytes", .int(cost.trainingBytes(batch: batch))), ("inference_bytes", .int(cost.inferenceBytes(batch: batch)))])),
            ("diagnostics", .array(diags)),
        ])
    }
}

/// A receptive field or cumulative stride for the table: at `CostModel.maxReceptiveField` the
/// figure stopped counting, so it reads ">=1e15" (JSON keeps the number).
private func extent(_ v: Int) -> String {
    v >= CostModel.maxReceptiveField ? ">=1e15" : String(v)
}
