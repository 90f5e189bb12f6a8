// Stage 6: export. A checked network (the IR graph) and, optionally, its trained weights leave
// `dsl` in the formats the rest of the field runs: a PyTorch module (and a torchrun training
// script) and an ONNX model. Every exporter is a pure function from the graph (and weights) to
// the bytes of a file; the `dsl export` command writes them. README, "Export and scale out".

/// Why a network or its weights cannot be exported, naming what is wrong.
public struct ExportError: Error, CustomStringConvertible {
    /// The message.
    public let message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

