// The one thing the engine's kernels need that Swift cannot express: a software prefetch.
// (Swift imports clang's `_m_prefetch` builtin, but the optimiser drops the call as if it had
// no effect: no prefetch instruction is emitted.) A static inline function is compiled by
// clang into the calling Swift module and inlined there: one `prefetcht0` per call.
#ifndef DSL_ENGINE_C_H
#define DSL_ENGINE_C_H

/// Asks the CPU to bring the cache line holding `address` into all cache levels (a hint: it
/// never faults and changes no result).
static inline __attribute__((always_inline)) void dsl_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
