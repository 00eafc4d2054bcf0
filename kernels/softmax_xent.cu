// kernels/softmax_xent.cu: softmax / log-softmax over rows, their backward, and the fused
// cross-entropy loss with an ignore index and its backward. Twin: src/backend/cpu/softmax_xent.rs.
// x: (N, C) rows (C = V for the loss). One block per row (grid-stride over rows), threads stride
// over C with 16-byte vector loads (4 f32 or 8 bf16) when C is a multiple of that width.
// Arithmetic in f32 for f32 and bf16 storage.
//
// Pass 1 keeps an online (max m, sum s of exp(x - m)) per thread, so max and sum-exp come from one
// read of the row; the block combines them as M = max m, S = sum s exp(m - M). Pass 2 writes.
//   softmax_j = exp(x_j - M - ln S),  log_softmax_j = x_j - M - ln S
//   softmax bwd:  dx = y (dy - sum dy y);   log-softmax bwd: dx = dy - exp(y) sum dy
//   loss = (1/count) sum_{t != ignore} (M + ln S - x_t); dx = g (softmax - onehot) / count
// The loss mean is two-stage and fixed-order: per-row losses to a scratch (N) buffer, then one
// block sums them (no float atomics). An out-of-range target (not ignore, >= V) gives NaN.
// Every exp is exp_approx (common.cuh: one MUFU.EX2). Rows with C % 8 == 0 that fit registers
// take the row-in-registers kernels of softmax_rows.cuh instead (backend/cuda/softmax_xent.rs).


// Online max / sum-exp update with one value; -inf values add nothing.
__device__ __forceinline__ void online(float& m, float& s, float v) {
    if (v > m) { s = s * exp_approx(m - v) + 1.f; m = v; }
    else if (v != -KILN_INF) s += exp_approx(v - m);     // NaN v: s becomes NaN, as on the CPU
}

// (M, ln S) of one row, every thread gets both. sh: 32 floats of shared memory.
template <typename T>
__device__ __forceinline__ void row_stats(const T* row, long c, float* sh, float& M, float& lnS) {
    constexpr int W = V16<T>::W;  // elements per 16-byte access
    float m = -KILN_INF, s = 0.f;
    if (c % W == 0) {
        for (long i = threadIdx.x; i < c / W; i += blockDim.x) {
            V16<T> v = load16(row, W * i);
            for (int k = 0; k < W; k++) online(m, s, v.v[k]);
        }
    } else {
        for (long i = threadIdx.x; i < c; i += blockDim.x) online(m, s, load(row, i));
    }
    M = block_max(m, sh);
    float part = (m == -KILN_INF) ? 0.f : s * exp_approx(m - M);
    lnS = logf(block_sum(part, sh));
}

// x, y: (N, C). log != 0: log-softmax.
template <typename T>
__device__ void softmax_fwd(const T* x, T* y, long n, long c, int log) {
    constexpr int W = V16<T>::W;  // elements per 16-byte access
    __shared__ float sh[32];
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        const T* xr = x + r * c;
        T* yr = y + r * c;
        float M, lnS;
        row_stats(xr, c, sh, M, lnS);
        if (c % W == 0) {
            for (long i = threadIdx.x; i < c / W; i += blockDim.x) {
                V16<T> v = load16(xr, W * i);
                for (int k = 0; k < W; k++) v.v[k] = log ? v.v[k] - M - lnS : exp_approx(v.v[k] - M - lnS);
                store16(yr, W * i, v);
            }
        } else {
            for (long i = threadIdx.x; i < c; i += blockDim.x) {
                float v = load(xr, i) - M - lnS;
                store(yr, i, log ? v : exp_approx(v));
            }
        }
    }
}

// y, dy, dx: (N, C).
template <typename T>
__device__ void softmax_bwd(const T* y, const T* dy, T* dx, long n, long c, int log) {
    constexpr int W = V16<T>::W;  // elements per 16-byte access
    __shared__ float sh[32];
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        const T* yr = y + r * c;
        const T* gr = dy + r * c;
        T* dr = dx + r * c;
        float acc = 0.f;                                // sum dy (log) or sum dy y
        bool vec = c % W == 0;
        if (vec) {
            for (long i = threadIdx.x; i < c / W; i += blockDim.x) {
                V16<T> a = load16(yr, W * i), g = load16(gr, W * i);
                for (int k = 0; k < W; k++) acc += log ? g.v[k] : g.v[k] * a.v[k];
            }
        } else {
            for (long i = threadIdx.x; i < c; i += blockDim.x) acc += log ? load(gr, i) : load(gr, i) * load(yr, i);
        }
        float s = block_sum(acc, sh);
        if (vec) {
            for (long i = threadIdx.x; i < c / W; i += blockDim.x) {
                V16<T> a = load16(yr, W * i), g = load16(gr, W * i);
                for (int k = 0; k < W; k++) a.v[k] = log ? g.v[k] - exp_approx(a.v[k]) * s : a.v[k] * (g.v[k] - s);
                store16(dr, W * i, a);
            }
        } else {
            for (long i = threadIdx.x; i < c; i += blockDim.x) {
                float a = load(yr, i), g = load(gr, i);
                store(dr, i, log ? g - exp_approx(a) * s : a * (g - s));
            }
        }
    }
}

// Stage 1 of the loss. logits: (N, V), targets: (N) u32 -> loss_row: (N) f32 (0 when ignored).
template <typename T>
__device__ void xent_rows(const T* x, const u32* tg, float* loss_row, long n, long v, u32 ignore) {
    __shared__ float sh[32];
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        u32 t = tg[r];
        if (t == ignore) {                              // uniform across the block
            if (threadIdx.x == 0) loss_row[r] = 0.f;
            continue;
        }
        const T* xr = x + r * v;
        float M, lnS;
        row_stats(xr, v, sh, M, lnS);
        if (threadIdx.x == 0) loss_row[r] = (long)t < v ? M + lnS - load(xr, (long)t) : __int_as_float(0x7fc00000);
    }
}

// One block: the number of targets != ignore, as f32 (exact below 2^24 rows). sh: 32 floats.
__device__ __forceinline__ float count_valid(const u32* tg, long n, u32 ignore, float* sh) {
    float c = 0.f;
    for (long i = threadIdx.x; i < n; i += blockDim.x) c += tg[i] != ignore ? 1.f : 0.f;
    return block_sum(c, sh);
}

// Stage 2 of the loss, ONE block: out[0] = sum(loss_row) / count, 0 when count == 0.
template <typename T>
__device__ void xent_mean(const float* loss_row, const u32* tg, T* out, long n, u32 ignore) {
    __shared__ float sh[32];
    float acc = 0.f;
    for (long i = threadIdx.x; i < n; i += blockDim.x) acc += loss_row[i];
    float total = block_sum(acc, sh);
    float cnt = count_valid(tg, n, ignore, sh);
    if (threadIdx.x == 0) store(out, 0, cnt == 0.f ? 0.f : total / cnt);
}

// ONE block: cnt[0] = number of targets != ignore (for the backward's 1/count).
extern "C" __global__ void xent_count(const u32* tg, float* cnt, long n, u32 ignore) {
    __shared__ float sh[32];
    float c = count_valid(tg, n, ignore, sh);
    if (threadIdx.x == 0) cnt[0] = c;
}

// logits, dx: (N, V); dloss: one element (f32, or bf16 when dl_bf16); cnt: from xent_count.
// dx = g/count (softmax - onehot(t)); ignored rows and count == 0 give zeros.
template <typename T>
__device__ void xent_bwd(const T* x, const u32* tg, const void* dloss, int dl_bf16, const float* cnt,
                         T* dx, long n, long v, u32 ignore) {
    constexpr int W = V16<T>::W;  // elements per 16-byte access
    __shared__ float sh[32];
    float g = dl_bf16 ? load((const bf16*)dloss, 0) : load((const float*)dloss, 0);
    float count = cnt[0];
    float scale = count == 0.f ? 0.f : g / count;
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        u32 t = tg[r];
        const T* xr = x + r * v;
        T* dr = dx + r * v;
        bool skip = t == ignore || count == 0.f;        // uniform across the block
        float M = 0.f, lnS = 0.f, bad = 0.f;
        if (!skip) {
            row_stats(xr, v, sh, M, lnS);
            if ((long)t >= v) bad = __int_as_float(0x7fc00000);   // out-of-range target: NaN row
        }
        if (v % W == 0) {
            for (long i = threadIdx.x; i < v / W; i += blockDim.x) {
                V16<T> a;
                if (skip) { for (int k = 0; k < W; k++) a.v[k] = 0.f; }
                else {
                    a = load16(xr, W * i);
                    for (int k = 0; k < W; k++)
                        a.v[k] = (exp_approx(a.v[k] - M - lnS) * scale - (W * i + k == (long)t ? scale : 0.f)) + bad;
                }
                store16(dr, W * i, a);
            }
        } else {
            for (long i = threadIdx.x; i < v; i += blockDim.x) {
                float a = skip ? 0.f : (exp_approx(load(xr, i) - M - lnS) * scale - (i == (long)t ? scale : 0.f)) + bad;
                store(dr, i, a);
            }
        }
    }
}

#include "softmax_rows.cuh"

// The rc kernels' staging slots (dynamic shared memory; nullptr when launched without it).
__device__ __forceinline__ uint4* rc_stage(int stage) {
    extern __shared__ __align__(16) uint4 rc_slots[];   // C elements' bytes: the next row
    return stage ? rc_slots : nullptr;
}

extern "C" __global__ void __launch_bounds__(1024) softmax_backward_rc_bf16(const bf16* y, const bf16* dy, bf16* dx,
                                                                         long n, long c, int log) {
    softmax_bwd_rc(y, dy, dx, n, c, log);
}

extern "C" __global__ void __launch_bounds__(1024) softmax_backward_smem_f32(const float* y, const float* dy, float* dx,
                                                                          long n, long c, int log) {
    extern __shared__ __align__(16) float4 sx_dy[];     // (C / 4) chunks of the dy row
    __shared__ float sh[32];
    for (long r = blockIdx.x; r < n; r += gridDim.x) {
        __syncthreads();                                // the previous row's reads of sx_dy are done
        int h = (int)((4 - (r * c) % 4) % 4);
        if (h > c) h = (int)c;
        if (log) softmax_bwd_smem_row<true>(y + r * c, dy + r * c, dx + r * c, (int)c, h, sx_dy, sh);
        else softmax_bwd_smem_row<false>(y + r * c, dy + r * c, dx + r * c, (int)c, h, sx_dy, sh);
    }
}


#define SOFTMAX_KERNELS(T, S)                                                                         \
extern "C" __global__ void softmax_##S(const T* x, T* y, long n, long c, int log) {                   \
    softmax_fwd(x, y, n, c, log);                                                                     \
}                                                                                                     \
extern "C" __global__ void softmax_backward_##S(const T* y, const T* dy, T* dx, long n, long c, int log) { \
    softmax_bwd(y, dy, dx, n, c, log);                                                                \
}                                                                                                     \
extern "C" __global__ void xent_rows_##S(const T* x, const u32* tg, float* loss_row, long n, long v, u32 ignore) { \
    xent_rows(x, tg, loss_row, n, v, ignore);                                                         \
}                                                                                                     \
extern "C" __global__ void xent_mean_##S(const float* loss_row, const u32* tg, T* out, long n, u32 ignore) { \
    xent_mean(loss_row, tg, out, n, ignore);                                                          \
}                                                                                                     \
extern "C" __global__ void xent_backward_##S(const T* x, const u32* tg, const void* dloss, int dl_bf16, \
                                             const float* cnt, T* dx, long n, long v, u32 ignore) {  \
    xent_bwd(x, tg, dloss, dl_bf16, cnt, dx, n, v, ignore);                                           \
}                                                                                                     \
extern "C" __global__ void __launch_bounds__(1024) softmax_rc_##S(const T* x, T* y, long n, long c, int log, int stage) { \
    softmax_rc(x, y, n, c, log, rc_stage(stage));                                                     \
}                                                                                                     \
extern "C" __global__ void __launch_bounds__(1024) xent_rows_rc_##S(const T* x, const u32* tg, float* loss_row, \
                                                                   long n, long v, u32 ignore, int stage) { \
    xent_rows_rc(x, tg, loss_row, n, v, ignore, rc_stage(stage));                                     \
}                                                                                                     \
extern "C" __global__ void __launch_bounds__(1024) xent_backward_rc_##S(const T* x, const u32* tg, const void* dloss, \
                                int dl_bf16, const float* cnt, T* dx, long n, long v, u32 ignore, int stage) { \
    xent_bwd_rc(x, tg, dloss, dl_bf16, cnt, dx, n, v, ignore, rc_stage(stage));                       \
}
SOFTMAX_KERNELS(float, f32)
SOFTMAX_KERNELS(bf16, bf16)
