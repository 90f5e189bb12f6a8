import DSLIR

/// The series-parallel decomposition of a graph: the layers one after the other, and each merge
/// as its branches (from the value they all read, the fork, to the merge) side by side.
///
/// Graphs made by the elaborator always decompose: every merge statement runs its branches on
/// the current value, so the fork of a merge is the node that dominates its inputs, and the
/// branches meet nowhere else. The decomposition walks back from the output: a layer with one
/// input continues the chain; a merge finds its fork (the walk below pops the latest node of a
/// frontier until one node is left), decomposes each branch from the fork to one of its inputs
/// (in input order, which is branch order), and the chain continues at the fork. A node that
/// would belong to two branches, a walk that passes the fork, or a node never reached means the
/// graph is not series-parallel (nil).
enum SeriesParallel {
    /// One item of a chain.
    indirect enum Item: Equatable {
        /// A layer with one input (or the network's input).
        case node(Int)
        /// A merge with its branches (empty: the merge reads the fork itself).
        case parallel(join: Int, branches: [[Item]])
    }

    /// How deeply merges may nest in a branch before the graph is treated as not series-parallel
    /// (the elaborator allows 64 levels of bodies; the limit keeps the recursion's stack small).
    static let maxNesting = 256

    /// The chain from the input (node 0) to the output, or nil.
    static func decompose(_ g: Graph) -> [Item]? {
        guard !g.nodes.isEmpty, g.nodes[0].inputs.isEmpty else { return nil }
        var d = Decomposer(inputs: g.nodes.map(\.inputs))
        d.budget = 64 * g.nodes.count + 100_000
        guard let chain = d.chain(from: 0, to: g.output, nesting: 0), d.claimed == g.nodes.count - 1 else { return nil }
        return [.node(0)] + chain
    }

    struct Decomposer {
        let inputs: [[Int]]
        var isClaimed: [Bool]
        var claimed = 0
        /// Steps of the fork walks left (a bound for graphs no DSL spec makes).
        var budget = 0

        init(inputs: [[Int]]) {
            self.inputs = inputs
            isClaimed = [Bool](repeating: false, count: inputs.count)
        }

        /// The items from `fork` (excluded) to `target` (included), in order.
        mutating func chain(from fork: Int, to target: Int, nesting: Int) -> [Item]? {
            guard nesting < SeriesParallel.maxNesting else { return nil }
            var reversed: [Item] = []
            var cur = target
            while cur != fork {
                guard cur > fork, !isClaimed[cur] else { return nil }
                isClaimed[cur] = true
                claimed += 1
                let ins = inputs[cur]
                guard !ins.isEmpty, ins.allSatisfy({ $0 >= 0 && $0 < cur }) else { return nil }
                if ins.count == 1 {
                    reversed.append(.node(cur))
                    cur = ins[0]
                    continue
                }
                guard let f = forkOf(ins, floor: fork) else { return nil }
                var branches: [[Item]] = []
                for i in ins {
                    guard let b = chain(from: f, to: i, nesting: nesting + 1) else { return nil }
                    branches.append(b)
                }
                reversed.append(.parallel(join: cur, branches: branches))
                cur = f
            }
            return reversed.reversed()
        }

        /// The latest node every path to `nodes` passes through, not before `floor`.
        mutating func forkOf(_ nodes: [Int], floor: Int) -> Int? {
            var heap = MaxHeap()
            var present = Set<Int>()
            for n in nodes where present.insert(n).inserted { heap.push(n) }
            while heap.count > 1 {
                let x = heap.pop()
                present.remove(x)
                budget -= 1
                guard x > floor, budget > 0 else { return nil }
                let ins = inputs[x]
                guard !ins.isEmpty else { return nil }
                for i in ins {
                    guard i >= 0 && i < x else { return nil }
                    if present.insert(i).inserted { heap.push(i) }
                }
            }
            let f = heap.pop()
            return f >= floor ? f : nil
        }
    }

    /// A binary max-heap of node ids.
    struct MaxHeap {
        private var items: [Int] = []
        var count: Int { items.count }
        mutating func push(_ v: Int) {
            items.append(v)
            var i = items.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                guard items[p] < items[i] else { break }
                items.swapAt(p, i); i = p
            }
        }
        mutating func pop() -> Int {
            let top = items[0]
            let last = items.removeLast()
            if !items.isEmpty {
                items[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < items.count && items[l] > items[m] { m = l }
                    if r < items.count && items[r] > items[m] { m = r }
                    if m == i { break }
                    items.swapAt(m, i); i = m
                }
            }
            return top
        }
    }
}
