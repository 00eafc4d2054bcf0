// kernels/reduce.cu: sum / max / argmax along one axis, topk along rows. Twin: src/backend/cpu/reduce.rs.
// x is viewed as (outer, dim, inner) and reduced over dim -> (outer, inner).
//   inner == 1 (row reduce): reduce_rows_* (one warp per row when dim is short, else one block
//     per row; 16-byte loads: 8 bf16 when dim % 8 == 0, 4 f32 (or 4 bf16) when dim % 4 == 0).
//   inner  > 1 (column reduce): reduce_cols_*, block (32, 8): threadIdx.x walks 32 consecutive
//     inner indices (coalesced), threadIdx.y splits dim 8 ways; the 8 partials are combined in
//     shared memory in a fixed order.
// Every reduction has a fixed order (no float atomics), so results are bit-reproducible.
// Accumulation is f32 for both storage types. Max propagates NaN like the CPU; argmax returns
// the first index of the largest element, NaNs never win except at index 0 (the CPU's rule:
// index 0 is taken unconditionally, later elements only when strictly greater).


// op: 0 = sum, 1 = max (ReduceOp order). NaN-propagating max, as the CPU.
__device__ __forceinline__ float red_init(int op) { return op == 0 ? 0.f : -KILN_INF; }
__device__ __forceinline__ float red2(int op, float a, float b) {
    if (op == 0) return a + b;
    return (b > a || b != b) ? b : a;
}
__device__ __forceinline__ float warp_red(int op, float v) {
    for (int o = 16; o > 0; o >>= 1) v = red2(op, v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// 16 bytes = VW(T) consecutive elements (4 f32, 8 bf16) as f32; p must be 16-byte aligned.
template <typename T> struct VW { static const int n = 16 / sizeof(T); };
__device__ __forceinline__ void ld16(const float* p, float* a) {
    float4 t = *reinterpret_cast<const float4*>(p);
    a[0] = t.x; a[1] = t.y; a[2] = t.z; a[3] = t.w;
}
__device__ __forceinline__ void ld16(const bf16* p, float* a) {
    uint4 t = *reinterpret_cast<const uint4*>(p);
    a[0] = __uint_as_float(t.x << 16); a[1] = __uint_as_float(t.x & 0xffff0000u);
    a[2] = __uint_as_float(t.y << 16); a[3] = __uint_as_float(t.y & 0xffff0000u);
    a[4] = __uint_as_float(t.z << 16); a[5] = __uint_as_float(t.z & 0xffff0000u);
    a[6] = __uint_as_float(t.w << 16); a[7] = __uint_as_float(t.w & 0xffff0000u);
}

// This thread's share of one row of length dim, threads t = lane, lane + nt, ...
template <typename T>
__device__ __forceinline__ float row_part(int op, const T* row, long dim, int lane, int nt) {
    float acc = red_init(op);
    if constexpr (sizeof(T) == 2) {
        if ((dim & 7) == 0) { // bf16: 16-byte loads, as many bytes a load as f32's
#pragma unroll 4
            for (long i = lane; i < dim / 8; i += nt) {
                float a[8];
                ld16(row + 8 * i, a);
                for (int k = 0; k < 8; k++) acc = red2(op, acc, a[k]);
            }
            return acc;
        }
    }
    if ((dim & 3) == 0) {
        for (long i = lane; i < dim / 4; i += nt) {
            V4 v = load4(row, 4 * i);
            for (int k = 0; k < 4; k++) acc = red2(op, acc, v.v[k]);
        }
    } else {
        for (long i = lane; i < dim; i += nt) acc = red2(op, acc, load(row, i));
    }
    return acc;
}

// x: (outer, dim) -> y: (outer). One warp per row, 8 rows per 256-thread block.
template <typename T>
__device__ void reduce_rows_warp(const T* x, T* y, long outer, long dim, int op) {
    long r = (long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (r >= outer) return;                       // whole warp leaves together
    float acc = warp_red(op, row_part(op, x + r * dim, dim, threadIdx.x & 31, 32));
    if ((threadIdx.x & 31) == 0) store(y, r, acc);
}

// x: (outer, dim) -> y: (outer). One block per row (grid-stride over rows).
template <typename T>
__device__ void reduce_rows_block(const T* x, T* y, long outer, long dim, int op) {
    __shared__ float sh[32];
    for (long r = blockIdx.x; r < outer; r += gridDim.x) {
        float acc = warp_red(op, row_part(op, x + r * dim, dim, threadIdx.x, blockDim.x));
        int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
        __syncthreads();                          // sh may still be read for the previous row
        if (lane == 0) sh[warp] = acc;
        __syncthreads();
        acc = lane < nw ? sh[lane] : red_init(op);
        acc = warp_red(op, acc);
        if (threadIdx.x == 0) store(y, r, acc);
    }
}

// x: (outer, dim, inner) -> y: (outer, inner). Block (32, 8); grid.x = outer * ceil(inner / 32).
template <typename T>
__device__ void reduce_cols(const T* x, T* y, long outer, long dim, long inner, int op) {
    __shared__ float sh[8][33];
    long tiles = (inner + 31) / 32;
    for (long b = blockIdx.x; b < outer * tiles; b += gridDim.x) {
        long o = b / tiles, i = (b % tiles) * 32 + threadIdx.x;
        float acc = red_init(op);
        if (i < inner) {
            const T* p = x + o * dim * inner + i;
            for (long d = threadIdx.y; d < dim; d += blockDim.y) acc = red2(op, acc, load(p, d * inner));
        }
        __syncthreads();
        sh[threadIdx.y][threadIdx.x] = acc;
        __syncthreads();
        if (threadIdx.y == 0 && i < inner) {
            float a = sh[0][threadIdx.x];
            for (int k = 1; k < (int)blockDim.y; k++) a = red2(op, a, sh[k][threadIdx.x]);
            store(y, o * inner + i, a);
        }
    }
}

// As reduce_cols when inner % VW == 0 (so every 16-byte access is aligned): thread x takes the
// W = VW consecutive columns i..i+W-1 of a tile of 32 W columns, threadIdx.y splits dim 8 ways,
// four loads in flight per step. Per column the order is exactly reduce_cols': partial y adds
// d = y, y + 8, ... in order, then partials 0..7 are combined in order. Block (32, 8).
template <typename T>
__device__ void reduce_cols_vec(const T* x, T* y, long outer, long dim, long inner, int op) {
    const int W = VW<T>::n;
    __shared__ float sh[8][32 * 8 + 1];
    long tiles = (inner + 32 * W - 1) / (32 * W);
    for (long b = blockIdx.x; b < outer * tiles; b += gridDim.x) {
        long o = b / tiles, i = (b % tiles) * 32 * W + (long)W * threadIdx.x;
        bool in = i < inner;                        // inner % W == 0: then all W columns are in
        float acc[W];
#pragma unroll
        for (int e = 0; e < W; e++) acc[e] = red_init(op);
        if (in) {
            const T* p = x + o * dim * inner + i;
            long d = threadIdx.y;
            for (; d + 24 < dim; d += 32) {
                float v[4][W];
#pragma unroll
                for (int q = 0; q < 4; q++) ld16(p + (d + 8 * q) * inner, v[q]);
#pragma unroll
                for (int q = 0; q < 4; q++)
#pragma unroll
                    for (int e = 0; e < W; e++) acc[e] = red2(op, acc[e], v[q][e]);
            }
            for (; d < dim; d += 8) {
                float v[W];
                ld16(p + d * inner, v);
#pragma unroll
                for (int e = 0; e < W; e++) acc[e] = red2(op, acc[e], v[e]);
            }
        }
        __syncthreads();
#pragma unroll
        for (int e = 0; e < W; e++) sh[threadIdx.y][W * threadIdx.x + e] = acc[e];
        __syncthreads();
        // 32 W columns, 256 threads: thread (x, y) finishes columns t, t + 256 (t = 32 y + x).
        for (int t = threadIdx.y * 32 + threadIdx.x; t < 32 * W; t += 256) {
            long col = (b % tiles) * 32 * W + t;
            if (col < inner) {
                float a = sh[0][t];
                for (int k = 1; k < 8; k++) a = red2(op, a, sh[k][t]);
                store(y, o * inner + col, a);
            }
        }
    }
}

// ---- argmax -----------------------------------------------------------------------------------
// A candidate (value, index); idx == 0xffffffff means "none yet". b beats a when a is none, or b
// is larger, or equal with a smaller index. NaN values never become candidates.
__device__ __forceinline__ void am_take(float& bv, u32& bi, float v, u32 i) {
    if (v != v) return;
    if (bi == 0xffffffffu || v > bv || (v == bv && i < bi)) { bv = v; bi = i; }
}
__device__ __forceinline__ void am_warp(float& bv, u32& bi) {
    for (int o = 16; o > 0; o >>= 1) {
        float v = __shfl_xor_sync(0xffffffffu, bv, o);
        u32 i = __shfl_xor_sync(0xffffffffu, bi, o);
        if (i != 0xffffffffu) am_take(bv, bi, v, i);
    }
}
// The block's best candidate, left in thread 0 (every thread calls it; shv, shi: 32 slots each).
__device__ __forceinline__ void am_block(float& bv, u32& bi, float* shv, u32* shi) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    am_warp(bv, bi);
    __syncthreads();                               // the last call's reads of shv, shi are done
    if (lane == 0) { shv[warp] = bv; shi[warp] = bi; }
    __syncthreads();
    if (warp == 0) {
        bv = lane < nw ? shv[lane] : -KILN_INF;
        bi = lane < nw ? shi[lane] : 0xffffffffu;
        am_warp(bv, bi);
    }
}
// The CPU's rule on top of the candidate: x[0] NaN, or no candidate at all, gives 0.
__device__ __forceinline__ u32 am_final(float x0, u32 bi) { return (x0 != x0 || bi == 0xffffffffu) ? 0u : bi; }

// x: (outer, dim) -> y: (outer) u32. One block per row (grid-stride over rows).
template <typename T>
__device__ void argmax_rows(const T* x, u32* y, long outer, long dim) {
    __shared__ float shv[32];
    __shared__ u32 shi[32];
    for (long r = blockIdx.x; r < outer; r += gridDim.x) {
        const T* row = x + r * dim;
        float bv = -KILN_INF; u32 bi = 0xffffffffu;
        const int W = VW<T>::n;
        if (dim % W == 0) {                         // 16-byte loads; the winner does not depend on order
#pragma unroll 2
            for (long j = threadIdx.x; j < dim / W; j += blockDim.x) {
                float v[W];
                ld16(row + W * j, v);
                // A thread sees its indices in increasing order, so only a larger value (or a first
                // candidate) can win: a piece whose max (fmaxf skips NaN) cannot is not scanned.
                float pm = v[0];
#pragma unroll
                for (int e = 1; e < W; e++) pm = fmaxf(pm, v[e]);
                if (pm > bv || (bi == 0xffffffffu && pm == pm)) {
#pragma unroll
                    for (int e = 0; e < W; e++) am_take(bv, bi, v[e], (u32)(W * j + e));
                }
            }
        } else {
            for (long d = threadIdx.x; d < dim; d += blockDim.x) am_take(bv, bi, load(row, d), (u32)d);
        }
        am_block(bv, bi, shv, shi);
        if (threadIdx.x == 0) y[r] = am_final(load(row, 0), bi);
    }
}

// x: (outer, dim, inner) -> y: (outer, inner) u32. Block (32, 8) as reduce_cols.
template <typename T>
__device__ void argmax_cols(const T* x, u32* y, long outer, long dim, long inner) {
    __shared__ float shv[8][33];
    __shared__ u32 shi[8][33];
    long tiles = (inner + 31) / 32;
    for (long b = blockIdx.x; b < outer * tiles; b += gridDim.x) {
        long o = b / tiles, i = (b % tiles) * 32 + threadIdx.x;
        float bv = -KILN_INF; u32 bi = 0xffffffffu;
        const T* p = x + o * dim * inner + i;
        if (i < inner)
            for (long d = threadIdx.y; d < dim; d += blockDim.y) am_take(bv, bi, load(p, d * inner), (u32)d);
        __syncthreads();
        shv[threadIdx.y][threadIdx.x] = bv; shi[threadIdx.y][threadIdx.x] = bi;
        __syncthreads();
        if (threadIdx.y == 0 && i < inner) {
            for (int k = 1; k < (int)blockDim.y; k++)
                if (shi[k][threadIdx.x] != 0xffffffffu) am_take(bv, bi, shv[k][threadIdx.x], shi[k][threadIdx.x]);
            y[o * inner + i] = am_final(load(p, 0), bi);
        }
    }
}

// ---- topk --------------------------------------------------------------------------------------
// x: (rows, n) -> vals (rows, k) in x's type, idx (rows, k) u32, best first. One block per row
// (grid-stride over rows). Each thread keeps the k best of its strided share as a sorted list (it
// sees its indices in increasing order, so a newcomer equal to a kept value ranks after it); then
// k rounds of a block argmax over the lists' heads (am_take's order: larger value, then smaller
// index), the winner popping its head. NaN is never taken; empty slots are (NaN, 0xffffffff).
#define TOPK_MAX 64
template <typename T>
__device__ void topk_rows(const T* x, T* vals, u32* idx, long rows, long n, int k) {
    __shared__ float shv[32];
    __shared__ u32 shi[32];
    __shared__ u32 win;
    float lv[TOPK_MAX];
    u32 li[TOPK_MAX];
    for (long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* row = x + r * n;
        int cnt = 0;
        for (long d = threadIdx.x; d < n; d += blockDim.x) {
            float v = load(row, d);
            if (v != v || (cnt == k && !(v > lv[k - 1]))) continue;
            int j = cnt < k ? cnt++ : k - 1;
            for (; j > 0 && v > lv[j - 1]; j--) { lv[j] = lv[j - 1]; li[j] = li[j - 1]; }
            lv[j] = v; li[j] = (u32)d;
        }
        for (int s = 0, head = 0; s < k; s++) {
            float bv = head < cnt ? lv[head] : -KILN_INF;
            u32 bi = head < cnt ? li[head] : 0xffffffffu;
            am_block(bv, bi, shv, shi);            // its first barrier also orders the last round's reads of win
            if (threadIdx.x == 0) {
                win = bi;
                store(vals, r * k + s, bi == 0xffffffffu ? __int_as_float(0x7fc00000) : bv);
                idx[r * k + s] = bi;
            }
            __syncthreads();
            if (head < cnt && li[head] == win) head++;  // indices are unique: one thread pops
        }
    }
}

#define REDUCE_KERNELS(T, S)                                                                          \
extern "C" __global__ void reduce_rows_warp_##S(const T* x, T* y, long outer, long dim, int op) {     \
    reduce_rows_warp(x, y, outer, dim, op);                                                           \
}                                                                                                     \
extern "C" __global__ void reduce_rows_block_##S(const T* x, T* y, long outer, long dim, int op) {    \
    reduce_rows_block(x, y, outer, dim, op);                                                          \
}                                                                                                     \
extern "C" __global__ void reduce_cols_##S(const T* x, T* y, long outer, long dim, long inner, int op) { \
    reduce_cols(x, y, outer, dim, inner, op);                                                         \
}                                                                                                     \
extern "C" __global__ void reduce_cols_vec_##S(const T* x, T* y, long outer, long dim, long inner, int op) { \
    reduce_cols_vec(x, y, outer, dim, inner, op);                                                     \
}                                                                                                     \
extern "C" __global__ void argmax_rows_##S(const T* x, u32* y, long outer, long dim) {                \
    argmax_rows(x, y, outer, dim);                                                                    \
}                                                                                                     \
extern "C" __global__ void argmax_cols_##S(const T* x, u32* y, long outer, long dim, long inner) {    \
    argmax_cols(x, y, outer, dim, inner);                                                             \
}                                                                                                     \
extern "C" __global__ void topk_rows_##S(const T* x, T* vals, u32* idx, long rows, long n, int k) {   \
    topk_rows(x, vals, idx, rows, n, k);                                                              \
}
REDUCE_KERNELS(float, f32)
REDUCE_KERNELS(bf16, bf16)

// y[0..n) = 0 in the output type (an empty reduction: dim == 0).
extern "C" __global__ void zero_f32(float* y, long n) { GRID_STRIDE(i, n) y[i] = 0.f; }
extern "C" __global__ void zero_bf16(bf16* y, long n) { GRID_STRIDE(i, n) y[i].bits = 0; }
