// kernels/matmul.cu: batched C[z] = op(A[z]) op(B[z]), row-major. Twin: backend/cpu/matmul.rs.
// A: (batch, M, K), or (batch, K, M) when TA. B: (b_batch, K, N), or (b_batch, N, K) when TB;
// b_shared != 0 means b_batch == 1 (one B for every z). C: (batch, M, N), same dtype as A and B.
// grid = (ceil(N / 128), ceil(M / 128), batch), walked in L2-friendly order by gemm_block; every
// tile edge is predicated, any M, K, N >= 0.
//
// Two paths:
//  sgemm_*: f32 on CUDA cores (full fp32, no TF32). 128x128 block tile, BK = 8, 256 threads, each
//    thread an 8x8 register block (rows ty*4+{0..3} and 64+ty*4+{0..3}, columns likewise by tx,
//    so the float4 shared reads are conflict-free). Operands go through registers into a double-
//    buffered, k-major shared tile (As[k][m], Bs[k][n]); a transposed operand only changes which
//    global index a thread reads.
//  hgemm_*: bf16 operands, f32 accumulation, bf16 output, tensor cores (mma.sync m16n8k16).
//    128x128x64 block tile, 8 warps as 2 (M) x 4 (N), each warp 64x32 = 4x4 mma tiles.
//    3-stage cp.async pipeline in dynamic shared memory. Shared layout follows global memory's
//    contiguous dimension, padded by 8 bf16 (16 B) per row so ldmatrix rows hit distinct banks:
//      A: [128 m][72]  (k contiguous)  or, TA, [64 k][136] (m contiguous, read with ldmatrix.trans)
//      B: [128 n][72]  (k contiguous, TB) or   [64 k][136] (n contiguous, read with ldmatrix.trans)
//    16-byte cp.async needs the contiguous dimension to be a multiple of 8 elements; when it is
//    not (va / vb == 0), the same tiles are filled by predicated scalar loads instead.

// ================================ f32: CUDA-core SGEMM ================================
#define SG_BM 128
#define SG_BN 128
#define SG_BK 8
#define SG_LD (SG_BM + 4)   // padded row: the (r = idx / 8) stores of a row-major A land on distinct banks

// One operand's k-tile (128 rows x 8 k) into 4 registers per thread. KC: stored k-contiguous,
// (rows, K) (A, or B when TB); else rows-contiguous, (K, rows). vec (contiguous dim a multiple
// of 4): one float4 per thread; else 4 predicated scalars, element idx = tid + 256 i.
template <bool KC>
__device__ __forceinline__ void sg_load(float v[4], const float* x, int rows, int K, int r0, int k0, bool vec) {
    const int tid = threadIdx.x;
    if (vec) {
        int r = r0 + (KC ? tid >> 1 : (tid & 31) * 4), k = k0 + (KC ? (tid & 1) * 4 : tid >> 5);
        float4 t = make_float4(0.f, 0.f, 0.f, 0.f);
        if (r < rows && k < K) t = *reinterpret_cast<const float4*>(x + (KC ? (long)r * K + k : (long)k * rows + r));
        v[0] = t.x;
        v[1] = t.y;
        v[2] = t.z;
        v[3] = t.w;
    } else {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int idx = tid + 256 * i;
            int r = r0 + (KC ? idx >> 3 : idx & 127), k = k0 + (KC ? idx & 7 : idx >> 7);
            v[i] = (r < rows && k < K) ? x[KC ? (long)r * K + k : (long)k * rows + r] : 0.f;
        }
    }
}
// The registers of sg_load into the k-major shared tile S[k][row] (same thread mapping).
template <bool KC>
__device__ __forceinline__ void sg_store(float (*S)[SG_LD], const float v[4], bool vec) {
    const int tid = threadIdx.x;
    if (vec) {
        if (KC) {
#pragma unroll
            for (int e = 0; e < 4; e++) S[(tid & 1) * 4 + e][tid >> 1] = v[e];
        } else {
            *reinterpret_cast<float4*>(&S[tid >> 5][(tid & 31) * 4]) = make_float4(v[0], v[1], v[2], v[3]);
        }
    } else {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int idx = tid + 256 * i;
            S[KC ? idx & 7 : idx >> 7][KC ? idx >> 3 : idx & 127] = v[i];
        }
    }
}

template <bool TA, bool TB>
__device__ __forceinline__ void sgemm_body(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c,
                                           int M, int K, int N, int b_shared) {
    __shared__ __align__(16) float As[2][SG_BK][SG_LD];
    __shared__ __align__(16) float Bs[2][SG_BK][SG_LD];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    int m0, n0;
    gemm_block<SG_BM, SG_BN>(a, b, c, M, K, N, b_shared, m0, n0);

    // Each operand's k-tile goes global -> 4 registers per thread -> shared (As[k][m], Bs[k][n]).
    const bool va = TA ? (M & 3) == 0 : (K & 3) == 0;   // float4 loads along the contiguous dim
    const bool vb = TB ? (K & 3) == 0 : (N & 3) == 0;
    float ra[4], rb[4];
    auto load_regs = [&](int k0) {
        sg_load<!TA>(ra, a, M, K, m0, k0, va);
        sg_load<TB>(rb, b, N, K, n0, k0, vb);
    };
    auto store_regs = [&](int buf) {
        sg_store<!TA>(As[buf], ra, va);
        sg_store<TB>(Bs[buf], rb, vb);
    };

    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[i][j] = 0.f;

    const int ktiles = (K + SG_BK - 1) / SG_BK;
    load_regs(0);
    store_regs(0);
    __syncthreads();
    for (int kt = 0; kt < ktiles; kt++) {
        const int buf = kt & 1;
        if (kt + 1 < ktiles) load_regs((kt + 1) * SG_BK);   // global loads overlap the FMAs below
#pragma unroll
        for (int kk = 0; kk < SG_BK; kk++) {
            float4 a0 = *reinterpret_cast<const float4*>(&As[buf][kk][ty * 4]);
            float4 a1 = *reinterpret_cast<const float4*>(&As[buf][kk][64 + ty * 4]);
            float4 b0 = *reinterpret_cast<const float4*>(&Bs[buf][kk][tx * 4]);
            float4 b1 = *reinterpret_cast<const float4*>(&Bs[buf][kk][64 + tx * 4]);
            float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
            for (int i = 0; i < 8; i++)
#pragma unroll
                for (int j = 0; j < 8; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        // buf ^ 1 was last read in iteration kt - 1, which every thread finished (barrier below).
        if (kt + 1 < ktiles) store_regs(buf ^ 1);
        __syncthreads();
    }

    const bool vec = (N & 3) == 0;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int m = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
        if (m >= M) continue;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int n = n0 + h * 64 + tx * 4;
            float* dst = c + (long)m * N + n;
            if (vec && n + 3 < N) {
                *reinterpret_cast<float4*>(dst) = make_float4(acc[i][h * 4], acc[i][h * 4 + 1], acc[i][h * 4 + 2], acc[i][h * 4 + 3]);
            } else {
#pragma unroll
                for (int j = 0; j < 4; j++)
                    if (n + j < N) dst[j] = acc[i][h * 4 + j];
            }
        }
    }
}

#define SGEMM(name, TA, TB)                                                                              \
    extern "C" __global__ void __launch_bounds__(256, 2) name(const float* a, const float* b, float* c,   \
                                                          int M, int K, int N, int b_shared) {          \
        sgemm_body<TA, TB>(a, b, c, M, K, N, b_shared);                                                  \
    }
SGEMM(sgemm_nn, false, false)
SGEMM(sgemm_nt, false, true)
SGEMM(sgemm_tn, true, false)
SGEMM(sgemm_tt, true, true)

// ============================ bf16: tensor-core GEMM (mma.sync) ============================
#define HG_BM 128
#define HG_BN 128
#define HG_BK 64
#define HG_ST 3
#define HG_CH (HG_BK / 8)       // 16-byte chunks per k-row of a tile
#define HG_LDK (HG_BK + 8)      // row of a [128][k] tile: 64 + 8 pad (144 B, a multiple of 16)
#define HG_LDW 136              // row of a [k][128] tile: 128 + 8 pad (272 B)
#define HG_TILE (128 * HG_LDK)  // bf16 per operand per stage (>= HG_BK * HG_LDW)

// Fill one stage with the k-tile starting at k0: 1024 chunks per operand, 4 per thread.
template <bool TA, bool TB>
__device__ __forceinline__ void hg_load(bf16* sa, bf16* sb, const bf16* a, const bf16* b, int M, int K, int N,
                                        int m0, int n0, int k0, bool va, bool vb) {
    const int tid = threadIdx.x;
#pragma unroll
    for (int i = 0; i < 128 * HG_CH / 256; i++) {
        int idx = tid + 256 * i;
        if (!TA) {  // A (M, K): row m, 8 k's
            int r = idx / HG_CH, ch = idx % HG_CH, m = m0 + r, k = k0 + ch * 8;
            int lim = (m < M && k < K) ? min(8, K - k) : 0;
            load_piece8(sa + r * HG_LDK + ch * 8, a + (lim > 0 ? (long)m * K + k : 0), a, lim, va);
        } else {    // A (K, M): row k, 8 m's
            int r = idx >> 4, ch = idx & 15, k = k0 + r, m = m0 + ch * 8;
            int lim = (k < K && m < M) ? min(8, M - m) : 0;
            load_piece8(sa + r * HG_LDW + ch * 8, a + (lim > 0 ? (long)k * M + m : 0), a, lim, va);
        }
        if (TB) {   // B (N, K): row n, 8 k's
            int r = idx / HG_CH, ch = idx % HG_CH, n = n0 + r, k = k0 + ch * 8;
            int lim = (n < N && k < K) ? min(8, K - k) : 0;
            load_piece8(sb + r * HG_LDK + ch * 8, b + (lim > 0 ? (long)n * K + k : 0), b, lim, vb);
        } else {    // B (K, N): row k, 8 n's
            int r = idx >> 4, ch = idx & 15, k = k0 + r, n = n0 + ch * 8;
            int lim = (k < K && n < N) ? min(8, N - n) : 0;
            load_piece8(sb + r * HG_LDW + ch * 8, b + (lim > 0 ? (long)k * N + n : 0), b, lim, vb);
        }
    }
}

// CAT (batch 1): C = [A | A2] [B ; B2], the reduction concatenated: k-tiles 0..ceil(K/64) come
// from (a, b) with K, the next ceil(K2/64) from (a2, b2) with K2 (A2 (M, K2), B2 (K2, N) or, TB,
// (N, K2)). Each part's last k-tile is zero-filled past its end, so any K, K2 >= 0 work.
template <bool TA, bool TB, bool CAT>
__device__ __forceinline__ void hgemm_body(const bf16* __restrict__ a, const bf16* __restrict__ b, bf16* __restrict__ c,
                                           int M, int K, int N, int b_shared, int va, int vb,
                                           const bf16* __restrict__ a2, const bf16* __restrict__ b2, int K2, int va2, int vb2) {
    extern __shared__ __align__(16) unsigned char hg_smem[];
    bf16* sa = reinterpret_cast<bf16*>(hg_smem);        // HG_ST stages of A
    bf16* sb = sa + HG_ST * HG_TILE;                    // HG_ST stages of B
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int wm = warp >> 2, wn = warp & 3;            // warp tile: rows wm*64.., cols wn*32..
    int m0, n0;
    gemm_block<HG_BM, HG_BN>(a, b, c, M, K, N, b_shared, m0, n0);

    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

    const int kt1 = (K + HG_BK - 1) / HG_BK;
    const int ktiles = kt1 + (CAT ? (K2 + HG_BK - 1) / HG_BK : 0);
    // k-tile kt into stage st (kt < ktiles)
    // CAT: 16-byte cp.async only (the caller guarantees it), so no scalar loader: fewer registers.
    auto load_tile = [&](int st, int kt) {
        if (!CAT)
            hg_load<TA, TB>(sa + st * HG_TILE, sb + st * HG_TILE, a, b, M, K, N, m0, n0, kt * HG_BK, va, vb);
        else if (kt < kt1)
            hg_load<TA, TB>(sa + st * HG_TILE, sb + st * HG_TILE, a, b, M, K, N, m0, n0, kt * HG_BK, true, true);
        else
            hg_load<TA, TB>(sa + st * HG_TILE, sb + st * HG_TILE, a2, b2, M, K2, N, m0, n0, (kt - kt1) * HG_BK, true, true);
    };
#pragma unroll
    for (int s = 0; s < HG_ST - 1; s++) {
        if (s < ktiles) load_tile(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < ktiles; kt++) {
        cp_async_wait<HG_ST - 2>();   // k-tile kt has landed (this thread's copies)...
        __syncthreads();              // ...and everyone's; stage (kt - 1) % ST is free to refill
        {
            int nk = kt + HG_ST - 1, st = nk % HG_ST;
            if (nk < ktiles) load_tile(st, nk);
            cp_async_commit();        // always, so the group count stays in step
        }
        const bf16* A = sa + (kt % HG_ST) * HG_TILE;
        const bf16* B = sb + (kt % HG_ST) * HG_TILE;
#pragma unroll
        for (int kk = 0; kk < HG_BK; kk += 16) {
            u32 af[4][4], bfr[4][2];
#pragma unroll
            for (int mi = 0; mi < 4; mi++) {
                int mr = wm * 64 + mi * 16;
                // matrices 0..3 = (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15)
                if (!TA) ldmatrix_x4(af[mi], A + (mr + (lane & 15)) * HG_LDK + kk + (lane >> 4) * 8);
                else ldmatrix_x4_trans(af[mi], A + (kk + (lane & 7) + (lane >> 4) * 8) * HG_LDW + mr + ((lane >> 3) & 1) * 8);
            }
#pragma unroll
            for (int ni = 0; ni < 4; ni += 2) {
                int nc = wn * 32 + ni * 8;
                // matrices 0..3 = (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
                u32 r[4];
                if (TB) ldmatrix_x4(r, B + (nc + (lane & 7) + (lane >> 4) * 8) * HG_LDK + kk + ((lane >> 3) & 1) * 8);
                else ldmatrix_x4_trans(r, B + (kk + (lane & 7) + ((lane >> 3) & 1) * 8) * HG_LDW + nc + (lane >> 4) * 8);
                bfr[ni][0] = r[0];
                bfr[ni][1] = r[1];
                bfr[ni + 1][0] = r[2];
                bfr[ni + 1][1] = r[3];
            }
#pragma unroll
            for (int mi = 0; mi < 4; mi++)
#pragma unroll
                for (int ni = 0; ni < 4; ni++) mma_bf16_16816(acc[mi][ni], af[mi], bfr[ni]);
        }
    }
    cp_async_wait<0>();   // no copy may still be in flight when the block exits

    // d0, d1: row g, cols 2t, 2t+1; d2, d3: row g + 8, same cols (g = lane / 4, t = lane % 4)
    const int g = lane >> 2, t = lane & 3;
    const bool pair = (N & 1) == 0;
#pragma unroll
    for (int mi = 0; mi < 4; mi++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int m = m0 + wm * 64 + mi * 16 + g + h * 8;
            if (m >= M) continue;
#pragma unroll
            for (int ni = 0; ni < 4; ni++) {
                int n = n0 + wn * 32 + ni * 8 + 2 * t;
                long o = (long)m * N + n;
                store_bf16x2(c, o, n, N, pair, acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1]);
            }
        }
}

#define HGEMM(name, TA, TB)                                                                              \
    extern "C" __global__ void __launch_bounds__(256, 2) name(const bf16* a, const bf16* b, bf16* c,      \
                                                          int M, int K, int N, int b_shared, int va, int vb) { \
        hgemm_body<TA, TB, false>(a, b, c, M, K, N, b_shared, va, vb, nullptr, nullptr, 0, 0, 0);       \
    }
HGEMM(hgemm_nn, false, false)
HGEMM(hgemm_nt, false, true)
HGEMM(hgemm_tn, true, false)
HGEMM(hgemm_tt, true, true)

// C (M, N) = [A | A2] [B ; B2], one batch, grid = (ceil(N / 128), ceil(M / 128), 1). A (M, K) and
// A2 (M, K2) k-contiguous; B (K, N), B2 (K2, N) (cat_nn) or B (N, K), B2 (N, K2) (cat_nt).
// Every operand's contiguous dimension must be a multiple of 8 (K, K2, and N unless TB): the
// loads are 16-byte cp.async only; va..vb2 are ignored (kept for the launch signature). Used by the bf16 LoRA
// (backend/cuda/lora.rs): y = [x | t] [W ; B_lora] and dX = [dY | g] [W^T ; A_lora^T].
#define HGEMM_CAT(name, TB)                                                                                   \
    extern "C" __global__ void __launch_bounds__(256, 2) name(const bf16* a, const bf16* b, bf16* c, int M, int K, \
                                                          int N, int va, int vb, const bf16* a2, const bf16* b2, \
                                                          int K2, int va2, int vb2) {                        \
        hgemm_body<false, TB, true>(a, b, c, M, K, N, 0, va, vb, a2, b2, K2, va2, vb2);                       \
    }
HGEMM_CAT(hgemm_cat_nn, false)
HGEMM_CAT(hgemm_cat_nt, true)
