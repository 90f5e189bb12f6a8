import DSLEngine
import DSLIR
import DSLTraining
import DSLVisualize
import Foundation

/// `dsl visualize FILE --weights CKPT --layer NAME -o grid.png`: guided backpropagation, the
/// deconvnet and plain backpropagation of a trained network's units (DSLVisualize).
enum VisualizeCommand {
    static let command = Command(name: "visualize", summary: "what units respond to: guided backprop, deconvnet, saliency (PNG)", help: """
    Usage: dsl visualize FILE --weights CKPT --layer NAME [--units LIST] [--top K]
                         [--method guided|deconvnet|backprop|all] -o GRID.png
           dsl visualize FILE --weights CKPT --image N (--class C | --layer NAME [--units LIST])
                         [--method ...] -o GRID.png
                         [--data DIR] [--dataset NAME] [--labels fine|coarse] [--raw FILE.npy]
                         [--batch N] [--threads T]

    For each unit (a channel of the layer), finds the K test images that activate it most and
    draws each, cropped to the unit's receptive field, beside its reconstruction: the unit's
    single strongest activation in that image back-propagated to the image (its gradient set
    to 1, all others to 0), in inference mode (batch norm with its running statistics, dropout
    off), through every ReLU by the chosen rule (Springenberg et al., "Striving for
    Simplicity", Figure 1):

      backprop   the gradient (Simonyan et al.'s saliency): pass where the ReLU's input was > 0
      deconvnet  Zeiler and Fergus: pass where the gradient arriving from above is > 0
      guided     guided backpropagation: pass where both hold

    Max pooling routes the gradient by its switches (the argmax of the forward pass); strided
    convolutions, batch norm, average pooling, concat and add back-propagate as usual. One PNG,
    a row per unit. Each map is normalised for display on its own: its mean subtracted,
    divided by its largest absolute deviation, shown as 128 + 127·v (grey = the map's mean).

      --weights CKPT       checkpoint written by 'dsl train' for this spec (required)
      --layer NAME         layer whose units to show (names as 'dsl check' prints them)
      --units LIST         its channels, e.g. 0,5,9-12 (default: the first 8)
      --top K              test images per unit, strongest first (default 9)
      --method M           guided, deconvnet, backprop, or all: the three side by side
                           (backprop, deconvnet, guided) (default guided)
      -o GRID.png          the picture to write (required)
      --image N            only test image N (0-based): its whole-image map for each unit
                           (at the unit's strongest activation in it) or for --class
      --class C            the logit of class C (the input of the final softmax) instead of a
                           layer's unit; with --image, the class map of that image, without
                           it, the top K images of that logit
      --raw FILE.npy       also write the unnormalised maps: float32, shape (rows, images per
                           row, methods, H, W, C), the gradient with respect to the network's
                           preprocessed input, whole images (not cropped)
      --data DIR           dataset directory (default: the one the checkpoint was trained on)
      --dataset NAME       cifar10, cifar100 or mnist (default: detected from the files)
      --labels fine|coarse CIFAR-100 labels (default: the checkpoint's, else fine)
      --batch N            images per pass (default 50)
      --threads T          worker threads (default: all cores)

    Standard output lists, per row, each image's test index, class, activation and position
    (output row, column of the layer). Errors (exit 1): an unknown layer or unit, a checkpoint
    of another network, an image index out of range.

    """, run: run)

    /// Parses `0,5,9-12` into [0, 5, 9, 10, 11, 12].
    static func parseUnits(_ text: String) throws -> [Int] {
        var units: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            if bounds.count == 1, let u = Int(bounds[0]) {
                units.append(u)
            } else if bounds.count == 2, let a = Int(bounds[0]), let b = Int(bounds[1]), a <= b, b - a < 100_000 {
                units += Array(a...b)
            } else {
                throw UsageError(message: "--units must be a list such as 0,5,9-12, got '\(text)'")
            }
        }
        return units
    }

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["--weights", "--layer", "--units", "--top", "--method", "-o", "--image", "--class", "--raw",
                                                   "--data", "--dataset", "--labels", "--batch", "--threads"], flagOptions: [])
        guard a.positional.count == 1 else { throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file") }
        guard let weights = a.value("--weights") else { throw UsageError(message: "missing --weights CKPT") }
        guard let output = a.value("-o") else { throw UsageError(message: "missing -o GRID.png") }
        var request = VisualizeRequest()
        request.layer = a.value("--layer")
        request.units = try a.value("--units").map(parseUnits)
        request.top = try a.integer("--top", default: 9, in: 1...1000)
        if let m = a.value("--method") {
            guard let method = VisualizeMethod(rawValue: m) else {
                throw UsageError(message: "--method must be guided, deconvnet, backprop or all, got '\(m)'")
            }
            request.method = method
        }
        request.image = try a.value("--image").map { _ in try a.integer("--image", default: 0, in: 0...Int(Int32.max)) }
        request.classIndex = try a.value("--class").map { _ in try a.integer("--class", default: 0, in: 0...1_000_000) }
        if request.layer == nil && request.classIndex == nil { throw UsageError(message: "missing --layer NAME (or --class C)") }
        if request.classIndex != nil && request.units != nil { throw UsageError(message: "--units chooses units of --layer; --class C chooses the logit of class C") }
        let batch = try a.integer("--batch", default: 50, in: 1...4096)
        let datasetFormat = try a.datasetFormat()
        let labelsFlag = try a.cifar100Labels()
        engineThreadCount = try a.integer("--threads", default: ProcessInfoCores.count, in: 1...256)

        guard let (checked, g, _) = try loadChecked(a.positional[0]) else { return ExitCode.failure }
        if !endsInSoftmax(g) {
            reportEngineError("visualize needs a classifier that ends in 'softmax' (it was trained with the softmax loss); "
                              + "this one ends in '\(g.nodes[g.output].name)'", node: g.output, checked: checked, graph: g)
            return ExitCode.failure
        }
        let checkpoint = try TrainingCheckpoint.read(from: weights)
        for note in try Trainer.checkCheckpoint(checkpoint, graph: g, file: weights, use: .evaluate) { err("note: \(note)\n") }
        guard let dataDir = a.value("--data") ?? checkpoint.recipe?.dataDirectory else {
            throw UsageError(message: "missing --data DIR (the checkpoint does not name the data it was trained on)")
        }
        let labels = labelsFlag ?? checkpoint.recipe?.labels ?? .fine
        let format = try datasetFormat ?? detectDatasetFormat(directory: dataDir)
        let test = try loadDataset(directory: dataDir, format: format, labels: labels).test
        let visualizer: Visualizer
        do {
            visualizer = try Visualizer(graph: g, checkpoint: checkpoint, checkpointPath: weights, test: test, batch: batch)
        } catch let e as LoweringError {
            reportLoweringError(e, checked: checked, graph: g)
            return ExitCode.failure
        } catch let e as EngineMemoryError {
            throw memoryFailure(e, path: checked.source.path)
        } catch let e as VisualizeError {
            throw CommandFailure(message: "\(dataDir): \(e.message)")
        }
        for warning in visualizer.warnings { err("warning: \(warning)\n") }
        let result: VisualizeResult
        do {
            result = try visualizer.run(request)
        } catch let e as VisualizeError {
            throw CommandFailure(message: e.message)
        }
        try PNG.write(result.grid(), to: output)
        if let raw = a.value("--raw") { try NPY.write(shape: result.rawShape, values: result.rawValues, to: raw) }
        out("\(g.name): \(result.layer), \(result.rules.map(\.rawValue).joined(separator: ", ")) on \(dataDir)\n")
        out(result.summary())
        let grid = result.rawShape
        out("wrote \(output) (\(grid[0]) row\(grid[0] == 1 ? "" : "s") of \(grid[1]) image\(grid[1] == 1 ? "" : "s"))"
            + (a.value("--raw").map { ", \($0) (float32 \(grid.map(String.init).joined(separator: "x")))" } ?? "") + "\n")
        return ExitCode.ok
    }
}
