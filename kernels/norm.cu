// kernels/norm.cu: RMSNorm and LayerNorm over the last axis, forward and backward.
// Twin: src/backend/cpu/norm.rs. x, y, dy, dx: (N, C); w, b, dw, db: (C). f32 or bf16 storage
// (x, w, b, dy share one type), f32 arithmetic.
//   RMSNorm:  r = 1/sqrt(mean(x^2) + eps), y = x r w;  dx = r w dy - r^3 x mean(w dy x), dw = sum dy x r
//   LayerNorm: mu, s = 1/sqrt(var + eps) (biased, two-pass), xh = (x - mu) s, y = xh w + b;
//              dx = s (w dy - mean(w dy) - xh mean(w dy xh)), dw = sum dy xh, db = sum dy
// Forward: one block per row (grid-stride over rows); the row is re-read from L1/L2 per pass.
// Backward: G blocks, block b takes rows b, b + G, ...; each thread owns fixed columns and adds
// this row's dw / db terms into the block's f32 partial row part[b, :] (no other block touches
// it; kept in registers and written once when C allows, see REG_STEPS), so no atomics; then
// norm_colsum adds the G partial rows per column in order. Deterministic.
// Loops use 4-wide vector accesses when C % 4 == 0 (every row start then stays aligned).

// 1- or 4-wide access at element j: W = 4 is the vector path.
template <int W, typename T> __device__ __forceinline__ V4 ldw(const T* p, long j) {
    if (W == 4) return load4(p, j);
    V4 r; r.v[0] = load(p, j); r.v[1] = r.v[2] = r.v[3] = 0.f; return r;
}
template <int W, typename T> __device__ __forceinline__ void stw(T* p, long j, V4 r) {
    if (W == 4) store4(p, j, r); else store(p, j, r.v[0]);
}

// Runs the body for this thread's elements of a row of c, with a compile-time width W: vector
// steps j = 4 i (W = 4) when 4 | c, else single elements j = i (W = 1).
#define ROW_FOR(c, j, ...)                                                                            \
    if (((c) & 3) == 0) {                                                                             \
        constexpr int W = 4;                                                                          \
        for (long i_ = threadIdx.x; i_ < (c) / 4; i_ += blockDim.x) { long j = 4 * i_; __VA_ARGS__ }  \
    } else {                                                                                          \
        constexpr int W = 1;                                                                          \
        for (long j = threadIdx.x; j < (c); j += blockDim.x) { __VA_ARGS__ }                          \
    }

// ---- forward ----------------------------------------------------------------------------------
// x, y: (N, C), w: (C).
template <typename T>
__device__ void rms_fwd(const T* x, const T* w, T* y, long n, long c, float eps) {
    __shared__ float sh[32];
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        const T* xr = x + r * c;
        T* yr = y + r * c;
        float ss = 0.f;
        ROW_FOR(c, j,
            V4 a = ldw<W>(xr, j);
            for (int k = 0; k < W; k++) ss += a.v[k] * a.v[k];
        )
        float ri = rsqrtf(block_sum(ss, sh) / (float)c + eps);
        ROW_FOR(c, j,
            V4 a = ldw<W>(xr, j), g = ldw<W>(w, j);
            for (int k = 0; k < W; k++) a.v[k] = a.v[k] * ri * g.v[k];
            stw<W>(yr, j, a);
        )
    }
}

// Mean and 1/std of one row, two passes (biased variance). sh: 32 floats.
template <typename T>
__device__ __forceinline__ void mean_inv_std(const T* xr, long c, float eps, float* sh, float& mu, float& s) {
    float acc = 0.f;
    ROW_FOR(c, j,
        V4 a = ldw<W>(xr, j);
        for (int k = 0; k < W; k++) acc += a.v[k];
    )
    mu = block_sum(acc, sh) / (float)c;
    float m = mu;
    acc = 0.f;
    ROW_FOR(c, j,
        V4 a = ldw<W>(xr, j);
        for (int k = 0; k < W; k++) acc += (a.v[k] - m) * (a.v[k] - m);
    )
    s = rsqrtf(block_sum(acc, sh) / (float)c + eps);
}

// x, y: (N, C), w, b: (C).
template <typename T>
__device__ void ln_fwd(const T* x, const T* w, const T* b, T* y, long n, long c, float eps) {
    __shared__ float sh[32];
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        const T* xr = x + r * c;
        T* yr = y + r * c;
        float mu, s;
        mean_inv_std(xr, c, eps, sh, mu, s);
        ROW_FOR(c, j,
            V4 a = ldw<W>(xr, j), g = ldw<W>(w, j), h = ldw<W>(b, j);
            for (int k = 0; k < W; k++) a.v[k] = (a.v[k] - mu) * s * g.v[k] + h.v[k];
            stw<W>(yr, j, a);
        )
    }
}

// ---- backward ---------------------------------------------------------------------------------
// part += v (or = v on the block's first row) for this thread's columns j..j+W-1.
template <int W> __device__ __forceinline__ void acc_part(float* p, long j, V4 v, bool first) {
    if (!first) {
        V4 o = ldw<W>(p, j);
        for (int k = 0; k < W; k++) v.v[k] += o.v[k];
    }
    stw<W>(p, j, v);
}

// Fast path: when 4 | C and C <= 4 * REG_STEPS * blockDim, each thread's columns are at most
// REG_STEPS vector steps, so its dw / db sums stay in registers across the block's rows and the
// partial row is written once at the end (same sums, same order as the global path: 0 + t1 + t2..).
#define REG_STEPS 2
__device__ __forceinline__ bool use_regs(long c) { return (c & 3) == 0 && c <= 4L * REG_STEPS * blockDim.x; }
__device__ __forceinline__ void zero_regs(V4 (&a)[REG_STEPS]) {
    for (int q = 0; q < REG_STEPS; q++) for (int k = 0; k < 4; k++) a[q].v[k] = 0.f;
}
__device__ __forceinline__ void store_regs(float* p, long c, const V4 (&a)[REG_STEPS]) {
    for (int q = 0; q < REG_STEPS; q++) {
        long j = 4 * (threadIdx.x + (long)q * blockDim.x);
        if (j < c) store4(p, j, a[q]);
    }
}

// x, dy, dx: (N, C), w: (C), part: (gridDim.x, C) f32 partial dw rows.
template <typename T>
__device__ void rms_bwd(const T* x, const T* w, const T* dy, T* dx, float* part, long n, long c, float eps) {
    __shared__ float sh[32];
    float* pb = part + (long)blockIdx.x * c;
    bool reg = use_regs(c);
    V4 aw[REG_STEPS];
    zero_regs(aw);
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        const T* xr = x + r * c;
        const T* gr = dy + r * c;
        T* dr = dx + r * c;
        bool first = r == blockIdx.x;
        float ss = 0.f, wgx = 0.f;
        ROW_FOR(c, j,
            V4 a = ldw<W>(xr, j), g = ldw<W>(gr, j), ww = ldw<W>(w, j);
            for (int k = 0; k < W; k++) { ss += a.v[k] * a.v[k]; wgx += ww.v[k] * g.v[k] * a.v[k]; }
        )
        float ri = rsqrtf(block_sum(ss, sh) / (float)c + eps);
        float kk = ri * ri * ri * (block_sum(wgx, sh) / (float)c);
        if (reg) {
            for (int q = 0; q < REG_STEPS; q++) {
                long j = 4 * (threadIdx.x + (long)q * blockDim.x);
                if (j >= c) break;
                V4 a = load4(xr, j), g = load4(gr, j), ww = load4(w, j), o;
                for (int k = 0; k < 4; k++) {
                    o.v[k] = ri * ww.v[k] * g.v[k] - kk * a.v[k];
                    aw[q].v[k] += g.v[k] * a.v[k] * ri;
                }
                store4(dr, j, o);
            }
        } else {
            ROW_FOR(c, j,
                V4 a = ldw<W>(xr, j), g = ldw<W>(gr, j), ww = ldw<W>(w, j), o, t;
                for (int k = 0; k < W; k++) {
                    o.v[k] = ri * ww.v[k] * g.v[k] - kk * a.v[k];
                    t.v[k] = g.v[k] * a.v[k] * ri;
                }
                stw<W>(dr, j, o);
                acc_part<W>(pb, j, t, first);
            )
        }
    }
    if (reg) store_regs(pb, c, aw);
}

// x, dy, dx: (N, C), w: (C), pw, pb: (gridDim.x, C) f32 partial dw / db rows.
template <typename T>
__device__ void ln_bwd(const T* x, const T* w, const T* dy, T* dx, float* pw, float* pb, long n, long c, float eps) {
    __shared__ float sh[32];
    float* qw = pw + (long)blockIdx.x * c;
    float* qb = pb + (long)blockIdx.x * c;
    bool reg = use_regs(c);
    V4 aw[REG_STEPS], ab[REG_STEPS];
    zero_regs(aw);
    zero_regs(ab);
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        const T* xr = x + r * c;
        const T* gr = dy + r * c;
        T* dr = dx + r * c;
        bool first = r == blockIdx.x;
        float mu, s;
        mean_inv_std(xr, c, eps, sh, mu, s);
        float a1 = 0.f, a2 = 0.f;                   // sum w dy, sum w dy xh
        ROW_FOR(c, j,
            V4 a = ldw<W>(xr, j), g = ldw<W>(gr, j), ww = ldw<W>(w, j);
            for (int k = 0; k < W; k++) { float t = ww.v[k] * g.v[k]; a1 += t; a2 += t * (a.v[k] - mu) * s; }
        )
        float m1 = block_sum(a1, sh) / (float)c;
        float m2 = block_sum(a2, sh) / (float)c;
        if (reg) {
            for (int q = 0; q < REG_STEPS; q++) {
                long j = 4 * (threadIdx.x + (long)q * blockDim.x);
                if (j >= c) break;
                V4 a = load4(xr, j), g = load4(gr, j), ww = load4(w, j), o;
                for (int k = 0; k < 4; k++) {
                    float xh = (a.v[k] - mu) * s;
                    o.v[k] = s * (ww.v[k] * g.v[k] - m1 - xh * m2);
                    aw[q].v[k] += g.v[k] * xh;
                    ab[q].v[k] += g.v[k];
                }
                store4(dr, j, o);
            }
        } else {
            ROW_FOR(c, j,
                V4 a = ldw<W>(xr, j), g = ldw<W>(gr, j), ww = ldw<W>(w, j), o, t;
                for (int k = 0; k < W; k++) {
                    float xh = (a.v[k] - mu) * s;
                    o.v[k] = s * (ww.v[k] * g.v[k] - m1 - xh * m2);
                    t.v[k] = g.v[k] * xh;
                }
                stw<W>(dr, j, o);
                acc_part<W>(qw, j, t, first);
                acc_part<W>(qb, j, g, first);
            )
        }
    }
    if (reg) { store_regs(qw, c, aw); store_regs(qb, c, ab); }
}

// out[j] = sum_{b < g} part[b, j] in order of b. part: (g, C) f32, out: (C). Thread per column.
template <typename T>
__device__ void colsum(const float* part, T* out, long g, long c) {
    GRID_STRIDE(j, c) {
        float acc = 0.f;
        for (long b = 0; b < g; b++) acc += part[b * c + j];
        store(out, j, acc);
    }
}

#include "norm_rows.cuh"

// The staged backward's stages (dynamic shared memory): 4 for bf16, 3 for f32 (2 Q T 16 bytes each:
// 16 KiB bf16, 32 KiB f32 at C = 4096), so two 512-thread blocks fit an SM's shared memory.
#define NORM_STAGES(T) (sizeof(T) == 2 ? 4 : 3)
__device__ __forceinline__ uint4* norm_stages() {
    extern __shared__ __align__(16) uint4 norm_stage_slots[];
    return norm_stage_slots;
}

#define NORM_KERNELS(T, S)                                                                            \
extern "C" __global__ void rms_norm_##S(const T* x, const T* w, T* y, long n, long c, float eps) {    \
    rms_fwd(x, w, y, n, c, eps);                                                                      \
}                                                                                                     \
extern "C" __global__ void layer_norm_##S(const T* x, const T* w, const T* b, T* y, long n, long c, float eps) { \
    ln_fwd(x, w, b, y, n, c, eps);                                                                    \
}                                                                                                     \
extern "C" __global__ void __launch_bounds__(1024) rms_norm_backward_##S(const T* x, const T* w, const T* dy, T* dx, float* part, \
                                                 long n, long c, float eps) {                         \
    rms_bwd(x, w, dy, dx, part, n, c, eps);                                                           \
}                                                                                                     \
extern "C" __global__ void __launch_bounds__(1024) layer_norm_backward_##S(const T* x, const T* w, const T* dy, T* dx, float* pw, \
                                                   float* pb, long n, long c, float eps) {            \
    ln_bwd(x, w, dy, dx, pw, pb, n, c, eps);                                                          \
}                                                                                                     \
extern "C" __global__ void __launch_bounds__(512) norm_backward_rc_##S(const T* x, const T* w, const T* dy, T* dx, \
                                        float* pw, float* pb, long n, long c, float eps, int layer) {  \
    norm_bwd_rc<T, 0>(x, w, dy, dx, pw, pb, n, c, eps, layer, nullptr);                               \
}                                                                                                     \
extern "C" __global__ void __launch_bounds__(512, 2) norm_backward_staged_##S(const T* x, const T* w, const T* dy, \
                             T* dx, float* pw, float* pb, long n, long c, float eps, int layer) {     \
    norm_bwd_rc<T, NORM_STAGES(T)>(x, w, dy, dx, pw, pb, n, c, eps, layer, norm_stages());            \
}                                                                                                     \
extern "C" __global__ void norm_colsum_##S(const float* part, T* out, long g, long c) {               \
    colsum(part, out, g, c);                                                                          \
}
NORM_KERNELS(float, f32)
NORM_KERNELS(bf16, bf16)

// The row-in-registers forward only in f32: for bf16 the generic forward was faster on an H100
// (backend/cuda/norm.rs, rc_forward_pays).
extern "C" __global__ void __launch_bounds__(1024) norm_rc_f32(const float* x, const float* w, const float* b, float* y,
                                                            long n, long c, float eps, int layer) {
    norm_fwd_rc(x, w, b, y, n, c, eps, layer);
}
