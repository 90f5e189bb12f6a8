import DSLVisualize
import XCTest

/// Placeholder so the target builds before its first real tests land; replaced by them.
final class VisualizeModuleTests: XCTestCase {}
