/// Line diffs: after trimming the common prefix and suffix, a longest-common-subsequence
/// alignment by dynamic programming when the rest is small (at most `tableLimit` cells), else
/// Myers' O(ND) greedy algorithm (Int32 traces of at most `maxEdits` steps), else, when more
/// than `maxEdits` lines differ, the whole differing middle as one removal and one addition.
/// Time and memory stay bounded for specs of any size (a 12,000-line spec took 1.4 GB with
/// the table alone). Rendered as a unified diff with context.
public enum LineDiff {
    /// One line of an alignment.
    public enum Edit: Equatable {
        case same(String), removed(String), added(String)
    }

    /// The largest dynamic-programming table (cells) used.
    static let tableLimit = 1 << 20
    /// The most edit steps Myers' algorithm searches before the diff falls back to one hunk.
    static let maxEdits = 3000

    /// The edits turning `a` into `b`, removals before additions within a change.
    public static func edits(_ a: [String], _ b: [String]) -> [Edit] {
        var prefix = 0
        while prefix < a.count && prefix < b.count && a[prefix] == b[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < a.count - prefix && suffix < b.count - prefix && a[a.count - 1 - suffix] == b[b.count - 1 - suffix] { suffix += 1 }
        let x = Array(a[prefix..<(a.count - suffix)]), y = Array(b[prefix..<(b.count - suffix)])
        var middle: [Edit]
        if x.count * y.count <= tableLimit {
            middle = table(x, y)
        } else if let m = myers(x, y, maxEdits: maxEdits) {
            middle = m
        } else {
            middle = x.map { .removed($0) } + y.map { .added($0) }
        }
        return a[..<prefix].map { .same($0) } + removalsFirst(middle) + a[(a.count - suffix)...].map { .same($0) }
    }

    /// Longest common subsequence by dynamic programming.
    static func table(_ x: [String], _ y: [String]) -> [Edit] {
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
        var out: [Edit] = []
        var i = 0, j = 0
        while i < n || j < m {
            if i < n && j < m && x[i] == y[j] { out.append(.same(x[i])); i += 1; j += 1 }
            else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) { out.append(.removed(x[i])); i += 1 }
            else { out.append(.added(y[j])); j += 1 }
        }
        return out
    }

    /// Myers' greedy shortest edit script, or nil when it needs more than `maxEdits` steps.
    /// Keeps, per step d, the furthest-reaching x of each diagonal in [-d, d] (Int32), so
    /// memory is O(maxEdits²) at most.
    static func myers(_ x: [String], _ y: [String], maxEdits: Int) -> [Edit]? {
        let n = x.count, m = y.count
        let limit = min(maxEdits, n + m)
        let off = limit + 1
        var v = [Int](repeating: 0, count: 2 * limit + 3)
        var trace: [[Int32]] = []
        for d in 0...limit {
            trace.append(v[(off - d)...(off + d)].map { Int32($0) })
            for k in stride(from: -d, through: d, by: 2) {
                var i = k == -d || (k != d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1
                var j = i - k
                while i < n && j < m && x[i] == y[j] { i += 1; j += 1 }
                v[off + k] = i
                if i >= n && j >= m { return backtrack(x, y, trace) }
            }
        }
        return nil
    }

    /// The edits of Myers' path, from the saved furthest-reaching points.
    static func backtrack(_ x: [String], _ y: [String], _ trace: [[Int32]]) -> [Edit] {
        var out: [Edit] = []
        var i = x.count, j = y.count
        for d in stride(from: trace.count - 1, through: 0, by: -1) {
            let v = trace[d]
            func at(_ k: Int) -> Int { k >= -d && k <= d ? Int(v[k + d]) : 0 }
            let k = i - j
            let prevK = k == -d || (k != d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1
            let prevI = at(prevK), prevJ = prevI - prevK
            while i > prevI && j > prevJ { out.append(.same(x[i - 1])); i -= 1; j -= 1 }
            if d > 0 {
                if i == prevI { out.append(.added(y[j - 1])) } else { out.append(.removed(x[i - 1])) }
            }
            i = prevI; j = prevJ
        }
        return out.reversed()
    }

    /// Within each run of changed lines, the removals first (as a unified diff shows them).
    static func removalsFirst(_ e: [Edit]) -> [Edit] {
        var out: [Edit] = []
        out.reserveCapacity(e.count)
        var removed: [Edit] = [], added: [Edit] = []
        for x in e {
            switch x {
            case .same:
                out += removed; out += added; removed.removeAll(); added.removeAll()
                out.append(x)
            case .removed: removed.append(x)
            case .added: added.append(x)
            }
        }
        return out + removed + added
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
