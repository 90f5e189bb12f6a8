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
func planArena(_ tensors: [PlannedTensor], reuse: Bool) -> (offsets: [Int], totalFloats: Int) {
    struct Slot { var floats: Int; var busyUntil: Int }
    var slots: [Slot] = []
    var slotOf = [Int](repeating: -1, count: tensors.count)
    let order = tensors.indices.sorted {
        (tensors[$0].start, -tensors[$0].floats, $0) < (tensors[$1].start, -tensors[$1].floats, $1)
    }
    for index in order {
        let tensor = tensors[index]
        var chosen = -1
        if reuse {
            var bestFit = -1, largest = -1
            for (s, slot) in slots.enumerated() where slot.busyUntil < tensor.start {
                if slot.floats >= tensor.floats, bestFit < 0 || slot.floats < slots[bestFit].floats { bestFit = s }
                if largest < 0 || slot.floats > slots[largest].floats { largest = s }
            }
            chosen = bestFit >= 0 ? bestFit : largest
        }
        if chosen < 0 {
            slots.append(Slot(floats: tensor.floats, busyUntil: tensor.end))
            chosen = slots.count - 1
        } else {
            slots[chosen].floats = max(slots[chosen].floats, tensor.floats)
            slots[chosen].busyUntil = tensor.end
        }
        slotOf[index] = chosen
    }
    var slotOffsets: [Int] = []
    var total = 0
    for slot in slots {
        slotOffsets.append(total)
        total += (slot.floats + 15) / 16 * 16
    }
    return (slotOf.map { slotOffsets[$0] }, total)
}
