import Foundation

/// A minimal terminal for tests: what a stream of output leaves on a screen of `columns`
/// columns. It interprets what progress displays use: printable characters (auto-wrapping at
/// the right edge, with the deferred wrap of xterm and the Linux console: a character in the
/// last column wraps only when another follows), `\r` (to column 0), `\n` (a new line, at
/// column 0: the terminal's usual `onlcr`), backspace, and the erase sequences `ESC [ K`,
/// `ESC [ 1 K`, `ESC [ 2 K`; other escape sequences and control characters are skipped.
/// Unbounded height: nothing scrolls away, so every line a program leaves is counted.
enum TerminalScreen {
    /// The screen's lines, trailing spaces removed, without the empty lines after the last text.
    static func render(_ text: String, columns: Int) -> [String] {
        precondition(columns > 0)
        var lines: [[Character]] = [[]]
        var row = 0, column = 0, pendingWrap = false
        func put(_ c: Character) {
            if pendingWrap { row += 1; column = 0; pendingWrap = false }
            while lines.count <= row { lines.append([]) }
            while lines[row].count <= column { lines[row].append(" ") }
            lines[row][column] = c
            if column == columns - 1 { pendingWrap = true } else { column += 1 }
        }
        func erase(_ range: Range<Int>) {
            while lines.count <= row { lines.append([]) }
            for i in range where i < lines[row].count { lines[row][i] = " " }
        }
        let scalars = Array(text.unicodeScalars)
        var i = 0
        while i < scalars.count {
            let s = scalars[i]
            i += 1
            switch s {
            case "\r": column = 0; pendingWrap = false
            case "\n": row += 1; column = 0; pendingWrap = false
            case "\u{8}": column = max(0, column - 1); pendingWrap = false
            case "\u{1B}":
                guard i < scalars.count else { break }
                if scalars[i] == "[" {
                    // CSI: parameters and intermediates up to a final byte in 0x40...0x7E.
                    var j = i + 1, parameters = ""
                    while j < scalars.count, !(0x40...0x7E).contains(scalars[j].value) { parameters.unicodeScalars.append(scalars[j]); j += 1 }
                    if j < scalars.count, scalars[j] == "K" {
                        switch parameters {
                        case "", "0": erase(column..<Int.max)
                        case "1": erase(0..<(column + 1))
                        case "2": erase(0..<Int.max)
                        default: break
                        }
                    }
                    i = j + 1
                } else {
                    i += 1   // a two-character escape
                }
            default:
                if s.value < 0x20 || s.value == 0x7F { continue }
                put(Character(s))
            }
        }
        var result = lines.map { String($0).replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
        while let last = result.last, last.isEmpty { result.removeLast() }
        return result
    }
}
