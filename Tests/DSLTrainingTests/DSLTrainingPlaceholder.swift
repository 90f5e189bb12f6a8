import XCTest

final class DSLTrainingPlaceholder: XCTestCase {
    func testPlaceholderModuleBuilds() { XCTAssertTrue(true) }
}
