import XCTest

final class DSLPassesPlaceholder: XCTestCase {
    func testPlaceholderModuleBuilds() { XCTAssertTrue(true) }
}
