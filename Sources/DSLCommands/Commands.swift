import Foundation

/// Runs the `dsl` command line with the given arguments and returns the process exit code.
public func runDSL(_ arguments: [String]) -> Int32 {
    FileHandle.standardError.write("dsl: not implemented yet\n".data(using: .utf8)!)
    return 2
}
