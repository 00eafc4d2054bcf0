// kernels/lora.cu: the fused LoRA linear, y = x W + s (x A) B, and its backward. Twin:
// backend/cpu/lora.rs. Shapes: x (N, K), w (K, M), a (K, R), b (R, M), y (N, M).
//
// Everything is built from one tiled GEMM over a concatenated reduction dimension:
//   C (M x N) = alpha * ( A1 (M x K1) B1 (K1 x N) + A2 (M x K2) B2 (K2 x N) )
// with each operand addressed by (row stride, column stride), so transposes cost nothing:
// element (i, k) of A1 is A1[i * a1r + k * a1c]. The forward is
//   t = s * x A               (pair 1 only, C in f32)
//   y = [x | t] [W ; B]       (pair 1 = (x, W), pair 2 = (t, B): y is written once)
// and the backward (W frozen) is
//   g  = s * dY B^T           (f32)
//   dX = [dY | g] [W^T ; A^T]
//   dA = X^T g,  dB = s (X A)^T dY,  dW = X^T dY   (reductions over N, split over N: see below)
// Split-K (gridDim.z > 1): split z reduces pair 1's k in [z * kchunk, (z + 1) * kchunk) into its
// own f32 partial C + z * M * N (alpha = 1), the last split adding pair 2 as well; `lora_reduce_*`
// then sums the partials in fixed order z = 0, 1, ... and applies alpha (deterministic: no atomics).
//
// Tile: 64 x 64 outputs per block, BK = 16, 256 threads, each thread 4 x 4 outputs at rows
// ty + 16 i, columns tx + 16 j (ty = tid / 16, tx = tid % 16). Tiles are staged through shared
// memory as [k][m] and [k][n]; every load is bounds-checked (zeros past the edges) and every
// store too, so any M, N, K work. f32 accumulation on CUDA cores for every storage type.

#define LG_BM 64
#define LG_BN 64
#define LG_BK 16
#define LG_PAD 4

// Load one BK-slice of a (rows x kdim) operand as tile[k][i] (i < 64 rows of the tile).
// Coalesced along whichever of the two strides is 1 (rstride == 1: along rows; else along k).
template <typename T>
__device__ __forceinline__ void lg_load_a(float (*tile)[LG_BM + LG_PAD], const T* __restrict__ p, long rs, long cs,
                                          int row0, int rows, int k0, int kend, int tid) {
#pragma unroll
    for (int l = 0; l < (LG_BM * LG_BK) / 256; ++l) {
        int e = tid + 256 * l;
        int i, kk;
        if (rs == 1) { i = e % LG_BM; kk = e / LG_BM; } else { kk = e % LG_BK; i = e / LG_BK; }
        int r = row0 + i, c = k0 + kk;
        tile[kk][i] = (r < rows && c < kend) ? load(p, (long)r * rs + (long)c * cs) : 0.f;
    }
}
// Load one BK-slice of a (kdim x cols) operand as tile[k][j].
template <typename T>
__device__ __forceinline__ void lg_load_b(float (*tile)[LG_BN + LG_PAD], const T* __restrict__ p, long rs, long cs,
                                          int k0, int kend, int col0, int cols, int tid) {
#pragma unroll
    for (int l = 0; l < (LG_BN * LG_BK) / 256; ++l) {
        int e = tid + 256 * l;
        int j, kk;
        if (cs == 1) { j = e % LG_BN; kk = e / LG_BN; } else { kk = e % LG_BK; j = e / LG_BK; }
        int r = k0 + kk, c = col0 + j;
        tile[kk][j] = (r < kend && c < cols) ? load(p, (long)r * rs + (long)c * cs) : 0.f;
    }
}

__device__ __forceinline__ void lg_mac(float acc[4][4], const float (*As)[LG_BM + LG_PAD], const float (*Bs)[LG_BN + LG_PAD],
                                       int tx, int ty) {
#pragma unroll
    for (int kk = 0; kk < LG_BK; ++kk) {
        float a[4], b[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = As[kk][ty + 16 * i];
#pragma unroll
        for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
}

// C (m x n, row-major, plus z * m * n for split z) = alpha * (A1 B1 + A2 B2).
// Grid (ceil(n / 64), ceil(m / 64), splits), 256 threads. Pair 2 (A2 f32, B2 of type TA), when
// k2 > 0, in the last split only.
template <typename TA, typename TB, typename TC>
__device__ void lora_gemm_body(const TA* __restrict__ a1, long a1r, long a1c, const TB* __restrict__ b1, long b1r, long b1c, int k1,
                               const float* __restrict__ a2, long a2r, long a2c, const TA* __restrict__ b2, long b2r, long b2c, int k2,
                               TC* __restrict__ c, int m, int n, float alpha, int kchunk) {
    __shared__ float As[LG_BK][LG_BM + LG_PAD];
    __shared__ float Bs[LG_BK][LG_BN + LG_PAD];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int row0 = blockIdx.y * LG_BM, col0 = blockIdx.x * LG_BN;
    const int kbeg = blockIdx.z * kchunk;
    const int kend = min(k1, kbeg + kchunk);

    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;

    for (int k0 = kbeg; k0 < kend; k0 += LG_BK) {
        __syncthreads();
        lg_load_a(As, a1, a1r, a1c, row0, m, k0, kend, tid);
        lg_load_b(Bs, b1, b1r, b1c, k0, kend, col0, n, tid);
        __syncthreads();
        lg_mac(acc, As, Bs, tx, ty);
    }
    if (blockIdx.z == gridDim.z - 1) {  // pair 2 in the last split
        for (int k0 = 0; k0 < k2; k0 += LG_BK) {
            __syncthreads();
            lg_load_a(As, a2, a2r, a2c, row0, m, k0, k2, tid);
            lg_load_b(Bs, b2, b2r, b2c, k0, k2, col0, n, tid);
            __syncthreads();
            lg_mac(acc, As, Bs, tx, ty);
        }
    }
    TC* cz = c + (long)blockIdx.z * m * n;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            int r = row0 + ty + 16 * i, col = col0 + tx + 16 * j;
            if (r < m && col < n) store(cz, (long)r * n + col, alpha * acc[i][j]);
        }
}

#define LORA_GEMM(TA, TB, TC, NAME)                                                                           \
    extern "C" __global__ void __launch_bounds__(256) NAME(                                                   \
        const TA* a1, long a1r, long a1c, const TB* b1, long b1r, long b1c, int k1,                          \
        const float* a2, long a2r, long a2c, const TA* b2, long b2r, long b2c, int k2,                       \
        TC* c, int m, int n, float alpha, int kchunk) {                                                       \
        lora_gemm_body<TA, TB, TC>(a1, a1r, a1c, b1, b1r, b1c, k1, a2, a2r, a2c, b2, b2r, b2c, k2, c, m, n, alpha, kchunk); \
    }

LORA_GEMM(float, float, float, lora_gemm_f32_f32_f32)
LORA_GEMM(float, float, bf16, lora_gemm_f32_f32_bf16)
LORA_GEMM(float, bf16, float, lora_gemm_f32_bf16_f32)
LORA_GEMM(float, bf16, bf16, lora_gemm_f32_bf16_bf16)
LORA_GEMM(bf16, float, float, lora_gemm_bf16_f32_f32)
LORA_GEMM(bf16, float, bf16, lora_gemm_bf16_f32_bf16)
LORA_GEMM(bf16, bf16, float, lora_gemm_bf16_bf16_f32)
LORA_GEMM(bf16, bf16, bf16, lora_gemm_bf16_bf16_bf16)

// ---- bf16 tensor-core path (mma.sync m16n8k16) ----------------------------------------------
// Same contract as lora_gemm_* for bf16 A1 / B1 / B2 (A2 f32, rounded to bf16 when staged).
// Block tile 64 x 64, BK = 32, 128 threads = 4 warps in 2 x 2, each warp 32 x 32 = 2 (m16) x 4 (n8)
// mma tiles. Shared tiles hold bf16 as As[m][k] and Bs[n][k] (B stored transposed = the "col"
// operand), row stride 40 halves (80 bytes: the fragment loads below are bank-conflict free).
// Fragments are read straight from shared memory as 32-bit pairs (layout in common.cuh):
// lane = 4 g + t; A regs: (row g, k 2t..2t+1), (row g+8, k 2t..), (row g, k 2t+8..), (row g+8, k 2t+8..);
// B regs: (n g, k 2t..2t+1), (n g, k 2t+8..2t+9); D: (row g, n 2t, 2t+1), (row g+8, n 2t, 2t+1).
#define LM_BK 32
#define LM_LD 40

template <typename T>
__device__ __forceinline__ void lm_stage(unsigned short (*tile)[LM_LD], const T* __restrict__ p, long rs, long cs,
                                         int row0, int rows, int k0, int kend, int tid) {
    // tile[i][kk] = op(i, k0 + kk) for i < 64, kk < 32; coalesced along the unit stride.
#pragma unroll 4
    for (int l = 0; l < (64 * LM_BK) / 128; ++l) {
        int e = tid + 128 * l;
        int i, kk;
        if (rs == 1) { i = e % 64; kk = e / 64; } else { kk = e % LM_BK; i = e / LM_BK; }
        int r = row0 + i, c = k0 + kk;
        float v = (r < rows && c < kend) ? load(p, (long)r * rs + (long)c * cs) : 0.f;
        tile[i][kk] = f2bf(v).bits;
    }
}

// The bf16 operands' tiles go through registers, so the next k-tile's global loads are in flight
// while the tensor cores work on this one: lm_fetch (global -> 16 bf16 per thread, two 8-element
// pieces) before lm_mac, lm_put (-> shared) after the next barrier. Piece e (= tid, tid + 128):
//   k-contiguous (cs == 1) or general strides: row e / 4, k 8 (e % 4) .. + 7;
//   row-contiguous (rs == 1):                  k e / 8, rows 8 (e % 8) .. + 7 (stored transposed).
// A piece wholly inside the operand whose unit-stride run is 16-byte aligned is one 16-byte load;
// any other piece is read element by element (zeros past the edges). Same bits as lm_stage.
struct LmPieces { uint4 v[2]; };

__device__ __forceinline__ void lm_fetch(LmPieces& out, const bf16* __restrict__ p, long rs, long cs, int row0, int rows,
                                         int k0, int kend, int tid) {
    const bool by_rows = rs == 1 && cs != 1;
#pragma unroll
    for (int l = 0; l < 2; ++l) {
        const int e = tid + 128 * l;
        const int r = by_rows ? row0 + 8 * (e % 8) : row0 + e / 4;   // first row of the piece
        const int c = by_rows ? k0 + e / 8 : k0 + 8 * (e % 4);       // first k of the piece
        const long o = (long)r * rs + (long)c * cs;
        const bool whole = by_rows ? (c < kend && r + 8 <= rows) : (r < rows && c + 8 <= kend);
        if ((by_rows || cs == 1) && whole && ((unsigned long long)(p + o) & 15) == 0) {
            out.v[l] = *reinterpret_cast<const uint4*>(p + o);
        } else {
            u32 w[4];
#pragma unroll
            for (int j = 0; j < 8; j += 2) {
                const int r0 = by_rows ? r + j : r, c0 = by_rows ? c : c + j;
                const int r1 = by_rows ? r + j + 1 : r, c1 = by_rows ? c : c + j + 1;
                const u32 lo = (r0 < rows && c0 < kend) ? (u32)p[(long)r0 * rs + (long)c0 * cs].bits : 0u;
                const u32 hi = (r1 < rows && c1 < kend) ? (u32)p[(long)r1 * rs + (long)c1 * cs].bits : 0u;
                w[j / 2] = lo | (hi << 16);
            }
            out.v[l] = make_uint4(w[0], w[1], w[2], w[3]);
        }
    }
}

__device__ __forceinline__ void lm_put(unsigned short (*tile)[LM_LD], const LmPieces& in, long rs, long cs, int tid) {
    const bool by_rows = rs == 1 && cs != 1;
#pragma unroll
    for (int l = 0; l < 2; ++l) {
        const int e = tid + 128 * l;
        if (!by_rows) {
            *reinterpret_cast<uint4*>(&tile[e / 4][8 * (e % 4)]) = in.v[l];
        } else {
            const u32 w[4] = {in.v[l].x, in.v[l].y, in.v[l].z, in.v[l].w};
#pragma unroll
            for (int j = 0; j < 8; ++j) tile[8 * (e % 8) + j][e / 8] = (unsigned short)(w[j / 2] >> (16 * (j & 1)));
        }
    }
}

__device__ __forceinline__ void lm_mac(float acc[2][4][4], const unsigned short (*As)[LM_LD], const unsigned short (*Bs)[LM_LD],
                                       int wm, int wn, int g, int t) {
#pragma unroll
    for (int ks = 0; ks < LM_BK; ks += 16) {
        u32 af[2][4], bfr[4][2];
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) {
            int r = wm * 32 + mi * 16 + g;
            af[mi][0] = *(const u32*)&As[r][ks + 2 * t];
            af[mi][1] = *(const u32*)&As[r + 8][ks + 2 * t];
            af[mi][2] = *(const u32*)&As[r][ks + 2 * t + 8];
            af[mi][3] = *(const u32*)&As[r + 8][ks + 2 * t + 8];
        }
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
            int c = wn * 32 + ni * 8 + g;
            bfr[ni][0] = *(const u32*)&Bs[c][ks + 2 * t];
            bfr[ni][1] = *(const u32*)&Bs[c][ks + 2 * t + 8];
        }
#pragma unroll
        for (int mi = 0; mi < 2; ++mi)
#pragma unroll
            for (int ni = 0; ni < 4; ++ni) mma_bf16_16816(acc[mi][ni], af[mi], bfr[ni]);
    }
}

// The 2 x 2 warps' 32 x 32 accumulators of lora_mma and lora_stream: zeroed, and stored (times
// alpha; split z into its own partial c + z m n) with the mma.sync fragment layout.
__device__ __forceinline__ void lm_zero(float (&acc)[2][4][4]) {
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[mi][ni][q] = 0.f;
}
template <typename TC>
__device__ __forceinline__ void lm_store(TC* __restrict__ c, const float (&acc)[2][4][4], int row0, int col0, int m, int n,
                                         float alpha, int wm, int wn, int g, int t) {
    TC* cz = c + (long)blockIdx.z * m * n;
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                int r = row0 + wm * 32 + mi * 16 + g + (q >= 2 ? 8 : 0);
                int col = col0 + wn * 32 + ni * 8 + 2 * t + (q & 1);
                if (r < m && col < n) store(cz, (long)r * n + col, alpha * acc[mi][ni][q]);
            }
}

template <typename TC>
__device__ void lora_mma_body(const bf16* __restrict__ a1, long a1r, long a1c, const bf16* __restrict__ b1, long b1r, long b1c, int k1,
                              const float* __restrict__ a2, long a2r, long a2c, const bf16* __restrict__ b2, long b2r, long b2c, int k2,
                              TC* __restrict__ c, int m, int n, float alpha, int kchunk) {
    __shared__ __align__(16) unsigned short As[64][LM_LD];
    __shared__ __align__(16) unsigned short Bs[64][LM_LD];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp >> 1, wn = warp & 1, g = lane >> 2, t = lane & 3;
    const int row0 = blockIdx.y * 64, col0 = blockIdx.x * 64;
    const int kbeg = blockIdx.z * kchunk;
    const int kend = min(k1, kbeg + kchunk);
    float acc[2][4][4];
    lm_zero(acc);

    // Pair 1, B^T (n, k) read with the strides swapped; tile k0 + LM_BK is fetched during tile k0's mma.
    LmPieces pa, pb;
    if (kbeg < kend) {
        lm_fetch(pa, a1, a1r, a1c, row0, m, kbeg, kend, tid);
        lm_fetch(pb, b1, b1c, b1r, col0, n, kbeg, kend, tid);
    }
    for (int k0 = kbeg; k0 < kend; k0 += LM_BK) {
        __syncthreads();  // the previous tile's readers are done
        lm_put(As, pa, a1r, a1c, tid);
        lm_put(Bs, pb, b1c, b1r, tid);
        __syncthreads();
        if (k0 + LM_BK < kend) {
            lm_fetch(pa, a1, a1r, a1c, row0, m, k0 + LM_BK, kend, tid);
            lm_fetch(pb, b1, b1c, b1r, col0, n, k0 + LM_BK, kend, tid);
        }
        lm_mac(acc, As, Bs, wm, wn, g, t);
    }
    if (blockIdx.z == gridDim.z - 1) {  // pair 2 in the last split
        for (int k0 = 0; k0 < k2; k0 += LM_BK) {
            __syncthreads();
            lm_stage(As, a2, a2r, a2c, row0, m, k0, k2, tid);
            lm_stage(Bs, b2, b2c, b2r, col0, n, k0, k2, tid);
            __syncthreads();
            lm_mac(acc, As, Bs, wm, wn, g, t);
        }
    }
    lm_store(c, acc, row0, col0, m, n, alpha, wm, wn, g, t);
}

#define LORA_MMA(TC, NAME)                                                                                    \
    extern "C" __global__ void __launch_bounds__(128) NAME(                                                   \
        const bf16* a1, long a1r, long a1c, const bf16* b1, long b1r, long b1c, int k1,                      \
        const float* a2, long a2r, long a2c, const bf16* b2, long b2r, long b2c, int k2,                     \
        TC* c, int m, int n, float alpha, int kchunk) {                                                       \
        lora_mma_body<TC>(a1, a1r, a1c, b1, b1r, b1c, k1, a2, a2r, a2c, b2, b2r, b2c, k2, c, m, n, alpha, kchunk); \
    }
LORA_MMA(float, lora_mma_bf16_f32)
LORA_MMA(bf16, lora_mma_bf16_bf16)

#include "lora_stream.cuh"
// lora_stream_<A><B>_bf16_<C>: A n (k-contiguous) or t (m-contiguous), B n (n-contiguous) or t
// (k-contiguous); a1s, b1s: each operand's stride that is not 1.
#define LORA_STREAM(AT, BT, L, TC, S)                                                                         \
    extern "C" __global__ void __launch_bounds__(128) lora_stream_##L##_bf16_##S(const bf16* a1, long a1s,   \
                                      const bf16* b1, long b1s, int k1, TC* c, int m, int n, float alpha, int kchunk) { \
        lora_stream_body<AT, BT, TC>(a1, a1s, b1, b1s, k1, c, m, n, alpha, kchunk);                          \
    }
#define LORA_STREAMS(TC, S) LORA_STREAM(false, false, nn, TC, S) LORA_STREAM(true, false, tn, TC, S)        \
                            LORA_STREAM(false, true, nt, TC, S) LORA_STREAM(true, true, tt, TC, S)
LORA_STREAMS(float, f32)
LORA_STREAMS(bf16, bf16)

// out[i] = alpha * sum_{z < splits} part[z * len + i], summed in order z = 0, 1, ... (deterministic).
template <typename T>
__device__ void lora_reduce_body(const float* __restrict__ part, T* __restrict__ out, long len, int splits, float alpha) {
    GRID_STRIDE(i, len) {
        float s = 0.f;
        for (int z = 0; z < splits; ++z) s += part[(long)z * len + i];
        store(out, i, alpha * s);
    }
}
extern "C" __global__ void lora_reduce_f32(const float* part, float* out, long len, int splits, float alpha) {
    lora_reduce_body(part, out, len, splits, alpha);
}
extern "C" __global__ void lora_reduce_bf16(const float* part, bf16* out, long len, int splits, float alpha) {
    lora_reduce_body(part, out, len, splits, alpha);
}
