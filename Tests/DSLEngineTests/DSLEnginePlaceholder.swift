import XCTest

final class DSLEnginePlaceholder: XCTestCase {
    func testPlaceholderModuleBuilds() { XCTAssertTrue(true) }
}
