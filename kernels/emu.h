// kernels/emu.h: the CUDA device dialect kiln's kernels use, as plain C++20, so every kernel
// compiles with g++ and runs on the CPU (KERNELS.md, test 4; kernels/README.md, "Running kernels
// without a GPU"). build.rs compiles each family as
//     #include "emu.h"
//     namespace kiln_emu_<family> {  common.cuh  <family>.cu  }
// with -DKILN_EMU, and kernels/emu_rt.cpp runs a launch: the blocks one after another, the threads
// of a block as fibers (user-space threads on the launching OS thread) that switch at every
// __syncthreads and every warp-collective operation (shuffles, votes, __syncwarp, ldmatrix, mma).
// A block's threads thus run interleaved, in an order that alternates between launches, so a
// missing barrier shows up as a wrong or changing result.
//
// Shared memory: `__shared__` is `thread_local`, so a function's `__shared__` arrays are static
// storage shared by all fibers of the launching OS thread (one block runs at a time there), and
// two launches on two OS threads never share them. `extern __shared__` arrays (dynamic shared
// memory) all point at one KILN_EMU_DSMEM_BYTES buffer per OS thread (kiln_emu::dyn_smem below).
//
// Under -DKILN_EMU_SCAN (build.rs's preprocessing pass) only the keyword macros are defined, with
// __global__ and __shared__ turned into marker words that build.rs looks for in the output.
#pragma once

#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __grid_constant__
#define __cluster_dims__(...)
#define KILN_EMU_DSMEM_BYTES (227 * 1024)

#ifdef KILN_EMU_SCAN
#define __global__ kiln_emu_kernel
#define __shared__ kiln_emu_shared
#else
#define __global__
#define __shared__ thread_local

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <math.h>  // the C math functions in the global namespace, as CUDA has them
#include <type_traits>
#include <utility>

// ---- vector types ------------------------------------------------------------------------------
struct uint3 { unsigned x, y, z; };
struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct alignas(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(16) double2 { double x, y; };
struct alignas(4) ushort2 { unsigned short x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }

// ---- the runtime (kernels/emu_rt.cpp) ----------------------------------------------------------
namespace kiln_emu {
// What a running kernel thread sees of itself; the first member of the runtime's fiber.
// cta: the thread's block within its cluster (0 unless the launch has clusters of 2).
struct ThreadCtx { uint3 tid; unsigned lane, warp; uint3 block; unsigned cta; };
struct BlockCtx { dim3 dim, grid; };
extern thread_local std::atomic<ThreadCtx*> t_self;
extern thread_local BlockCtx t_block;
inline ThreadCtx* self() { return t_self.load(std::memory_order_relaxed); }

// Dynamic shared memory. build.rs rewrites every `extern __shared__ T name[];` of a kernel into
// `T* const name = kiln_emu::dyn_smem<T>(__func__);`: one KILN_EMU_DSMEM_BYTES buffer per OS
// thread serves every family (a thread runs one block at a time), instead of one thread_local array
// per family and name, whose sum is static TLS that every thread of the process carries (it had
// grown past 2 MiB and overflowed rayon threads' stacks). __func__ makes such a declaration at
// namespace scope a compile error: the pointer must be taken inside the kernel, on its thread.
// In a cluster of two blocks, the second block's buffer is peer_dsmem() (on the heap, made on
// first use), so dynamic shared memory is per block; static __shared__ arrays are not, so cluster
// kernels keep all their shared data in dynamic shared memory.
inline thread_local __attribute__((aligned(16))) unsigned char t_dsmem[KILN_EMU_DSMEM_BYTES];
unsigned char* peer_dsmem();
template <typename T> inline T* dyn_smem(const char*) {
    return reinterpret_cast<T*>(self()->cta == 0 ? t_dsmem : peer_dsmem());
}

void syncthreads();
void syncwarp(unsigned mask);
// Warp exchange: every lane in `mask` offers `v` and receives the value offered by `src`.
uint64_t exchange(unsigned mask, uint64_t v, unsigned src);
unsigned ballot(unsigned mask, bool pred);
unsigned activemask();
void ldmatrix(unsigned* r, int num, bool trans, const void* row);
void mma_bf16_16816(float d[4], const unsigned a[4], const unsigned b[2]);
void cp_async16(void* smem, const void* gmem, bool valid);
void cp_async_commit();
void cp_async_wait(int n);
// Warpgroup MMA (sm_90a), run per thread when a later wgmma_wait covers its group.
void wgmma_bf16(float* d, int n, uint64_t da, uint64_t db, int tnsp_a, int tnsp_b, const void* window);
// The same with A from registers (a: this thread's 4 words of the warpgroup's A fragment): the
// warpgroup's 128 threads meet here (the instruction is .sync.aligned), so each can read them all.
void wgmma_bf16_rs(float* d, int n, const unsigned a[4], uint64_t db, int tnsp_b, const void* window);
void wgmma_commit();
void wgmma_wait(int n);
// Thread t's fragment of one warpgroup MMA (emu_async.cpp), run by wgmma_wait; a_regs: the
// warpgroup's A fragments (128 threads x 4 words) for the register-A form, else null.
void wgmma_fragment(float* d, int n, uint64_t da, uint64_t db, int ta, int tb, const char* window, unsigned t,
                    const uint32_t* a_regs);
// Hopper's mbarriers and tensor memory accelerator (sm_90; kernels/emu_tma.cpp, kernels/tma.cuh).
// The emulator's tensor map: CUtensorMap is opaque, so backend/cuda/tma.rs writes these fields
// into the same 128 bytes when the device is emulated. Dimensions innermost first; stride[0] is
// the element size; swizzle is 0 or 128 (bytes).
struct alignas(64) TmaMap {
    uint64_t base, dim[3], stride[3];
    uint32_t box[3], swizzle;
    uint32_t pad[14];
};
static_assert(sizeof(TmaMap) == 128, "a tensor map is 128 bytes");
void mbar_init(unsigned long long* bar, unsigned count);
void mbar_arrive(unsigned long long* bar, unsigned tx_bytes);  // one arrival, expecting tx_bytes more bytes
void mbar_wait(unsigned long long* bar, unsigned parity);      // until the phase of this parity has completed
void tma_load(void* smem, const TmaMap* map, int c0, int c1, int c2, unsigned long long* bar);
// The runtime's side (emu_rt.cpp): a fiber spinning on an mbarrier yields with spin(false) and
// reports success with spin(true); a block starts with no mbarriers and no loads in flight.
void tma_load_multicast(void* smem, const TmaMap* map, int c0, int c1, int c2, unsigned long long* bar, unsigned mask);
// Clusters (emu_rt.cpp): this block's rank, the address of the same dynamic shared location in
// block `cta` of the cluster (mapa), and the cluster-wide barrier.
unsigned cluster_rank();
void* cluster_map(const void* smem, unsigned cta);
void cluster_sync();
bool in_dyn_smem(const void* p, size_t bytes);  // within the launch's dynamic shared memory?
// In a block's dynamic shared buffer but past the size the launch asked for (a GPU may not say)?
bool past_dyn_smem(const void* p, size_t bytes);
void spin(bool done);
bool copies_land_at_issue();
void async_block_start();
const char* async_block_end();  // an error message if a TMA load never landed, else nullptr
[[noreturn]] void trap(const char* why);

// One launchable kernel: its name, address, and a caller that unpacks cuLaunchKernel-style
// parameters (an array of pointers to the argument values) into the kernel's own parameter types.
struct Entry {
    const char* name;
    void* fn;
    void (*call)(void* fn, void** params);
    unsigned nparams;
    const unsigned* sizes;  // sizeof each parameter
};
template <class T> inline T param(void* p) {
    T t;
    std::memcpy(&t, p, sizeof(T));
    return t;
}
template <class... A> void call(void* fn, void** p) {
    auto f = reinterpret_cast<void (*)(A...)>(fn);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        f(param<std::remove_cvref_t<A>>(p[I])...);
    }(std::index_sequence_for<A...>{});
}
template <class... A> inline constexpr unsigned kSizes[] = {unsigned(sizeof(std::remove_cvref_t<A>))..., 0u};
template <class... A> Entry entry(const char* name, void (*f)(A...)) {
    return Entry{name, reinterpret_cast<void*>(f), &call<A...>, unsigned(sizeof...(A)), kSizes<A...>};
}
}  // namespace kiln_emu

// ---- built-in variables -------------------------------------------------------------------------
#define threadIdx (::kiln_emu::self()->tid)
#define blockIdx (::kiln_emu::self()->block)
#define blockDim (::kiln_emu::t_block.dim)
#define gridDim (::kiln_emu::t_block.grid)
constexpr int warpSize = 32;

// ---- barriers, warp shuffles and votes ---------------------------------------------------------
inline void __syncthreads() { kiln_emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { kiln_emu::syncwarp(mask); }
inline unsigned __activemask() { return kiln_emu::activemask(); }

namespace kiln_emu {
template <class T> inline T shfl_from(unsigned mask, T v, unsigned src) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move at most 8 bytes");
    uint64_t u = 0;
    std::memcpy(&u, &v, sizeof(T));
    u = exchange(mask, u, src);
    T r;
    std::memcpy(&r, &u, sizeof(T));
    return r;
}
inline unsigned laneid() { return self()->lane; }
}  // namespace kiln_emu

template <class T> inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    unsigned lane = kiln_emu::laneid(), base = lane & ~unsigned(width - 1);
    return kiln_emu::shfl_from(mask, v, base + (unsigned(src) & unsigned(width - 1)));
}
template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    unsigned lane = kiln_emu::laneid(), src = lane ^ unsigned(lane_mask);
    if ((src & ~unsigned(width - 1)) > (lane & ~unsigned(width - 1))) src = lane;  // later group: own value
    return kiln_emu::shfl_from(mask, v, src & 31u);
}
template <class T> inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    unsigned lane = kiln_emu::laneid(), base = lane & ~unsigned(width - 1);
    return kiln_emu::shfl_from(mask, v, lane >= base + delta ? lane - delta : lane);
}
template <class T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    unsigned lane = kiln_emu::laneid(), base = lane & ~unsigned(width - 1);
    return kiln_emu::shfl_from(mask, v, lane + delta < base + unsigned(width) ? lane + delta : lane);
}
inline unsigned __ballot_sync(unsigned mask, int pred) { return kiln_emu::ballot(mask, pred != 0); }
inline unsigned __match_any_sync(unsigned mask, unsigned v) {  // the lanes of mask holding v
    unsigned peers = 0;
    for (unsigned l = 0; l < 32; l++)
        if ((mask >> l & 1u) && kiln_emu::shfl_from(mask, v, l) == v) peers |= 1u << l;
    return peers;
}
inline int __any_sync(unsigned mask, int pred) { return kiln_emu::ballot(mask, pred != 0) != 0; }
inline int __all_sync(unsigned mask, int pred) { return kiln_emu::ballot(mask, pred == 0) == 0; }

// ---- atomics (a fiber never switches inside one, but ThreadSanitizer should see them as atomic) --
template <class T> inline T atomicAdd(T* p, std::type_identity_t<T> v) { return std::atomic_ref<T>(*p).fetch_add(v); }
template <class T> inline T atomicSub(T* p, std::type_identity_t<T> v) { return std::atomic_ref<T>(*p).fetch_sub(v); }
template <class T> inline T atomicExch(T* p, std::type_identity_t<T> v) { return std::atomic_ref<T>(*p).exchange(v); }
template <class T> inline T atomicAnd(T* p, std::type_identity_t<T> v) { return std::atomic_ref<T>(*p).fetch_and(v); }
template <class T> inline T atomicOr(T* p, std::type_identity_t<T> v) { return std::atomic_ref<T>(*p).fetch_or(v); }
template <class T> inline T atomicXor(T* p, std::type_identity_t<T> v) { return std::atomic_ref<T>(*p).fetch_xor(v); }
template <class T> inline T atomicCAS(T* p, std::type_identity_t<T> cmp, std::type_identity_t<T> v) {
    std::atomic_ref<T>(*p).compare_exchange_strong(cmp, v);
    return cmp;  // the old value either way
}
namespace kiln_emu {
template <class T, class F> inline T atomic_update(T* p, F f) {
    std::atomic_ref<T> a(*p);
    T old = a.load();
    while (!a.compare_exchange_weak(old, f(old))) {}
    return old;
}
}  // namespace kiln_emu
template <class T> inline T atomicMax(T* p, std::type_identity_t<T> v) {
    return kiln_emu::atomic_update(p, [v](T o) { return o < v ? v : o; });
}
template <class T> inline T atomicMin(T* p, std::type_identity_t<T> v) {
    return kiln_emu::atomic_update(p, [v](T o) { return v < o ? v : o; });
}
inline unsigned atomicInc(unsigned* p, unsigned m) {
    return kiln_emu::atomic_update(p, [m](unsigned o) { return o >= m ? 0u : o + 1; });
}
inline unsigned atomicDec(unsigned* p, unsigned m) {
    return kiln_emu::atomic_update(p, [m](unsigned o) { return (o == 0 || o > m) ? m : o - 1; });
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __nanosleep(unsigned) {}
[[noreturn]] inline void __trap() { kiln_emu::trap("__trap() called"); }

// ---- loads and stores with cache hints ---------------------------------------------------------
template <class T> inline T __ldg(const T* p) { return *p; }
template <class T> inline T __ldcg(const T* p) { return *p; }
template <class T> inline T __ldca(const T* p) { return *p; }
template <class T> inline T __ldcs(const T* p) { return *p; }
template <class T> inline T __ldlu(const T* p) { return *p; }
template <class T> inline void __stcg(T* p, T v) { *p = v; }
template <class T> inline void __stcs(T* p, T v) { *p = v; }
template <class T> inline void __stwb(T* p, T v) { *p = v; }

// ---- bit reinterpretation, integer intrinsics ---------------------------------------------------
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
inline unsigned __umulhi(unsigned a, unsigned b) { return unsigned(((unsigned long long)a * b) >> 32); }
inline int __mulhi(int a, int b) { return int(((long long)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned s) {
    unsigned long long v = ((unsigned long long)hi << 32) | lo;
    return unsigned((v << (s & 31)) >> 32);
}
inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned s) {
    unsigned long long v = ((unsigned long long)hi << 32) | lo;
    return unsigned(v >> (s & 31));
}

// ---- math: CUDA's device overloads and intrinsics ------------------------------------------------
template <class A, class B> inline std::common_type_t<A, B> min(A a, B b) {
    using C = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<C>) return fmin(C(a), C(b));
    else return C(b) < C(a) ? C(b) : C(a);
}
template <class A, class B> inline std::common_type_t<A, B> max(A a, B b) {
    using C = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<C>) return fmax(C(a), C(b));
    else return C(a) < C(b) ? C(b) : C(a);
}
inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return powf(10.f, x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline void __sincosf(float x, float* s, float* c) { *s = sinf(x); *c = cosf(x); }
// sin(pi x), cos(pi x) with the argument reduced exactly first (x - 2 round(x / 2) is exact).
inline double sinpi(double x) { return sin(M_PI * (x - 2.0 * nearbyint(0.5 * x))); }
inline double cospi(double x) { return cos(M_PI * (x - 2.0 * nearbyint(0.5 * x))); }
inline void sincospi(double x, double* s, double* c) { *s = sinpi(x); *c = cospi(x); }
inline float sinpif(float x) { return float(sinpi(x)); }
inline float cospif(float x) { return float(cospi(x)); }
inline void sincospif(float x, float* s, float* c) { *s = sinpif(x); *c = cospif(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __saturatef(float x) { return x > 0.f ? (x < 1.f ? x : 1.f) : 0.f; }  // NaN -> 0
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __double2float_rn(double x) { return float(x); }
inline int __float2int_rn(float x) { return int(nearbyintf(x)); }
inline int __float2int_rz(float x) { return int(x); }
inline int __float2int_rd(float x) { return int(floorf(x)); }
inline int __float2int_ru(float x) { return int(ceilf(x)); }
inline unsigned __float2uint_rn(float x) { return unsigned(nearbyintf(x)); }
inline unsigned __float2uint_rz(float x) { return unsigned(x); }
inline float __int2float_rn(int x) { return float(x); }
inline float __uint2float_rn(unsigned x) { return float(x); }
inline long long __float2ll_rn(float x) { return (long long)nearbyintf(x); }
#endif  // KILN_EMU_SCAN
