// swift-tools-version:6.0
// The dsl compiler: a language for convolutional networks, its checker, rewrites, CPU engine
// and trainer. No dependency beyond the Swift toolchain (Foundation, Dispatch, XCTest).
import PackageDescription
import Foundation

/// Whether the machine building `dsl` has AVX-512F (Linux: /proc/cpuinfo). `-target-cpu native`
/// then compiles the engine for AVX-512, and the `DSL_AVX512` condition enables the code that
/// calls AVX-512 intrinsics directly (non-temporal stores in DirectConv.swift).
let buildMachineHasAVX512F: Bool = {
    guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return false }
    let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }
    return flags?.split(separator: " ").contains("avx512f") ?? false
}()

/// Hot numeric code is always optimised, even in debug builds, so that `swift test` runs the
/// engine at full speed; `-target-cpu native` makes the compiler emit the vector instructions
/// (AVX-512 on our machines) of whatever machine `dsl` is built on.
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-target-cpu", "native"]),
] + (buildMachineHasAVX512F ? [.define("DSL_AVX512")] : [])

let package = Package(
    name: "dsl",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dsl", targets: ["dsl"]),
        .executable(name: "dsl-fuzz", targets: ["dsl-fuzz"]),
        .library(name: "DSLCommands", targets: ["DSLCommands"]),
    ],
    targets: [
        // Stage 1: source text, tokens, lexer, parser, AST, diagnostics.
        .target(name: "DSLSyntax"),
        // Stage 2: the graph IR, expansion of modules, shape inference and costs.
        .target(name: "DSLIR", dependencies: ["DSLSyntax"]),
        // Stage 3: rewrites (strided, all-conv, convpool, reduce, gap-head), verifier, printer.
        .target(name: "DSLPasses", dependencies: ["DSLSyntax", "DSLIR"]),
        // Stage 4: tensors, kernels, operators (forward and backward), lowering, memory plan.
        .target(name: "DSLEngine", dependencies: ["DSLIR", "DSLEngineC"], swiftSettings: fastMath),
        // The software prefetch Swift cannot express (see its header).
        .target(name: "DSLEngineC"),
        // Stage 5: datasets, preprocessing, optimiser, schedules, checkpoints, plots.
        .target(name: "DSLTraining", dependencies: ["DSLIR", "DSLEngine"], swiftSettings: fastMath),
        // Stage 6: export to PyTorch (a module and a torchrun training script) and ONNX.
        .target(name: "DSLExport", dependencies: ["DSLSyntax", "DSLIR", "DSLEngine", "DSLTraining"]),
        // Stage 6: pictures: the network drawn (SVG, dot), guided backpropagation (PNG, .npy).
        .target(name: "DSLVisualize", dependencies: ["DSLSyntax", "DSLIR", "DSLEngine", "DSLTraining"]),
        // Stage 7: one file per command; argument parsing and printing only.
        .target(name: "DSLCommands", dependencies: ["DSLSyntax", "DSLIR", "DSLPasses", "DSLEngine", "DSLTraining", "DSLExport", "DSLVisualize"]),
        // The thin executable.
        .executableTarget(name: "dsl", dependencies: ["DSLCommands"]),
        // The fuzzer: generators, mutators and oracles over every stage, called as functions
        // (README, "Fuzzing"); `dsl-fuzz` runs long campaigns in supervised worker processes.
        .target(name: "DSLFuzz", dependencies: ["DSLSyntax", "DSLIR", "DSLPasses", "DSLEngine"]),
        .executableTarget(name: "dsl-fuzz", dependencies: ["DSLFuzz"]),

        .testTarget(name: "DSLSyntaxTests", dependencies: ["DSLSyntax"]),
        .testTarget(name: "DSLIRTests", dependencies: ["DSLSyntax", "DSLIR"]),
        .testTarget(name: "DSLPassesTests", dependencies: ["DSLSyntax", "DSLIR", "DSLPasses"], exclude: ["golden"]),
        .testTarget(name: "DSLEngineTests", dependencies: ["DSLIR", "DSLEngine"], swiftSettings: fastMath),
        .testTarget(name: "DSLTrainingTests", dependencies: ["DSLIR", "DSLEngine", "DSLTraining", "PythonTestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["DSLCommands"], exclude: ["bad-specs", "good-specs", "warning-specs", "fixtures"]),
        // The Python environment of the reference checks (onnx, onnxruntime, numpy, Pillow, torch),
        // shared by the export and picture tests; never part of the dsl product.
        .target(name: "PythonTestSupport", path: "Tests/PythonTestSupport"),
        .testTarget(name: "ExportTests", dependencies: ["DSLSyntax", "DSLIR", "DSLEngine", "DSLTraining", "DSLExport", "PythonTestSupport"], exclude: ["python"]),
        .testTarget(name: "VisualizeTests", dependencies: ["DSLSyntax", "DSLIR", "DSLEngine", "DSLTraining", "DSLVisualize", "PythonTestSupport"], exclude: ["README.md", "python", "specs"]),
        .testTarget(name: "FuzzTests", dependencies: ["DSLFuzz", "DSLSyntax", "DSLIR", "DSLPasses", "DSLEngine"], exclude: ["regressions"]),
    ],
    // Language mode 5: the engine hands raw buffers to worker threads (concurrentPerform), which
    // Swift 6's strict sendability checking would force through unchecked wrappers everywhere.
    swiftLanguageModes: [.v5]
)
