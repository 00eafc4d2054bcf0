// kernels/attention_tc.cu: the bf16 causal GQA attention forward on tensor cores (mma.sync, f32
// accumulate, online softmax in f32). Twin: backend/cpu/attention.rs; same contract and arguments
// as attn_fwd_bf16 in attention.cu: q, o (B, Hq, Tq, D); k, v (B, Hkv, Tk, D); query head h reads
// kv head h / G; query i sits at position Tk - Tq + i and sees keys 0 ..= that position;
// lse (B, Hq, Tq) f32 = rowmax + log(rowsum exp) of the scaled scores, or null. D <= DP.
//
// Grid (ceil(Tq / 64), B * Hq), 128 threads (4 warps); warp w owns query rows q0 + 16 w .. + 15,
// each thread rows g and g + 8 of them (g = lane / 4) in the mma fragment layout. Q's tile stays
// in registers as A fragments; key tiles of 64 (K and V, double-buffered by cp.async) stream up
// to the block's last visible key. Per key tile:
//   S = Q K^T (16 x 64 per warp, f32), scaled, keys past a row's position set to -inf;
//   running max m and sum l per row (the four lanes of a quad share a row: shuffles);
//   O = O * exp(m_old - m) + P V, with P = exp(S - m) rounded to bf16 and fed to the next mma
//   straight from the accumulators (a C fragment pair is an A fragment).
// Precision: as attn_fwd_bf16 except that P meets V in bf16 (~2^-9 relative per term), and every
// exp is exp_approx (one MUFU.EX2, ~2^-22 relative: far below P's bf16 rounding).
// Deterministic: fixed order, every output written by one thread.

#define AC_BQ 64    // query rows per block
#define AC_BK 64    // keys per tile

// Shared memory (bf16): Q [64][DP + 8] | K [2][64][DP + 8] | V [2][64][DP + 8].
template <int DP>
__device__ void attn_fwd_tc_body(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                                 bf16* __restrict__ o, float* __restrict__ lse, int Hq, int Hkv, int Tq, int Tk, int D,
                                 float scale, bool vec) {
    constexpr int LD = DP + 8;  // 4 words mod 8: ldmatrix rows on distinct banks
    static_assert(DP == 64 || DP == 128, "instances: DP 64 and 128");
    extern __shared__ __align__(16) unsigned char ac_smem[];
    bf16* Qs = reinterpret_cast<bf16*>(ac_smem);
    bf16* Ks = Qs + AC_BQ * LD;
    bf16* Vs = Ks + 2 * AC_BK * LD;

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int bh = blockIdx.y, q0 = blockIdx.x * AC_BQ;
    const long kvbase = ((long)(bh / Hq) * Hkv + (bh % Hq) / (Hq / Hkv)) * Tk * D;
    const long qbase = (long)bh * Tq * D;
    const int kend = Tk - Tq + min(q0 + AC_BQ, Tq);   // keys [0, kend) are visible to some row
    const int ntiles = (kend + AC_BK - 1) / AC_BK;
    auto fetch = [&](int j, int buf) {
        const int n = min(AC_BK, Tk - j * AC_BK);
        load_rows_bf16<AC_BK>(Ks + buf * AC_BK * LD, LD, k + kvbase, (long)j * AC_BK, n, D, 0, DP, vec);
        load_rows_bf16<AC_BK>(Vs + buf * AC_BK * LD, LD, v + kvbase, (long)j * AC_BK, n, D, 0, DP, vec);
    };
    load_rows_bf16<AC_BQ>(Qs, LD, q + qbase, q0, Tq - q0, D, 0, DP, vec);
    fetch(0, 0);
    cp_async_commit();

    int pos[2];   // this thread's rows g, g + 8: their last visible key (rows past Tq: any valid one)
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int i = q0 + 16 * warp + g + 8 * h;
        pos[h] = i < Tq ? Tk - Tq + i : Tk - 1;
    }
    float m[2] = {-KILN_INF, -KILN_INF}, l[2] = {0.f, 0.f};
    float acc[DP / 8][4];
#pragma unroll
    for (int ni = 0; ni < DP / 8; ni++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[ni][e] = 0.f;
    u32 qf[DP / 16][4];

    for (int j = 0; j < ntiles; j++) {
        cp_async_wait<0>();
        __syncthreads();  // tile j (and Q) landed for all; tile j - 1's readers are done
        if (j == 0) {
#pragma unroll
            for (int kk = 0; kk < DP / 16; kk++)
                ldmatrix_x4(qf[kk], Qs + (16 * warp + (lane & 15)) * LD + 16 * kk + (lane >> 4) * 8);
        }
        if (j + 1 < ntiles) fetch(j + 1, (j + 1) & 1);
        cp_async_commit();
        const bf16* K = Ks + (j & 1) * AC_BK * LD;
        const bf16* V = Vs + (j & 1) * AC_BK * LD;

        // ---- S = Q K^T (16 rows x 64 keys per warp)
        float s[8][4];
#pragma unroll
        for (int ni = 0; ni < 8; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[ni][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < DP / 16; kk++)
#pragma unroll
            for (int ni = 0; ni < 8; ni += 2) {
                u32 r[4];
                ldmatrix_x4(r, K + (8 * ni + (lane & 7) + (lane >> 4) * 8) * LD + 16 * kk + ((lane >> 3) & 1) * 8);
                const u32 b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
                mma_bf16_16816(s[ni], qf[kk], b0);
                mma_bf16_16816(s[ni + 1], qf[kk], b1);
            }

        // ---- scale, mask, running max (a row's 64 scores sit in the 4 lanes of its quad)
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int ni = 0; ni < 8; ni++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int key = j * AC_BK + 8 * ni + 2 * t + (e & 1), h = e >> 1;
                const float x = key <= pos[h] ? s[ni][e] * scale : -KILN_INF;
                s[ni][e] = x;
                mx[h] = fmaxf(mx[h], x);
            }
#pragma unroll
        for (int h = 0; h < 2; h++) {
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
            // Key 0 is in tile 0 and visible to every row, so mx is finite from the first tile on.
            const float corr = exp_approx(m[h] - mx[h]);
            m[h] = mx[h];
            l[h] *= corr;
#pragma unroll
            for (int ni = 0; ni < DP / 8; ni++) {
                acc[ni][2 * h] *= corr;
                acc[ni][2 * h + 1] *= corr;
            }
        }

        // ---- P = exp(S - m); l += its row sums (this thread's share); O += P V
#pragma unroll
        for (int kk = 0; kk < AC_BK / 16; kk++) {
            float p[2][4];
#pragma unroll
            for (int x = 0; x < 2; x++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    p[x][e] = exp_approx(s[2 * kk + x][e] - m[e >> 1]);
                    l[e >> 1] += p[x][e];
                }
            // keys 16 kk .. + 15 as an A fragment: (row g, keys 2t..), (row g + 8, 2t..), (g, 2t + 8..), (g + 8, 2t + 8..)
            const u32 pa[4] = {pack_bf16(p[0][0], p[0][1]), pack_bf16(p[0][2], p[0][3]), pack_bf16(p[1][0], p[1][1]), pack_bf16(p[1][2], p[1][3])};
#pragma unroll
            for (int ni = 0; ni < DP / 8; ni += 2) {
                u32 r[4];
                ldmatrix_x4_trans(r, V + (16 * kk + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + 8 * ni + (lane >> 4) * 8);
                const u32 b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
                mma_bf16_16816(acc[ni], pa, b0);
                mma_bf16_16816(acc[ni + 1], pa, b1);
            }
        }
    }
    cp_async_wait<0>();  // nothing in flight at exit

    // ---- O = acc / l, lse = m + log l (rows < Tq, columns < D)
    const bool pair = (D & 1) == 0;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        float lt = l[h];
        lt += __shfl_xor_sync(0xffffffffu, lt, 1);
        lt += __shfl_xor_sync(0xffffffffu, lt, 2);
        const int i = q0 + 16 * warp + g + 8 * h;
        if (i >= Tq) continue;
        const float inv = 1.f / lt;
        bf16* orow = o + qbase + (long)i * D;
#pragma unroll
        for (int ni = 0; ni < DP / 8; ni++) {
            const int c = 8 * ni + 2 * t;
            store_bf16x2(orow, c, c, D, pair, acc[ni][2 * h] * inv, acc[ni][2 * h + 1] * inv);
        }
        if (lse != 0 && t == 0) lse[(long)bh * Tq + i] = m[h] + logf(lt);
    }
}

// attn_fwd_tc<DP>_bf16: attn_fwd_bf16's arguments plus vec (16-byte loads: D a multiple of 8).
// Dynamic smem: backend/cuda/attention.rs (tc_smem_bytes).
#define ATTN_FWD_TC(DP)                                                                                 \
    extern "C" __global__ void __launch_bounds__(128) attn_fwd_tc##DP##_bf16(                          \
        const bf16* q, const bf16* k, const bf16* v, bf16* o, float* lse, int Hq, int Hkv, int Tq,     \
        int Tk, int D, float scale, int vec) {                                                         \
        attn_fwd_tc_body<DP>(q, k, v, o, lse, Hq, Hkv, Tq, Tk, D, scale, vec != 0);                    \
    }
ATTN_FWD_TC(64)
ATTN_FWD_TC(128)
