import XCTest

final class DSLIRPlaceholder: XCTestCase {
    func testPlaceholderModuleBuilds() { XCTAssertTrue(true) }
}
