/// Line diffs: a longest-common-subsequence alignment (dynamic programming after trimming the
/// common prefix and suffix) rendered as a unified diff with context.
public enum LineDiff {
    /// One line of an alignment.
    public enum Edit: Equatable {
        case same(String), removed(String), added(String)
    }

    /// The edits turning `a` into `b`, removals before additions within a change.
    public static func edits(_ a: [String], _ b: [String]) -> [Edit] {
        var prefix = 0
        while prefix < a.count && prefix < b.count && a[prefix] == b[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < a.count - prefix && suffix < b.count - prefix && a[a.count - 1 - suffix] == b[b.count - 1 - suffix] { suffix += 1 }
        let x = Array(a[prefix..<(a.count - suffix)]), y = Array(b[prefix..<(b.count - suffix)])
        // lcs[i][j]: length of the LCS of x[i...] and y[j...].
        let n = x.count, m = y.count
        var lcs = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
        if n > 0 && m > 0 {
            for i in stride(from: n - 1, through: 0, by: -1) {
                for j in stride(from: m - 1, through: 0, by: -1) {
                    lcs[i][j] = x[i] == y[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
                }
            }
        }
        var out: [Edit] = a[..<prefix].map { .same($0) }
        var i = 0, j = 0
        while i < n || j < m {
            if i < n && j < m && x[i] == y[j] { out.append(.same(x[i])); i += 1; j += 1 }
            else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) { out.append(.removed(x[i])); i += 1 }
            else { out.append(.added(y[j])); j += 1 }
        }
        out += a[(a.count - suffix)...].map { .same($0) }
        return out
    }

    /// A unified diff (`---`/`+++` headers, `@@ -l,n +l,n @@` hunks, `context` lines around
    /// each change); empty when the texts are equal.
    public static func unified(_ old: String, _ new: String, oldName: String, newName: String, context: Int = 3) -> String {
        func lines(_ s: String) -> [String] {
            var l = s.components(separatedBy: "\n")
            if l.last == "" { l.removeLast() }
            return l
        }
        let e = edits(lines(old), lines(new))
        guard e.contains(where: { if case .same = $0 { return false }; return true }) else { return "" }
        // Positions of each edit in the old and new files (1-based, of the next line).
        var oldLine = [Int](), newLine = [Int]()
        var o = 1, n = 1
        for x in e {
            oldLine.append(o); newLine.append(n)
            switch x { case .same: o += 1; n += 1; case .removed: o += 1; case .added: n += 1 }
        }
        let changed = e.indices.filter { if case .same = e[$0] { return false }; return true }
        // Group changes whose context overlaps into hunks.
        var hunks: [(Int, Int)] = []
        for c in changed {
            let lo = max(0, c - context), hi = min(e.count - 1, c + context)
            if let last = hunks.last, lo <= last.1 + 1 { hunks[hunks.count - 1].1 = hi } else { hunks.append((lo, hi)) }
        }
        var out = "--- \(oldName)\n+++ \(newName)\n"
        for (lo, hi) in hunks {
            let slice = e[lo...hi]
            let oldCount = slice.filter { if case .added = $0 { return false }; return true }.count
            let newCount = slice.filter { if case .removed = $0 { return false }; return true }.count
            let oldStart = oldCount == 0 ? oldLine[lo] - 1 : oldLine[lo]
            let newStart = newCount == 0 ? newLine[lo] - 1 : newLine[lo]
            out += "@@ -\(oldStart),\(oldCount) +\(newStart),\(newCount) @@\n"
            for x in slice {
                switch x {
                case .same(let s): out += " " + s + "\n"
                case .removed(let s): out += "-" + s + "\n"
                case .added(let s): out += "+" + s + "\n"
                }
            }
        }
        return out
    }
}
