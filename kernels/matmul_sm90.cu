// kernels/matmul_sm90.cu: the bf16 GEMM on Hopper's warpgroup MMA (wgmma), sm_90a only.
// Same contract as hgemm_* in matmul.cu (twin: backend/cpu/matmul.rs): batched C[z] = op(A[z])
// op(B[z]), row-major, bf16 operands, f32 accumulation, bf16 output. A: (batch, M, K), or
// (batch, K, M) when TA. B: (b_batch, K, N), or (b_batch, N, K) when TB; b_shared != 0: one B.
// Every operand's contiguous dimension must be a multiple of 8 (16-byte cp.async; the launcher
// sends other shapes to matmul.cu). Any M, N, K >= 0: tile edges are zero-filled / predicated.
//
// Block tile 128 (M) x 256 (N) x 64 (K), 256 threads = 2 warpgroups; warpgroup g owns rows
// 64g..64g+63 and all 256 columns, as two m64n128k16 accumulators (2 x 64 f32 per thread).
// Operands reach shared memory by cp.async (no TMA) in H9_ST stages, laid out as wgmma's
// 128-byte-swizzled canonical tiles (16-byte chunk c of a 128-byte row r sits at chunk c ^ (r % 8)):
//   K-major (A, or B when TB):   rows of 64 k, 8-row groups 1024 B apart            (SBO = 1024)
//   MN-major (A when TA, else B): rows of 64 mn per k, 8-k groups 1024 B apart,
//                                 64-mn blocks 64 x 128 B = 8192 B apart            (LBO = 8192)
// Pipeline (ST = 4, LOOK = 2): tile kt + 2 is loading while the MMAs of tile kt - 1 may still run
// and those of tile kt are issued; a stage is refilled only after both warpgroups waited for the
// MMAs that read it (wgmma_wait<1> in iteration kt - 1, then the barrier of iteration kt).
// LOOK = 3: tile kt + 3 loads into tile kt - 1's stage, so each iteration ends with wgmma_wait<0>.

#include "tma.cuh"
#include "wgmma64.cuh"

#define H9_BM 128
#define H9_BN 256
#define H9_BK 64
#define H9_ST 4
#define H9_A_BYTES (H9_BM * H9_BK * 2)              // 16 KiB
#define H9_STAGE (H9_A_BYTES + H9_BN * H9_BK * 2)   // + 32 KiB of B
// dynamic shared memory: H9_ST * H9_STAGE + 1024 (the tiles start on a 1024-byte boundary)

// Byte offset of 16-byte chunk c (elements 8c..8c+7 along the row) of row r in a swizzled tile.
// K-major: r = mn, c = k / 8. MN-major: r = k (0..63), c = (mn % 64) / 8, plus the 64-mn block.
__device__ __forceinline__ int h9_kmaj(int r, int c) { return (r >> 3) * 1024 + (r & 7) * 128 + ((c ^ (r & 7)) << 4); }
__device__ __forceinline__ int h9_mnmaj(int k, int mn) {
    return (mn >> 6) * 8192 + (k >> 3) * 1024 + (k & 7) * 128 + ((((mn & 63) >> 3) ^ (k & 7)) << 4);
}

// One operand's k-tile (ROWS along M or N, 64 along K) into its stage. KMAJ: the operand is stored
// (rows, Kd) with k contiguous; else (Kd, rows) with rows contiguous. Out-of-range chunks are zeros.
template <int ROWS, bool KMAJ>
__device__ __forceinline__ void h9_load(unsigned char* s, const bf16* g, int rows, int Kd, int r0, int k0) {
#pragma unroll
    for (int i = 0; i < ROWS * 8 / 256; i++) {
        const int idx = threadIdx.x + 256 * i;
        int r, k, off;
        if (KMAJ) {
            r = idx >> 3;
            k = (idx & 7) * 8;
            off = h9_kmaj(r, idx & 7);
        } else {
            k = idx / (ROWS / 8);
            r = (idx % (ROWS / 8)) * 8;
            off = h9_mnmaj(k, r);
        }
        const int gr = r0 + r, gk = k0 + k;
        const bool ok = gr < rows && gk < Kd;
        const bf16* src = ok ? g + (KMAJ ? (long)gr * Kd + gk : (long)gk * rows + gr) : g;
        cp_async16(s + off, src, ok);
    }
}

// CAT (batch 1, A and B unbatched): C = [A | A2] [B ; B2], k-tiles 0..ceil(K/64) from (a, b, K),
// the next ceil(K2/64) from (a2, b2, K2); each part's last tile is zero-filled past its end.
template <bool TA, bool TB, bool CAT, bool N256, int LOOK>
__device__ __forceinline__ void h9_body(const bf16* __restrict__ a, const bf16* __restrict__ b, bf16* __restrict__ c,
                                        int M, int K, int N, int b_shared,
                                        const bf16* __restrict__ a2, const bf16* __restrict__ b2, int K2) {
    extern __shared__ __align__(16) unsigned char h9_smem[];
    unsigned char* base = h9_smem + ((1024 - (int)((unsigned long long)h9_smem & 1023)) & 1023);
    const int wg = threadIdx.x >> 7;
    int m0, n0;
    gemm_block<H9_BM, H9_BN>(a, b, c, M, K, N, b_shared, m0, n0);

    float acc[2][64];
#pragma unroll
    for (int h = 0; h < 2; h++)
#pragma unroll
        for (int e = 0; e < 64; e++) acc[h][e] = 0.f;

    const int kt1 = (K + H9_BK - 1) / H9_BK;
    const int ktiles = kt1 + (CAT ? (K2 + H9_BK - 1) / H9_BK : 0);
    auto load_tile = [&](int st, int kt) {
        unsigned char* sa = base + st * H9_STAGE;
        const bool second = CAT && kt >= kt1;
        const bf16* pa = second ? a2 : a;
        const bf16* pb = second ? b2 : b;
        const int kd = second ? K2 : K, k0 = (second ? kt - kt1 : kt) * H9_BK;
        h9_load<H9_BM, !TA>(sa, pa, M, kd, m0, k0);
        h9_load<H9_BN, TB>(sa + H9_A_BYTES, pb, N, kd, n0, k0);
    };
    static_assert(LOOK == 2 || LOOK == 3, "LOOK k-tiles in flight: 2 (MMAs of tile kt - 1 may run on) or 3");
#pragma unroll
    for (int s = 0; s < LOOK; s++) {
        if (s < ktiles) load_tile(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < ktiles; kt++) {
        cp_async_wait<LOOK - 1>();    // this thread's copies of tile kt have landed...
        fence_proxy_async();          // ...are visible to the MMA unit...
        __syncthreads();              // ...and so are everyone's; tile kt + LOOK - 4's stage is free
        auto refill = [&]() {
            const int nk = kt + LOOK;
            if (nk < ktiles) load_tile(nk % H9_ST, nk);
            cp_async_commit();        // always, so the group count stays in step
        };
        if (LOOK == 2) refill();
        const unsigned char* sa = base + (kt % H9_ST) * H9_STAGE;
        const unsigned char* sb = sa + H9_A_BYTES;
        wgmma_hold<64>(acc[0]);
        wgmma_hold<64>(acc[1]);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < H9_BK / 16; kk++) {
            // A: this warpgroup's 64 rows, k 16kk..16kk+15. B: columns 128h.., same k.
            const u64 da = TA ? wgmma_desc(sa + wg * 8192 + kk * 2048, 8192, 1024, h9_smem) : wgmma_desc(sa + wg * 8192 + kk * 32, 16, 1024, h9_smem);
            if (N256) {               // all 256 columns in one instruction (A read once)
                const u64 db = TB ? wgmma_desc(sb + kk * 32, 16, 1024, h9_smem) : wgmma_desc(sb + kk * 2048, 8192, 1024, h9_smem);
                wgmma_m64n256k16<TA ? 1 : 0, TB ? 0 : 1>(&acc[0][0], da, db, h9_smem);
            } else {
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const u64 db = TB ? wgmma_desc(sb + h * 16384 + kk * 32, 16, 1024, h9_smem) : wgmma_desc(sb + h * 16384 + kk * 2048, 8192, 1024, h9_smem);
                    wgmma_m64n128k16<TA ? 1 : 0, TB ? 0 : 1>(acc[h], da, db, h9_smem);
                }
            }
        }
        wgmma_commit();
        // LOOK 2: the MMAs of tile kt - 1 are done (its stage is refilled at kt + 1). LOOK 3: the
        // copies are issued while this tile's MMAs run, then those MMAs are waited for, as the
        // tile's stage is refilled at kt + 1 already.
        if (LOOK == 3) {
            refill();
            wgmma_wait<0>();
        } else {
            wgmma_wait<1>();
        }
        wgmma_hold<64>(acc[0]);
        wgmma_hold<64>(acc[1]);
    }
    wgmma_wait<0>();
    wgmma_hold<64>(acc[0]);
    wgmma_hold<64>(acc[1]);
    cp_async_wait<0>();               // no copy may still be in flight when the block exits

    // d[4i + 2hh + cc] = D[16w + l/4 + 8hh][8i + 2(l%4) + cc] within the warpgroup's 64 x 128 half.
    const int t = threadIdx.x & 127, w = t >> 5, l = t & 31;
    if (N256) {
        // The n256 variants stage C through the (now idle) stages: fragments -> shared as bf16 pairs
        // ([128][264]: rows 528 bytes apart, a warp's 4-byte writes on distinct banks), then 16-byte
        // row pieces to global, so every store moves whole 32-byte sectors.
        constexpr int CP = H9_BN + 8;
        unsigned short* cs = reinterpret_cast<unsigned short*>(base);
        __syncthreads();              // both warpgroups are done reading the stages
#pragma unroll
        for (int h = 0; h < 2; h++)
#pragma unroll
            for (int hh = 0; hh < 2; hh++)
#pragma unroll
                for (int i = 0; i < 16; i++) {
                    const int r = wg * 64 + 16 * w + (l >> 2) + 8 * hh, col = h * 128 + 8 * i + 2 * (l & 3);
                    *reinterpret_cast<u32*>(cs + r * CP + col) = pack_bf16(acc[h][4 * i + 2 * hh], acc[h][4 * i + 2 * hh + 1]);
                }
        __syncthreads();
        const bool vec = (N & 7) == 0;
        for (int e = threadIdx.x; e < H9_BM * (H9_BN / 8); e += 256) {
            const int r = e / (H9_BN / 8), c8 = 8 * (e % (H9_BN / 8)), m = m0 + r, n = n0 + c8;
            if (m >= M || n >= N) continue;
            const unsigned short* src = cs + r * CP + c8;
            if (vec) {
                *reinterpret_cast<uint4*>(c + (long)m * N + n) = *reinterpret_cast<const uint4*>(src);
            } else {
                for (int j = 0; j < 8 && n + j < N; j++) c[(long)m * N + n + j].bits = src[j];
            }
        }
        return;
    }
    const bool pair = (N & 1) == 0;
#pragma unroll
    for (int h = 0; h < 2; h++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int m = m0 + wg * 64 + 16 * w + (l >> 2) + 8 * hh;
            if (m >= M) continue;
#pragma unroll
            for (int i = 0; i < 16; i++) {
                const int n = n0 + h * 128 + 8 * i + 2 * (l & 3);
                const long o = (long)m * N + n;
                store_bf16x2(c, o, n, N, pair, acc[h][4 * i + 2 * hh], acc[h][4 * i + 2 * hh + 1]);
            }
        }
}

// Variants (backend/cuda/matmul.rs, GemmPath): h9gemm_* two m64n128k16 a k16 step and 2 k-tiles in
// flight (measured on the H200 of 2026-11-27); h9gemm_w256_* one m64n256k16 and C staged through
// shared memory for 16-byte stores; h9gemm_w256l3_* that and 3 k-tiles in flight (the MMAs of each
// tile waited for before the next tile's barrier).
#define H9GEMM(name, TA, TB, N256, LOOK)                                                              \
    extern "C" __global__ void __launch_bounds__(256, 1) name(const bf16* a, const bf16* b, bf16* c,   \
                                                          int M, int K, int N, int b_shared) {       \
        h9_body<TA, TB, false, N256, LOOK>(a, b, c, M, K, N, b_shared, nullptr, nullptr, 0);         \
    }
#define H9GEMMS(pre, N256, LOOK)                                                                      \
    H9GEMM(pre##_nn, false, false, N256, LOOK) H9GEMM(pre##_nt, false, true, N256, LOOK)              \
    H9GEMM(pre##_tn, true, false, N256, LOOK) H9GEMM(pre##_tt, true, true, N256, LOOK)
H9GEMMS(h9gemm, false, 2)
H9GEMMS(h9gemm_w256, true, 2)
H9GEMMS(h9gemm_w256l3, true, 3)

// C (M, N) = [A | A2] [B ; B2] (one batch): A (M, K), A2 (M, K2); B (K, N), B2 (K2, N) (cat_nn) or
// B (N, K), B2 (N, K2) (cat_nt). The bf16 LoRA's fused forward and dX (backend/cuda/lora.rs).
#define H9GEMM_CAT(name, TB, N256, LOOK)                                                               \
    extern "C" __global__ void __launch_bounds__(256, 1) name(const bf16* a, const bf16* b, bf16* c,    \
                                                          int M, int K, int N, const bf16* a2,        \
                                                          const bf16* b2, int K2) {                   \
        h9_body<false, TB, true, N256, LOOK>(a, b, c, M, K, N, 0, a2, b2, K2);                        \
    }
H9GEMM_CAT(h9gemm_cat_nn, false, false, 2)
H9GEMM_CAT(h9gemm_cat_nt, true, false, 2)
H9GEMM_CAT(h9gemm_w256_cat_nn, false, true, 2)
H9GEMM_CAT(h9gemm_w256_cat_nt, true, true, 2)
H9GEMM_CAT(h9gemm_w256l3_cat_nn, false, true, 3)
H9GEMM_CAT(h9gemm_w256l3_cat_nt, true, true, 3)

// ---- the warp-specialised variant: TMA loads, mbarriers, a persistent grid (matmul_tma.cuh) -----
#include "matmul_tma.cuh"

template <bool TA, bool TB, bool CAT, int CL>
__device__ __forceinline__ void h9t_kernel(const TmaMap* ma, const TmaMap* mb, const TmaMap* ma2, const TmaMap* mb2, bf16* c,
                                           int M, int K, int N, int K2, int batch, int b_shared) {
    extern __shared__ __align__(16) unsigned char h9t_smem[];
    h9t_body<TA, TB, CAT, CL>(h9t_smem, ma, mb, ma2, mb2, c, M, K, N, K2, batch, b_shared);
}
// Batched C[z] = op(A[z]) op(B[z]) as h9gemm_*; ma / mb map A (batch, M, K) or (batch, K, M) and B
// likewise (backend/cuda/tma.rs); grid: one block per SM (CL = 2: whole clusters), at most one per tile.
// CLUSTER: nothing (CL = 1) or __cluster_dims__(2, 1, 1).
#define H9TMA(name, TA, TB, CL, CLUSTER)                                                              \
    extern "C" __global__ void __launch_bounds__(H9T_THREADS, 1) CLUSTER                             \
        name(const __grid_constant__ TmaMap ma, const __grid_constant__ TmaMap mb, bf16* c, int M, int K, int N, \
             int batch, int b_shared) {                                                                \
        h9t_kernel<TA, TB, false, CL>(&ma, &mb, nullptr, nullptr, c, M, K, N, 0, batch, b_shared);   \
    }
H9TMA(h9tma_nn, false, false, 1, )
H9TMA(h9tma_nt, false, true, 1, )
H9TMA(h9tma_tn, true, false, 1, )
H9TMA(h9tma_tt, true, true, 1, )
H9TMA(h9tmc_nn, false, false, 2, __cluster_dims__(2, 1, 1))
H9TMA(h9tmc_nt, false, true, 2, __cluster_dims__(2, 1, 1))
H9TMA(h9tmc_tn, true, false, 2, __cluster_dims__(2, 1, 1))
H9TMA(h9tmc_tt, true, true, 2, __cluster_dims__(2, 1, 1))
// C (M, N) = [A | A2] [B ; B2] as h9gemm_cat_*, each operand through its own map.
#define H9TMA_CAT(name, TB, CL, CLUSTER)                                                              \
    extern "C" __global__ void __launch_bounds__(H9T_THREADS, 1) CLUSTER                             \
        name(const __grid_constant__ TmaMap ma, const __grid_constant__ TmaMap mb, const __grid_constant__ TmaMap ma2, \
             const __grid_constant__ TmaMap mb2, bf16* c, int M, int K, int N, int K2) {              \
        h9t_kernel<false, TB, true, CL>(&ma, &mb, &ma2, &mb2, c, M, K, N, K2, 1, 1);                  \
    }
H9TMA_CAT(h9tma_cat_nn, false, 1, )
H9TMA_CAT(h9tma_cat_nt, true, 1, )
H9TMA_CAT(h9tmc_cat_nn, false, 2, __cluster_dims__(2, 1, 1))
H9TMA_CAT(h9tmc_cat_nt, true, 2, __cluster_dims__(2, 1, 1))
