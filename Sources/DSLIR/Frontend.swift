import DSLSyntax

/// A spec taken through the front end: parsed, elaborated and costed.
public struct CheckedNetwork {
    /// The source file.
    public var source: SourceFile
    /// The parsed spec (present even when there were errors).
    public var spec: SpecFile
    /// The graph, when there were no errors.
    public var graph: Graph?
    /// The costs of the graph, when there is one.
    public var cost: NetworkCost?
    /// Every diagnostic from lexing, parsing and elaboration, in source order per stage.
    public var diagnostics: DiagnosticBag
}

/// The front end: text → AST → IR → costs.
public enum Frontend {
    /// Parses, elaborates and costs a source file. Statements that failed to parse are kept as
    /// `invalid` placeholders, after which shapes are not inferred, so one run reports every
    /// error without cascades. `input` replaces the size the spec's `input` declares.
    public static func check(_ source: SourceFile, input: Shape? = nil) -> CheckedNetwork {
        let (spec, parseDiagnostics) = Parser.parse(source)
        var diagnostics = parseDiagnostics
        var graph: Graph?
        do {
            let base = source.path.split(separator: "/").last.map(String.init) ?? source.path
            let name = base.hasSuffix(".dsl") ? String(base.dropLast(4)) : base
            let result = Elaborator.elaborate(spec, defaultName: name, input: input)
            diagnostics.append(contentsOf: result.diagnostics)
            graph = result.graph
        }
        if diagnostics.hasErrors { graph = nil }
        return CheckedNetwork(source: source, spec: spec, graph: graph, cost: graph.map(CostModel.analyze), diagnostics: diagnostics)
    }

    /// Checks spec text (for tests and tools).
    public static func check(text: String, path: String = "spec.dsl") -> CheckedNetwork {
        check(SourceFile(path: path, text: text))
    }
}
