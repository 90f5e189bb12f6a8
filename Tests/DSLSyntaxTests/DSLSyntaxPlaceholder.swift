import XCTest

final class DSLSyntaxPlaceholder: XCTestCase {
    func testPlaceholderModuleBuilds() { XCTAssertTrue(true) }
}
