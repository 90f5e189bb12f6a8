// NHWC im2col / col2im for square kernels with stride and zero padding.
//
// Layout: the input (or its gradient) is [batch, h, w, c]; the column matrix has one row per
// output pixel, rows ordered (b, oh, ow), and kernel·kernel·c columns ordered (kh, kw, c):
//
//   col[((b·outH + oh)·outW + ow) · K + (kh·kernel + kw)·c + ci]
//       = input[((b·h + ih)·w + iw)·c + ci],  ih = oh·stride − pad + kh, iw = ow·stride − pad + kw
//
// (zero where (ih, iw) falls in the padding), K = kernel·kernel·c. A convolution is then
// col · W with W stored [kh, kw, ci, oc] as a K×OC matrix. Because c is innermost in both
// layouts, for fixed (row, kh) the valid kw range maps to one contiguous run of the input, so
// each (row, kh) is a single block copy (im2col) or a single vector add (col2im).
// Both functions split the work over images with `parallelFor`; every image is handled by one
// thread in a fixed order, so results do not depend on the thread count.

/// Unfolds NHWC `input` into the (b, oh, ow) × (kh, kw, c) column matrix `col` (zero padding).
public func im2colNHWC(input: UnsafePointer<Float>, batch: Int, h: Int, w: Int, c: Int,
                       kernel: Int, stride: Int, pad: Int, outH: Int, outW: Int,
                       col: UnsafeMutablePointer<Float>) {
    let kRow = kernel * kernel * c
    parallelFor(batch) { b in
        let image = input + b * h * w * c
        var row = col + b * outH * outW * kRow
        for oh in 0..<outH {
            for ow in 0..<outW {
                let iw0 = ow * stride - pad
                let kw0 = max(0, -iw0), kw1 = min(kernel, w - iw0)  // valid kw: kw0..<kw1
                for kh in 0..<kernel {
                    let ih = oh * stride - pad + kh
                    let dst = row + kh * kernel * c
                    if ih < 0 || ih >= h || kw0 >= kw1 {
                        dst.update(repeating: 0, count: kernel * c)
                        continue
                    }
                    if kw0 > 0 { dst.update(repeating: 0, count: kw0 * c) }
                    copyFloats(dst + kw0 * c, image + (ih * w + iw0 + kw0) * c, (kw1 - kw0) * c)
                    if kw1 < kernel { (dst + kw1 * c).update(repeating: 0, count: (kernel - kw1) * c) }
                }
                row += kRow
            }
        }
    }
}

/// Folds the column matrix `col` back onto NHWC `inputGradient`, accumulating (+=): the adjoint
/// of `im2colNHWC` (padding entries are dropped).
public func col2imNHWC(col: UnsafePointer<Float>, batch: Int, h: Int, w: Int, c: Int,
                       kernel: Int, stride: Int, pad: Int, outH: Int, outW: Int,
                       inputGradient: UnsafeMutablePointer<Float>) {
    let kRow = kernel * kernel * c
    parallelFor(batch) { b in
        let image = inputGradient + b * h * w * c
        var row = col + b * outH * outW * kRow
        for oh in 0..<outH {
            for ow in 0..<outW {
                let iw0 = ow * stride - pad
                let kw0 = max(0, -iw0), kw1 = min(kernel, w - iw0)
                if kw0 < kw1 {
                    for kh in 0..<kernel {
                        let ih = oh * stride - pad + kh
                        if ih < 0 || ih >= h { continue }
                        addFloats(image + (ih * w + iw0 + kw0) * c, row + (kh * kernel + kw0) * c,
                                  (kw1 - kw0) * c)
                    }
                }
                row += kRow
            }
        }
    }
}

/// dst[0..<n] = src[0..<n] with 16-wide vector moves (regions must not overlap).
@inline(__always)
private func copyFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 16 <= n {
        UnsafeMutableRawPointer(dst + i).storeBytes(
            of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float>.self), as: SIMD16<Float>.self)
        i += 16
    }
    while i < n { dst[i] = src[i]; i += 1 }
}

/// dst[0..<n] += src[0..<n] with 16-wide vector adds.
@inline(__always)
private func addFloats(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 16 <= n {
        let d = UnsafeRawPointer(dst + i).loadUnaligned(as: SIMD16<Float>.self)
        let s = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(dst + i).storeBytes(of: d + s, as: SIMD16<Float>.self)
        i += 16
    }
    while i < n { dst[i] += src[i]; i += 1 }
}
