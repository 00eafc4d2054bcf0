// kernels/tma.cuh: Hopper's mbarriers and TMA tensor loads (sm_90), as thin wrappers over PTX with
// the emulator's stand-ins (kernels/emu_async.cpp) under KILN_EMU. Included by matmul_sm90.cu.
//
// An mbarrier (8 bytes of shared memory) counts arrivals and expected bytes: a phase completes
// when `count` arrivals are in and every byte announced by an arrival with expect_tx has been
// written by the loads that signal it; its parity then flips. A waiter names the parity of the
// phase it waits for: mbar_wait(b, 0) returns once phase 0 has completed, and mbar_wait(b, 1) on
// a fresh barrier returns at once (the phase "before" phase 0), which lets a producer's first
// pass through its ring of empty-slot barriers run without waiting.
//
// A tensor map (TmaMap, 128 bytes, made on the host by backend/cuda/tma.rs) describes a global
// bf16 tensor and the box one load moves; loads zero-fill what lies outside the tensor, and every
// load counts its whole box in bytes against the mbarrier. Kernels take maps as
// `const __grid_constant__ TmaMap` parameters and pass their address.

#ifdef KILN_EMU
using TmaMap = kiln_emu::TmaMap;
#else
struct __align__(64) TmaMap { unsigned long long opaque[16]; };  // CUtensorMap
#endif

__device__ __forceinline__ void mbar_init(u64* bar, u32 count) {
#ifndef KILN_EMU
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(smem_addr(bar)), "r"(count) : "memory");
#else
    kiln_emu::mbar_init(bar, count);
#endif
}
// After the initialising thread's mbar_init calls, before the __syncthreads that publishes them:
// makes the initialised barriers visible to the TMA unit.
template <int X = 0> __device__ __forceinline__ void mbar_fence_init() {
#ifndef KILN_EMU
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}
__device__ __forceinline__ void mbar_arrive(u64* bar) {
#ifndef KILN_EMU
    asm volatile("{ .reg .b64 st; mbarrier.arrive.shared::cta.b64 st, [%0]; }" :: "r"(smem_addr(bar)) : "memory");
#else
    kiln_emu::mbar_arrive(bar, 0);
#endif
}
// One arrival that also announces `bytes` more bytes for this phase (the loads that follow).
__device__ __forceinline__ void mbar_arrive_expect_tx(u64* bar, u32 bytes) {
#ifndef KILN_EMU
    asm volatile("{ .reg .b64 st; mbarrier.arrive.expect_tx.shared::cta.b64 st, [%0], %1; }"
                 :: "r"(smem_addr(bar)), "r"(bytes) : "memory");
#else
    kiln_emu::mbar_arrive(bar, bytes);
#endif
}
// Until the phase of parity `parity` has completed; no shared read moves above it. A wait of
// over 2^32 cycles (~2 s) traps: a protocol bug fails its launch instead of hanging the GPU.
#ifndef KILN_EMU
__device__ __forceinline__ u32 mbar_try_wait(u32 bar, u32 parity) {
    u32 done;
    asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                 : "=r"(done) : "r"(bar), "r"(parity) : "memory");
    return done;
}
#endif
__device__ __forceinline__ void mbar_wait(u64* bar, u32 parity) {
#ifndef KILN_EMU
    const u32 a = smem_addr(bar);
    if (mbar_try_wait(a, parity)) return;
    const long long t0 = clock64();
    while (!mbar_try_wait(a, parity))
        if (clock64() - t0 > (1ll << 32)) __trap();
#else
    kiln_emu::mbar_wait(bar, parity);
#endif
}
// Load the box of `map` at element coordinates (c0 innermost, c1, c2) into `smem` (1024-byte
// aligned for the 128-byte swizzle), signalling `bar` with its bytes. Issued by one thread.
__device__ __forceinline__ void tma_load_3d(void* smem, const TmaMap* map, int c0, int c1, int c2, u64* bar) {
#ifndef KILN_EMU
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];"
        :: "r"(smem_addr(smem)), "l"(reinterpret_cast<u64>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_addr(bar))
        : "memory");
#else
    kiln_emu::tma_load(smem, map, c0, c1, c2, bar);
#endif
}

// ---- clusters (sm_90): blocks launched together (`__cluster_dims__`) that reach each other's
// shared memory. Cluster kernels keep all shared data in dynamic shared memory (the emulator gives
// each block of a cluster its own dynamic buffer, but not its own static __shared__ arrays).
__device__ __forceinline__ u32 cluster_rank() {
#ifndef KILN_EMU
    u32 r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
    return r;
#else
    return kiln_emu::cluster_rank();
#endif
}
// Every thread of every block of the cluster arrives, then waits for the others (release/acquire:
// shared-memory writes before it are visible to the whole cluster after it).
template <int X = 0> __device__ __forceinline__ void cluster_sync() {
#ifndef KILN_EMU
    asm volatile("barrier.cluster.arrive.release;\nbarrier.cluster.wait.acquire;" ::: "memory");
#else
    kiln_emu::cluster_sync();
#endif
}
// The address of p's dynamic shared location in block `cta` of the cluster (a generic pointer that
// reaches the peer's shared memory).
template <class T> __device__ __forceinline__ T* cluster_map(T* p, u32 cta) {
#ifndef KILN_EMU
    u64 r;
    asm volatile("mapa.u64 %0, %1, %2;" : "=l"(r) : "l"(reinterpret_cast<u64>(p)), "r"(cta));
    return reinterpret_cast<T*>(r);
#else
    return static_cast<T*>(kiln_emu::cluster_map(p, cta));
#endif
}
// One arrival on the mbarrier at bar's offset in block `cta` of the cluster (this block included).
__device__ __forceinline__ void mbar_arrive_cluster(u64* bar, u32 cta) {
#ifndef KILN_EMU
    u32 remote;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(smem_addr(bar)), "r"(cta));
    asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];" :: "r"(remote) : "memory");
#else
    kiln_emu::mbar_arrive(static_cast<u64*>(kiln_emu::cluster_map(bar, cta)), 0);
#endif
}
// tma_load_3d into the same offset of every block of the cluster in `mask` (bit c: block c), each
// block's mbarrier at bar's offset counting the bytes that reach it.
__device__ __forceinline__ void tma_load_3d_multicast(void* smem, const TmaMap* map, int c0, int c1, int c2, u64* bar, u32 mask) {
#ifndef KILN_EMU
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster"
        " [%0], [%1, {%2, %3, %4}], [%5], %6;"
        :: "r"(smem_addr(smem)), "l"(reinterpret_cast<u64>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(smem_addr(bar)),
           "h"((unsigned short)mask)
        : "memory");
#else
    kiln_emu::tma_load_multicast(smem, map, c0, c1, c2, bar, mask);
#endif
}
