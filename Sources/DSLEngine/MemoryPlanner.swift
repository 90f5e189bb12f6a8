// Memory planner: packs tensors with known lifetimes into one arena.
//
// Time runs over the forward steps 0..<N (node k at time k) and then the backward steps (node k
// at time 2N−1−k). A tensor is live over the closed interval [start, end]; two tensors may share
// storage only when one ends strictly before the other starts (a step reads its inputs while
// writing its output, so touching intervals must not alias). `Int.max` means "to the end".

/// A tensor to place: its size in floats and its live interval.
struct PlannedTensor {
    var floats: Int
    var start: Int
    var end: Int
}

/// Assigns arena offsets (in floats, 16-float aligned) to tensors: greedy in start order, each
/// tensor takes the free slot that fits best (growing the largest free slot if none fits), or a
/// new slot. With `reuse` false every tensor gets its own slot.
///
/// O(n log n + n·f) for n tensors and at most f slots free at once: slots become free from a
/// heap ordered by the end of their last tensor, and the free ones are kept sorted by size
/// (ties by slot number, as a scan over all slots in order would pick them). Scanning every
/// slot for every tensor made a 40,000-layer network take seconds.
func planArena(_ tensors: [PlannedTensor], reuse: Bool) -> (offsets: [Int], totalFloats: Int) {
    var slotFloats: [Int] = []
    var slotOf = [Int](repeating: -1, count: tensors.count)
    let order = tensors.indices.sorted {
        (tensors[$0].start, -tensors[$0].floats, $0) < (tensors[$1].start, -tensors[$1].floats, $1)
    }
    var busy = BusySlots()
    // Free slots as (floats, slot), sorted.
    var free: [(floats: Int, slot: Int)] = []
    func position(_ key: (Int, Int)) -> Int {
        var lo = 0, hi = free.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if (free[mid].floats, free[mid].slot) < key { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
    for index in order {
        let tensor = tensors[index]
        var chosen = -1
        if reuse {
            while let (end, slot) = busy.top, end < tensor.start {
                busy.pop()
                _ = end
                free.insert((slotFloats[slot], slot), at: position((slotFloats[slot], slot)))
            }
            if !free.isEmpty {
                // Best fit: the smallest free slot that holds the tensor (lowest number among equals);
                // else the largest (lowest number among equals), which grows.
                var at = position((tensor.floats, -1))
                if at == free.count { at = position((free[free.count - 1].floats, -1)) }
                chosen = free[at].slot
                free.remove(at: at)
            }
        }
        if chosen < 0 {
            slotFloats.append(tensor.floats)
            chosen = slotFloats.count - 1
        } else {
            slotFloats[chosen] = max(slotFloats[chosen], tensor.floats)
        }
        if reuse { busy.push(end: tensor.end, slot: chosen) }
        slotOf[index] = chosen
    }
    var slotOffsets: [Int] = []
    var total = 0
    for floats in slotFloats {
        slotOffsets.append(total)
        total += (floats + 15) / 16 * 16
    }
    return (slotOf.map { slotOffsets[$0] }, total)
}

/// A binary min-heap of (end, slot), ordered by end then slot.
private struct BusySlots {
    private var items: [(end: Int, slot: Int)] = []
    var top: (Int, Int)? { items.first.map { ($0.end, $0.slot) } }
    private static func less(_ a: (end: Int, slot: Int), _ b: (end: Int, slot: Int)) -> Bool { (a.end, a.slot) < (b.end, b.slot) }

    mutating func push(end: Int, slot: Int) {
        items.append((end, slot))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !BusySlots.less(items[i], items[parent]) { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() {
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < items.count && BusySlots.less(items[l], items[smallest]) { smallest = l }
            if r < items.count && BusySlots.less(items[r], items[smallest]) { smallest = r }
            if smallest == i { break }
            items.swapAt(i, smallest)
            i = smallest
        }
    }
}
